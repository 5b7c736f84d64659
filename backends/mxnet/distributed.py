"""MXNet's ``dist_sync`` kvstore: a schedule on every worker (or on the
servers), the metric reduced across workers, checkpoints written
atomically by worker 0.

The script, on every worker (``DMLC_ROLE=worker``)::

    kv = mx.kv.create("dist_sync")
    trainer = gluon.Trainer(params, "sgd", kvstore=kv,
                            update_on_kvstore=False)     # or True
    adapter = usm.bind(sched, trainer)
    load_checkpoint("ckpt.bin", trainer)                 # to resume
    prepare(trainer, global_batch_size)                  # before step 1
    for x, y in shard_of_the_global_batches:
        ...; step(trainer, global_batch_size)
    adapter.observe(mean_across_workers(loss, trainer))
    save_checkpoint("ckpt.bin", trainer)

``update_on_kvstore=False``: every worker runs the optimizer (and the
adapter) on the summed gradients.  ``True``: the servers unpickle the
optimizer, the adapter inside, and run it at each aggregated update, so
update ``k`` uses ``sched(k)`` however many workers push; :func:`step`
keeps the workers' copies at the same position (their checkpoints and
read-outs).  MXNet cannot reach the servers' optimizer afterwards: their
momentum/Adam state cannot be saved (``Trainer.save_states`` asserts
"Cannot save states for distributed training"), nor a metric reduced or a
``ReduceOnPlateau`` cut sent there without resetting that state.  So
under ``True`` :func:`prepare` refuses a ``ReduceOnPlateau`` and
:func:`save_checkpoint` an optimizer with state (plain SGD resumes
exactly); use ``update_on_kvstore=False`` for those.

Roles: a scheduler and a server run ``python -m
unisched.backends.mxnet.distributed`` with the role in
``UNISCHED_DMLC_ROLE`` (see :func:`serve`).  Importing this module
imports mxnet.
"""
from __future__ import annotations

import os
import pickle
import sys
from typing import Any

import numpy as np

from unisched._io import atomic_path
from unisched.app.distributed import MXNET_ROLE, run_worker, shard

from ._mx import mx, set_position
from .adapter import attached
from .lenet import MXNetTrainer

__all__ = ["prepare", "step", "mean_across_workers", "sum_across_workers",
           "save_checkpoint",
           "load_checkpoint", "serve", "DistributedMXNetTrainer"]

#: the kvstore key :func:`mean_across_workers` reduces through (far from
#: the Trainer's parameter indices)
REDUCE_KEY = 1 << 30


def _kvstore(trainer: Any) -> Any:
    if not isinstance(trainer, mx.gluon.Trainer):
        raise TypeError(f"trainer must be an mxnet.gluon.Trainer, got "
                        f"{type(trainer).__name__}")
    if not trainer._kv_initialized:
        trainer._init_kvstore()
    kv = trainer._kvstore
    if kv is None or "dist" not in kv.type:
        raise ValueError(f"the trainer's kvstore must be a dist kvstore "
                         f"(mx.kv.create('dist_sync')), got "
                         f"{getattr(kv, 'type', kv)!r}")
    return kv


def _on_servers(trainer: Any) -> bool:
    return bool(trainer._update_on_kvstore)


def prepare(trainer: Any, batch_size: int | None = None) -> Any:
    """Before the first step (after ``bind`` and any
    :func:`load_checkpoint`): create the kvstore (which ships the
    optimizer to the servers under ``update_on_kvstore=True``, with the
    gradient scale ``1 / batch_size``, the GLOBAL batch, which MXNet
    cannot change there later), push the initial weights and wait for
    every worker, so that no worker's first gradient reaches the kvstore
    before another's weights are there.  Returns the kvstore."""
    if not trainer._kv_initialized:
        if trainer._kvstore_params["update_on_kvstore"]:
            if batch_size is None:
                raise ValueError("prepare needs batch_size (the global "
                                 "batch) under update_on_kvstore=True")
            trainer._optimizer.rescale_grad = trainer._scale / batch_size
    kv = _kvstore(trainer)
    if _on_servers(trainer):
        sched = trainer._optimizer.lr_scheduler
        if getattr(getattr(sched, "schedule", None), "stateful", False):
            raise ValueError(
                f"{sched.schedule.to_spec()} needs observe() on the "
                f"optimizer that runs, which update_on_kvstore=True puts "
                f"on the servers, out of reach (MXNet ships an optimizer "
                f"there only whole, discarding its state): use "
                f"update_on_kvstore=False")
    if trainer._params_to_init:
        trainer._init_params()
    mx.nd.waitall()
    kv._barrier()
    return kv


