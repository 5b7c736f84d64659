"""The PyTorch DDP worker of ``test_dist_torch.py`` (started by
``python -m torch.distributed.run --nproc_per_node 2 worker_torch.py MODE
OUT``).  MODE ``run``: every schedule over all updates, a checkpoint at
update K.  MODE ``resume`` (fresh processes): every schedule loaded from
its checkpoint and run from K on; then the crash: the cosine schedule
again with checkpoints after epochs 1 and 2, and rank 0 killed while
writing the third."""
from __future__ import annotations

import os
import signal
import sys

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from unisched.backends import torch as ust
from unisched.backends.torch.distributed import (
    load_checkpoint,
    mean_across_workers,
    save_checkpoint,
)

from dist_common import (
    CKPT_EPOCH,
    PER_EPOCH,
    SCHEDULES,
    UPDATES,
    metric,
    write_records,
)


def train(name: str, mode: str, out: str, rank: int) -> None:
    spec, momentum = SCHEDULES[name]
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    ddp = DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=1.0, momentum=momentum)
    scheduler = ust.bind(spec, opt)
    path = os.path.join(out, f"{mode}-{name}.pt" if mode == "crash"
                        else f"{name}.pt")
    if mode == "resume":
        load_checkpoint(path, ddp, opt, scheduler)
    # each rank its own data: DDP's average is what makes them agree
    gen = torch.Generator().manual_seed(100 + rank)
    x = torch.randn(UPDATES, 8, 3, generator=gen)
    y = torch.randn(UPDATES, 8, 2, generator=gen)
    records = []
    for k in range(scheduler.updates_done, UPDATES):
        group = opt.param_groups[0]
        used = {"k": k, "lr": group["lr"], "momentum": group["momentum"]}
        opt.zero_grad()
        ((ddp(x[k]) - y[k]) ** 2).mean().backward()
        opt.step()
        scheduler.step()
        used["weights"] = [v for p in model.parameters()
                           for v in p.detach().flatten().tolist()]
        records.append(used)
        if (k + 1) % PER_EPOCH:
            continue
        epoch = k // PER_EPOCH + 1
        if scheduler.schedule.stateful:
            scheduler.observe(mean_across_workers(metric(rank, epoch - 1)))
        if mode == "crash" and epoch == CKPT_EPOCH and rank == 0:
            torch.save = _dying_save
        if epoch == CKPT_EPOCH or (mode == "crash" and epoch < CKPT_EPOCH):
            save_checkpoint(path, ddp, opt, scheduler)
    write_records(out, f"{mode}-{name}", rank, records)


def _dying_save(obj, path) -> None:
    """Half a file, then the process is killed (as by the OOM killer)."""
    with open(path, "wb") as f:
        f.write(b"PK\x03\x04 half a checkpoint")
        f.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def main(mode: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    for name in SCHEDULES:
        train(name, mode, out, rank)
    if mode == "resume":
        train("cosine", "crash", out, rank)     # does not return
    dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:3])
