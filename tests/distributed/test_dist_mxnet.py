"""MXNet's ``dist_sync`` kvstore, 1 scheduler + 1 server + 2 workers on
127.0.0.1, with ``update_on_kvstore=False`` (every worker runs the
optimizer) and ``True`` (the server unpickles the optimizer, the adapter
inside, wrapped by unisched, and runs it).  In both modes, for the
warmup+cosine, the one-cycle (with its momentum cycle) and the plateau:
the rates and momentum are read back from the optimizer that applies
them (each worker's, or the server's), the plateau cuts on the metric
reduced through the kvstore, the weights of both workers agree after
every update, a checkpoint at update K (momentum states included)
resumes exactly in fresh processes, and a worker killed while writing
leaves the previous checkpoint whole.  Under ``True`` what stays
impossible is refused with a message.  Two launches of 8 processes
(both modes side by side)."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("unisched.backends.mxnet")  # the numpy shim first

from unisched.app.distributed import MXNET_ROLE, free_ports

from dist_common import (
    SCHEDULES,
    UPDATES,
    WORKERS,
    K,
    assert_identical_replicas,
    assert_plateau_cut_once,
    assert_resumed_exactly,
    expected,
    launch,
    python,
    read_records,
    script,
)
from worker_mxnet import MULTIPLIERS


def _procs(mode, out):
    procs = []
    for uok in ("0", "1"):
        port, = free_ports()
        env = {"DMLC_PS_ROOT_URI": "127.0.0.1",
               "DMLC_PS_ROOT_PORT": str(port), "DMLC_NUM_SERVER": "1",
               "DMLC_NUM_WORKER": str(WORKERS), "OMP_NUM_THREADS": "1"}
        serve = [python(), "-m", "unisched.backends.mxnet.distributed", "-"]
        procs += [(serve, dict(env, **{MXNET_ROLE: role}))
                  for role in ("scheduler", "server")]
        procs += [([python(), script("worker_mxnet.py"), uok, mode,
                    str(out)], dict(env, DMLC_ROLE="worker"))] * WORKERS
    return procs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Both modes' runs (checkpoint at K), then the resumed runs, after
    which worker 0 of update_on_kvstore=False is killed mid-write."""
    out = tmp_path_factory.mktemp("mxnet")
    launch(_procs("run", out), out)
    with pytest.raises(RuntimeError, match="exited with"):
        launch(_procs("resume", out), out)
    return out


def _applied(out, tag, who):
    with open(out / f"{tag}.{who}.jsonl") as f:
        return [json.loads(line) for line in f]


def _who(uok):
    """Where the optimizer runs: the server, or each worker."""
    return ["server"] if uok else [f"rank{r}" for r in range(WORKERS)]


BOTH = [(uok, name) for uok in (0, 1) for name in sorted(SCHEDULES)]


@pytest.mark.parametrize("uok, name", BOTH)
def test_the_optimizer_applies_sched_k_at_each_update(runs, uok, name):
    rates, moms = expected(name)
    moms = moms or [SCHEDULES[name][1]] * UPDATES
    mult = MULTIPLIERS.get(name, 1.0)       # lr_mult, on the server too
    for who in _who(uok):
        got = _applied(runs, f"uok{uok}-run-{name}", who)
        # MXNet numbers update k as num_update k + 1; under True the
        # reductions, saves and loads through the server's optimizer
        # count no update
        assert got == [[k + 1, rates[k] * mult, moms[k]]
                       for k in range(UPDATES)]
    for rank in range(WORKERS):     # what every worker reads back
        rec = read_records(runs, f"uok{uok}-run-{name}", rank)
        assert [r["read"] for r in rec] == rates


@pytest.mark.parametrize("uok", [0, 1])
def test_plateau_cuts_once_on_the_mean_metric(runs, uok):
    ranks = []
    for who in _who(uok):
        got = _applied(runs, f"uok{uok}-run-plateau", who)
        ranks.append([{"k": n - 1, "lr": lr} for n, lr, _ in got])
    assert_plateau_cut_once(ranks)


@pytest.mark.parametrize("uok, name", BOTH)
def test_worker_weights_identical_after_every_update(runs, uok, name):
    assert_identical_replicas([read_records(runs, f"uok{uok}-run-{name}",
                                            r) for r in range(WORKERS)])


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_both_modes_compute_the_same_weights(runs, name):
    # the same SGD kernel on the same summed gradient, on a worker or
    # on the server: bit for bit
    ours, theirs = (read_records(runs, f"uok{uok}-run-{name}", 0)
                    for uok in (0, 1))
    assert [r["weights"] for r in ours] == [r["weights"] for r in theirs]


@pytest.mark.parametrize("uok, name", BOTH)
def test_resume_in_fresh_processes_continues_exactly(runs, uok, name):
    # what the optimizer applied (each worker's, or the server's)...
    for who in _who(uok):
        full = _applied(runs, f"uok{uok}-run-{name}", who)
        assert _applied(runs, f"uok{uok}-resume-{name}", who) == full[K:]
    # ... and what every worker read and holds (the momentum buffers
    # resumed: else the weights would differ from update K + 1 on)
    assert_resumed_exactly(runs, f"uok{uok}-run-{name}",
                           f"uok{uok}-resume-{name}")


def test_checkpoints_have_the_same_content_in_both_modes(runs):
    import pickle
    blobs = []
    for uok in (0, 1):
        with open(runs / f"uok{uok}-one_cycle.bin", "rb") as f:
            blobs.append(pickle.load(f))
    ours, theirs = blobs
    assert ours["adapter"] == theirs["adapter"]
    assert ours["adapter"]["updates_done"] == K
    # the momentum buffer of parameter 1 (placeholder 0 has no state)
    assert sorted(ours["states"]) == sorted(theirs["states"]) == [1]
    assert [a.tolist() for a in ours["states"][1]] == \
        [a.tolist() for a in theirs["states"][1]]
    assert any(ours["states"][1][0])


@pytest.mark.parametrize("what, message", [
    ("load", "load_checkpoint must come before prepare()"),
    ("observe", "which observe() reaches only through"),
    ("reduce", "call prepare(trainer, batch_size) before the first step")])
def test_what_stays_impossible_under_update_on_kvstore_is_refused(
        runs, what, message):
    for rank in range(WORKERS):
        text = (runs / f"uok1-refused-{what}.rank{rank}").read_text()
        assert message in text


def test_killed_writer_leaves_the_last_complete_checkpoint(runs):
    import pickle
    assert not (runs / "uok0-crash-cosine.rank0.json").exists()
    assert [p for p in runs.iterdir()
            if p.name.startswith(".uok0-crash-cosine.bin.")]
    with open(runs / "uok0-crash-cosine.bin", "rb") as f:
        blob = pickle.load(f)
    full = read_records(runs, "uok0-run-cosine", 0)
    assert blob["adapter"]["updates_done"] == 8
    assert blob["weights"]["w_cosine"].tolist() == full[7]["weights"]