def step(trainer: Any, batch_size: int) -> None:
    """``trainer.step(batch_size)`` (``batch_size``: the GLOBAL batch, as
    the servers sum the workers' gradients); under
    ``update_on_kvstore=True`` this worker's optimizer copy (which MXNet
    leaves at update 0) is moved to the servers' position."""
    trainer.step(batch_size)
    if _on_servers(trainer):
        opt = trainer._optimizer
        set_position(opt, opt.num_update + 1)


def sum_across_workers(values: Any, trainer: Any) -> np.ndarray:
    """The element-wise sum of a short vector over all workers (float64),
    through the kvstore (key :data:`REDUCE_KEY` + its length); every
    worker must call it.  Needs ``update_on_kvstore=False`` (else the
    servers would run the optimizer on it)."""
    kv = _kvstore(trainer)
    if _on_servers(trainer):
        raise ValueError("reducing across workers needs update_on_kvstore="
                         "False: with True the servers apply the "
                         "optimizer to every key pushed")
    values = np.asarray(values, dtype=np.float64).ravel()
    key = REDUCE_KEY + values.size
    done = trainer.__dict__.setdefault("_unisched_reduce_keys", set())
    if key not in done:
        kv.init(key, mx.nd.zeros(values.shape, dtype="float64"))
        done.add(key)
    out = mx.nd.zeros(values.shape, dtype="float64")
    kv.pushpull(key, mx.nd.array(values, dtype="float64"), out=out)
    return out.asnumpy()


def mean_across_workers(value: Any, trainer: Any) -> float:
    """The mean of a scalar over all workers, the same float on each:
    what ``observe`` needs so that a ``ReduceOnPlateau`` cuts at the same
    epoch on every worker (see :func:`sum_across_workers`)."""
    total = sum_across_workers([float(value)], trainer)[0]
    return float(total) / _kvstore(trainer).num_workers


def save_checkpoint(path: str, trainer: Any) -> None:
    """Worker 0 writes the weights, the optimizer state and the adapter's
    position (pickled, MXNet's ``save_states`` content) to a temporary
    file renamed over ``path``: a worker killed while writing leaves the
    previous checkpoint whole; every worker returns once it is complete.
    Under ``update_on_kvstore=True`` only a stateless optimizer can be
    saved (see the module docstring)."""
    kv = _kvstore(trainer)
    if _on_servers(trainer):
        weights = trainer._params[0].list_data()[0]
        if trainer._optimizer.create_state(0, weights) is not None:
            raise ValueError(
                f"{type(trainer._optimizer).__name__} keeps state (momentum"
                f"...) on the servers under update_on_kvstore=True, which "
                f"MXNet cannot save; use update_on_kvstore=False")
        states = None
    else:
        states = trainer._updaters[0].get_states(dump_optimizer=True)
    if kv.rank == 0:
        blob = {"weights": {p.name: p.data().asnumpy()
                            for p in trainer._params},
                "states": states,
                "adapter": attached(trainer).state_dict()}
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                pickle.dump(blob, f)
                f.flush()
                os.fsync(f.fileno())
    kv._barrier()


