"""The d2l chapter's LeNet training in PyTorch, driven by unisched.

:class:`TorchTrainer` is the PyTorch side of :mod:`unisched.app.training`: a
LeNet (``unisched.backends.torch.lenet``), a ``torch.optim`` optimizer whose param
groups follow ``LENET_LAYER_GROUPS``, and the schedule bound to it with
the adapter (:class:`unisched.backends.torch.LRScheduler`) or a native
PyTorch scheduler.  :func:`train_lenet`, :func:`lr_find` and
:func:`fit_one_cycle` run it through the shared loops
(:func:`unisched.app.training.fit`, :func:`unisched.app.training.find_lr`), so the
epochs, batches and records are those of every other framework.

The chapter (d2l "Learning Rate Scheduling"): modernized LeNet, softmax
cross-entropy (``nn.CrossEntropyLoss``, mean over the batch), SGD, batch
256, rate 0.3, 30 epochs; per epoch train loss, train accuracy, test
accuracy.

Speed: one update is the chapter's loop body (``zero_grad``, forward,
loss, ``backward``, ``step``) plus the scheduler's ``step()`` (a list
look-up, see the adapter); the loss and the correct count leave the
device together, in one transfer per batch.  Nothing here touches
PyTorch's random generator (the weights come from
``unisched.app.lenet.init_lenet_params``, the batch order from
:func:`unisched.app.data.iterate_batches`, and LeNet has no dropout) or its
thread count.
"""
from __future__ import annotations

import copy
import numbers
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import unisched
from torch import nn
from torch.optim import lr_scheduler as _tl
from unisched import _validate as check
from unisched.app import training as _training
from unisched.app.data import Dataset
from unisched.app.lenet import LENET_LAYER_GROUPS
from unisched.app.training import Trainer, find_lr, fit
from unisched.base import Schedule
from unisched.tools import (
    LRFinderResult,
    LRFinderState,
    Recorder,
    lr_range,
    multipliers,
)

from . import adapter as _adapter
from . import native as _native
from .lenet import build_lenet

__all__ = ["TorchTrainer", "train_lenet", "lr_find", "fit_one_cycle",
           "OPTIMIZERS", "UNITS", "CHAPTER_LR"]

#: Optimizer names: ``torch.optim.SGD`` (``momentum``, no Nesterov, no
#: dampening), ``torch.optim.Adam`` and ``torch.optim.AdamW`` with
#: PyTorch's defaults ``betas=(0.9, 0.999)``, ``eps=1e-8``.
OPTIMIZERS = ("sgd", "adam", "adamw")
UNITS = ("step", "epoch")

#: The chapter's rate, ``torch.optim.SGD(net.parameters(), lr=0.3)``: the
#: base rate a native PyTorch scheduler scales when ``lr`` is None.
CHAPTER_LR = 0.3

_NATIVE = (_tl.LRScheduler, _tl.ReduceLROnPlateau)
_ALIGN = 64  # bytes: the alignment of PyTorch's CPU allocations


def _check_device(device: Any, model: nn.Module | None) -> torch.device:
    """None: the model's device if one is given, else the GPU if PyTorch
    sees one, else the CPU."""
    if model is not None:
        here = next(model.parameters()).device
        if device is not None and torch.device(device) != here:
            raise ValueError(f"device={device!r} but the model's weights "
                             f"are on {here}; move the model first or "
                             f"leave device=None")
        return here
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available()
                            else "cpu")
    try:
        return torch.device(device)
    except (TypeError, RuntimeError) as err:
        raise ValueError(f"device must be a torch device or its name, "
                         f"got {device!r} ({err})") from None


def _param_groups(net: nn.Module, grouped: bool) -> list[dict[str, Any]]:
    """One group (all weights) or one per ``LENET_LAYER_GROUPS`` entry,
    input layers first, as fastai orders them."""
    if not grouped:
        return [{"params": list(net.parameters())}]
    groups = [{"params": [p for layer in names
                          for p in getattr(net, layer).parameters()]}
              for names in LENET_LAYER_GROUPS]
    covered = sum(len(g["params"]) for g in groups)
    total = len(list(net.parameters()))
    if covered != total:  # a model that is not the canonical LeNet
        raise ValueError(f"LENET_LAYER_GROUPS covers {covered} of the "
                         f"model's {total} parameter tensors")
    return groups


