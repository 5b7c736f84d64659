"""Images per second of the Keras LeNet trainer next to the d2l chapter's
own Keras training, measured side by side in one process.

The chapter (TensorFlow tab of "Learning Rate Scheduling") compiles the
LeNet with ``SGD(learning_rate=lr)``, ``SparseCategoricalCrossentropy(
from_logits=True)`` and the ``accuracy`` metric, then calls ``net.fit``
on a batched ``tf.data`` pipeline with two callbacks: d2l's
``TrainCallback``, which evaluates the test set at the end of every
epoch, and a ``LearningRateScheduler``.  Contestants, all batch 256 on the
embedded digits data (1,497 training images: 5 full batches and one of
217 per epoch; 300 test images), all evaluating the test set after every
epoch, all with the same per-epoch schedule (the chapter's square-root
scheduler, ``0.3 * (epoch + 1) ** -0.5``):

* ``ours``: :class:`KerasTrainer` through :func:`unisched.app.training.fit`
  (``unit='epoch'``: the adapter's in-graph per-epoch schedule), which also
  records every update's rate, momentum and loss;
* ``chapter fit``: the chapter's ``model.fit`` with ``LearningRateScheduler``
  and a TrainCallback doing ``model.evaluate`` on the test set;
* ``train_on_batch``: a hand loop of ``model.train_on_batch`` over the
  same numpy batches, the callback's rate set per epoch, test accuracy
  from ``model.evaluate``.

Steady state: each contestant is built and traced once (warm-up), then
runs ``EPOCHS`` epochs per repeat; the figure is the minimum over
``REPEATS`` interleaved repeats.  A second table times one whole cold
run (build + trace + epochs) as ``train_lenet`` and the chapter's
``train()`` do it.

Run: ``.venv/bin/python benchmarks/bench_train_keras.py``
"""
from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf

import unisched as us
from unisched.app.data import iterate_batches, load_dataset, num_batches
from unisched.app.training import fit
from unisched.backends.keras import KerasTrainer, train_lenet
from unisched.backends.keras.lenet import build_lenet, to_nhwc

BATCH = 256
EPOCHS = 3
REPEATS = 5
LR = 0.3
SQRT = us.SquareRootScheduler(LR)  # the chapter's first scheduler


def chapter_schedule(epoch):
    """The chapter's ``SquareRootScheduler`` called with the epoch."""
    return LR * pow(epoch + 1.0, -0.5)


class TrainCallback(keras.callbacks.Callback):
    """What d2l's TrainCallback costs: a test-set evaluation per epoch
    (its plotting left out)."""

    def __init__(self, test_iter):
        super().__init__()
        self.test_iter = test_iter
        self.test_acc = []

    def on_epoch_end(self, epoch, logs=None):
        result = self.model.evaluate(self.test_iter, verbose=0,
                                     return_dict=True)
        self.test_acc.append(result["accuracy"])


def compiled_model():
    model = build_lenet(seed=0)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=LR),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True),
                  metrics=["accuracy"])
    return model


def main() -> None:
    data = load_dataset("digits")
    x_train, x_test = to_nhwc(data.x_train), to_nhwc(data.x_test)
    n = len(data.y_train)
    # The chapter's pipeline: batched tf.data, batches shuffled per epoch.
    train_iter = tf.data.Dataset.from_tensor_slices(
        (x_train, data.y_train)).batch(BATCH).shuffle(n)
    test_iter = tf.data.Dataset.from_tensor_slices(
        (x_test, data.y_test)).batch(BATCH)

    # ours
    trainer = KerasTrainer(SQRT, unit="epoch",
                           steps_per_epoch=num_batches(n, BATCH))

    def ours():
        fit(trainer, data, EPOCHS, BATCH, log=None)

    # the chapter: model.fit + LearningRateScheduler + TrainCallback
    fit_model = compiled_model()
    callbacks = [TrainCallback(test_iter),
                 keras.callbacks.LearningRateScheduler(chapter_schedule)]

    def chapter_fit():
        # shuffle=False only silences Keras' warning: a tf.data input is
        # never shuffled by fit (the pipeline shuffles, as the chapter's).
        fit_model.fit(train_iter, epochs=EPOCHS, verbose=0, shuffle=False,
                      callbacks=callbacks)

    # a train_on_batch loop over the same numpy batches
    tob_model = compiled_model()

    def train_on_batch():
        for epoch in range(EPOCHS):
            tob_model.optimizer.learning_rate = chapter_schedule(epoch)
            for xb, yb in iterate_batches(data.x_train, data.y_train,
                                          BATCH, seed=0, epoch=epoch):
                tob_model.train_on_batch(to_nhwc(xb), yb)
            tob_model.evaluate(x_test, data.y_test, batch_size=BATCH,
                               verbose=0)

    contestants = {"ours (KerasTrainer + fit)": ours,
                   "chapter model.fit": chapter_fit,
                   "train_on_batch loop": train_on_batch}
    for fn in contestants.values():  # warm-up: trace everything once
        fn()
    times = {name: [] for name in contestants}
    for _ in range(REPEATS):
        for name, fn in contestants.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    images = EPOCHS * n
    rate = {name: images / min(t) for name, t in times.items()}
    ours_rate = rate["ours (KerasTrainer + fit)"]
    print(f"Keras LeNet training, batch {BATCH}, {EPOCHS} epochs of {n} "
          f"digits images + test eval per epoch; min of {REPEATS} "
          f"repeats (steady state, traced once)")
    print(f"{'contestant':<28} {'images/s':>10} {'ours / this':>12}")
    for name, value in rate.items():
        print(f"{name:<28} {value:10.0f} {ours_rate / value:12.2f}")

    # cold: build + trace + EPOCHS epochs, as one call each
    def cold_ours():
        train_lenet(SQRT, data, EPOCHS, BATCH, unit="epoch", log=None)

    def cold_chapter():
        model = compiled_model()
        model.fit(train_iter, epochs=EPOCHS, verbose=0, shuffle=False,
                  callbacks=[TrainCallback(test_iter),
                             keras.callbacks.LearningRateScheduler(
                                 chapter_schedule)])

    cold = {"ours train_lenet": cold_ours, "chapter train()": cold_chapter}
    cold_times = {name: [] for name in cold}
    for _ in range(2):
        for name, fn in cold.items():
            start = time.perf_counter()
            fn()
            cold_times[name].append(time.perf_counter() - start)
    best = {name: min(t) for name, t in cold_times.items()}
    print(f"\ncold run (new model, trace, {EPOCHS} epochs), min of 2:")
    for name, value in best.items():
        print(f"{name:<28} {value:8.2f} s")
    print(f"ratio chapter / ours (>1: ours faster): "
          f"{best['chapter train()'] / best['ours train_lenet']:.2f}")


if __name__ == "__main__":
    main()
