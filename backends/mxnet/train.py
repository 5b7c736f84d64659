"""The d2l chapter's LeNet training in MXNet Gluon, scheduled by unisched.

:class:`MXNetTrainer` is the MXNet side of :class:`unisched.app.training.Trainer`
(the epoch loop itself is :func:`unisched.app.training.fit`, shared by every
framework): a hybridized LeNet (``unisched.backends.mxnet.lenet.build_lenet``), Gluon's
``SoftmaxCrossEntropyLoss``, a ``gluon.Trainer`` stepped with
``trainer.step(batch_size)`` so that the gradient is the batch mean, as in
the chapter.  The rate comes from the adapter of :mod:`.mxnet`
(``bind``), which keeps unisched's convention: update ``k`` (0 for the
first) uses ``sched(k)``, although MXNet numbers it ``k + 1``.

An MXNet scheduler (``mxnet.lr_scheduler.LRScheduler``) is given to the
Trainer unchanged, as the chapter does (``{'lr_scheduler': scheduler}``):
MXNet then calls it with its own 1-based ``num_update``, which is the
point of comparing it with the same schedule under unisched.

Optimizers (:data:`OPTIMIZERS`, MXNet 1.9.1 defaults otherwise):

* ``'sgd'``: ``mx.optimizer.SGD(momentum)``; MXNet's momentum buffer holds
  ``-lr * grad`` terms (``m = momentum * m - lr * (g + wd * w); w += m``),
  so a rate change acts through the buffer, unlike PyTorch's SGD.
* ``'adam'``: ``mx.optimizer.Adam`` (beta1 0.9, beta2 0.999, epsilon
  1e-8); ``weight_decay`` is an L2 term added to the gradient (coupled).
* ``'adamw'``: MXNet 1.9.1 has no AdamW optimizer class (only the
  ``nd.contrib.adamw_update`` operator), so :class:`AdamW` here is Adam
  with weight decay decoupled as in Loshchilov & Hutter / PyTorch's
  ``AdamW``; same defaults as ``'adam'``.

For the multipliers of ``lr`` (fastai's ``slice`` over
``LENET_LAYER_GROUPS``) each parameter's ``lr_mult`` is set with
:func:`.mxnet.set_multipliers`: MXNet multiplies the scheduled rate by it.

>>> from unisched.app.data import load_dataset
>>> data = load_dataset("digits", limit=64)
>>> rec = train_lenet("cosine(max_update=2, base_lr=0.3, final_lr=0.1)",
...                   data, 1, batch_size=32, log=None)
>>> [round(v, 6) for v in rec.lrs]
[0.3, 0.2]
"""
from __future__ import annotations

import copy
import math
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import unisched as us
from unisched import _validate as check
from unisched.app import training as _training
from unisched.app.data import Dataset, num_batches
from unisched.app.lenet import LENET_LAYER_GROUPS
from unisched.app.training import Trainer, find_lr, fit
from unisched.tools import LRFinderResult, LRFinderState, Recorder, multipliers

from ._mx import mx
from .adapter import LRScheduler, attached, bind, set_multipliers
from .lenet import build_lenet

__all__ = ["MXNetTrainer", "AdamW", "OPTIMIZERS", "UNITS",
           "default_device", "train_lenet", "lr_find", "fit_one_cycle"]

#: Optimizer names :class:`MXNetTrainer` accepts.
OPTIMIZERS = ("sgd", "adam", "adamw")
UNITS = ("step", "epoch")


