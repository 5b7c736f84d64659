"""The framework-neutral training loop shared by the three LeNet trainers.

Each backend supplies a :class:`Trainer`: a model, an optimizer and a bound
schedule, with four small operations (train one batch, count correct
predictions, read the hyperparameters the optimizer will apply next, and
the end-of-epoch hook).  :func:`fit` runs the same epochs over the same
batches (:func:`unisched.app.data.iterate_batches`) for every framework and
records the same things, so that any difference between frameworks is the
framework's own.  :func:`find_lr` runs the learning-rate finder sweep on a
trainer bound to :func:`unisched.tools.lr_finder_schedule`.
"""
from __future__ import annotations

import abc
import time
from typing import Any, Callable

import numpy as np

from .. import _validate as check
from .data import Dataset, iterate_batches, num_batches
from .lenet import LENET_LAYER_GROUPS
from ..tools import (LRFinderResult, LRFinderState, Recorder, lr_range,
                    one_cycle)


class Trainer(abc.ABC):
    """One model + optimizer + schedule in one framework.

    Subclasses implement the batch-level operations on numpy inputs
    (images NCHW float32 in [0, 1], labels int64); :func:`fit` does the
    rest.
    """

    framework: str = ""

    @abc.abstractmethod
    def train_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        """One optimizer update on a batch: (mean loss, correct count)."""

    @abc.abstractmethod
    def count_correct(self, x: np.ndarray, y: np.ndarray) -> int:
        """Correct predictions on a batch, in evaluation mode."""

    @abc.abstractmethod
    def hparams(self) -> tuple[list[float], float | None]:
        """The learning rate per parameter group and the momentum (or Adam
        beta1; None without one) that the NEXT update will apply, read
        from the optimizer itself."""

    def end_epoch(self) -> None:
        """Called after each epoch (per-epoch schedulers step here)."""

    def evaluate(self, x: np.ndarray, y: np.ndarray,
                 batch_size: int = 1024) -> float:
        """Accuracy on ``(x, y)``."""
        correct = 0
        for xb, yb in iterate_batches(x, y, batch_size, shuffle=False):
            correct += self.count_correct(xb, yb)
        return correct / len(y)


def _progress(total: int, enabled: bool | None, desc: str):
    """A tqdm bar on long runs (None: only when tqdm is installed and the
    run has more than 50 updates)."""
    if enabled is False or (enabled is None and total <= 50):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if enabled:
            raise
        return None
    return tqdm(total=total, desc=desc, leave=False)


def fit(trainer: Trainer, data: Dataset, num_epochs: int,
        batch_size: int = 256, seed: int = 0, *,
        recorder: Recorder | None = None, max_updates: int | None = None,
        progress: bool | None = None,
        log: Callable[[str], Any] | None = print) -> Recorder:
    """Train for ``num_epochs`` epochs and record everything.

    Per update: the rate(s) and momentum the optimizer applied and the
    batch loss; per epoch: mean train loss, train accuracy (on the batches
    as trained), test accuracy and time, with the chapter's summary line
    passed to ``log``.  Batches come from
    :func:`unisched.app.data.iterate_batches` with ``seed`` (the same in every
    framework).  ``max_updates`` stops early (for tests and quick runs).
    """
    num_epochs = check.integer("num_epochs", num_epochs, 1)
    batch_size = check.integer("batch_size", batch_size, 1)
    if max_updates is not None:
        max_updates = check.integer("max_updates", max_updates, 1)
    recorder = recorder if recorder is not None else Recorder()
    per_epoch = num_batches(len(data.y_train), batch_size)
    total = per_epoch * num_epochs
    if max_updates is not None:
        total = min(total, max_updates)
    bar = _progress(total, progress, f"{trainer.framework} training")
    step = recorder.steps[-1] + 1 if len(recorder) else 0
    done = 0
    try:
        for epoch in range(num_epochs):
            start = time.perf_counter()
            loss_sum, correct, seen = 0.0, 0, 0
            for xb, yb in iterate_batches(data.x_train, data.y_train,
                                          batch_size, seed=seed,
                                          epoch=epoch):
                lrs, momentum = trainer.hparams()
                loss, hits = trainer.train_batch(xb, yb)
                recorder.record_update(step, lrs, momentum, loss)
                loss_sum += loss * len(yb)
                correct += hits
                seen += len(yb)
                step += 1
                done += 1
                if bar is not None:
                    bar.update(1)
                if max_updates is not None and done >= max_updates:
                    break
            trainer.end_epoch()
            test_acc = trainer.evaluate(data.x_test, data.y_test)
            recorder.record_epoch(
                len(recorder.epochs) + 1, train_loss=loss_sum / seen,
                train_acc=correct / seen, test_acc=test_acc,
                time=time.perf_counter() - start)
            if log is not None:
                # keep the summary lines readable under a live bar
                emit = bar.write if bar is not None and log is print \
                    else log
                emit(recorder.summary_line())
            if max_updates is not None and done >= max_updates:
                break
    finally:
        if bar is not None:
            bar.close()
    return recorder


