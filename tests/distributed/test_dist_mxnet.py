"""MXNet's ``dist_sync`` kvstore, 1 scheduler + 1 server + 2 workers on
127.0.0.1, with ``update_on_kvstore=False`` (every worker runs the
optimizer) and ``True`` (the server unpickles the optimizer, the adapter
inside, and runs it).  The rates and momentum are read back from the
optimizer that applies them (each worker's, or the server's), the plateau
cuts on the metric reduced through the kvstore, the weights of both
workers agree after every update, a checkpoint at update K resumes
exactly in fresh processes, and a worker killed while writing leaves the
previous checkpoint whole.  Under ``True`` the engine refuses what MXNet
cannot do there (a plateau, saving server-side momentum), with a
message.  Two launches of 8 processes (both modes side by side)."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("unisched.backends.mxnet")  # the numpy shim first

from dist_common import (K, SCHEDULES, UPDATES, WORKERS,  # noqa: E402
                         assert_identical_replicas, assert_plateau_cut_once,
                         assert_resumed_exactly, expected, launch, python,
                         read_records, script)
from unisched.app.distributed import MXNET_ROLE, free_ports  # noqa: E402


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


def _plan(uok, name):
    """(rates, momenta) the optimizer must apply in this mode."""
    rates, moms = expected(name)
    momentum = 0.0 if uok and name == "cosine" else SCHEDULES[name][1]
    return rates, moms or [momentum] * UPDATES


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_every_worker_applies_sched_k(runs, name):
    rates, moms = _plan(False, name)
    for rank in range(WORKERS):
        got = _applied(runs, f"uok0-run-{name}", f"rank{rank}")
        # MXNet numbers update k as num_update k + 1
        assert got == [[k + 1, rates[k], moms[k]] for k in range(UPDATES)]
        rec = read_records(runs, f"uok0-run-{name}", rank)
        assert [r["read"] for r in rec] == rates


@pytest.mark.parametrize("name", ["cosine", "one_cycle"])
def test_the_server_applies_sched_k_at_each_aggregated_update(runs, name):
    rates, moms = _plan(True, name)
    got = _applied(runs, f"uok1-run-{name}", "server")
    assert got == [[k + 1, rates[k], moms[k]] for k in range(UPDATES)]
    for rank in range(WORKERS):     # the workers' copies keep up
        rec = read_records(runs, f"uok1-run-{name}", rank)
        assert [r["read"] for r in rec] == rates


def test_plateau_cuts_once_on_the_mean_metric(runs):
    ranks = []
    for rank in range(WORKERS):
        got = _applied(runs, "uok0-run-plateau", f"rank{rank}")
        ranks.append([{"k": n - 1, "lr": lr} for n, lr, _ in got])
    assert_plateau_cut_once(ranks)


@pytest.mark.parametrize("what, name, message", [
    ("prepare", "plateau", "use update_on_kvstore=False"),
    ("save", "one_cycle", "keeps state (momentum...) on the servers")])
def test_what_the_servers_cannot_do_is_refused(runs, what, name, message):
    for rank in range(WORKERS):
        text = (runs / f"uok1-run-{name}.{what}.rank{rank}").read_text()
        assert message in text


@pytest.mark.parametrize("uok, name", [(0, n) for n in sorted(SCHEDULES)]
                         + [(1, "cosine"), (1, "one_cycle")])
def test_worker_weights_identical_after_every_update(runs, uok, name):
    assert_identical_replicas([read_records(runs, f"uok{uok}-run-{name}",
                                            r) for r in range(WORKERS)])


@pytest.mark.parametrize("uok, name", [(0, n) for n in sorted(SCHEDULES)]
                         + [(1, "cosine")])
def test_resume_in_fresh_processes_continues_exactly(runs, uok, name):
    # what the optimizer applied (each worker's, or the server's)...
    for who in ["server"] if uok else [f"rank{r}" for r in range(WORKERS)]:
        full = _applied(runs, f"uok{uok}-run-{name}", who)
        assert _applied(runs, f"uok{uok}-resume-{name}", who) == full[K:]
    # ... and what every worker read and holds
    assert_resumed_exactly(runs, f"uok{uok}-run-{name}",
                           f"uok{uok}-resume-{name}")


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
