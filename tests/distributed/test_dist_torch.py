"""PyTorch DDP (``torch.distributed.run --nproc_per_node 2``, gloo): every
rank applies ``sched(k)`` at update ``k`` (rate and momentum cycle read
from its optimizer), the plateau cuts on the reduced metric, weights stay
identical, a checkpoint at update K resumes exactly in fresh processes,
and a rank killed while writing a checkpoint leaves the previous one
whole.  One launch per mode; the three schedules run in each."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from unisched.app.distributed import free_ports  # noqa: E402

from dist_common import (  # noqa: E402
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


def _torchrun(mode, out):
    port, = free_ports()
    return [([python(), "-m", "torch.distributed.run",
              f"--nproc_per_node={WORKERS}", "--master_addr=127.0.0.1",
              f"--master_port={port}", script("worker_torch.py"), mode,
              str(out)], {"OMP_NUM_THREADS": "1"})]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The uninterrupted run (checkpoint at K), then the resumed one,
    which ends in the crash (rank 0 killed: the launch fails)."""
    out = tmp_path_factory.mktemp("torch")
    launch(_torchrun("run", out), out)
    with pytest.raises(RuntimeError, match="exited with"):
        launch(_torchrun("resume", out), out)
    return out


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_every_rank_applies_sched_k(runs, name):
    rates, moms = expected(name)
    for rank in range(WORKERS):
        rec = read_records(runs, f"run-{name}", rank)
        assert [r["k"] for r in rec] == list(range(UPDATES))
        assert [r["lr"] for r in rec] == rates
        if moms is not None:
            assert [r["momentum"] for r in rec] == moms
        else:
            assert {r["momentum"] for r in rec} == {SCHEDULES[name][1]}


def test_plateau_cuts_once_on_the_mean_metric(runs):
    assert_plateau_cut_once([read_records(runs, "run-plateau", rank)
                             for rank in range(WORKERS)])


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_replica_weights_identical_after_every_update(runs, name):
    assert_identical_replicas([read_records(runs, f"run-{name}", r)
                               for r in range(WORKERS)])


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_resume_in_fresh_processes_continues_exactly(runs, name):
    assert_resumed_exactly(runs, f"run-{name}", f"resume-{name}")


def test_killed_writer_leaves_the_last_complete_checkpoint(runs):
    from unisched.backends import torch as ust
    from unisched.backends.torch.distributed import load_checkpoint
    assert not (runs / "crash-cosine.rank0.json").exists()
    leftovers = [p.name for p in runs.iterdir()
                 if p.name.startswith(".crash-cosine.pt.")]
    assert leftovers, "rank 0 was killed while writing a temporary file"
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.5)
    scheduler = ust.bind(SCHEDULES["cosine"][0], opt)
    load_checkpoint(str(runs / "crash-cosine.pt"), model, opt, scheduler)
    # the checkpoint after epoch 2 (update 8), whole: the weights of the
    # uninterrupted run after update 8, the rate of update 8 next
    full = read_records(runs, "run-cosine", 0)
    weights = [v for p in model.parameters()
               for v in p.detach().flatten().tolist()]
    assert scheduler.updates_done == 8
    assert weights == full[7]["weights"]
    assert opt.param_groups[0]["lr"] == full[8]["lr"]
