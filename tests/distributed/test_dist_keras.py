"""Keras 3 under ``tf.distribute``: ``MirroredStrategy`` over 2 logical
CPU devices with ``model.fit``, and ``MultiWorkerMirroredStrategy`` with 2
local worker processes (``TF_CONFIG``; a custom ``strategy.run`` loop,
since ``model.fit`` under it hits keras-team/keras#20585).  Every replica
applies ``sched(k)`` at update ``k`` (rate and momentum read in its own
replica context, float32 as the optimizer uses them), the plateau cuts on
the reduced metric, replica weights stay identical, ``model.save`` at
update K resumes exactly in fresh processes, and a process killed while
writing a checkpoint leaves the previous one whole."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from unisched.app.distributed import free_ports

from dist_common import (
    SCHEDULES,
    UPDATES,
    WORKERS,
    assert_identical_replicas,
    assert_plateau_cut_once,
    assert_resumed_exactly,
    expected,
    launch,
    python,
    read_records,
    script,
)

ENGINES = ("mirrored", "mwms")
QUIET = {"TF_CPP_MIN_LOG_LEVEL": "2"}


def _procs(mode, out):
    argv = [python(), script("worker_keras.py")]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(WORKERS)]}
    return [(argv + ["mirrored", mode, str(out)], QUIET)] + [
        (argv + ["mwms", mode, str(out)], dict(QUIET, TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": i}})))
        for i in range(WORKERS)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Both engines' uninterrupted runs (checkpoint at K), then their
    resumed runs (each launch: the mirrored process beside the two
    MWMS workers), after which the mirrored process is killed while
    writing a checkpoint (the launch fails)."""
    out = tmp_path_factory.mktemp("keras")
    launch(_procs("run", out), out)
    with pytest.raises(RuntimeError, match="exited with"):
        launch(_procs("resume", out), out)
    return out


def _f32(values):
    return [float(np.float32(v)) for v in values]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_every_replica_applies_sched_k(runs, engine, name):
    rates, moms = expected(name)
    for rank in range(WORKERS):
        rec = read_records(runs, f"{engine}-run-{name}", rank)
        assert [r["k"] for r in rec] == list(range(UPDATES))
        assert [r["lr"] for r in rec] == _f32(rates)
        assert [r["momentum"] for r in rec] == _f32(
            moms or [SCHEDULES[name][1]] * UPDATES)


@pytest.mark.parametrize("engine", ENGINES)
def test_plateau_cuts_once_on_the_mean_metric(runs, engine):
    assert_plateau_cut_once([read_records(runs, f"{engine}-run-plateau",
                                          rank) for rank in range(WORKERS)])


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_replica_weights_identical_after_every_update(runs, engine, name):
    assert_identical_replicas([read_records(runs, f"{engine}-run-{name}",
                                            r) for r in range(WORKERS)])


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_resume_in_fresh_processes_continues_exactly(runs, engine, name):
    assert_resumed_exactly(runs, f"{engine}-run-{name}",
                           f"{engine}-resume-{name}")


def test_killed_writer_leaves_the_last_complete_checkpoint(runs):
    from unisched.backends import keras as usk
    from unisched.backends.keras.distributed import load_checkpoint
    assert not (runs / "mirrored-crash-cosine.rank0.json").exists()
    assert [p for p in runs.iterdir()
            if p.name.startswith(".mirrored-crash-cosine.keras.")]
    model = load_checkpoint(str(runs / "mirrored-crash-cosine.keras"))
    adapter = usk.adapter_of(model.optimizer)
    full = read_records(runs, "mirrored-run-cosine", 0)
    weights = [x for v in model.trainable_variables
               for x in np.asarray(v).ravel().tolist()]
    assert adapter.updates_done == 8
    assert weights == full[7]["weights"]
    assert float(model.optimizer.learning_rate) == full[8]["lr"]
