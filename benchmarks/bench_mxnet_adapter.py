"""What the MXNet adapter costs per update, next to what an update costs.

Side by side in this one run (best of several repeats each):

* the scheduler call MXNet makes per update (``lr_scheduler(num_update)``
  with a new ``num_update`` each time): unisched's ``LRScheduler`` over a
  cosine, MXNet's own ``CosineScheduler``, and a hand-written function
  returning the same rate; also the adapter driving SGD momentum from a
  one-cycle schedule;
* the calls of one whole update: MXNet asks once per group of parameters
  (3 times for LeNet), the adapter answers repeats from its cache;
* one hybridized LeNet training step (batch 256, random data) with
  ``gluon.Trainer`` and SGD, for scale.

Prints each time, the ratios adapter / native per call and per update,
and the adapter's cost per update as a percentage of a training step.
Compare the ratios, not the absolute times (2 shared cores).

    python benchmarks/bench_mxnet_adapter.py
"""
from __future__ import annotations

import math
import warnings

import numpy as np

import unisched as us
from unisched.backends import mxnet as usm

from _timing import best_of

warnings.simplefilter("ignore", DeprecationWarning)
mx = usm.mx

MAX_UPDATE = 10_000
CALLS = 10_000
REPEATS = 7
BATCH = 256
TRAIN_STEPS = 8
TRAIN_REPEATS = 3




def per_call(make) -> float:
    """Seconds per call of ``make()(n)`` for n = 1..CALLS (a fresh
    scheduler per repeat, since MXNet's own ones keep state)."""
    def run():
        f = make()
        for n in range(1, CALLS + 1):
            f(n)
    return best_of(run, REPEATS) / CALLS


def per_update(make, calls: int) -> float:
    """Seconds per update when the Trainer asks ``calls`` times for each
    update, as it does once per parameter group."""
    def run():
        f = make()
        for n in range(1, CALLS + 1):
            for _ in range(calls):
                f(n)
    return best_of(run, REPEATS) / CALLS


def hand_written(n: int, base=0.5, final=0.01, top=MAX_UPDATE) -> float:
    k = min(n - 1, top)
    return final + (base - final) * (1 + math.cos(math.pi * k / top)) / 2


def lenet_step_time() -> tuple[float, float]:
    """(seconds per LeNet training step, scheduler calls per update)."""
    from unisched.backends.mxnet.lenet import build_lenet
    net = build_lenet(seed=0)
    net.hybridize()
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd",
                               {"momentum": 0.9})
    usm.bind(us.CosineScheduler(MAX_UPDATE, 0.5, 0.01), trainer)
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    rng = np.random.default_rng(0)
    x = mx.nd.array(rng.random((BATCH, 1, 28, 28), dtype=np.float32))
    y = mx.nd.array(rng.integers(0, 10, BATCH), dtype="float32")

    def steps():
        for _ in range(TRAIN_STEPS):
            with mx.autograd.record():
                loss = loss_fn(net(x), y)
            loss.backward()
            trainer.step(BATCH)
        mx.nd.waitall()

    steps()                                   # build the cached graph
    # How often MXNet asks per update (once per group of parameters).
    calls = []
    adapter = trainer.optimizer.lr_scheduler
    trainer.optimizer.lr_scheduler = lambda n: calls.append(n) or adapter(n)
    steps()
    trainer.optimizer.lr_scheduler = adapter
    per_update = len(calls) / TRAIN_STEPS
    return best_of(steps, TRAIN_REPEATS) / TRAIN_STEPS, per_update


def main() -> None:
    cosine = us.CosineScheduler(MAX_UPDATE, 0.5, 0.01)
    check = usm.LRScheduler(cosine)
    # The hand-written function computes the same rates as the adapter.
    assert all(abs(check(n) - hand_written(n)) < 1e-15
               for n in (1, 77, 5000, 20_000))

    def with_momentum():
        w = mx.gluon.Parameter("w", shape=(1,))
        w.initialize()
        trainer = mx.gluon.Trainer([w], "sgd", {"momentum": 0.9})
        return usm.bind(us.OneCycleScheduler(0.5, MAX_UPDATE), trainer)

    rows = {
        "hand-written function": per_call(lambda: hand_written),
        "mxnet CosineScheduler": per_call(
            lambda: mx.lr_scheduler.CosineScheduler(MAX_UPDATE, 0.5, 0.01)),
        "unisched LRScheduler": per_call(lambda: usm.LRScheduler(cosine)),
        "  + momentum (1cycle)": per_call(with_momentum),
    }
    step, calls_per_update = lenet_step_time()
    calls = round(calls_per_update)
    native_update = per_update(
        lambda: mx.lr_scheduler.CosineScheduler(MAX_UPDATE, 0.5, 0.01),
        calls)
    adapter_update = per_update(lambda: usm.LRScheduler(cosine), calls)
    print(f"{'per scheduler call':<28}{'us/call':>10}")
    for name, seconds in rows.items():
        print(f"{name:<28}{seconds * 1e6:10.3f}")
    print(f"{'LeNet training step':<28}{step * 1e6:10.0f}  (batch {BATCH},"
          f" hybridized, SGD momentum; {calls_per_update:g} scheduler "
          f"calls per update)")
    adapter = rows["unisched LRScheduler"]
    print(f"adapter / mxnet native: "
          f"{adapter / rows['mxnet CosineScheduler']:.2f}x")
    print(f"adapter / hand-written: "
          f"{adapter / rows['hand-written function']:.2f}x")
    print(f"per update ({calls} calls, as the Trainer makes for LeNet): "
          f"adapter {adapter_update * 1e6:.2f} us, mxnet native "
          f"{native_update * 1e6:.2f} us; adapter / native: "
          f"{adapter_update / native_update:.2f}x")
    print(f"adapter per update = {adapter_update / step:.4%} of a LeNet "
          f"step")


if __name__ == "__main__":
    main()
