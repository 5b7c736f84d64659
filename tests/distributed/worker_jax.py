"""The JAX process of ``test_dist_jax.py`` (``XLA_FLAGS=--xla_force_host_
platform_device_count=2``): ``worker_jax.py MODE OUT``, data parallel over
2 host CPU devices, the schedule inside the jitted step.  MODE ``run``
(checkpoint at update K), ``resume`` (a fresh process, from it) or
``crash`` (checkpoints after epochs 1 and 2, killed while saving the
third)."""
from __future__ import annotations

import functools
import os
import signal
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

from unisched.backends import jax as usj
from unisched.backends.jax import distributed as ujd

from dist_common import (
    CKPT_EPOCH,
    PER_EPOCH,
    SCHEDULES,
    UPDATES,
    WORKERS,
    metric,
    write_records,
)


def loss_fn(params, x, y):
    return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)


def train(mesh, name: str, mode: str, out: str) -> None:
    spec, momentum = SCHEDULES[name]
    factory = functools.partial(optax.sgd, momentum=momentum)
    everywhere = ujd.replicated(mesh)
    params = jax.device_put({"w": jnp.full((3, 2), 0.5),
                             "b": jnp.zeros(2)}, everywhere)
    folder = os.path.join(out, f"{mode}-{name}" if mode == "crash"
                          else name)
    if mode == "resume":
        adapter, state, params = ujd.load_checkpoint(folder, factory,
                                                     params)
    else:
        adapter = usj.bind(spec, factory)
        state = adapter.init(params)
    tx = adapter.tx

    @jax.jit
    def step(params, state, x, y):
        updates, state = tx.update(jax.grad(loss_fn)(params, x, y), state,
                                   params)
        return optax.apply_updates(params, updates), state

    gen = np.random.RandomState(100)
    xs = gen.randn(UPDATES, 8 * WORKERS, 3).astype("float32")
    ys = gen.randn(UPDATES, 8 * WORKERS, 2).astype("float32")
    records = [[] for _ in range(WORKERS)]
    for k in range(adapter.updates_done, UPDATES):
        params, state = step(params, state, *ujd.shard(mesh, xs[k], ys[k]))
        adapter.track(state)
        # what each device's copy of the state says this update used
        lrs = per_device(state.hyperparams["learning_rate"])
        moms = per_device(state.hyperparams["momentum"]) \
            if "momentum" in state.hyperparams else [momentum] * WORKERS
        weights = [per_device(params["w"]), per_device(params["b"])]
        for d in range(WORKERS):
            records[d].append({"k": k, "lr": lrs[d], "momentum": moms[d],
                               "weights": weights[0][d] + weights[1][d]})
        if (k + 1) % PER_EPOCH:
            continue
        epoch = (k + 1) // PER_EPOCH
        if adapter.schedule.stateful:
            # one number per device (each its own), reduced over all
            mine = ujd.shard(mesh, np.array([metric(d, epoch - 1)
                                             for d in range(WORKERS)]))[0]
            adapter.observe(ujd.mean_across_workers(mine))
            state = adapter.state
        if mode == "crash" and epoch == CKPT_EPOCH:
            ujd.save = _dying_save
        if epoch == CKPT_EPOCH or (mode == "crash" and epoch < CKPT_EPOCH):
            ujd.save_checkpoint(folder, adapter, state, params)
    for d in range(WORKERS):
        write_records(out, f"{mode}-{name}", d, records[d])


def per_device(array):
    """Each device's copy, in device order."""
    shards = sorted(array.addressable_shards, key=lambda s: s.device.id)
    return [np.asarray(s.data, np.float64).ravel().tolist()
            if np.ndim(s.data) else float(s.data) for s in shards]


def _dying_save(directory, *args, **kwargs) -> None:
    """Part of a checkpoint folder, then the process is killed."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "unisched.json"), "w") as f:
        f.write('{"half": ')
    os.kill(os.getpid(), signal.SIGKILL)


def main(mode: str, out: str) -> None:
    mesh = ujd.data_mesh(WORKERS)
    for name in ["cosine"] if mode == "crash" else list(SCHEDULES):
        train(mesh, name, mode, out)


if __name__ == "__main__":
    main(*sys.argv[1:3])
