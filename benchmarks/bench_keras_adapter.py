"""What the Keras adapter costs per update, measured side by side.

Three measurements, each the minimum over repeats, all in one process:

1. Per-update cost inside a compiled step: a ``tf.function`` runs 200
   SGD updates of one scalar in a graph loop (``jit_compile`` off and on),
   with a constant float rate, Keras' own ``CosineDecay``, and
   ``bind`` of unisched's cosine and one-cycle schedules -- the latter
   also with its momentum cycle bound to SGD, the former also with a
   per-variable multiplier (the bound class's ``update_step``).
2. The eager cost of one call: ``lr(step)`` for the adapter and for
   ``CosineDecay``.
3. One LeNet training step (``train_on_batch``, batch 256, 28x28x1),
   with the same learning rates, for scale.

Run: ``.venv/bin/python benchmarks/bench_keras_adapter.py``
"""
from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

import unisched as us
from unisched.backends import keras as uk
from unisched.backends.keras.lenet import build_lenet

LOOP = 200        # updates per tf.function call
TOTAL = 10_000    # horizon of every schedule
COSINE = us.CosineScheduler(TOTAL, base_lr=0.1, final_lr=1e-4)
ONE_CYCLE = us.OneCycleScheduler(max_lr=0.1, max_update=TOTAL)


def best(fn, repeats=7, number=1):
    """Minimum over ``repeats`` of the mean time of ``number`` calls (s)."""
    return interleaved({"": fn}, repeats, number)[""]


def interleaved(fns, repeats, number=1):
    """name -> minimum over ``repeats`` of the mean time of ``number``
    calls, the candidates taking turns in every repeat so that a busy
    moment on the machine hits them all alike."""
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(number):
                fn()
            times[name].append((time.perf_counter() - start) / number)
    return {name: min(t) for name, t in times.items()}


def configs():
    """name -> a fresh SGD with that learning-rate setup."""
    def native():
        return keras.optimizers.SGD(keras.optimizers.schedules.CosineDecay(
            0.1, TOTAL, alpha=1e-3))

    def adapter(sched, momentum=False, multipliers=None):
        def make():
            opt = keras.optimizers.SGD(momentum=0.9 if momentum else 0.0)
            uk.bind(sched, opt, momentum="auto" if momentum else False,
                    multipliers=multipliers)
            return opt
        return make

    return {
        "constant float lr": lambda: keras.optimizers.SGD(0.1),
        "keras CosineDecay": native,
        "adapter cosine": adapter(COSINE),
        "adapter one_cycle": adapter(ONE_CYCLE),
        "adapter cosine x0.5 mult": adapter(COSINE, multipliers={".*": 0.5}),
        "SGD momentum=0.9 float": lambda: keras.optimizers.SGD(
            0.1, momentum=0.9),
        "adapter one_cycle+momentum": adapter(ONE_CYCLE, momentum=True),
    }


def update_loop(make, jit):
    """A compiled function running LOOP optimizer updates."""
    w = keras.Variable(0.0)
    opt = make()

    @tf.function(jit_compile=jit)
    def run():
        for _ in tf.range(LOOP):
            opt.apply_gradients([(tf.ones(()), w)])
        return w.value

    run()  # trace and compile
    return run


def eager_call():
    step = keras.Variable(1234, dtype="int64")
    adapter = uk.LearningRateSchedule(COSINE)
    native = keras.optimizers.schedules.CosineDecay(0.1, TOTAL, alpha=1e-3)
    adapter(step), native(step)
    return (best(lambda: adapter(step), number=200),
            best(lambda: native(step), number=20))


def lenet_step(make):
    """A LeNet train_on_batch (batch 256) as a no-argument function."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 10, 256)
    model = build_lenet()
    model.compile(optimizer=make(),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True))
    model.train_on_batch(x, y)
    return lambda: model.train_on_batch(x, y)


def main():
    print(f"keras {keras.__version__}, tensorflow {tf.__version__}; "
          f"minimum over repeats\n")
    makers = configs()
    print(f"1. per optimizer update, one scalar, {LOOP} updates per "
          f"compiled loop")
    print(f"{'learning rate':28s} {'graph us':>9s} {'XLA us':>9s}")
    loops = {(name, jit): update_loop(make, jit)
             for name, make in makers.items() for jit in (False, True)}
    times = interleaved(loops, repeats=15)
    cost = {name: (times[name, False] / LOOP, times[name, True] / LOOP)
            for name in makers}
    for name in makers:
        print(f"{name:28s} {cost[name][0] * 1e6:9.2f} "
              f"{cost[name][1] * 1e6:9.2f}")
    const = cost["constant float lr"]
    native = cost["keras CosineDecay"]
    print("\n   schedule overhead per update, us (minus the constant float "
          "lr; one_cycle+momentum minus SGD momentum=0.9 float)")
    for name in ("keras CosineDecay", "adapter cosine", "adapter one_cycle",
                 "adapter cosine x0.5 mult"):
        print(f"   {name:26s} "
              f"{(cost[name][0] - const[0]) * 1e6:7.2f} graph "
              f"{(cost[name][1] - const[1]) * 1e6:7.2f} XLA")
    mom = cost["SGD momentum=0.9 float"]
    both = cost["adapter one_cycle+momentum"]
    print(f"   {'one_cycle+momentum':26s} "
          f"{(both[0] - mom[0]) * 1e6:7.2f} graph "
          f"{(both[1] - mom[1]) * 1e6:7.2f} XLA")
    print(f"   ratio adapter cosine / keras CosineDecay (whole update): "
          f"{cost['adapter cosine'][0] / native[0]:.2f} graph, "
          f"{cost['adapter cosine'][1] / native[1]:.2f} XLA")

    ours, theirs = eager_call()
    print(f"\n2. one eager call lr(step): adapter {ours * 1e6:.1f} us, "
          f"keras CosineDecay {theirs * 1e6:.1f} us "
          f"(ratio adapter/native {ours / theirs:.3f})")

    print("\n3. one LeNet training step (train_on_batch, batch 256)")
    lenet = interleaved({name: lenet_step(make)
                         for name, make in makers.items()},
                        repeats=12, number=2)
    for name in makers:
        print(f"   {name:28s} {lenet[name] * 1e3:8.2f} ms")
    step = lenet["constant float lr"]
    print(f"\n   in-graph schedule cost as % of a LeNet step "
          f"({step * 1e3:.1f} ms), from the per-update figures of 1.:")
    for name in ("keras CosineDecay", "adapter cosine", "adapter one_cycle"):
        extra = cost[name][0] - const[0]
        print(f"   {name:26s} {100 * extra / step:7.3f} %")
    # The momentum formula runs once per variable (LeNet has 10), the
    # rate once per update.
    lr_part = cost["adapter one_cycle"][0] - const[0]
    per_var = (both[0] - mom[0]) - lr_part
    extra = lr_part + 10 * per_var
    print(f"   {'one_cycle rate+momentum':26s} {100 * extra / step:7.3f} %"
          f"  (rate once + momentum for 10 variables)")
    print(f"   whole-step ratio adapter one_cycle / keras CosineDecay: "
          f"{lenet['adapter one_cycle'] / lenet['keras CosineDecay']:.3f}")


if __name__ == "__main__":
    main()
