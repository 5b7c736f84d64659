"""Per-update cost of each adapter under its framework's distributed
engine, side by side with the framework's own scheduler, 2 workers:

* PyTorch DDP (``torch.distributed.run``, gloo): ``scheduler.step()`` of
  the unisched adapter and of ``CosineAnnealingLR``, and one DDP update
  (forward, backward with the gradient all-reduce, ``optimizer.step()``,
  ``scheduler.step()``) with each;
* Keras ``MirroredStrategy`` (2 logical CPU devices): one
  ``strategy.run`` update with the unisched schedule in the graph and
  with Keras' ``CosineDecay``;
* MXNet ``dist_sync`` (1 scheduler, 1 server): the scheduler call, and
  one ``trainer.step`` with the adapter and with MXNet's
  ``CosineScheduler`` (``update_on_kvstore=False``);
* JAX over 2 host devices: one jitted, sharded update with the adapter's
  ``tx`` and with ``optax.sgd(optax.cosine_decay_schedule(...))``.

Each figure is the minimum over interleaved repeats (the machine is
shared) of the mean over ``--updates`` updates, measured by worker 0;
compare the ratios, not the times.  The model is a small MLP (64 -> 256
-> 10, batch 64 per worker), so that the schedule's share is visible.

Run: ``.venv/bin/python benchmarks/bench_distributed.py [--quick]
[--frameworks torch,keras,mxnet,jax]``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

from unisched.app.distributed import (
    MXNET_ROLE,
    free_ports,
    run_processes,
    xla_flags,
)

SPEC = "cosine(max_update=100000000, base_lr=0.1, final_lr=0.0001)"
LONG = 10 ** 8
WORKERS = 2


def _best(fns: dict, updates: int, repeat: int) -> dict[str, float]:
    """Seconds per call: min over interleaved repeats of the mean."""
    best = {name: float("inf") for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(updates):
                fn()
            best[name] = min(best[name],
                             (time.perf_counter() - start) / updates)
    return best


def _data(seed: int):
    import numpy as np
    gen = np.random.RandomState(seed)
    return (gen.randn(64, 64).astype("float32"),
            gen.randint(0, 10, 64).astype("int64"))


def torch_rows(updates: int, repeat: int) -> dict[str, float]:
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from unisched.backends import torch as ust
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    x, y = map(torch.from_numpy, _data(dist.get_rank()))

    def setup(native: bool):
        torch.manual_seed(0)
        net = DistributedDataParallel(torch.nn.Sequential(
            torch.nn.Linear(64, 256), torch.nn.ReLU(),
            torch.nn.Linear(256, 10)))
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        sch = torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, LONG, 1e-4) if native else ust.bind(SPEC, opt)

        def update():
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
            sch.step()
        update()        # the call order check is done
        return sch.step, update
    ours, native = setup(False), setup(True)
    rows = _best({"unisched scheduler.step": ours[0],
                  "CosineAnnealingLR.step": native[0],
                  "unisched DDP update": ours[1],
                  "native DDP update": native[1]}, updates, repeat)
    dist.destroy_process_group()
    return rows


def keras_rows(updates: int, repeat: int) -> dict[str, float]:
    from unisched.backends.keras import distributed as ukd
    strategy = ukd.mirrored(WORKERS)
    import keras
    import tensorflow as tf

    from unisched.backends import keras as usk
    x, y = _data(0)

    def setup(native: bool):
        with strategy.scope():
            model = keras.Sequential([keras.Input((64,)),
                                      keras.layers.Dense(256, "relu"),
                                      keras.layers.Dense(10)])
            rate = keras.optimizers.schedules.CosineDecay(
                0.1, LONG, alpha=1e-3) if native else 0.1
            opt = keras.optimizers.SGD(rate, momentum=0.9)
            opt.build(model.trainable_variables)
            if not native:
                usk.bind(SPEC, opt)
        loss = keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction="sum")

        def replica(xb, yb):
            with tf.GradientTape() as tape:
                value = loss(yb, model(xb)) / (64 * WORKERS)
            grads = tape.gradient(value, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables,
                                    strict=True))

        step = tf.function(lambda: strategy.run(replica, args=(x, y)))
        step()          # traced
        return step
    return _best({"unisched mirrored update": setup(False),
                  "CosineDecay mirrored update": setup(True)},
                 updates, repeat)


def mxnet_rows(updates: int, repeat: int) -> dict[str, float]:
    from unisched.backends import mxnet as usm
    from unisched.backends.mxnet import distributed as umd
    mx = usm.mx
    kv = mx.kv.create("dist_sync")
    x, y = (mx.nd.array(a) for a in _data(kv.rank))
    loss = mx.gluon.loss.SoftmaxCrossEntropyLoss()

    def setup(j: int, native: bool):
        # one kvstore: trainer j's parameters take keys after trainer
        # 0's (placeholders first, never initialised again)
        hold = [mx.gluon.Parameter(f"h{i}", shape=(1,), grad_req="null",
                                   init=mx.init.Zero()) for i in range(j)]
        net = mx.gluon.nn.HybridSequential(prefix=f"n{j}_")
        net.add(mx.gluon.nn.Dense(256, "relu", in_units=64),
                mx.gluon.nn.Dense(10, in_units=256))
        net.initialize(mx.init.Xavier())
        for p in hold:
            p.initialize()
        params = hold + list(net.collect_params().values())
        opt = mx.optimizer.SGD(momentum=0.9, learning_rate=0.1)
        trainer = mx.gluon.Trainer(params, opt, kvstore=kv,
                                   update_on_kvstore=False)
        trainer._params_to_init = params[j:]
        if native:
            sched = mx.lr_scheduler.CosineScheduler(LONG, 0.1, 1e-4)
            opt.lr_scheduler = sched
        else:
            sched = usm.bind(SPEC, trainer)
        umd.prepare(trainer)

        def update():
            with mx.autograd.record():
                out = loss(net(x), y)
            out.backward()
            trainer.step(64 * WORKERS)
            mx.nd.waitall()
        update()
        return (lambda: sched(opt.num_update + 1)), update
    ours = setup(0, False)
    native = setup(4, True)
    rows = _best({"unisched scheduler call": ours[0],
                  "CosineScheduler call": native[0],
                  "unisched dist_sync update": ours[1],
                  "native dist_sync update": native[1]}, updates, repeat)
    return dict(rows, rank=kv.rank)


def jax_rows(updates: int, repeat: int) -> dict[str, float]:
    import jax
    import jax.numpy as jnp
    import optax

    from unisched.backends import jax as usj
    from unisched.backends.jax import distributed as ujd
    mesh = ujd.data_mesh(WORKERS)
    xs, ys = _data(0)
    x, y = ujd.shard(mesh, jnp.concatenate([xs, xs]),
                     jnp.concatenate([ys, ys]))
    gen = jax.random.PRNGKey(0)
    params = jax.device_put({
        "w1": jax.random.normal(gen, (64, 256)) * 0.1,
        "w2": jax.random.normal(gen, (256, 10)) * 0.1},
        ujd.replicated(mesh))

    def loss(p, x, y):
        logits = jax.nn.relu(x @ p["w1"]) @ p["w2"]
        return optax.softmax_cross_entropy_with_integer_labels(
            logits, y).mean()

    def setup(tx):
        @jax.jit
        def step(p, s):
            updates, s = tx.update(jax.grad(loss)(p, x, y), s, p)
            return optax.apply_updates(p, updates), s
        held = [params, tx.init(params)]

        def update():
            held[:] = step(*held)
            jax.block_until_ready(held)
        update()
        return update
    ours = usj.bind(SPEC, lambda learning_rate: optax.sgd(
        learning_rate, momentum=0.9)).tx
    native = optax.sgd(optax.cosine_decay_schedule(0.1, LONG, alpha=1e-3),
                       momentum=0.9)
    return _best({"unisched sharded update": setup(ours),
                  "optax cosine sharded update": setup(native)},
                 updates, repeat)


ROWS = {"torch": torch_rows, "keras": keras_rows, "mxnet": mxnet_rows,
        "jax": jax_rows}
#: (unisched row, native row) pairs printed as ratios
PAIRS = {"torch": [("unisched scheduler.step", "CosineAnnealingLR.step"),
                   ("unisched DDP update", "native DDP update")],
         "keras": [("unisched mirrored update",
                    "CosineDecay mirrored update")],
         "mxnet": [("unisched scheduler call", "CosineScheduler call"),
                   ("unisched dist_sync update", "native dist_sync update")],
         "jax": [("unisched sharded update", "optax cosine sharded update")]}


def worker(framework: str, out: str, updates: int, repeat: int) -> None:
    rows = ROWS[framework](updates, repeat)
    # torchrun's RANK; MXNet's workers report theirs in the rows
    if int(os.environ.get("RANK", rows.pop("rank", 0))) == 0:
        with open(out, "w") as f:
            json.dump(rows, f)


def launch(framework: str, out: str, updates: int, repeat: int,
           tmp: str) -> None:
    me = [sys.executable, os.path.abspath(__file__), "--worker",
          framework, "--out", out, "--updates", str(updates), "--repeat",
          str(repeat)]
    port, = free_ports()
    if framework == "torch":
        procs = [([sys.executable, "-m", "torch.distributed.run",
                   f"--nproc_per_node={WORKERS}", "--master_addr=127.0.0.1",
                   f"--master_port={port}", *me[1:]], {})]
    elif framework == "mxnet":
        env = {"DMLC_PS_ROOT_URI": "127.0.0.1",
               "DMLC_PS_ROOT_PORT": str(port), "DMLC_NUM_SERVER": "1",
               "DMLC_NUM_WORKER": str(WORKERS), "OMP_NUM_THREADS": "1"}
        serve = [sys.executable, "-m", "unisched.backends.mxnet.distributed",
                 "-"]
        procs = [(serve, dict(env, **{MXNET_ROLE: r}))
                 for r in ("scheduler", "server")]
        procs += [(me, dict(env, DMLC_ROLE="worker"))] * WORKERS
    else:
        procs = [(me, {"XLA_FLAGS": xla_flags(WORKERS),
                       "TF_CPP_MIN_LOG_LEVEL": "2"})]
    run_processes(procs, 900, tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--frameworks", default="torch,keras,mxnet,jax")
    parser.add_argument("--worker", choices=sorted(ROWS))
    parser.add_argument("--out")
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.out, args.updates, args.repeat)
        return
    updates, repeat = (20, 2) if args.quick else (args.updates, args.repeat)
    print(f"per update, {WORKERS} workers, min of {repeat} x {updates} "
          f"updates (compare ratios: the machine is shared)")
    for fw in args.frameworks.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "rows.json")
            launch(fw, out, updates, repeat, tmp)
            with open(out) as f:
                rows = json.load(f)
        print(f"\n{fw}")
        for name, secs in rows.items():
            print(f"  {name:<32} {secs * 1e6:10.1f} us")
        for ours, native in PAIRS[fw]:
            print(f"  ratio {ours} / {native}: "
                  f"{rows[ours] / rows[native]:.3f}")


if __name__ == "__main__":
    main()
