"""LeNet training, written once for every framework (Keras 3's
``trainer.py`` / ``backend/<name>/trainer.py`` split): argument checks,
binding ``sched`` (the contract of ``backends/_contract.py``), the epoch
loop (:func:`fit`), the finder sweep (:func:`find_lr`) and the public
functions, documented once (:func:`public_api`).  Each backend's
``lenet.py`` subclasses :class:`Trainer` with only what differs.  Every
trainer has ``model``, ``optimizer`` (what ``bind`` takes), ``adapter``
(None with a native scheduler: ``native``), ``schedule``, ``device``,
``multipliers``, ``unit``, ``steps_per_epoch``."""
from __future__ import annotations

import abc
import copy
import numbers
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .. import _validate as check
from ..base import Schedule
from ..schedules import ConstantScheduler
from ..spec import parse
from ..tools import Recorder, lr_range, multipliers, one_cycle
from ..tools import tensorboard as tb
from ..tools.finder import LRFinderResult, LRFinderState
from .data import Dataset, check_data, iterate_batches, num_batches
from .lenet import LENET_LAYER_GROUPS

__all__ = ["Trainer", "fit", "find_lr", "public_api", "check_data",
           "OPTIMIZERS", "UNITS", "CHAPTER_LR"]

#: Optimizer names: each framework's SGD, Adam, AdamW with its defaults.
OPTIMIZERS = ("sgd", "adam", "adamw")
UNITS = ("step", "epoch")
#: The chapter's rate: what a native scheduler scales when ``lr`` is None.
CHAPTER_LR = 0.3
N_GROUPS = len(LENET_LAYER_GROUPS)

