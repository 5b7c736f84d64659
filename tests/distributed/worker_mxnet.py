"""The MXNet workers of ``test_dist_mxnet.py``: ``worker_mxnet.py UOK
MODE OUT`` with ``DMLC_ROLE=worker`` (the scheduler and the server run
``python -m unisched.backends.mxnet.distributed``).  ``UOK``:
``update_on_kvstore`` ``0`` or ``1``.  MODE ``run`` (checkpoint at update
K; with ``UOK=1`` then what stays refused), ``resume`` (fresh processes,
from it; with ``UOK=0`` then the crash: worker 0 killed while writing its
third checkpoint, once the ``UOK=1`` workers of the same launch are
done).

The optimizer is :class:`RecordingSGD`: it records, in the process that
runs it (each worker, or the server under ``update_on_kvstore=True``),
the rate and momentum of every update as the update uses them."""
from __future__ import annotations

import json
import os
import signal
import sys

import numpy as np

from unisched.backends import mxnet as usm
from unisched.backends.mxnet import distributed as umd

mx = usm.mx


#: the multiplier of a run's parameter (MXNet's lr_mult)
MULTIPLIERS = {"cosine": 0.5}


class RecordingSGD(mx.optimizer.SGD):
    """MXNet's SGD, appending ``(num_update, lr, momentum)`` of every
    update to ``record_path`` (set before the optimizer is shipped)."""

    record_path = None

    def _get_lrs(self, indices):
        # SGD's (aggregated) update asks here; the scheduler call inside
        # sets the momentum this update then reads
        lrs = super()._get_lrs(indices)
        if self.record_path:
            with open(self.record_path, "a") as f:
                f.write(json.dumps([self.num_update, lrs[0],
                                    self.momentum]) + "\n")
        return lrs


def main(uok: str, mode: str, out: str) -> None:
    from dist_common import SCHEDULES, wait_for, write_records
    kv = mx.kv.create("dist_sync")
    uok = uok == "1"
    tag = f"uok{int(uok)}"
    for j, name in enumerate(SCHEDULES):
        run = Run(kv, uok, mode, name, j, out)
        write_records(out, f"{tag}-{mode}-{name}", kv.rank, run.train())
    if uok and mode == "run":
        refusals(kv, run, out)
    open(os.path.join(out, f"{tag}-{mode}.rank{kv.rank}.done"), "w").close()
    if mode == "resume" and not uok:
        for rank in range(kv.num_workers):      # the other set first
            wait_for(os.path.join(out, f"uok1-resume.rank{rank}.done"))
        Run(kv, uok, "crash", "cosine", len(SCHEDULES), out).train()


class Run:
    """Schedule ``name`` on its own parameter.  All runs of a process
    share its one dist kvstore, whose keys are the Trainer's parameter
    indices: run ``j``'s Trainer is given ``j`` placeholders first (no
    gradient, not initialised again) so that its parameter gets key
    ``j``."""

    def __init__(self, kv, uok, mode, name, j, out):
        from dist_common import SCHEDULES
        self.kv, self.uok, self.mode, self.name = kv, uok, mode, name
        self.out, self.rank = out, kv.rank
        spec, momentum = SCHEDULES[name]
        holders = [mx.gluon.Parameter(f"hold{i}", shape=(1,),
                                      grad_req="null",
                                      init=mx.init.Zero())
                   for i in range(j)]
        self.w = mx.gluon.Parameter(f"w_{name}", shape=(4,),
                                    init=mx.init.Constant(0.5))
        for p in holders + [self.w]:
            p.initialize()
        opt = RecordingSGD(momentum=momentum)
        who = "server" if uok else f"rank{self.rank}"
        opt.record_path = os.path.join(out, f"uok{int(uok)}-{mode}-{name}"
                                            f".{who}.jsonl")
        self.trainer = mx.gluon.Trainer(holders + [self.w], opt,
                                        kvstore=kv, update_on_kvstore=uok)
        self.trainer._params_to_init = [self.w]
        # a per-parameter multiplier (lr_mult), which MXNet does not pickle
        mult = [1.0] * j + [MULTIPLIERS.get(name, 1.0)]
        self.adapter = usm.bind(spec, self.trainer, multipliers=mult)
        self.path = os.path.join(out, f"uok{int(uok)}-{mode}-{name}.bin"
                                 if mode == "crash"
                                 else f"uok{int(uok)}-{name}.bin")

    def train(self):
        """Per update: its index, the rate read back, the weights."""
        from dist_common import CKPT_EPOCH, PER_EPOCH, UPDATES, metric
        if self.mode == "resume":
            umd.load_checkpoint(self.path, self.trainer)
        umd.prepare(self.trainer, 2)    # the global batch
        gen = np.random.RandomState(100 + self.rank)
        grads = gen.randn(UPDATES, 4)
        records = []
        opt = self.trainer._optimizer
        for k in range(self.adapter.updates_done, UPDATES):
            with mx.autograd.record():
                loss = (self.w.data() * mx.nd.array(grads[k])).sum()
            loss.backward()
            used = {"k": k, "read": opt.lr_scheduler(opt.num_update + 1)}
            umd.step(self.trainer, 2)       # the global batch: 2 workers
            used["weights"] = self.w.data().asnumpy().tolist()
            records.append(used)
            if (k + 1) % PER_EPOCH:
                continue
            epoch = (k + 1) // PER_EPOCH
            if self.adapter.schedule.stateful:
                self.adapter.observe(umd.mean_across_workers(
                    metric(self.rank, epoch - 1), self.trainer))
            if self.mode == "crash" and epoch == CKPT_EPOCH and \
                    self.rank == 0:
                umd.pickle.dump = _dying_dump
            if epoch == CKPT_EPOCH or (self.mode == "crash"
                                       and epoch < CKPT_EPOCH):
                umd.save_checkpoint(self.path, self.trainer)
        return records


def refusals(kv, last, out):
    """Under update_on_kvstore=True: loading a checkpoint after prepare
    (into ``last``, a finished Run), and a trainer stepped without
    prepare (its optimizer shipped unwrapped): observe and a reduction.
    Each message goes to ``uok1-refused-WHAT.rankR``."""
    from dist_common import SCHEDULES
    messages = {}
    try:
        umd.load_checkpoint(last.path, last.trainer)
    except ValueError as err:
        messages["load"] = str(err)
    bare = Run(kv, True, "bare", "plateau", len(SCHEDULES) + 1, out)
    with mx.autograd.record():
        loss = bare.w.data().sum()
    loss.backward()
    bare.trainer.step(2)
    # done before the process ends (a kvstore freed with an update in
    # flight can leave the other worker waiting at exit)
    mx.nd.waitall()
    for what, call in [
            ("observe", lambda: bare.adapter.observe(1.0)),
            ("reduce", lambda: umd.sum_across_workers([1.0],
                                                      bare.trainer))]:
        try:
            call()
        except ValueError as err:
            messages[what] = str(err)
    for what, text in messages.items():
        with open(os.path.join(out, f"uok1-refused-{what}.rank{kv.rank}"),
                  "w") as f:
            f.write(text)


def _dying_dump(obj, f) -> None:
    """Half a file, then the process is killed."""
    f.write(b"\x80\x04 half a checkpoint")
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    # run the module under its own name: the server unpickles
    # worker_mxnet.RecordingSGD, not __main__'s
    import worker_mxnet
    worker_mxnet.main(*sys.argv[1:4])
