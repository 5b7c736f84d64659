"""Images per second: the JAX (Flax) LeNet trainer next to a plain
optax/Flax loop written the d2l way.

Side by side in this one run, on the same random images (batch 256), each
doing one epoch = training on ``TRAIN`` images + test accuracy on ``TEST``
images, ``REPEATS`` times (interleaved in rotating order, after a warm-up
epoch that compiles every step):

* ours: ``unisched.app.training.fit`` over ``JaxTrainer`` (a cosine
  schedule bound through the unisched adapter, inside the jitted step;
  per-update rate and momentum read back and recorded; numpy batches from
  ``iterate_batches``);
* d2l, device batches: d2l's JAX style: d2l's LeNet (``nn.Conv``,
  ``nn.relu``, ``nn.max_pool``, ``nn.Dense``; the same weights), a
  ``flax.training.train_state.TrainState`` with
  ``optax.sgd(optax.cosine_decay_schedule(...))``, a ``jax.jit`` step
  (``value_and_grad``, ``apply_gradients``) and an ``Accumulator`` of
  ``float(loss)`` and the correct count per batch, fed batches already on
  the device: no data pipeline, the strictest baseline;
* d2l, numpy batches: the same loop fed numpy slices of a shuffled
  order, as a data loader gives them;
* d2l loop, our network: the device-batch loop over the trainer's own
  network (its pooling is ``backends/jax/_pool.py``, which avoids XLA's
  slow window op on the CPU): what is left is the loop alone.

Prints images/s (best and median epoch) and the ratios ours / d2l, from
the best epochs and as the median of the per-repeat ratios (goal: >= 1).
Compare the ratios, not the absolute numbers (2 shared cores).

    python benchmarks/bench_train_jax.py
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn
from flax.training import train_state

import unisched as us
from unisched.app.data import Dataset
from unisched.app.training import fit
from unisched.backends.jax import lenet as jl

from _timing import interleaved, print_speeds

BATCH = 256
TRAIN = 8 * BATCH
TEST = BATCH
REPEATS = 11
HORIZON = 100_000       # updates of the cosine: never reached


class D2LLeNet(nn.Module):
    """d2l's LeNet in Flax (NCHW in: one channel, so the transpose is a
    reshape), its layers named as ours so that it takes the same
    weights."""

    @nn.compact
    def __call__(self, x):
        x = jnp.transpose(x, (0, 2, 3, 1))
        x = nn.relu(nn.Conv(6, (5, 5), padding=2, name="conv1")(x))
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = nn.relu(nn.Conv(16, (5, 5), padding="VALID", name="conv2")(x))
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        x = nn.relu(nn.Dense(120, name="fc1")(x))
        x = nn.relu(nn.Dense(84, name="fc2")(x))
        return nn.Dense(10, name="fc3")(x)


def d2l_state(module: nn.Module, seed: int = 0) -> train_state.TrainState:
    net = jl.build_lenet(seed=seed)
    sched = optax.cosine_decay_schedule(0.1, HORIZON, alpha=0.1)
    return train_state.TrainState.create(apply_fn=module.apply,
                                         params=net.params,
                                         tx=optax.sgd(sched))


@jax.jit
def d2l_step(state, x, y):
    def loss_fn(params):
        logits = state.apply_fn({"params": params}, x)
        loss = optax.softmax_cross_entropy_with_integer_labels(
            logits, y).mean()
        return loss, logits
    (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params)
    correct = jnp.sum(jnp.argmax(logits, axis=1) == y)
    return state.apply_gradients(grads=grads), loss, correct


@jax.jit
def d2l_correct(state, x, y):
    logits = state.apply_fn({"params": state.params}, x)
    return jnp.sum(jnp.argmax(logits, axis=1) == y)


def d2l_epoch(holder, train, test):
    """One epoch: d2l's Accumulator of float(loss) * n, correct, n."""
    metric = [0.0, 0.0, 0.0]
    for x, y in train:
        holder[0], loss, correct = d2l_step(holder[0], x, y)
        metric[0] += float(loss) * len(y)
        metric[1] += float(correct)
        metric[2] += len(y)
    hits = sum(float(d2l_correct(holder[0], x, y)) for x, y in test)
    return metric[0] / metric[2], metric[1] / metric[2], hits / TEST


def main() -> None:
    rng = np.random.default_rng(0)
    data = Dataset(
        "random",
        rng.random((TRAIN, 1, 28, 28), dtype=np.float32),
        rng.integers(0, 10, TRAIN).astype(np.int64),
        rng.random((TEST, 1, 28, 28), dtype=np.float32),
        rng.integers(0, 10, TEST).astype(np.int64),
        tuple(str(i) for i in range(10)))

    trainer = jl.JaxTrainer(us.CosineScheduler(HORIZON, 0.1, 0.01))

    def run_ours():
        fit(trainer, data, 1, BATCH, log=None, progress=False)

    def numpy_batches(x, y, shuffle):
        order = rng.permutation(len(y)) if shuffle else np.arange(len(y))
        for i in range(0, len(y), BATCH):
            yield x[order[i:i + BATCH]], y[order[i:i + BATCH]]

    device_train = [(jnp.asarray(x), jnp.asarray(y)) for x, y in
                    numpy_batches(data.x_train, data.y_train, True)]
    device_test = [(jnp.asarray(x), jnp.asarray(y)) for x, y in
                   numpy_batches(data.x_test, data.y_test, False)]
    held_a, held_b = [d2l_state(D2LLeNet())], [d2l_state(D2LLeNet())]
    held_c = [d2l_state(jl.LeNet())]

    def run_device():
        d2l_epoch(held_a, device_train, device_test)

    def run_numpy():
        d2l_epoch(held_b, numpy_batches(data.x_train, data.y_train, True),
                  numpy_batches(data.x_test, data.y_test, False))

    def run_loop():
        d2l_epoch(held_c, device_train, device_test)

    runs = {"ours (fit + JaxTrainer)": run_ours,
            "d2l, device batches": run_device,
            "d2l, numpy batches": run_numpy,
            "d2l loop, our network": run_loop}
    times = interleaved(runs, REPEATS)
    print(f"one epoch = {TRAIN} training + {TEST} test images, batch "
          f"{BATCH}, device {jax.devices()[0]}, {REPEATS} repeats")
    print_speeds(times, TRAIN)


if __name__ == "__main__":
    main()
