"""``unisched train --framework FW --workers 2``: LeNet trained
data-parallel through the framework's own engine gives the metrics of a
single process on the same global batches, and the launcher ends every
process it started, on failure and on timeout."""
from __future__ import annotations

import importlib
import json
import sys
import time

import numpy as np
import pytest

from unisched.app.cli import main
from unisched.app.data import load_dataset
from unisched.app.distributed import run_processes

SPEC = "one_cycle(max_lr=0.2, max_update=6)"
LIMIT, BATCH, EPOCHS = 192, 64, 2
# The workers sum the same gradient terms in another order (per shard,
# then across workers): float32 rounding, ~1e-6 on the loss after a few
# updates as measured.  1e-4 is 100x that, and far below what a wrong
# split does (a gradient scaled by the worker count, or one shard's
# gradient alone, moves the loss by more than 1e-2 after one update).
LOSS_ATOL = 1e-4


@pytest.mark.parametrize("framework", ["torch", "keras", "mxnet", "jax"])
def test_workers_match_a_single_process(framework, tmp_path, capsys):
    pytest.importorskip(f"unisched.backends.{framework}")
    assert main(["train", "--framework", framework, "--schedule", SPEC,
                 "--workers", "2", "--epochs", str(EPOCHS), "--limit",
                 str(LIMIT), "--batch-size", str(BATCH), "--momentum",
                 "0.5", "--out", str(tmp_path)]) == 0
    assert f"wrote {tmp_path / framework}.json" in capsys.readouterr().out
    with open(tmp_path / f"{framework}.json") as f:
        dist = json.load(f)
    backend = importlib.import_module(f"unisched.backends.{framework}")
    one = backend.train_lenet(SPEC, load_dataset("digits", limit=LIMIT),
                              EPOCHS, batch_size=BATCH, momentum=0.5,
                              log=None).to_dict()
    updates = EPOCHS * LIMIT // BATCH
    assert len(dist["updates"]["step"]) == updates
    # the rates and momentum are the schedule's, read from the optimizer
    assert dist["updates"]["lr"] == one["updates"]["lr"]
    assert dist["updates"]["momentum"] == one["updates"]["momentum"]
    assert np.allclose(dist["updates"]["loss"], one["updates"]["loss"],
                       rtol=0, atol=LOSS_ATOL)
    for d, o in zip(dist["epochs"], one["epochs"], strict=True):
        assert abs(d["train_loss"] - o["train_loss"]) <= LOSS_ATOL
        assert d["train_acc"] == o["train_acc"]
        assert d["test_acc"] == o["test_acc"]


def _sleeper(pid_file, code):
    """A process that starts a child, writes both pids, then sleeps (or
    exits with ``code`` after a moment)."""
    body = (f"import os, subprocess, sys, time\n"
            f"c = subprocess.Popen([sys.executable, '-c', "
            f"'import time; time.sleep(300)'])\n"
            f"open({str(pid_file)!r}, 'w').write(f'{{os.getpid()}} "
            f"{{c.pid}}')\n"
            f"time.sleep(1 if {code} else 300)\n"
            f"sys.exit({code})\n")
    return [sys.executable, "-c", body]


def _gone(pid):
    """Not running: absent, or a zombie waiting for init to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] in "ZX"
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("failing", [True, False])
def test_every_process_is_ended(tmp_path, failing):
    """One process failing ends the others (and their children); so does
    the timeout."""
    pids = [tmp_path / f"p{i}" for i in range(2)]
    procs = [(_sleeper(pids[0], 3 if failing else 0), {}),
             (_sleeper(pids[1], 0), {})]
    start = time.monotonic()
    with pytest.raises(RuntimeError if failing else TimeoutError):
        run_processes(procs, 60 if failing else 3, str(tmp_path))
    assert time.monotonic() - start < 30
    for path in pids:
        for pid in map(int, path.read_text().split()):
            assert _gone(pid)


def test_a_terminated_launcher_ends_its_processes(tmp_path):
    """SIGTERM to the launcher (a job scheduler's kill) ends what it
    started before it exits."""
    import signal
    import subprocess
    pids = tmp_path / "p0"
    code = (f"from unisched.app.distributed import run_processes\n"
            f"run_processes([({_sleeper(pids, 0)!r}, {{}})], 120, "
            f"{str(tmp_path)!r})\n")
    launcher = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 60
    while not pids.exists() or not pids.read_text().strip():
        assert time.monotonic() < deadline and launcher.poll() is None
        time.sleep(0.1)
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(30) == 128 + signal.SIGTERM
    for pid in map(int, pids.read_text().split()):
        assert _gone(pid)