class TorchTrainer(Trainer):
    """LeNet, a ``torch.optim`` optimizer and a schedule, one update at a
    time (the operations :func:`unisched.app.training.fit` needs).

    Update ``k`` (``k = 0, 1, ...`` updates done by this trainer) gives
    param group ``i`` the rate::

        lr_i(k) = m_i * sched(k)                    unit='step'
        lr_i(k) = m_i * sched(k // steps_per_epoch)  unit='epoch'

    with ``m = unisched.tools.multipliers(lr, 3)`` over
    ``LENET_LAYER_GROUPS`` (conv body, hidden dense layers, head) when
    ``lr`` is given, else one group with ``m = [1]``.  A schedule with a
    momentum cycle (``sched.momentum``) also drives SGD's ``momentum`` or
    Adam's ``beta1`` (the adapter's default).

    Args:
        sched: what sets the rate:

            * a unisched schedule or a spec string (``unisched.parse``),
              bound with :func:`unisched.backends.torch.bind`;
            * a number: a constant rate;
            * a native PyTorch scheduler *factory*, ``optimizer ->
              scheduler`` (e.g. ``lambda opt: MultiStepLR(opt, [15, 30],
              0.5)``), as the chapter builds one; it is stepped after
              every update (``unit='step'``) or after every epoch
              (``unit='epoch'``, the chapter's way).  The optimizer it
              gets holds the base rates ``lr_range(lr, 3)``
              (``CHAPTER_LR`` = 0.3 when ``lr`` is None), which the
              scheduler scales.  ``ReduceLROnPlateau`` is stepped once
              per epoch with the epoch's mean training loss;
            * a PyTorch scheduler instance (bound to some other
              optimizer): converted exactly with
              :func:`unisched.backends.torch.from_native` and bound.

            A ``unisched.ReduceOnPlateau`` schedule observes the epoch's
            mean training loss after each epoch (``mode='min'`` only); the
            trainer works on a copy, so the caller's object is unchanged.
        optimizer: ``'sgd'``, ``'adam'`` or ``'adamw'`` (see
            :data:`OPTIMIZERS`).
        momentum: SGD momentum in [0, 1); must be 0 for Adam/AdamW
            (their ``beta1`` is PyTorch's 0.9 unless the schedule cycles
            it).
        weight_decay: L2 penalty (SGD, Adam) or decoupled decay (AdamW),
            PyTorch's meaning; 0 makes AdamW equal to Adam.
        lr: discriminative rates, fastai semantics: a number, ``slice(hi)``,
            ``slice(lo, hi)`` or a list of 3; None = one group.
        unit: ``'step'`` or ``'epoch'``: what the schedule counts.
        model: a LeNet from ``build_lenet`` to train in place (its device
            is used); default: a new one from ``params``.
        params: canonical initial weights; default
            ``init_lenet_params(seed)``.
        seed: seed of the default initial weights.
        device: None = the model's device, else the GPU if PyTorch sees
            one, else the CPU.

    Attributes:
        net, optimizer, scheduler (adapter ``LRScheduler`` or the native
        scheduler), schedule (the unisched schedule, None for a native
        factory), device, loss_fn.

    Example:
        >>> t = TorchTrainer("cosine(max_update=100, base_lr=0.3)")
        >>> t.hparams()
        ([0.3], 0.0)
    """

    framework = "torch"

    def __init__(self, sched: Any, *, optimizer: str = "sgd",
                 momentum: float = 0.0, weight_decay: float = 0.0,
                 lr: float | slice | Sequence[float] | None = None,
                 unit: str = "step", model: nn.Module | None = None,
                 params: Mapping[str, np.ndarray] | None = None,
                 seed: int = 0, device: Any = None) -> None:
        self.optimizer_name = check.choice("optimizer", optimizer,
                                           OPTIMIZERS)
        self.unit = check.choice("unit", unit, UNITS)
        momentum = check.in_range("momentum", momentum, 0.0, 1.0,
                                  high_open=True)
        if momentum and self.optimizer_name != "sgd":
            raise ValueError(f"momentum={momentum!r} applies to 'sgd' only; "
                             f"{self.optimizer_name!r} uses betas "
                             f"(beta1=0.9, or the schedule's momentum "
                             f"cycle)")
        weight_decay = check.rate("weight_decay", weight_decay)
        n_groups = len(LENET_LAYER_GROUPS)
        mults = None if lr is None else multipliers(lr, n_groups)
        if model is not None and params is not None:
            raise ValueError("give model or params, not both")
        if model is not None and not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module from "
                            f"build_lenet, got {type(model).__name__}")
        kind, target = self._classify(sched)
        self.device = _check_device(device, model)
        self.net = model if model is not None else build_lenet(
            params, seed=seed, device=self.device)
        base = lr_range(CHAPTER_LR if lr is None else lr, n_groups)
        groups = _param_groups(self.net, grouped=lr is not None)
        for group, rate in zip(groups, base[-len(groups):]):
            group["lr"] = rate
        if self.optimizer_name == "sgd":
            self.optimizer = torch.optim.SGD(
                groups, lr=base[-1], momentum=momentum,
                weight_decay=weight_decay)
        else:
            klass = torch.optim.Adam if self.optimizer_name == "adam" \
                else torch.optim.AdamW
            self.optimizer = klass(groups, lr=base[-1],
                                   weight_decay=weight_decay)
        self.loss_fn = nn.CrossEntropyLoss()
        self._bind(kind, target, mults)
        self._groups = self.optimizer.param_groups
        self._mom_key = "momentum" if self.optimizer_name == "sgd" \
            else "betas"
        self._on_cpu = self.device.type == "cpu"
        # A native ReduceLROnPlateau steps per epoch only (with a metric).
        self._step_each_update = self.unit == "step" and not (
            self._plateau and self.schedule is None)
        self._epoch_loss = 0.0
        self._epoch_seen = 0

    # -- construction -------------------------------------------------------
    @staticmethod
    def _classify(sched: Any) -> tuple[str, Any]:
        """('schedule', Schedule) or ('native', factory)."""
        if isinstance(sched, Schedule):
            return "schedule", sched
        if isinstance(sched, str):
            return "schedule", unisched.parse(sched)
        if isinstance(sched, numbers.Real) and \
                not isinstance(sched, (bool, np.bool_)):
            return "schedule", unisched.ConstantScheduler(
                check.rate("sched", sched))
        if isinstance(sched, _NATIVE):
            # Bound to another optimizer: take its exact unisched
            # equivalent (TypeError/ValueError for what cannot convert).
            return "schedule", _native.from_native(sched)
        if callable(sched):
            return "native", sched
        raise TypeError(f"sched must be a unisched schedule, a spec "
                        f"string, a number, or a callable optimizer -> "
                        f"torch scheduler, got {sched!r} "
                        f"({type(sched).__name__})")

    def _bind(self, kind: str, target: Any,
              mults: list[float] | None) -> None:
        self._plateau = False
        if kind == "schedule":
            if target.stateful:
                if getattr(target, "mode", "min") != "min":
                    raise ValueError(
                        f"the trainer feeds the epoch's mean training loss "
                        f"to {type(target).__name__}, which needs "
                        f"mode='min', got mode={target.mode!r}")
                target = copy.deepcopy(target)  # leave the caller's alone
                self._plateau = True
            self.schedule = target
            self.scheduler = _adapter.bind(target, self.optimizer,
                                           unit=self.unit,
                                           multipliers=mults)
            return
        self.schedule = None
        try:
            native = target(self.optimizer)
        except TypeError as err:  # e.g. a function of the epoch
            raise TypeError(f"sched, a callable, must take the optimizer "
                            f"and return a torch.optim.lr_scheduler "
                            f"scheduler (a rate per epoch is "
                            f"unisched.parse(...) or a schedule with "
                            f"unit='epoch'); calling it with the optimizer "
                            f"raised {err!r}") from err
        if not isinstance(native, _NATIVE) or \
                native.optimizer is not self.optimizer:
            raise TypeError(f"sched, a callable, must return a "
                            f"torch.optim.lr_scheduler scheduler built on "
                            f"the optimizer it is given, got {native!r}")
        self._plateau = isinstance(native, _tl.ReduceLROnPlateau)
        if self._plateau and native.mode != "min":
            raise ValueError(f"the trainer steps ReduceLROnPlateau with the "
                             f"epoch's mean training loss, which needs "
                             f"mode='min', got mode={native.mode!r}")
        self.scheduler = native

    # -- the Trainer operations ---------------------------------------------
    def _tensors(self, x: np.ndarray, y: np.ndarray
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        if not self._on_cpu:
            return (xt.to(self.device, non_blocking=True),
                    yt.to(self.device, non_blocking=True))
        if x.ctypes.data % _ALIGN:
            # numpy aligns big arrays to 16 bytes only; PyTorch's CPU
            # kernels ran 5-15% slower per update here on images not
            # aligned to 64 bytes, while a copy into PyTorch's own
            # (64-byte aligned) memory costs ~0.1 ms per batch.
            xt = xt.clone()
        return xt, yt

    def train_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        """One update on ``(x, y)`` (NCHW float32 images, int64 labels):
        the chapter's ``zero_grad``, forward, mean cross-entropy,
        ``backward``, ``step``, then the per-update scheduler step.
        Returns the batch's mean loss and correct count, both from the
        forward pass before the update (as the chapter measures them)."""
        net = self.net
        if not net.training:
            net.train()
        xt, yt = self._tensors(x, y)
        self.optimizer.zero_grad(set_to_none=True)
        out = net(xt)
        loss = self.loss_fn(out, yt)
        loss.backward()
        self.optimizer.step()
        if self._step_each_update:
            self.scheduler.step()
        with torch.no_grad():
            hits = (out.argmax(dim=1) == yt).sum()
            # One device-to-host transfer for both numbers.
            value, correct = torch.stack(
                (loss.detach().double(), hits.double())).tolist()
        if self._plateau:
            self._epoch_loss += value * len(y)
            self._epoch_seen += len(y)
        return value, int(correct)

    def count_correct(self, x: np.ndarray, y: np.ndarray) -> int:
        """Correct predictions on ``(x, y)`` in evaluation mode."""
        net = self.net
        if net.training:
            net.eval()
        xt, yt = self._tensors(x, y)
        with torch.inference_mode():
            return int((net(xt).argmax(dim=1) == yt).sum())

    def hparams(self) -> tuple[list[float], float | None]:
        """The rate of every param group and the momentum (SGD) or beta1
        (Adam, AdamW) of group 0, as the optimizer holds them for the
        next update."""
        lrs = [float(g["lr"]) for g in self._groups]
        mom = self._groups[0][self._mom_key]
        if self._mom_key == "betas":
            mom = mom[0]
        return lrs, float(mom)

    def end_epoch(self) -> None:
        """Feed a plateau schedule the epoch's mean training loss, and step
        a per-epoch (``unit='epoch'``) scheduler."""
        if self._plateau:
            metric = self._epoch_loss / max(self._epoch_seen, 1)
            self._epoch_loss, self._epoch_seen = 0.0, 0
            if self.schedule is None:  # native ReduceLROnPlateau
                self.scheduler.step(metric)
            else:
                self.scheduler.observe(metric)
        if self.unit == "epoch" and not (self._plateau and
                                         self.schedule is None):
            self.scheduler.step()




def train_lenet(sched: Any, data: Dataset, num_epochs: int,
                batch_size: int = 256, optimizer: str = "sgd",
                momentum: float = 0.0, unit: str = "step", seed: int = 0,
                *, weight_decay: float = 0.0,
                lr: float | slice | Sequence[float] | None = None,
                params: Mapping[str, np.ndarray] | None = None,
                device: Any = None, recorder: Recorder | None = None,
                max_updates: int | None = None,
                progress: bool | None = None,
                log: Callable[[str], Any] | None = print) -> Recorder:
    """Train the chapter's LeNet in PyTorch under ``sched``.

    Update ``k`` of group ``i`` uses ``multipliers(lr, 3)[i] * sched(k)``
    (``sched(k // steps_per_epoch)`` with ``unit='epoch'``); see
    :class:`TorchTrainer` for every accepted ``sched`` (schedule, spec
    string, number, native PyTorch scheduler factory) and option.  The
    epochs, batch order (``seed``) and records are those of
    :func:`unisched.app.training.fit`, identical in every framework.

    Args:
        sched: the schedule (see :class:`TorchTrainer`).
        data: a :class:`unisched.app.data.Dataset`.
        num_epochs: epochs to train.
        batch_size: images per update.
        optimizer: ``'sgd'``, ``'adam'`` or ``'adamw'``.
        momentum: SGD momentum.
        unit: ``'step'`` or ``'epoch'``: what ``sched`` counts.
        seed: initial weights (``init_lenet_params(seed)``) and batch
            order.
        weight_decay: PyTorch's ``weight_decay``.
        lr: discriminative rates over ``LENET_LAYER_GROUPS``.
        params: initial weights (canonical dict) instead of the seed's.
        device: None = GPU if available, else CPU.
        recorder: a :class:`~unisched.tools.Recorder` to append to.
        max_updates: stop after this many updates.
        progress: tqdm bar (None: only for runs over 50 updates).
        log: called with the chapter's line after each epoch (None:
            silent).

    Returns:
        The recorder: per update the rates and momentum read from the
        optimizer and the loss; per epoch train loss/acc, test acc, time.

    Example:
        >>> from unisched.app.data import load_dataset
        >>> rec = train_lenet("cosine(max_update=30, base_lr=0.3)",
        ...                   load_dataset("digits"), 5,
        ...                   log=None)  # doctest: +SKIP
        >>> rec.epochs[-1]["test_acc"] > 0.8  # doctest: +SKIP
        True
    """
    data = _training.check_data(data)
    trainer = TorchTrainer(sched, optimizer=optimizer, momentum=momentum,
                           weight_decay=weight_decay, lr=lr, unit=unit,
                           params=params, seed=seed, device=device)
    return fit(trainer, data, num_epochs, batch_size, seed,
               recorder=recorder, max_updates=max_updates,
               progress=progress, log=log)


def lr_find(data: Dataset, start_lr: float = 1e-7, end_lr: float = 10.0,
            num_it: int = 100, batch_size: int = 256,
            optimizer: str = "sgd", momentum: float = 0.0, seed: int = 0,
            *, model: nn.Module | None = None,
            params: Mapping[str, np.ndarray] | None = None,
            stop_div: bool = True) -> LRFinderResult:
    """fastai's learning-rate finder on LeNet in PyTorch.

    Update ``k`` uses ``start_lr * (end_lr / start_lr) ** (k / num_it)``
    (:func:`unisched.tools.lr_finder_schedule`); the sweep stops after
    ``num_it`` updates, when the smoothed loss exceeds 4x its best
    (``stop_div``), or on a NaN loss.  Batches cycle through the training
    set as many epochs as needed.

    Args:
        data: a :class:`unisched.app.data.Dataset`.
        start_lr, end_lr, num_it: the sweep.
        batch_size: images per update.
        optimizer, momentum: as in :func:`train_lenet` (a fresh optimizer;
            its state is discarded afterwards).
        seed: initial weights (when neither ``model`` nor ``params``) and
            batch order.
        model: a LeNet from ``build_lenet`` to probe in place; its
            weights, gradients and train/eval mode are restored
            afterwards, exactly, even if the sweep raises.
        params: initial weights for a new LeNet instead.
        stop_div: stop when the loss diverges.

    Returns:
        :class:`unisched.tools.LRFinderResult` with the curve and the
        ``minimum``, ``steep``, ``valley`` and ``slide`` suggestions.

    Example:
        >>> from unisched.app.data import load_dataset
        >>> res = lr_find(load_dataset("digits"))  # doctest: +SKIP
        >>> sorted(res.suggestions)  # doctest: +SKIP
        ['minimum', 'slide', 'steep', 'valley']
    """
    data = _training.check_data(data)
    state = LRFinderState(start_lr, end_lr, num_it, stop_div=stop_div)
    saved = None
    if model is not None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module from "
                            f"build_lenet, got {type(model).__name__}")
        saved = ({k: v.detach().clone()
                  for k, v in model.state_dict().items()},
                 [None if p.grad is None else p.grad.detach().clone()
                  for p in model.parameters()],
                 model.training)
    trainer = TorchTrainer(state.schedule, optimizer=optimizer,
                           momentum=momentum, model=model, params=params,
                           seed=seed)
    try:
        return find_lr(trainer, data, state, batch_size, seed)
    finally:
        if saved is not None:
            weights, grads, training = saved
            # In place: the caller's Parameter objects (and any optimizer
            # holding them) stay the same objects.
            model.load_state_dict(weights)
            for p, g in zip(model.parameters(), grads):
                p.grad = g
            model.train(training)