class Trainer(abc.ABC):
    """LeNet, an optimizer and a schedule in one framework, one update at
    a time.  Update ``k`` (``k = 0, 1, ...``) gives layer group ``i``::

        lr_i(k) = m_i * sched(k)                     unit='step'
        lr_i(k) = m_i * sched(k // steps_per_epoch)  unit='epoch'

    with ``m = unisched.tools.multipliers(lr, 3)`` over
    ``LENET_LAYER_GROUPS`` (conv body, hidden dense, head: ``sched`` is
    the head's rate), else ``m = [1]``; ``sched.momentum`` (a momentum
    cycle) drives SGD's momentum or Adam's beta1.

    Args:
        sched: a unisched schedule, spec string or number, bound with the
            backend's ``bind``, or the framework's own scheduler as the
            chapter uses it (see the backend).  A ``ReduceOnPlateau``
            (``mode='min'``; a copy) observes each epoch's mean loss.
        optimizer: ``'sgd'``, ``'adam'`` or ``'adamw'``.
        momentum: SGD momentum in [0, 1); 0 for Adam/AdamW.
        weight_decay: PyTorch's meaning everywhere: L2 on the gradient
            for SGD and Adam, decoupled for AdamW.
        lr: discriminative rates (fastai): a number, ``slice(hi)``,
            ``slice(lo, hi)`` or 3 rates; None: one rate.
        unit: ``'step'`` or ``'epoch'``: what ``sched`` counts.
        steps_per_epoch: required with ``unit='epoch'``.
        model: a LeNet from ``build_lenet`` to train in place, or
        params, seed: the initial weights (canonical dict) / their seed.
        device: None (the model's, else a GPU if any, else the CPU) or a
            device of the framework or its name.
    """

    framework: str = ""
    adapter: Any  # what bind returned; None with a native scheduler
    native: Any   # the framework's own scheduler; None with an adapter

    def __init__(self, sched: Any, *, optimizer: str = "sgd",
                 momentum: float = 0.0, weight_decay: float = 0.0,
                 lr: float | slice | Sequence[float] | None = None,
                 unit: str = "step", steps_per_epoch: int | None = None,
                 model: Any = None,
                 params: Mapping[str, np.ndarray] | None = None,
                 seed: int = 0, device: Any = None) -> None:
        self.optimizer_name = check.choice("optimizer", optimizer,
                                           OPTIMIZERS)
        self.momentum = check.in_range("momentum", momentum, 0.0, 1.0,
                                       high_open=True)
        if self.momentum and self.optimizer_name != "sgd":
            raise ValueError(f"momentum={momentum!r} is SGD's; "
                             f"{self.optimizer_name!r} uses beta1 (0.9, or "
                             f"the schedule's momentum cycle)")
        self.weight_decay = check.rate("weight_decay", weight_decay)
        self.unit = check.choice("unit", unit, UNITS)
        self.steps_per_epoch = steps_per_epoch = None if steps_per_epoch \
            is None else check.integer("steps_per_epoch", steps_per_epoch, 1)
        self.multipliers = None if lr is None else tuple(
            multipliers(lr, N_GROUPS))
        # the optimizer's own rates, which a native scheduler scales
        self.base_lrs = [CHAPTER_LR] if lr is None else lr_range(lr,
                                                                 N_GROUPS)
        if model is not None:
            if params is not None:
                raise ValueError("give model or params, not both")
            self._check_model(model)
        self.device = self._resolve_device(device, model)
        self.model = model if model is not None else self._build_model(
            params, seed)
        self.schedule = self._schedule(sched)
        self.optimizer = self._make_optimizer()
        self.adapter = self.native = None
        if self.schedule is None:
            self.native = self._bind_native(sched)
            return
        if self.unit == "epoch" and steps_per_epoch is None:
            raise ValueError("steps_per_epoch is required with "
                             "unit='epoch', got None")
        options: dict[str, Any] = {} if self.unit == "step" else {
            "unit": "epoch", "steps_per_epoch": steps_per_epoch}
        if self.multipliers is not None:
            options["multipliers"] = self.multipliers
        self.adapter = self._bind(self.schedule, options)

    def _schedule(self, sched: Any) -> Schedule | None:
        """``sched`` as the unisched schedule to bind, or None for a
        native scheduler (then ``_bind_native`` takes it)."""
        if isinstance(getattr(sched, "schedule", None), Schedule) and \
                hasattr(type(sched), "updates_done"):
            raise TypeError(f"sched: pass the unisched schedule itself "
                            f"(adapter.schedule) and unit=, not an "
                            f"adapter, got {sched!r}")
        sched = self._from_native(sched)
        if isinstance(sched, str):
            sched = parse(sched)
        elif isinstance(sched, numbers.Real) and \
                not isinstance(sched, (bool, np.bool_)):
            sched = ConstantScheduler(check.rate("sched", sched))
        if not isinstance(sched, Schedule):
            return None
        if sched.stateful:
            if (mode := getattr(sched, "mode", "min")) != "min":
                raise ValueError(f"the trainer feeds the epoch's mean "
                                 f"training loss to {type(sched).__name__},"
                                 f" which needs mode='min', got "
                                 f"mode={mode!r}")
            sched = copy.deepcopy(sched)  # the caller's keeps its state
        return sched

    # -- what each framework supplies -------------------------------------
    @abc.abstractmethod
    def _check_model(self, model: Any) -> None:
        """TypeError unless ``model`` is the framework's LeNet."""

    @abc.abstractmethod
    def _resolve_device(self, device: Any, model: Any) -> Any:
        """The device to train on (checked against ``model``'s)."""

    @abc.abstractmethod
    def _build_model(self, params: Mapping[str, np.ndarray] | None,
                     seed: int) -> Any:
        """A new LeNet from the canonical weights, on ``self.device``."""

    @abc.abstractmethod
    def _make_optimizer(self) -> Any:
        """The optimizer, with ``self.base_lrs`` (one parameter group per
        layer group where the framework has groups and ``lr`` is given)."""

    @abc.abstractmethod
    def _bind(self, schedule: Schedule, options: dict[str, Any]) -> Any:
        """``bind(schedule, optimizer, **options)`` (``unit``,
        ``steps_per_epoch``, ``multipliers``: one per layer group)."""

    def _from_native(self, sched: Any) -> Any:
        """A native object's exact unisched equivalent to bind, else
        ``sched`` itself."""
        return sched

    def _bind_native(self, sched: Any) -> Any:
        """Hand a native scheduler to the optimizer (else TypeError)."""
        raise TypeError(f"sched must be a unisched schedule, a spec string "
                        f"or a number, got {sched!r}")

    @abc.abstractmethod
    def train_batch(self, x: Any, y: Any) -> tuple[float, int]:
        """One optimizer update on a batch of :meth:`batches`: the mean
        loss and the correct count of the forward pass before it."""

    @abc.abstractmethod
    def count_correct(self, x: Any, y: Any) -> int:
        """Correct predictions on a batch, in evaluation mode."""

    @abc.abstractmethod
    def hparams(self) -> tuple[list[float], float | None]:
        """Rates per layer group, momentum (SGD) or beta1 (Adam) of the
        NEXT update, read from the optimizer."""

    @abc.abstractmethod
    def _snapshot(self) -> Any:
        """A copy of the weights (gradients, mode), optimizer state."""

    @abc.abstractmethod
    def _restore(self, saved: Any) -> None:
        """Put a :meth:`_snapshot` back into the same variables."""

    def snapshot(self) -> Any:
        """The weights, the optimizer state and the adapter's position,
        for :meth:`restore`."""
        return (self._snapshot(), None if self.adapter is None
                else self.adapter.state_dict())

    def restore(self, saved: Any) -> None:
        """Put back a :meth:`snapshot` exactly: the next update is the one
        that followed it, from the same weights and optimizer state."""
        state, position = saved
        self._restore(state)
        if position is not None:
            self.adapter.load_state_dict(position)

    # -- epoch hooks ------------------------------------------------------
    def batches(self, x: np.ndarray, y: np.ndarray, batch_size: int, *,
                shuffle: bool = True, seed: int = 0,
                epoch: int = 0) -> Iterator[tuple[Any, Any]]:
        """The batches of :func:`unisched.app.data.iterate_batches`, as
        ``train_batch`` takes them (a backend may convert them)."""
        return iterate_batches(x, y, batch_size, shuffle=shuffle,
                               seed=seed, epoch=epoch)

    def begin_epoch(self, epoch: int) -> None:  # noqa: B027 (optional)
        """Called before the first update of each epoch."""

    def end_epoch(self, train_loss: float) -> None:
        """Called after each epoch with its mean training loss (which a
        plateau schedule observes)."""
        if self.schedule is not None and self.schedule.stateful:
            self.adapter.observe(train_loss)

    def evaluate(self, x: np.ndarray, y: np.ndarray,
                 batch_size: int = 256) -> float:
        """Accuracy on ``(x, y)``."""
        return sum(self.count_correct(xb, yb) for xb, yb in self.batches(
            x, y, batch_size, shuffle=False)) / len(y)

    def __repr__(self) -> str:
        what = self.native if self.adapter is None else self.adapter
        return (f"{type(self).__name__}({what!r}, optimizer="
                f"{self.optimizer_name!r}, multipliers={self.multipliers},"
                f" device={self.device})")