def load_checkpoint(path: str, trainer: Any) -> None:
    """Load :func:`save_checkpoint`'s file on this worker (every worker,
    fresh processes, after ``bind`` and before :func:`prepare`): weights,
    then the optimizer state through ``trainer.load_states`` (the bound
    adapter continues the checkpoint's position), or under
    ``update_on_kvstore=True`` the adapter's position, which the
    optimizer then carries to the servers."""
    with open(path, "rb") as f:
        blob = pickle.load(f)
    for p in trainer._params:
        p.set_data(mx.nd.array(blob["weights"][p.name]))
    adapter = attached(trainer)
    if blob["states"] is None:
        adapter.load_state_dict(blob["adapter"])
        return
    with atomic_path(f"{path}.states") as tmp:
        with open(tmp, "wb") as f:
            f.write(blob["states"])
        trainer.load_states(tmp)


class DistributedMXNetTrainer(MXNetTrainer):
    """:class:`~unisched.backends.mxnet.MXNetTrainer` on a dist kvstore
    (``update_on_kvstore=False``: the global loss and accuracy are
    reduced through it): :meth:`batches` yields the GLOBAL batches of a
    single process; each worker backpropagates the summed loss of its
    shard (:func:`unisched.app.distributed.shard`) and steps with the
    global batch size, so the kvstore's sum is the global batch mean
    gradient.  The loss and correct count returned are the global
    batch's, the same on every worker."""

    def __init__(self, sched: Any, *, kvstore: Any, **options: Any) -> None:
        self.kvstore = kvstore
        self.rank, self.size = kvstore.rank, kvstore.num_workers
        options.setdefault("device", "cpu")
        super().__init__(sched, **options)
        prepare(self.optimizer)

    def _make_optimizer(self) -> Any:
        local = super()._make_optimizer()
        return mx.gluon.Trainer(self.model.collect_params(),
                                local.optimizer, kvstore=self.kvstore,
                                update_on_kvstore=False)

    def _shard(self, x: np.ndarray, y: np.ndarray) -> tuple[Any, ...]:
        """This worker's rows, and 1 (0: an empty shard, for which one
        row runs with weight 0, as every worker must push a gradient)."""
        lo, hi = shard(len(y), self.rank, self.size)
        if hi == lo:
            return (*self._inputs(x[:1], y[:1]), 0.0)
        return (*self._inputs(x[lo:hi], y[lo:hi]), 1.0)

    def train_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        xs, ys, weight = self._shard(x, y)
        with mx.autograd.record():
            out = self.model(xs)
            loss = self.loss_fn(out, ys) * weight
        loss.backward()
        self.optimizer.step(len(y))
        hits = (out.argmax(axis=1) == ys).sum().asscalar() * weight
        total, correct = sum_across_workers(
            [loss.sum().asscalar(), hits], self.optimizer)
        return float(total) / len(y), int(correct)

    def count_correct(self, x: np.ndarray, y: np.ndarray) -> int:
        xs, ys, weight = self._shard(x, y)
        hits = (self.model(xs).argmax(axis=1) == ys).sum().asscalar()
        return int(sum_across_workers([hits * weight], self.optimizer)[0])


def serve(role: str) -> None:
    """Run this process as the kvstore ``role`` (``'scheduler'`` or
    ``'server'``) until the workers finish.  The role goes into
    ``DMLC_ROLE`` only now: ``import mxnet`` starts a server with that
    variable set, and a server unpickling the optimizer must import
    unisched's adapter, which needs mxnet imported first."""
    if role not in ("scheduler", "server"):
        raise ValueError(f"role must be 'scheduler' or 'server', got "
                         f"{role!r}")
    os.environ["DMLC_ROLE"] = role
    from mxnet.kvstore.kvstore_server import _init_kvstore_server_module
    _init_kvstore_server_module()       # serves, then exits


def main(argv: list[str]) -> int:
    """A process of ``unisched train --framework mxnet --workers N``."""
    role = os.environ.get(MXNET_ROLE)
    if role:
        serve(role)
    kv = mx.kv.create("dist_sync")
    run_worker(argv[0], DistributedMXNetTrainer, kv.rank, kvstore=kv)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
