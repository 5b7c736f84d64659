"""JAX data parallelism over a device mesh: the schedule inside the
jitted step, the batch sharded over the devices, the parameters and the
optimizer state (``state.hyperparams`` included) replicated, checkpoints
written with Orbax and published atomically.

On one host with several devices (on a CPU:
``XLA_FLAGS=--xla_force_host_platform_device_count=2`` before JAX starts)::

    mesh = data_mesh()                           # every device, axis 'data'
    adapter = usj.bind(sched, optax.sgd)
    params = jax.device_put(params, replicated(mesh))
    state = adapter.init(params)                 # replicated like params
    step = jax.jit(train_step)                   # tx.update inside
    for x, y in batches:
        params, state = step(params, state, *shard(mesh, x, y))
        adapter.track(state)
    adapter.observe(mean_across_workers(epoch_losses))
    save_checkpoint("ckpt", adapter, state, params)

XLA inserts the gradient all-reduce (GSPMD), so every device applies
``sched(k)`` at update ``k`` to the same weights.  Across hosts
(``jax.distributed.initialize``) the same code runs on a mesh of every
process' devices; :func:`mean_across_workers` then gathers the hosts'
numbers.  Importing this module imports jax, optax and orbax; ``python -m``
it is the process of ``unisched train --framework jax --workers N``.
"""
from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from unisched._io import write_text
from unisched.app.distributed import Job, run_worker

from .adapter import Adapter
from .lenet import JaxTrainer
from .native import restore, save

__all__ = ["data_mesh", "replicated", "shard", "mean_across_workers",
           "save_checkpoint", "load_checkpoint", "DistributedJaxTrainer"]

#: the file naming the last complete checkpoint inside a checkpoint folder
LATEST = "LATEST"


def data_mesh(devices: int | None = None) -> Mesh:
    """A one-axis mesh (``'data'``) over the first ``devices`` devices
    (None: all of them)."""
    found = jax.devices()
    n = len(found) if devices is None else devices
    if isinstance(n, bool) or not isinstance(n, int) or not \
            1 <= n <= len(found):
        raise ValueError(f"devices must be between 1 and the {len(found)} "
                         f"device(s) JAX sees (XLA_FLAGS=--xla_force_host_"
                         f"platform_device_count=N on a CPU), got "
                         f"{devices!r}")
    return Mesh(np.array(found[:n]), ("data",))


def replicated(mesh: Mesh) -> NamedSharding:
    """A copy of the whole array on every device of ``mesh``."""
    return NamedSharding(mesh, PartitionSpec())


def shard(mesh: Mesh, *arrays: Any) -> tuple[Any, ...]:
    """``arrays`` split along their first axis over ``mesh``'s devices; a
    batch that does not split evenly is replicated instead (the step then
    computes the same global mean on every device)."""
    size = mesh.devices.size
    out = []
    for a in arrays:
        spec = PartitionSpec("data") if len(a) % size == 0 \
            else PartitionSpec()
        out.append(jax.device_put(a, NamedSharding(mesh, spec)))
    return tuple(out)


def mean_across_workers(value: Any) -> float:
    """The mean of ``value`` (a number, or an array of per-device or
    per-batch numbers) over every device of every process: the same
    float everywhere, what ``observe`` needs.  Within one process a
    sharded array is already global; across processes the hosts' means
    are gathered (every process must call it)."""
    local = float(np.mean(np.asarray(jax.device_get(value), np.float64)))
    if jax.process_count() == 1:
        return local
    from jax.experimental import multihost_utils
    return float(np.mean(multihost_utils.process_allgather(
        np.asarray([local]))))


def save_checkpoint(directory: str, adapter: Adapter, state: Any = None,
                    params: Any = None) -> str:
    """Save (:func:`unisched.backends.jax.save`: Orbax for the sharded
    state and params, the binding as JSON) into ``directory/step_<k>``,
    then name it in ``directory/LATEST`` (written atomically) and remove
    the older ones: a process killed while saving leaves ``LATEST`` on
    the last complete checkpoint.  Process 0 publishes; returns the
    checkpoint's folder."""
    step = f"step_{adapter.updates_done}"
    target = os.path.join(directory, step)
    save(target, adapter, state, params)
    if jax.process_index() == 0:
        write_text(os.path.join(directory, LATEST), step)
        for old in os.listdir(directory):
            if old.startswith("step_") and old != step:
                shutil.rmtree(os.path.join(directory, old),
                              ignore_errors=True)
    return target


def load_checkpoint(directory: str, target: Callable, params: Any,
                    **options: Any) -> tuple[Adapter, Any, Any]:
    """``(adapter, state, params)`` from the checkpoint ``LATEST`` names
    (:func:`unisched.backends.jax.restore`); ``params`` gives the
    structure and the sharding (replicated on the mesh: the state is
    placed like its first leaf)."""
    with open(os.path.join(directory, LATEST), encoding="utf-8") as f:
        step = f.read().strip()
    adapter, state, params = restore(os.path.join(directory, step), target,
                                     params, **options)
    # the state beside the params (Orbax and the position's rewrite put
    # some leaves on one device)
    where = jax.tree_util.tree_leaves(params)[0].sharding
    return adapter, adapter.track(jax.device_put(state, where)), params


class DistributedJaxTrainer(JaxTrainer):
    """:class:`~unisched.backends.jax.JaxTrainer` data-parallel over a
    mesh of devices (:func:`data_mesh`): the parameters and the optimizer
    state replicated, every batch sharded (:func:`shard`); the jitted
    step is the single-device one, so the loss is the global batch mean
    and XLA all-reduces its gradient."""

    def __init__(self, sched: Any, *, mesh: Mesh, **options: Any) -> None:
        self.mesh = mesh
        super().__init__(sched, **options)
        everywhere = replicated(mesh)
        self.model.params = jax.device_put(self.model.params, everywhere)
        self.state = jax.device_put(self.state, everywhere)
        if self.adapter is not None:
            self.adapter.track(self.state)
        self._refresh()

    def train_batch(self, x: Any, y: Any) -> tuple[float, int]:
        return super().train_batch(*shard(self.mesh, x, y))


def main(argv: list[str]) -> int:
    """The process of ``unisched train --framework jax --workers N``."""
    run_worker(argv[0], DistributedJaxTrainer, 0,
               mesh=data_mesh(Job.load(argv[0]).workers))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