def _progress(total: int, enabled: bool | None, desc: str) -> Any:
    """A tqdm bar (None: if installed and over 50 updates), refreshed at
    most 4 times a second: no cost per update."""
    if enabled is False or (enabled is None and total <= 50):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if enabled:
            raise
        return None
    return tqdm(total=total, desc=desc, leave=False, mininterval=0.25)


def fit(trainer: Trainer, data: Dataset, num_epochs: int,
        batch_size: int = 256, seed: int = 0, *,
        recorder: Recorder | None = None, max_updates: int | None = None,
        progress: bool | None = None, tensorboard: Any = None,
        log: Callable[[str], Any] | None = print) -> Recorder:
    """Train for ``num_epochs`` epochs and record everything.  Per
    update: the rates and momentum the optimizer applied, the batch
    loss; per epoch: mean train loss, train accuracy (on the batches
    as trained), test accuracy, time; the chapter's line goes to
    ``log`` (None: silent).  Batches: ``iterate_batches(seed=seed)`` as
    in every framework.  ``recorder``: one to append to;
    ``max_updates``: stop early; ``progress``: tqdm (None: > 50 updates);
    ``tensorboard``: a folder for TensorBoard, written every epoch."""
    num_epochs = check.integer("num_epochs", num_epochs, 1)
    batch_size = check.integer("batch_size", batch_size, 1)
    total = num_epochs * num_batches(len(data.y_train), batch_size)
    if max_updates is not None:
        total = min(total, check.integer("max_updates", max_updates, 1))
    recorder = recorder if recorder is not None else Recorder()
    board = None if tensorboard is None else tb.TensorBoardWriter(tensorboard)
    bar = _progress(total, progress, f"{trainer.framework} training")
    step = recorder.steps[-1] + 1 if len(recorder) else 0
    record, last = recorder.record_update, step + total
    try:
        for epoch in range(num_epochs):
            start = time.perf_counter()
            trainer.begin_epoch(epoch)
            loss_sum, correct, seen = 0.0, 0, 0
            for xb, yb in trainer.batches(data.x_train, data.y_train,
                                          batch_size, seed=seed,
                                          epoch=epoch):
                lrs, momentum = trainer.hparams()
                loss, hits = trainer.train_batch(xb, yb)
                record(step, lrs, momentum, loss)
                loss_sum, seen = loss_sum + loss * len(yb), seen + len(yb)
                correct, step = correct + hits, step + 1
                if bar is not None:
                    bar.update(1)
                if step == last:
                    break
            trainer.end_epoch(loss_sum / seen)
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
            if board is not None:
                board.write(recorder)
            if step == last:
                break
    finally:
        if bar is not None:
            bar.close()
        if board is not None:
            board.close(recorder)
    return recorder