class AdamW(mx.optimizer.Adam):
    """Adam with decoupled weight decay, on MXNet's ``adamw_update``::

        g = clip(rescale_grad * grad)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        w = w - lr_t * (c_t * m / (sqrt(v) + epsilon) + wd * w)
        c_t = sqrt(1 - beta2**t) / (1 - beta1**t)

    ``lr_t`` is the scheduled rate times the parameter's ``lr_mult`` and
    ``t`` the parameter's update count (1 for the first).  The decay
    ``lr_t * wd * w`` uses the weight before the update and does not pass
    through ``m`` and ``v``: PyTorch's ``AdamW``, except that the bias
    correction multiplies the step as in MXNet's ``Adam`` (epsilon is not
    bias-corrected).  With ``wd = 0`` it is MXNet's ``Adam``.

    The update counts, calls the scheduler and only then reads ``beta1``,
    so the adapter's ``beta1`` schedule applies to the same update (as for
    ``Adam`` in :data:`.mxnet.SCHEDULABLE`, which covers subclasses).

    Args: as ``mx.optimizer.Adam`` (``learning_rate`` 0.001, ``beta1``
    0.9, ``beta2`` 0.999, ``epsilon`` 1e-8, ``wd``); dense weights only.
    """

    def __init__(self, learning_rate: float = 0.001, beta1: float = 0.9,
                 beta2: float = 0.999, epsilon: float = 1e-8,
                 **kwargs: Any) -> None:
        kwargs.setdefault("lazy_update", False)
        super().__init__(learning_rate=learning_rate, beta1=beta1,
                         beta2=beta2, epsilon=epsilon, **kwargs)
        self._scales: dict[Any, tuple[float, Any]] = {}

    def _rescale(self, ctx: Any) -> Any:
        # The operator takes rescale_grad as an NDArray; one per device,
        # refilled only when Trainer.step changes the batch size.
        value = float(self.rescale_grad)
        held = self._scales.get(ctx)
        if held is None or held[0] != value:
            held = (value, mx.nd.full((1,), value, ctx=ctx,
                                      dtype="float32"))
            self._scales[ctx] = held
        return held[1]

    def update(self, index: Any, weight: Any, grad: Any, state: Any) -> None:
        self._update_count(index)
        lr = self._get_lr(index)        # the scheduler may set beta1 here
        wd = self._get_wd(index)
        t = self._index_update_count[index]
        correction = math.sqrt(1.0 - self.beta2 ** t) / (1.0 - self.beta1 ** t)
        options = {"beta1": self.beta1, "beta2": self.beta2,
                   "epsilon": self.epsilon}
        if self.clip_gradient:
            options["clip_gradient"] = self.clip_gradient
        mean, var = state
        mx.nd.contrib.adamw_update(weight, grad, mean, var,
                                   self._rescale(weight.context),
                                   out=weight, lr=correction, eta=lr, wd=wd,
                                   **options)

    def __getstate__(self) -> dict:
        # Trainer.save_states pickles the optimizer; the cache is rebuilt.
        state = super().__getstate__()
        state["_scales"] = {}
        return state


def default_device() -> Any:
    """The first GPU if MXNet sees one, else the CPU."""
    try:
        gpus = mx.context.num_gpus()
    except mx.base.MXNetError:          # a CUDA build without a driver
        gpus = 0
    return mx.gpu() if gpus > 0 else mx.cpu()


def _device(device: Any) -> Any:
    """``None`` / an ``mx.Context`` / ``'cpu'``, ``'gpu'``, ``'gpu(1)'``,
    ``'gpu:1'`` -> a checked ``mx.Context``."""
    if device is None:
        return default_device()
    if isinstance(device, str):
        found = re.fullmatch(r"\s*(cpu|gpu)\s*(?:[(:]\s*(\d+)\s*\)?)?\s*",
                             device.lower())
        if found is None:
            raise ValueError(f"device must be 'cpu', 'gpu', 'gpu(i)' or an "
                             f"mx.Context, got {device!r}")
        device = mx.Context(found.group(1), int(found.group(2) or 0))
    if not isinstance(device, mx.Context):
        raise TypeError(f"device must be None, a string or an mx.Context, "
                        f"got {device!r}")
    if device.device_type == "gpu":
        try:
            gpus = mx.context.num_gpus()
        except mx.base.MXNetError:
            gpus = 0
        if device.device_id >= gpus:
            raise ValueError(f"device {device} is not available: MXNet "
                             f"sees {gpus} GPU(s)")
    return device


def _model_device(model: Any) -> Any:
    return next(iter(model.collect_params().values())).list_ctx()[0]


def _is_native(sched: Any) -> bool:
    return isinstance(sched, mx.lr_scheduler.LRScheduler) and \
        not isinstance(sched, LRScheduler)


