"""PyTorch ``DistributedDataParallel``: a schedule on every rank, the
metric reduced across ranks, checkpoints written atomically by rank 0.

Each rank binds the same schedule to its own optimizer; DDP makes the
gradients (hence the weights) equal, and the adapter gives every rank
``sched(k)`` at update ``k``.  A ``ReduceOnPlateau`` must see the same
metric on every rank, or the ranks would cut at different epochs::

    scheduler = ust.bind(sched, optimizer)
    for epoch in range(epochs):
        ...                                   # updates, scheduler.step()
        scheduler.observe(mean_across_workers(epoch_loss))
        save_checkpoint("ckpt.pt", model, optimizer, scheduler)

Launch: ``python -m torch.distributed.run --nproc_per_node 2 train.py``
(``unisched train --framework torch --workers 2`` runs
:class:`DistributedTorchTrainer` this way).  Importing this module
imports torch; ``python -m`` it is a worker of
:func:`unisched.app.distributed.train`.
"""
from __future__ import annotations

import sys
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel

from unisched._io import atomic_path
from unisched.app.distributed import run_worker, shard

from .adapter import LRScheduler
from .lenet import TorchTrainer

__all__ = ["world", "mean_across_workers", "save_checkpoint",
           "load_checkpoint", "DistributedTorchTrainer"]


def world() -> tuple[int, int]:
    """``(rank, world size)`` of the default process group."""
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError("torch.distributed is not initialized: call "
                           "torch.distributed.init_process_group() first "
                           "(torchrun sets its environment)")
    return dist.get_rank(), dist.get_world_size()


def mean_across_workers(value: Any) -> float:
    """The mean of a scalar (a number or a one-element tensor) over all
    ranks, the same float on every rank: what ``observe`` needs so that a
    ``ReduceOnPlateau`` cuts at the same epoch everywhere.  Every rank
    must call it (a collective)."""
    _, size = world()
    t = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item()) / size


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) \
        else model


def save_checkpoint(path: str, model: nn.Module, optimizer: Any,
                    scheduler: LRScheduler, **extra: Any) -> None:
    """Rank 0 writes ``{'model', 'optimizer', 'scheduler', 'extra'}``
    (``state_dict``s) with ``torch.save`` to a temporary file renamed
    over ``path``: a rank killed while writing leaves the previous
    checkpoint whole.  Every rank returns after the file is complete (a
    barrier), so a checkpoint is never half-taken across ranks."""
    rank, _ = world()
    if rank == 0:
        state = {"model": _unwrap(model).state_dict(),
                 "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "extra": extra}
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    dist.barrier()


def load_checkpoint(path: str, model: nn.Module, optimizer: Any,
                    scheduler: LRScheduler) -> dict[str, Any]:
    """Load :func:`save_checkpoint`'s file on this rank (every rank calls
    it, in fresh processes): weights, optimizer state, then the
    schedule's position (after the optimizer, whose ``load_state_dict``
    brings back the rates of the checkpoint's last update).  Returns the
    ``extra`` entries."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    _unwrap(model).load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return state["extra"]


class DistributedTorchTrainer(TorchTrainer):
    """:class:`~unisched.backends.torch.TorchTrainer` under DDP (CPU,
    gloo): :meth:`batches` yields the GLOBAL batches of a single process;
    each rank trains on its shard (:func:`unisched.app.distributed.shard`)
    with the loss scaled to ``sum over its shard / global batch * world``
    so that DDP's gradient average is the global batch mean, even for an
    uneven last batch.  The loss and correct count returned are the
    global batch's (summed across ranks), so ``fit`` records, and a
    ``ReduceOnPlateau`` observes, the same numbers on every rank."""

    def __init__(self, sched: Any, **options: Any) -> None:
        self.rank, self.size = world()
        options.setdefault("device", "cpu")
        super().__init__(sched, **options)
        # DDP broadcasts rank 0's weights; all ranks built the same ones.
        self.ddp = DistributedDataParallel(self.model)

    def _global(self, loss_sum: torch.Tensor, hits: torch.Tensor
                ) -> tuple[float, int]:
        t = torch.stack((loss_sum.detach().double(), hits.double()))
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        total, correct = t.tolist()
        return total, int(correct)

    def train_batch(self, x: torch.Tensor, y: torch.Tensor
                    ) -> tuple[float, int]:
        lo, hi = shard(len(y), self.rank, self.size)
        xs, ys = x[lo:hi], y[lo:hi]
        self.ddp.train()
        self.optimizer.zero_grad(set_to_none=True)
        out = self.ddp(xs)
        loss_sum = F.cross_entropy(out, ys, reduction="sum")
        (loss_sum * (self.size / len(y))).backward()
        self.optimizer.step()
        if self._per_update:
            self._step_scheduler()
        total, correct = self._global(loss_sum, (out.argmax(1) == ys).sum())
        return total / len(y), correct

    def count_correct(self, x: torch.Tensor, y: torch.Tensor) -> int:
        lo, hi = shard(len(y), self.rank, self.size)
        self.model.eval()
        with torch.no_grad():
            hits = (self.model(x[lo:hi]).argmax(1) == y[lo:hi]).sum()
        return self._global(torch.zeros(()), hits)[1]


def main(argv: list[str]) -> int:
    """A worker of ``unisched train --framework torch --workers N``
    (started by torchrun, which sets the process group's environment)."""
    dist.init_process_group("gloo")
    try:
        run_worker(argv[0], DistributedTorchTrainer, dist.get_rank())
        # every rank leaves together: a rank that tears the group down
        # while another is still in a collective can make gloo abort it
        dist.barrier()
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