def find_lr(trainer: Trainer, data: Dataset, state: LRFinderState,
            batch_size: int = 256, seed: int = 0) -> LRFinderResult:
    """The finder sweep on ``trainer`` (bound to ``state.schedule``) over
    as many epochs as ``state`` needs; weights, optimizer state and
    position are restored in a ``finally``, also when the sweep raises."""
    batch_size = check.integer("batch_size", batch_size, 1)
    saved = trainer.snapshot()
    try:
        epoch = 0
        while not state.should_stop:
            for xb, yb in trainer.batches(data.x_train, data.y_train,
                                          batch_size, seed=seed,
                                          epoch=epoch):
                lrs, _ = trainer.hparams()
                # Keras evaluates the sweep in float32 (~1e-6 relative)
                if not np.isclose(lrs[-1], state.next_lr, rtol=1e-5,
                                  atol=0):
                    raise RuntimeError(
                        f"the trainer applies lr={lrs[-1]!r}, the finder "
                        f"expects {state.next_lr!r} at update "
                        f"{state.step}: bind it to state.schedule")
                loss, _ = trainer.train_batch(xb, yb)
                if state.update(loss):
                    break
            epoch += 1
        return state.result()
    finally:
        trainer.restore(saved)


def public_api(trainer_cls: type[Trainer]) -> tuple[Callable, ...]:
    """``train_lenet, lr_find, fit_one_cycle`` for one framework's
    trainer: the same functions, signatures and documentation in every
    backend (``unisched.backends.<framework>.train_lenet``...)."""
    module = trainer_cls.__module__
    fw = trainer_cls.framework

    def train_lenet(sched: Any, data: Dataset, num_epochs: int,
                    batch_size: int = 256, optimizer: str = "sgd",
                    momentum: float = 0.0, unit: str = "step",
                    seed: int = 0, *, weight_decay: float = 0.0,
                    lr: float | slice | Sequence[float] | None = None,
                    params: Mapping[str, np.ndarray] | None = None,
                    device: Any = None, recorder: Recorder | None = None,
                    max_updates: int | None = None,
                    progress: bool | None = None, tensorboard: Any = None,
                    log: Callable[[str], Any] | None = print) -> Recorder:
        data = check_data(data)
        batch_size = check.integer("batch_size", batch_size, 1)
        trainer = trainer_cls(
            sched, optimizer=optimizer, momentum=momentum,
            weight_decay=weight_decay, lr=lr, unit=unit,
            steps_per_epoch=num_batches(len(data.y_train), batch_size),
            params=params, seed=seed, device=device)
        return fit(trainer, data, num_epochs, batch_size, seed,
                   recorder=recorder, max_updates=max_updates,
                   progress=progress, log=log, tensorboard=tensorboard)

    def lr_find(data: Dataset, start_lr: float = 1e-7,
                end_lr: float = 10.0, num_it: int = 100,
                batch_size: int = 256, optimizer: str = "sgd",
                momentum: float = 0.0, seed: int = 0, *, model: Any = None,
                params: Mapping[str, np.ndarray] | None = None,
                stop_div: bool = True) -> LRFinderResult:
        data = check_data(data)
        state = LRFinderState(start_lr, end_lr, num_it, stop_div=stop_div)
        trainer = trainer_cls(state.schedule, optimizer=optimizer,
                              momentum=momentum, model=model,
                              params=params, seed=seed)
        return find_lr(trainer, data, state, batch_size, seed)

    def fit_one_cycle(data: Dataset, num_epochs: int,
                      max_lr: float | slice | Sequence[float],
                      preset: str = "fastai", batch_size: int = 256,
                      optimizer: str = "sgd", seed: int = 0,
                      **train_options: Any) -> Recorder:
        data = check_data(data)
        num_epochs = check.integer("num_epochs", num_epochs, 1)
        batch_size = check.integer("batch_size", batch_size, 1)
        if train_options.get("unit", "step") != "step":
            raise ValueError(f"fit_one_cycle's schedule counts updates; unit "
                             f"must be 'step', got {train_options['unit']!r}")
        if isinstance(max_lr, (slice, list, tuple, np.ndarray)):
            if train_options.get("lr") is not None:
                raise ValueError("give discriminative rates in max_lr or "
                                 "in lr, not both")
            peak = lr_range(max_lr, N_GROUPS)[-1]
            train_options["lr"] = max_lr
        else:
            peak = check.positive("max_lr", max_lr)
        total = num_epochs * num_batches(len(data.y_train), batch_size)
        return train_lenet(one_cycle(peak, total, preset), data,
                           num_epochs, batch_size, optimizer, seed=seed,
                           **train_options)

    for fn, doc in ((train_lenet, _TRAIN_DOC), (lr_find, _FIND_DOC),
                    (fit_one_cycle, _CYCLE_DOC)):
        fn.__module__, fn.__qualname__ = module, fn.__name__
        fn.__doc__ = doc.format(fw=fw, cls=trainer_cls.__name__,
                                module=module)
    return train_lenet, lr_find, fit_one_cycle