def _schedule(sched: Any) -> Any:
    """A unisched schedule, or a copy of an MXNet scheduler."""
    if isinstance(sched, str):
        sched = us.parse(sched)
    if isinstance(sched, us.Schedule):
        if sched.stateful:
            if getattr(sched, "mode", "min") != "min":
                raise ValueError(f"the trainer feeds the epoch's mean "
                                 f"training loss to {type(sched).__name__},"
                                 f" which needs mode='min', got "
                                 f"mode={sched.mode!r}")
            # The trainer observes a copy: the caller's keeps its state.
            return copy.deepcopy(sched)
        return sched
    if isinstance(sched, numbers.Real) and not isinstance(
            sched, (bool, np.bool_)):
        return us.ConstantScheduler(check.rate("sched", sched))
    if isinstance(sched, LRScheduler):
        raise TypeError(f"sched: pass the unisched schedule itself "
                        f"(sched.schedule) and unit=, not an adapter "
                        f"object, got {sched!r}")
    if _is_native(sched):
        # A copy: MXNet's Factor/MultiFactor schedulers rewrite their
        # base_lr as they go, and the caller's object stays reusable.
        return copy.deepcopy(sched)
    raise TypeError(f"sched must be a unisched schedule, a spec string, a "
                    f"number or an mxnet.lr_scheduler.LRScheduler, got "
                    f"{sched!r}")


def _group_patterns(prefix: str) -> list[str]:
    """A name pattern per ``LENET_LAYER_GROUPS`` entry (``lenet_fc3_.*``)."""
    return [f"{re.escape(prefix)}({'|'.join(group)})_.*"
            for group in LENET_LAYER_GROUPS]


