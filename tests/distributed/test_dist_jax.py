"""JAX data parallel over 2 host CPU devices (``XLA_FLAGS=--xla_force_
host_platform_device_count=2``), the schedule inside the jitted step, the
batch sharded, parameters and optimizer state replicated: every device's
copy of the state holds ``sched(k)`` (rate and momentum) for update ``k``,
the plateau cuts on the mean of the devices' metrics, the devices'
weights stay identical, an Orbax checkpoint at update K resumes exactly
in a fresh process, and a process killed while saving leaves ``LATEST``
on the last complete checkpoint."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("optax")

from unisched.app.distributed import xla_flags

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


def _proc(mode, out):
    return [([python(), script("worker_jax.py"), mode, str(out)],
             {"XLA_FLAGS": xla_flags(WORKERS)})]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("jax")
    launch(_proc("run", out), out)
    launch(_proc("resume", out), out)
    return out


def _f32(values):
    return [float(np.float32(v)) for v in values]


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_every_device_applies_sched_k(runs, name):
    rates, moms = expected(name)
    for device in range(WORKERS):
        rec = read_records(runs, f"run-{name}", device)
        assert [r["k"] for r in rec] == list(range(UPDATES))
        # the formulas run in float32 here, as in the contract suite
        # (tests/backends/harness_jax.py: rtol 5e-6)
        np.testing.assert_allclose([r["lr"] for r in rec], rates,
                                   rtol=5e-6)
        np.testing.assert_allclose([r["momentum"] for r in rec],
                                   moms or [SCHEDULES[name][1]] * UPDATES,
                                   rtol=5e-6)


def test_plateau_cuts_once_on_the_mean_metric(runs):
    assert_plateau_cut_once([read_records(runs, "run-plateau", d)
                             for d in range(WORKERS)])


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_device_weights_identical_after_every_update(runs, name):
    ranks = [read_records(runs, f"run-{name}", d) for d in range(WORKERS)]
    assert_identical_replicas(ranks)
    # every device's state copy too
    assert all(r == ranks[0] for r in ranks)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_resume_in_a_fresh_process_continues_exactly(runs, name):
    assert_resumed_exactly(runs, f"run-{name}", f"resume-{name}")


def test_killed_writer_leaves_the_last_complete_checkpoint(runs):
    import functools

    import jax
    import optax

    from unisched.backends.jax.distributed import load_checkpoint
    with pytest.raises(RuntimeError, match="exited with"):
        launch(_proc("crash", runs), runs)
    folder = runs / "crash-cosine"
    assert (folder / "LATEST").read_text() == "step_8"
    assert (folder / "step_12" / "unisched.json").exists()  # the half one
    params = {"w": jax.numpy.zeros((3, 2)), "b": jax.numpy.zeros(2)}
    adapter, state, params = load_checkpoint(
        str(folder), functools.partial(optax.sgd, momentum=0.5), params)
    full = read_records(runs, "run-cosine", 0)
    assert adapter.updates_done == 8
    assert np.concatenate([np.ravel(params["w"]), params["b"]]).tolist() \
        == full[7]["weights"]