_TRAIN_DOC = """Train the d2l chapter's LeNet in {fw} under ``sched``.

    Update ``k`` of layer group ``i`` uses ``m_i * sched(k)`` (see
    :class:`unisched.app.training.Trainer`; ``steps_per_epoch =
    ceil(len(train) / batch_size)``); epochs, batches and records are
    :func:`unisched.app.training.fit`'s, identical in every framework.

    Args:
        sched: a unisched schedule, spec string or number, or {fw}'s own
            scheduler as the chapter uses it (see :class:`{cls}`).
        data: a :class:`unisched.app.data.Dataset`.
        num_epochs, batch_size: epochs; images per update.
        optimizer, momentum, unit, weight_decay, lr, params, device: as
            for :class:`unisched.app.training.Trainer`.
        seed: initial weights (``init_lenet_params(seed)``), batch order.
        recorder, max_updates, progress, log, tensorboard: as for
            :func:`unisched.app.training.fit`.

    Returns: the Recorder (per update the rates and momentum read from
    the optimizer and the loss; per epoch loss, accuracies, time).

    Example:
        >>> from unisched.app.data import load_dataset
        >>> from {module} import train_lenet
        >>> rec = train_lenet("cosine(max_update=2, base_lr=0.3, "
        ...                   "final_lr=0.1)", load_dataset("digits",
        ...                   limit=64), 1, batch_size=32, log=None)
        >>> [round(v, 6) for v in rec.lrs]
        [0.3, 0.2]
    """

_FIND_DOC = """fastai's learning-rate finder on LeNet in {fw}.

    Update ``k`` uses ``start_lr * (end_lr / start_lr) ** (k / num_it)``
    (:func:`unisched.tools.lr_finder_schedule`) until ``num_it`` updates,
    a smoothed loss over 4x its best (``stop_div``) or a NaN loss; batches
    cycle through the training set.  The weights (gradients, mode), the
    optimizer state and the position are put back exactly in a
    ``finally``: also when the sweep raises.

    Args:
        data: a :class:`unisched.app.data.Dataset`.
        start_lr, end_lr, num_it: the sweep; batch_size, optimizer,
            momentum: as for ``train_lenet``.
        seed: initial weights (without ``model``/``params``), batch order.
        model: a LeNet from ``build_lenet`` to probe in place; or
        params: initial weights for a new LeNet.
        stop_div: stop when the loss diverges.

    Returns: an :class:`unisched.tools.LRFinderResult` (the curve, the
    ``minimum``, ``steep``, ``valley`` and ``slide`` suggestions).
    """

_CYCLE_DOC = """fastai's ``fit_one_cycle`` on LeNet in {fw}:
    ``train_lenet`` with ``unisched.tools.one_cycle(peak, num_epochs *
    steps_per_epoch, preset)``, which also drives SGD's momentum or
    Adam's beta1 (fastai: 0.95 -> 0.85 -> 0.95).

    Args:
        data: a :class:`unisched.app.data.Dataset`.
        num_epochs: epochs; the cycle spans all their updates.
        max_lr: the peak rate, or fastai's discriminative form
            (``slice(hi)``, ``slice(lo, hi)``, 3 rates): the last group
            peaks at ``hi``, the others at their share (no ``lr`` then).
        preset: ``'fastai'`` or ``'torch'`` (see ``one_cycle``).
        batch_size, optimizer, seed, **train_options: as for
            ``train_lenet`` (``unit`` must stay ``'step'``).
    """