class MXNetTrainer(Trainer):
    """A hybridized Gluon LeNet, a ``gluon.Trainer`` and a bound schedule.

    Update ``k`` (0-based) trains with rate ``multipliers[i] * sched(k)``
    in group ``i`` (``sched(k // steps_per_epoch)`` with ``unit='epoch'``),
    or, for an MXNet scheduler, ``multipliers[i] * native(k + 1)`` (MXNet's
    numbering). ``hparams`` reads what the next update will apply from the
    optimizer: its scheduler asked for MXNet's next ``num_update`` (the
    value the update itself will get; MXNet already asks once per group
    of parameters, so the schedulers it accepts answer a repeated number
    the same) times each group's ``lr_mult``, and the optimizer's
    ``momentum`` (SGD) or ``beta1`` (Adam, AdamW).

    Args:
        sched: a unisched schedule, a spec string, a number (constant
            rate) or an ``mxnet.lr_scheduler.LRScheduler`` (given, as a
            copy, to the optimizer; only with ``unit='step'``).  A
            momentum cycle (``sched.momentum``) drives SGD's momentum or
            Adam's beta1, overriding ``momentum``.  A
            ``unisched.ReduceOnPlateau`` (``mode='min'``) observes the
            epoch's mean training loss after each epoch; the trainer
            works on a copy, so the caller's object is unchanged.
        optimizer: ``'sgd'``, ``'adam'`` or ``'adamw'`` (module doc).
        momentum: SGD momentum in [0, 1); must be 0 for Adam/AdamW (their
            beta1 is MXNet's 0.9 unless a momentum cycle drives it).
        unit: ``'step'`` (the schedule counts updates) or ``'epoch'`` (it
            counts epochs of ``steps_per_epoch`` updates).
        steps_per_epoch: updates per epoch; required with ``unit='epoch'``.
        weight_decay: the optimizer's ``wd`` (>= 0), on every parameter.
        lr: per-group rates over ``LENET_LAYER_GROUPS`` (a float,
            ``slice(hi)``, ``slice(lo, hi)`` or 3 rates), used through
            ``unisched.tools.multipliers``: the schedule is the last
            group's rate.  ``None``: one group, multiplier 1.
        model: a LeNet from ``build_lenet`` to train in place (its
            ``lr_mult`` are set, it is hybridized); default: a new one
            from ``params`` or ``init_lenet_params(seed)``.
        params, seed: initial weights (canonical dict) / their seed.
        device: ``None`` (GPU if any, else CPU; the model's own with
            ``model``), ``'cpu'``, ``'gpu(i)'`` or an ``mx.Context``.

    Unlike PyTorch's trainer, ``unit='epoch'`` needs ``steps_per_epoch``
    up front: MXNet asks its scheduler with the update count, which the
    adapter maps to the epoch (``train_lenet`` passes it).

    Attributes: ``net``, ``trainer`` (the ``gluon.Trainer``),
    ``optimizer``, ``adapter`` (the bound :class:`.mxnet.LRScheduler`,
    or None with an MXNet scheduler), ``native`` (that scheduler, as
    the optimizer holds it), ``multipliers``, ``ctx``.
    """

    framework = "mxnet"

    def __init__(self, sched: Any, *, optimizer: str = "sgd",
                 momentum: float = 0.0, unit: str = "step",
                 steps_per_epoch: int | None = None,
                 weight_decay: float = 0.0,
                 lr: float | slice | Sequence[float] | None = None,
                 model: Any = None,
                 params: Mapping[str, np.ndarray] | None = None,
                 seed: int = 0, device: Any = None) -> None:
        optimizer = check.choice("optimizer", optimizer, OPTIMIZERS)
        unit = check.choice("unit", unit, UNITS)
        momentum = check.in_range("momentum", momentum, 0.0, 1.0,
                                  high_open=True)
        if optimizer != "sgd" and momentum != 0.0:
            raise ValueError(f"momentum is SGD's; {optimizer} uses "
                             f"beta1=0.9 (MXNet's default, or the "
                             f"schedule's momentum cycle), got "
                             f"momentum={momentum!r}")
        weight_decay = check.rate("weight_decay", weight_decay)
        mults = [1.0] if lr is None else multipliers(
            lr, len(LENET_LAYER_GROUPS))
        sched = _schedule(sched)
        native = None if isinstance(sched, us.Schedule) else sched
        if native is not None and unit != "step":
            raise ValueError(
                f"an MXNet scheduler counts updates (MXNet's num_update), "
                f"so unit must be 'step', got unit={unit!r}; for a "
                f"per-epoch schedule pass unisched.backends.mxnet."
                f"from_native(scheduler) or a unisched schedule")
        if unit == "epoch":
            if steps_per_epoch is None:
                raise ValueError("steps_per_epoch is required with "
                                 "unit='epoch', got None")
            steps_per_epoch = check.integer("steps_per_epoch",
                                            steps_per_epoch, 1)
        if model is not None:
            if params is not None:
                raise ValueError("give model or params, not both")
            if not isinstance(model, mx.gluon.HybridBlock):
                raise TypeError(f"model must be a Gluon LeNet from "
                                f"build_lenet, got {model!r}")
            self.ctx = _model_device(model)
            if device is not None and _device(device) != self.ctx:
                raise ValueError(f"device={device!r} but the model's "
                                 f"weights are on {self.ctx}; move the "
                                 f"model first or leave device=None")
            self.net = model
        else:
            self.ctx = _device(device)
            self.net = build_lenet(params, seed=seed, ctx=self.ctx)
        self.net.hybridize()
        self.loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()

        patterns = _group_patterns(self.net.prefix)
        if len(mults) == 1:
            patterns = [f"{re.escape(self.net.prefix)}.*"]
        chosen = set_multipliers(self.net, dict(zip(patterns, mults)))
        # One parameter per group: the optimizer multiplies by its lr_mult.
        every = list(self.net.collect_params().values())
        if len(chosen) != len(every):
            raise ValueError(f"model: LENET_LAYER_GROUPS cover "
                             f"{sorted(chosen)}, not every parameter of "
                             f"{[p.name for p in every]}")
        self._group_params = [next(p for p in every if re.fullmatch(pat,
                                                                    p.name))
                              for pat in patterns]
        self.multipliers = mults

        options: dict[str, Any] = {"wd": weight_decay}
        if native is not None:
            # learning_rate = base_lr keeps MXNet's Optimizer from writing
            # its own default (Adam's 0.001) into the scheduler.
            options.update(lr_scheduler=native,
                           learning_rate=native.base_lr)
        else:
            options["learning_rate"] = float(sched(0))
        if optimizer == "sgd":
            opt = mx.optimizer.SGD(momentum=momentum, **options)
        elif optimizer == "adam":
            opt = mx.optimizer.Adam(**options)
        else:
            opt = AdamW(**options)
        self.trainer = mx.gluon.Trainer(self.net.collect_params(), opt)
        self.native = native
        self.adapter = None
        if native is None:
            extra = {"steps_per_epoch": steps_per_epoch} \
                if unit == "epoch" else {}
            self.adapter = bind(sched, self.trainer, unit=unit, **extra)
        self._momentum_name = "momentum" if optimizer == "sgd" else "beta1"
        self.optimizer_name = optimizer
        self._plateau = native is None and sched.stateful
        self._divisor = steps_per_epoch if unit == "epoch" else 1
        self._epoch_loss, self._epoch_seen = 0.0, 0

    @property
    def optimizer(self) -> Any:
        """The MXNet optimizer inside ``trainer``."""
        return self.trainer.optimizer

    def _inputs(self, x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
        # A private float32 copy handed to MXNet without a second copy
        # (DLPack): a third of mx.nd.array's cost, and the caller's arrays
        # are not made read-only as from_numpy does to what it is given.
        xs = mx.nd.from_numpy(np.array(x, dtype=np.float32, order="C"),
                              zero_copy=True)
        ys = mx.nd.from_numpy(np.array(y, dtype=np.float32, order="C"),
                              zero_copy=True)
        return xs.as_in_context(self.ctx), ys.as_in_context(self.ctx)

    def train_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        """One update on ``(x, y)`` (NCHW float32 images, int labels):
        the chapter's ``autograd.record`` / ``backward`` /
        ``trainer.step(batch_size)``.  Returns the mean loss and the
        number of correct predictions (made before the update)."""
        xs, ys = self._inputs(x, y)
        with mx.autograd.record():
            out = self.net(xs)
            loss = self.loss_fn(out, ys)
        loss.backward()
        self.trainer.step(xs.shape[0])
        hits = (out.argmax(axis=1) == ys).sum()
        value = float(loss.mean().asscalar())
        if self._plateau:
            self._epoch_loss += value * len(y)
            self._epoch_seen += len(y)
        return value, int(hits.asscalar())

    def count_correct(self, x: np.ndarray, y: np.ndarray) -> int:
        xs, ys = self._inputs(x, y)
        return int((self.net(xs).argmax(axis=1) == ys).sum().asscalar())

    def hparams(self) -> tuple[list[float], float | None]:
        """Rates per group and momentum (or beta1) of the next update, as
        the optimizer will compute them (``Optimizer._get_lrs`` with
        ``num_update + 1``)."""
        opt = self.trainer.optimizer
        sched = opt.lr_scheduler
        rate = opt.lr if sched is None else sched(opt.num_update + 1)
        return ([rate * p.lr_mult for p in self._group_params],
                float(getattr(opt, self._momentum_name)))

    def end_epoch(self) -> None:
        """Feed a ``ReduceOnPlateau`` schedule the epoch's mean training
        loss; the next update uses the new rate.  (Per-epoch schedules need
        nothing here: the adapter maps updates to epochs.)"""
        if not self._plateau or not self._epoch_seen:
            return
        metric = self._epoch_loss / self._epoch_seen
        self._epoch_loss, self._epoch_seen = 0.0, 0
        # attached(): the live adapter, also after Trainer.load_states.
        adapter = attached(self.trainer)
        step = self.trainer.optimizer.num_update // self._divisor
        adapter.schedule.observe(metric, step=step)

    def __repr__(self) -> str:
        what = self.native if self.adapter is None else self.adapter
        return (f"MXNetTrainer({what!r}, optimizer={self.optimizer_name!r},"
                f" multipliers={self.multipliers}, ctx={self.ctx})")




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
    """Train the chapter's LeNet in MXNet with ``sched``; record the run.

    The k-th update (k = 0, 1, ... over the whole run) uses rate
    ``multipliers[i] * sched(k)`` in layer group ``i`` (``sched(k //
    steps_per_epoch)`` with ``unit='epoch'``, ``steps_per_epoch =
    ceil(len(train) / batch_size)``); an MXNet scheduler is handed to the
    Trainer and called by MXNet with ``k + 1``.  Batches are
    ``unisched.app.data.iterate_batches(seed=seed, epoch=e)`` and the initial
    weights ``init_lenet_params(seed)`` unless ``params``: the same in
    every framework.

    Args:
        sched: schedule, spec string, number, or
            ``mxnet.lr_scheduler.LRScheduler`` (see :class:`MXNetTrainer`).
        data: a ``unisched.app.data.Dataset`` (NCHW float32 images).
        num_epochs: epochs to train.
        batch_size: images per update; the gradient is the batch mean.
        optimizer, momentum, unit, weight_decay, lr, params, device: as
            for :class:`MXNetTrainer`.
        seed: seed of the initial weights and of the batch order.
        recorder, max_updates, progress, log: as for
            :func:`unisched.app.training.fit`.

    Returns:
        The ``Recorder``: per update the rates per group and momentum read
        from the optimizer and the loss; per epoch train loss and
        accuracy, test accuracy and time.
    """
    data = _training.check_data(data)
    num_epochs = check.integer("num_epochs", num_epochs, 1)
    batch_size = check.integer("batch_size", batch_size, 1)
    trainer = MXNetTrainer(
        sched, optimizer=optimizer, momentum=momentum, unit=unit,
        steps_per_epoch=num_batches(len(data.y_train), batch_size),
        weight_decay=weight_decay, lr=lr, params=params, seed=seed,
        device=device)
    return fit(trainer, data, num_epochs, batch_size, seed,
               recorder=recorder, max_updates=max_updates,
               progress=progress, log=log)


def lr_find(data: Dataset, start_lr: float = 1e-7, end_lr: float = 10.0,
            num_it: int = 100, batch_size: int = 256,
            optimizer: str = "sgd", momentum: float = 0.0, seed: int = 0,
            *, model: Any = None,
            params: Mapping[str, np.ndarray] | None = None,
            stop_div: bool = True) -> LRFinderResult:
    """fastai's learning-rate finder on LeNet in MXNet.

    Update ``k`` trains with ``start_lr * (end_lr / start_lr) ** (k /
    num_it)`` (:func:`unisched.tools.lr_finder_schedule`) until ``num_it``
    updates, or until the smoothed loss exceeds 4x its best
    (``stop_div``) or is not finite.  With ``model`` (a ``build_lenet``
    network) the sweep trains that network on its device and then puts
    back its weights (bit for bit), gradients, ``lr_mult`` and whether it
    was hybridized, even if the sweep raises; the optimizer used is a new
    one, discarded afterwards.
    Otherwise a new LeNet from ``params`` / ``init_lenet_params(seed)``.

    Returns:
        The ``LRFinderResult`` with the curve and fastai's four
        suggestions (``minimum``, ``steep``, ``valley``, ``slide``).
    """
    data = _training.check_data(data)
    state = LRFinderState(start_lr, end_lr, num_it, stop_div=stop_div)
    if model is None:
        trainer = MXNetTrainer(state.schedule, optimizer=optimizer,
                               momentum=momentum, params=params, seed=seed)
        return find_lr(trainer, data, state, batch_size, seed)
    if not isinstance(model, mx.gluon.HybridBlock):
        raise TypeError(f"model must be a Gluon LeNet from build_lenet, "
                        f"got {model!r}")
    if params is not None:
        raise ValueError("give model or params, not both")
    every = list(model.collect_params().values())
    weights = [[d.copy() for d in p.list_data()] for p in every]
    grads = [[g.copy() for g in p.list_grad()] if p.grad_req != "null"
             else [] for p in every]
    lr_mults = [p.lr_mult for p in every]
    was_active = bool(getattr(model, "_active", False))
    try:
        trainer = MXNetTrainer(state.schedule, optimizer=optimizer,
                               momentum=momentum, model=model)
        return find_lr(trainer, data, state, batch_size, seed)
    finally:
        for p, saved, grad, mult in zip(every, weights, grads, lr_mults):
            for d, s in zip(p.list_data(), saved):
                s.copyto(d)
            for d, s in zip(p.list_grad() if grad else [], grad):
                s.copyto(d)
            p.lr_mult = mult
        if not was_active:
            model.hybridize(False)
        mx.nd.waitall()


def fit_one_cycle(data: Dataset, num_epochs: int,
                  max_lr: float | slice | Sequence[float],
                  preset: str = "fastai", batch_size: int = 256,
                  optimizer: str = "sgd", seed: int = 0,
                  **train_options: Any) -> Recorder:
    """fastai's ``fit_one_cycle`` on LeNet in MXNet.

    The schedule is ``unisched.tools.one_cycle(peak, num_epochs *
    steps_per_epoch, preset)``: the rate warms up to ``peak`` and anneals,
    while its momentum cycle (0.95 -> 0.85 -> 0.95 for ``'fastai'``)
    drives SGD's momentum or Adam's beta1 at every update.  ``max_lr`` is
    the peak, or per-group peaks as fastai's ``lr_max=slice(lo, hi)``
    (then ``peak = hi`` and the groups get ``multipliers(max_lr, 3)``).

    Args:
        data, num_epochs, batch_size, optimizer, seed: as for
            :func:`train_lenet`.
        max_lr: the peak rate, a ``slice`` or 3 rates.
        preset: ``'fastai'`` or ``'torch'`` (``OneCycleLR`` defaults).
        **train_options: other :func:`train_lenet` keywords (not
            ``unit``: the cycle counts updates).
    """
    return _training.fit_one_cycle(train_lenet, data, num_epochs, max_lr,
                                   preset, batch_size, optimizer, seed,
                                   **train_options)

