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
keeps the workers' copies at the same position.  MXNet gives no way back
to the servers' optimizer (``Trainer.save_states`` asserts "Cannot save
states for distributed training"), so :func:`prepare` ships it wrapped
(:class:`~.server.ServerOptimizer`) with reserved kvstore keys through
which the workers reduce values (:func:`sum_across_workers`), read the
servers' momentum/Adam states (:func:`save_checkpoint`) and write them
(:func:`load_checkpoint` in fresh processes, applied by
:func:`prepare`); ``observe`` on a worker sends the optimizer again (a
successor keeping the servers' states), so a ``ReduceOnPlateau`` cut
applies from the next update.  The checkpoint has the same content in
both modes: a file made in one resumes in the other.  Refused under
``True``: :func:`load_checkpoint` after :func:`prepare` (the servers hold
the weights, which only their first push sets) and any use of the
servers before :func:`prepare` (observe included: a plainly shipped
optimizer cannot be reached).

Roles: a scheduler and a server run ``python -m
unisched.backends.mxnet.distributed`` with the role in
``UNISCHED_DMLC_ROLE`` (see :func:`serve`).  Importing this module
imports mxnet.
"""
from __future__ import annotations

import hashlib
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
from .server import (
    LINK,
    MAX_LEAVES,
    MAX_REDUCE,
    REDUCE,
    KeyPlan,
    ServerOptimizer,
    leaves,
    ships_optimizer,
)

__all__ = ["prepare", "step", "mean_across_workers", "sum_across_workers",
           "save_checkpoint",
           "load_checkpoint", "serve", "DistributedMXNetTrainer"]

#: where :func:`load_checkpoint` leaves the states :func:`prepare` sends
#: to the servers (``LINK``: where it keeps the trainer's :class:`Servers`)
LOADED = "_unisched_loaded"


def _check_trainer(trainer: Any) -> None:
    if not isinstance(trainer, mx.gluon.Trainer):
        raise TypeError(f"trainer must be an mxnet.gluon.Trainer, got "
                        f"{type(trainer).__name__}")


def _kvstore(trainer: Any) -> Any:
    _check_trainer(trainer)
    if ships_optimizer(trainer) and LINK not in trainer.__dict__:
        raise ValueError("under update_on_kvstore=True call prepare("
                         "trainer, batch_size) before the first step: the "
                         "servers need unisched's optimizer wrapper")
    if not trainer._kv_initialized:
        trainer._init_kvstore()
    kv = trainer._kvstore
    if kv is None or "dist" not in kv.type:
        raise ValueError(f"the trainer's kvstore must be a dist kvstore "
                         f"(mx.kv.create('dist_sync')), got "
                         f"{getattr(kv, 'type', kv)!r}")
    return kv


def _init_once(kv: Any, key: int, size: int, dtype: Any) -> None:
    """``kv.init`` (collective) of a reserved key, once per kvstore: a
    second init would reach the servers as a push."""
    done = kv.__dict__.setdefault("_unisched_keys", set())
    if key not in done:
        kv.init(key, mx.nd.zeros((size,), dtype=dtype))
        done.add(key)


def _pushpull(kv: Any, items: list[tuple[int, np.ndarray]], send: bool
              ) -> list[np.ndarray]:
    """Push each ``(key, values)`` (this worker's values if ``send``, else
    zeros) and pull what the servers then hold; waits for all of them,
    so that no later push overtakes them."""
    outs = []
    for key, values in items:
        _init_once(kv, key, values.size, values.dtype)
        out = mx.nd.zeros((values.size,), dtype=values.dtype)
        mine = values if send else np.zeros_like(values)
        kv.pushpull(key, mx.nd.array(mine, dtype=values.dtype), out=out)
        outs.append(out)
    return [out.asnumpy() for out in outs]


class Servers:
    """A trainer's link to the servers that run its optimizer
    (``update_on_kvstore=True``), made by :func:`prepare`: the wrapper it
    ships, the state keys, and this worker's fresh states (their layout)."""

    def __init__(self, trainer: Any) -> None:
        self.trainer, self.ready = trainer, False
        self.kv: Any = None     # the kvstore, once created
        names = "\0".join(p.name for p in trainer._params)
        self.token = hashlib.sha1(names.encode()).hexdigest()
        servers = int(os.environ.get("DMLC_NUM_SERVER", "1"))
        self.plan = KeyPlan.for_servers(servers)
        count = len(trainer._params)
        if count > self.plan.capacity:
            raise ValueError(f"a Trainer on the servers may have at most "
                             f"{self.plan.capacity} parameters (unisched "
                             f"reserves the kvstore keys above), got {count}")
        self.fresh: dict[int, list[np.ndarray]] = {}

    def wrap(self) -> ServerOptimizer:
        return ServerOptimizer(self.trainer._optimizer, self.token,
                               self.plan)

    def observed(self) -> None:
        """After ``observe``: worker 0 sends the optimizer again, once its
        last update is done on the servers (the next one needs its push,
        which comes after)."""
        if self.kv.rank == 0:
            mx.nd.waitall()
            self.kv.set_optimizer(self.wrap())

    def start(self, loaded: Any) -> None:
        """Once: the servers' states from ``loaded`` (a checkpoint's) or
        fresh, as this worker's optimizer makes them."""
        self.fresh = _fresh(self.trainer)
        for arrays in self.fresh.values():
            if len(arrays) > MAX_LEAVES:
                raise ValueError(f"{type(self.trainer._optimizer).__name__}"
                                 f" keeps {len(arrays)} arrays per "
                                 f"parameter; the servers' states can "
                                 f"carry at most {MAX_LEAVES}")
        self.push(self.fresh if loaded is None else loaded)
        self.ready = True

    def push(self, states: dict[int, list[np.ndarray]]) -> None:
        """Write ``states`` (worker 0's) into the servers' states."""
        _check_states(states, self.fresh)
        _pushpull(self.kv, [(self.plan.load(i, j), a)
                            for i, arrays in sorted(states.items())
                            for j, a in enumerate(arrays)],
                  send=self.kv.rank == 0)

    def fetch(self) -> dict[int, list[np.ndarray]]:
        """The servers' states now (every worker gets them)."""
        mx.nd.waitall()     # this worker's updates are done there
        items = [(self.plan.save(i, j), a)
                 for i, arrays in sorted(self.fresh.items())
                 for j, a in enumerate(arrays)]
        got = iter(_pushpull(self.kv, items, send=False))
        return {i: [next(got) for _ in arrays]
                for i, arrays in sorted(self.fresh.items())}


def _fresh(trainer: Any) -> dict[int, list[np.ndarray]]:
    """Per trained parameter index, the flat arrays of a new optimizer
    state (what an update would create now)."""
    opt = trainer._optimizer
    return {i: [leaf.asnumpy().ravel() for leaf in leaves(
        opt.create_state_multi_precision(i, p.list_data()[0]))]
        for i, p in enumerate(trainer._params) if p.grad_req != "null"}


def _check_states(states: Any, fresh: dict[int, list[np.ndarray]]
                  ) -> None:
    """``states`` (a checkpoint's) fits the optimizer's ``fresh`` ones."""
    if not isinstance(states, dict) or set(states) != set(fresh):
        got = sorted(states) if isinstance(states, dict) else states
        raise ValueError(f"the checkpoint's optimizer states are for "
                         f"parameters {got!r:.100}, the trainer has "
                         f"{sorted(fresh)}")
    for i, arrays in states.items():
        shapes = [np.shape(a) for a in arrays]
        if shapes != [a.shape for a in fresh[i]]:
            raise ValueError(f"the checkpoint's optimizer state of "
                             f"parameter {i} has arrays {shapes}, the "
                             f"optimizer makes {[a.shape for a in fresh[i]]}")


def prepare(trainer: Any, batch_size: int | None = None) -> Any:
    """Before the first step (after ``bind`` and any
    :func:`load_checkpoint`): create the kvstore, push the initial weights
    and wait for every worker, so that no worker's first gradient reaches
    the kvstore before another's weights are there.  Under
    ``update_on_kvstore=True`` the optimizer goes to the servers wrapped
    (see the module docstring), with the gradient scale ``1 /
    batch_size``, the GLOBAL batch, which MXNet cannot change there later,
    then the states (the checkpoint's, else fresh ones) are written there.
    Returns the kvstore."""
    _check_trainer(trainer)
    if not ships_optimizer(trainer):
        kv = _kvstore(trainer)
    elif LINK in trainer.__dict__:
        kv = trainer._kvstore
    else:
        kv = _first_ship(trainer, batch_size)
    if trainer._params_to_init:
        trainer._init_params()
    mx.nd.waitall()
    kv._barrier()
    link = trainer.__dict__.get(LINK)
    if link is not None and not link.ready:
        link.start(trainer.__dict__.pop(LOADED, None))
    return kv


def _first_ship(trainer: Any, batch_size: int | None) -> Any:
    if trainer._kv_initialized:
        raise ValueError("the trainer already sent its optimizer to the "
                         "servers unwrapped: under update_on_kvstore=True "
                         "call prepare() before the first step")
    if batch_size is None:
        raise ValueError("prepare needs batch_size (the global batch) "
                         "under update_on_kvstore=True")
    if trainer._compression_params:
        raise ValueError("gradient compression would also compress "
                         "unisched's values on the servers' keys; "
                         "prepare() refuses it under update_on_kvstore=True")
    opt = trainer._optimizer
    opt.rescale_grad = trainer._scale / batch_size
    link = Servers(trainer)
    # Trainer._init_kvstore ships trainer._optimizer: the wrapper, then
    # the optimizer the workers keep is back in place.
    trainer._optimizer = link.wrap()
    try:
        trainer._init_kvstore()
    finally:
        trainer._optimizer = opt
    link.kv = trainer._kvstore
    trainer.__dict__[LINK] = link
    return link.kv


def step(trainer: Any, batch_size: int) -> None:
    """``trainer.step(batch_size)`` (``batch_size``: the GLOBAL batch, as
    the servers sum the workers' gradients); under
    ``update_on_kvstore=True`` this worker's optimizer copy (which MXNet
    leaves at update 0) is moved to the servers' position."""
    trainer.step(batch_size)
    if ships_optimizer(trainer):
        opt = trainer._optimizer
        set_position(opt, opt.num_update + 1)


def sum_across_workers(values: Any, trainer: Any) -> np.ndarray:
    """The element-wise sum of a short vector (at most ``MAX_REDUCE``
    values) over all workers (float64), through the kvstore key
    ``REDUCE`` + its length, which the servers' optimizer wrapper leaves
    to a plain sum under ``update_on_kvstore=True``; every worker must
    call it."""
    kv = _kvstore(trainer)
    values = np.asarray(values, dtype=np.float64).ravel()
    if not 0 < values.size <= MAX_REDUCE:
        raise ValueError(f"values must hold 1 to {MAX_REDUCE} numbers, got "
                         f"{values.size}")
    if trainer._compression_params:
        raise ValueError("gradient compression would compress the values "
                         "reduced too")
    return _pushpull(kv, [(REDUCE + values.size, values)], send=True)[0]


def mean_across_workers(value: Any, trainer: Any) -> float:
    """The mean of a scalar over all workers, the same float on each:
    what ``observe`` needs so that a ``ReduceOnPlateau`` cuts at the same
    epoch on every worker (see :func:`sum_across_workers`)."""
    total = sum_across_workers([float(value)], trainer)[0]
    return float(total) / _kvstore(trainer).num_workers


def _local_states(trainer: Any) -> dict[int, list[np.ndarray]]:
    """The workers' states; fresh ones for parameters not updated yet
    (as the servers hold after :func:`prepare`)."""
    states = _fresh(trainer)
    for i, state in trainer._updaters[0].states.items():
        states[i] = [leaf.asnumpy().ravel() for leaf in leaves(state)]
    return dict(sorted(states.items()))


def save_checkpoint(path: str, trainer: Any) -> None:
    """Worker 0 writes the weights, the optimizer states (per parameter
    index, the flat arrays of its state: the workers' or the servers') and
    the adapter's ``state_dict`` (pickled) to a temporary file renamed
    over ``path``: a worker killed while writing leaves the previous
    checkpoint whole; every worker returns once it is complete."""
    kv = _kvstore(trainer)
    link = trainer.__dict__.get(LINK)
    states = link.fetch() if link else _local_states(trainer)
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
    after ``bind``): the weights, the adapter's position (and plateau
    state), and the optimizer states: into the workers' updaters, or
    under ``update_on_kvstore=True`` (before :func:`prepare`, fresh
    processes) to the servers by :func:`prepare`."""
    adapter = attached(trainer)
    ships = ships_optimizer(trainer)
    if ships and trainer._kv_initialized:
        raise ValueError("under update_on_kvstore=True load_checkpoint "
                         "must come before prepare(): the servers hold the "
                         "weights, which only their first push sets")
    with open(path, "rb") as f:
        blob = pickle.load(f)
    if not isinstance(blob, dict) or \
            not isinstance(blob.get("states"), dict):
        raise ValueError(f"{path!r} is not a checkpoint of this module's "
                         f"save_checkpoint")
    if not ships:       # (under True prepare checks them)
        _check_states(blob["states"], _fresh(trainer))
    adapter.load_state_dict(blob["adapter"])
    for p in trainer._params:
        p.set_data(mx.nd.array(blob["weights"][p.name]))
    if ships:
        trainer.__dict__[LOADED] = blob["states"]
        return
    opt, params = trainer._optimizer, trainer._params
    for i, arrays in blob["states"].items():
        for u, data in zip(trainer._updaters, params[i].list_data(),
                           strict=True):
            state = opt.create_state_multi_precision(i, data)
            for leaf, a in zip(leaves(state), arrays, strict=True):
                leaf[:] = a.reshape(leaf.shape)
            u.states[i], u.states_synced[i] = state, True


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