def find_lr(trainer: Trainer, data: Dataset, state: LRFinderState,
            batch_size: int = 256, seed: int = 0) -> LRFinderResult:
    """Run the finder sweep: ``trainer`` must be bound to
    ``state.schedule``; batches cycle through as many epochs as needed
    until ``state`` says stop.  Restoring the weights is the caller's job
    (each backend's ``lr_find`` does it)."""
    batch_size = check.integer("batch_size", batch_size, 1)
    epoch = 0
    while not state.should_stop:
        for xb, yb in iterate_batches(data.x_train, data.y_train,
                                      batch_size, seed=seed, epoch=epoch):
            lrs, _ = trainer.hparams()
            # Keras evaluates the sweep in float32 (~1e-6 relative)
            if not np.isclose(lrs[-1], state.next_lr, rtol=1e-5, atol=0):
                raise RuntimeError(
                    f"the trainer applies lr={lrs[-1]!r} but the finder "
                    f"expects {state.next_lr!r} at update {state.step}; "
                    f"bind the trainer to state.schedule")
            loss, _ = trainer.train_batch(xb, yb)
            if state.update(loss):
                break
        epoch += 1
    return state.result()


def check_data(data: Any) -> Dataset:
    """``data`` must be a :class:`unisched.app.data.Dataset`."""
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a unisched.app.data.Dataset (see "
                        f"unisched.app.data.load_dataset), got "
                        f"{type(data).__name__}")
    return data


def fit_one_cycle(train_lenet: Callable[..., Recorder], data: Dataset,
                  num_epochs: int, max_lr: Any, preset: str = "fastai",
                  batch_size: int = 256, optimizer: str = "sgd",
                  seed: int = 0, **train_options: Any) -> Recorder:
    """fastai's ``fit_one_cycle`` through one backend's ``train_lenet``:
    ``unisched.tools.one_cycle(peak, num_epochs * steps_per_epoch,
    preset)``, which also drives SGD's momentum or Adam's beta1 (fastai:
    0.95 -> 0.85 -> 0.95).  ``max_lr`` is the peak rate or fastai's
    discriminative form (``slice(hi)``, ``slice(lo, hi)``, a list of 3):
    the last layer group peaks at ``hi``, the others at their share of it
    (then ``lr`` must not be given).  ``unit`` must stay ``'step'``."""
    data = check_data(data)
    num_epochs = check.integer("num_epochs", num_epochs, 1)
    batch_size = check.integer("batch_size", batch_size, 1)
    if train_options.get("unit", "step") != "step":
        raise ValueError(f"fit_one_cycle's schedule counts updates; "
                         f"unit must be 'step', got "
                         f"{train_options['unit']!r}")
    if isinstance(max_lr, (slice, list, tuple, np.ndarray)):
        if train_options.get("lr") is not None:
            raise ValueError("give discriminative rates in max_lr or in "
                             "lr, not both")
        peak = lr_range(max_lr, len(LENET_LAYER_GROUPS))[-1]
        train_options["lr"] = max_lr
    else:
        peak = check.positive("max_lr", max_lr)
    total = num_epochs * num_batches(len(data.y_train), batch_size)
    sched = one_cycle(peak, total, preset)
    return train_lenet(sched, data, num_epochs, batch_size, optimizer,
                       seed=seed, **train_options)
