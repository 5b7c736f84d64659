"""What the distributed tests share: the schedules every engine runs, the
per-rank plateau metrics, the expected rates, and launching processes
(through :func:`unisched.app.distributed.run_processes`, which ends every
process on failure or timeout).

Every engine runs the same scenario with 2 workers: ``EPOCHS`` epochs of
``PER_EPOCH`` updates of a tiny model on data that differs per rank, for
each schedule in :data:`SCHEDULES`; each rank records, per update, the
rate and momentum read back from its optimizer and its weights after the
update; a checkpoint is written after epoch ``CKPT_EPOCH`` (update
``K``) and a resume in fresh processes runs the updates from ``K`` on.
"""
from __future__ import annotations

import json
import os
import sys
import time

import unisched as us
from unisched.app.distributed import run_processes

EPOCHS, PER_EPOCH, CKPT_EPOCH = 6, 4, 3
UPDATES = EPOCHS * PER_EPOCH
K = CKPT_EPOCH * PER_EPOCH
WORKERS = 2
#: name -> (spec, SGD momentum the optimizer is built with)
SCHEDULES = {
    "cosine": ("warmup(cosine(max_update=20, base_lr=0.4, final_lr=0.02),"
               " warmup_steps=4)", 0.5),
    "one_cycle": ("one_cycle(max_lr=0.4, max_update=24)", 0.9),
    "plateau": ("reduce_on_plateau(schedule=cosine(max_update=24, "
                "base_lr=0.3), factor=0.5, patience=1)", 0.0),
}
#: the epoch metric each rank sees (by design different): fed as it is,
#: rank 0 would never cut, rank 1 would cut after epochs 3 and 5; their
#: mean (what every rank must observe) cuts once, after epoch 3
PLATEAU_METRICS = [[1.0, 0.9, 0.8, 0.7, 0.6, 0.5],
                   [1.0, 1.3, 1.2, 1.4, 1.3, 1.2]]
HERE = os.path.dirname(os.path.abspath(__file__))
#: seconds one launch may take on a loaded 2-core machine
TIMEOUT = 240.0


def metric(rank: int, epoch: int) -> float:
    return PLATEAU_METRICS[rank][epoch]


def expected(name: str, metrics=None) -> tuple[list[float], list]:
    """(rates, momenta or None) of updates 0..UPDATES-1 for schedule
    ``name``; the plateau fed ``metrics`` (default: the mean of the
    ranks') after each epoch."""
    spec, _ = SCHEDULES[name]
    sched = us.parse(spec)
    if metrics is None:
        metrics = [sum(m) / len(m) for m in zip(*PLATEAU_METRICS, strict=True)]
    rates = []
    for k in range(UPDATES):
        rates.append(sched(k))
        if sched.stateful and (k + 1) % PER_EPOCH == 0:
            sched.observe(metrics[k // PER_EPOCH], step=k + 1)
    moms = None
    if name == "one_cycle":
        moms = [sched.momentum(k) for k in range(UPDATES)]
    return rates, moms


def assert_plateau_cut_once(ranks) -> None:
    """The rates every rank recorded under the plateau schedule: the
    cosine below it until the cut after epoch 3, half of it after; fed
    unreduced, either rank alone would have cut elsewhere."""
    rates, _ = expected("plateau")
    for alone in PLATEAU_METRICS:
        assert expected("plateau", alone)[0] != rates
    below = us.parse("cosine(max_update=24, base_lr=0.3)")
    for records in ranks:
        # 4 digits: float32 rates (Keras, JAX) of a tiny cosine tail
        scale = [round(r["lr"] / below(r["k"]), 4) for r in records]
        assert scale == [1.0] * K + [0.5] * (UPDATES - K)


def assert_identical_replicas(ranks) -> None:
    """Every rank's weights equal after every update (and they moved)."""
    for updates in zip(*ranks, strict=True):
        assert all(u["weights"] == updates[0]["weights"] for u in updates)
    assert ranks[0][0]["weights"] != ranks[0][-1]["weights"]


def assert_resumed_exactly(out, run: str, resumed: str) -> None:
    """Every rank's records of the resumed run (tags ``run`` and
    ``resumed``) are the uninterrupted run's from update K on."""
    for rank in range(WORKERS):
        full = read_records(out, run, rank)
        again = read_records(out, resumed, rank)
        assert [r["k"] for r in again] == list(range(K, UPDATES))
        assert again == full[K:]


def script(name: str) -> str:
    return os.path.join(HERE, name)


def launch(procs, tmp_path, timeout: float = TIMEOUT) -> None:
    """Run ``(argv, env)`` processes; tests/ and this folder importable."""
    path = os.pathsep.join([HERE, os.path.dirname(HERE),
                            os.environ.get("PYTHONPATH", "")])
    procs = [(argv, dict(env, PYTHONPATH=path)) for argv, env in procs]
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    run_processes(procs, timeout, str(logs))


def wait_for(path: str, timeout: float = TIMEOUT) -> None:
    """Until ``path`` exists (another process of the launch is done)."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear in {timeout} s")
        time.sleep(0.1)


def write_records(out_dir: str, tag: str, rank: int, records) -> None:
    with open(os.path.join(out_dir, f"{tag}.rank{rank}.json"), "w") as f:
        json.dump(records, f)


def read_records(out_dir, tag: str, rank: int):
    with open(os.path.join(out_dir, f"{tag}.rank{rank}.json")) as f:
        return json.load(f)


def python() -> str:
    return sys.executable