def fit_one_cycle(data: Dataset, num_epochs: int,
                  max_lr: float | slice | Sequence[float],
                  preset: str = "fastai", batch_size: int = 256,
                  optimizer: str = "sgd", seed: int = 0,
                  **train_options: Any) -> Recorder:
    """fastai's ``fit_one_cycle`` on LeNet in PyTorch: ``train_lenet`` with
    ``unisched.tools.one_cycle(max_lr, num_epochs * steps_per_epoch,
    preset)``, which also drives SGD's momentum or Adam's beta1 (fastai:
    0.95 -> 0.85 -> 0.95).

    Args:
        data: a :class:`unisched.app.data.Dataset`.
        num_epochs: epochs; the cycle spans all their updates.
        max_lr: the peak rate, or fastai's discriminative form
            (``slice(hi)``, ``slice(lo, hi)``, a list of 3): the last
            group peaks at ``hi``, the others at their share of it (then
            do not pass ``lr``).
        preset: ``'fastai'`` or ``'torch'`` (see ``one_cycle``).
        batch_size, optimizer, seed: as in :func:`train_lenet`.
        **train_options: other :func:`train_lenet` keywords (``unit``
            must stay ``'step'``).

    Example:
        >>> from unisched.app.data import load_dataset
        >>> rec = fit_one_cycle(load_dataset("digits"), 3, 0.5,
        ...                     log=None)  # doctest: +SKIP
    """
    return _training.fit_one_cycle(train_lenet, data, num_epochs, max_lr,
                                   preset, batch_size, optimizer, seed,
                                   **train_options)
