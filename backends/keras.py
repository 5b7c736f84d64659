"""Keras 3 (TensorFlow backend) adapter: any unisched schedule in the graph.

Convention (the same in every backend): the k-th optimizer update
(k = 0, 1, ...) uses ``sched(k)``.  A Keras 3 optimizer calls its schedule
with ``optimizer.iterations`` *before* incrementing it, i.e. with 0, 1, 2,
... for updates 1, 2, 3, so the schedule is handed over unshifted.

What is here:

* :class:`KerasOps` -- the ops namespace over ``keras.ops``: every schedule
  evaluates its own ``_eval(t, ops)`` formula as float32 graph ops, so a
  schedule is written once and compiles into ``tf.function`` / XLA.
* :class:`LearningRateSchedule` -- a ``keras.optimizers.schedules``
  schedule wrapping any unisched schedule; serializable
  (``model.save`` / ``keras.models.load_model`` restore it).
* :class:`ScheduledHyperparameter` and :func:`bind_hparams` -- momentum,
  Adam's ``beta_1`` or any other float hyperparameter that the optimizer
  reads with ops inside ``update_step``, evaluated in the graph from
  ``optimizer.iterations`` at every update (no callback, no retracing).
* :func:`epoch_callback` -- the d2l chapter's per-epoch style, a genuine
  ``keras.callbacks.LearningRateScheduler``.
* :class:`ReduceOnPlateauCallback` -- feeds a metric to a
  :class:`unisched.ReduceOnPlateau` at epoch end; its ``scale`` lives in a
  variable that the graph reads.
* :func:`group_optimizer` -- discriminative rates: one optimizer per group
  of variables, each with the schedule scaled by the group's multiplier.
* :func:`bind` and :func:`from_native` (see ``unisched.backends``).

Importing this module imports keras and tensorflow; ``unisched`` itself
never does.
"""
from __future__ import annotations

import math
import numbers
import re
import types
from typing import Any, Callable, Mapping

import keras
import numpy as np
import tensorflow as tf
from keras import ops

import unisched
from unisched._ops import ScalarOps
from unisched.base import Schedule
from unisched.plateau import ReduceOnPlateau

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        f"unisched.backends.keras needs the TensorFlow backend of Keras 3 "
        f"(it reads hyperparameters through TensorFlow's tensor "
        f"conversion); KERAS_BACKEND is {keras.backend.backend()!r}")

__all__ = [
    "KerasOps", "LearningRateSchedule", "ScheduledHyperparameter",
    "ReduceOnPlateauCallback", "HyperparameterCallback", "bind",
    "bind_hparams", "epoch_callback",
    "from_native", "group_optimizer",
    "train_lenet", "lr_find", "fit_one_cycle", "KerasTrainer",
]

#: every schedule value is computed in this dtype (optimizers cast it to
#: each variable's dtype, as they do for Keras' own schedules)
DTYPE = "float32"


def _f32(x: Any) -> Any:
    """``x`` as a float32 tensor; Python numbers become float32 constants
    so that ``floatx`` never leaks into a schedule's arithmetic."""
    if ops.is_tensor(x):
        return x if x.dtype == DTYPE else ops.cast(x, DTYPE)
    return ops.convert_to_tensor(x, DTYPE)


class KerasOps:
    """The ops namespace of ``unisched._ops`` over ``keras.ops``, in
    float32: ``where, cos, sqrt, exp, log, floor, ceil, minimum, maximum,
    power, clip``.  Arithmetic and comparisons between a float32 tensor
    and Python numbers stay float32 (TensorFlow converts the number to the
    tensor's dtype).

    >>> import keras
    >>> from unisched import CosineScheduler
    >>> s = CosineScheduler(max_update=10, base_lr=1.0)
    >>> t = keras.ops.cast(keras.ops.arange(0, 11, 5), "float32")
    >>> keras.ops.convert_to_numpy(s._eval(t, KerasOps)).round(6).tolist()
    [1.0, 0.5, 0.0]
    """

    @staticmethod
    def where(cond, a, b):
        return ops.where(cond, _f32(a), _f32(b))

    @staticmethod
    def cos(x):
        return ops.cos(_f32(x))

    @staticmethod
    def sqrt(x):
        return ops.sqrt(_f32(x))

    @staticmethod
    def exp(x):
        return ops.exp(_f32(x))

    @staticmethod
    def log(x):
        return ops.log(_f32(x))

    @staticmethod
    def floor(x):
        return ops.floor(_f32(x))

    @staticmethod
    def ceil(x):
        return ops.ceil(_f32(x))

    @staticmethod
    def minimum(a, b):
        return ops.minimum(_f32(a), _f32(b))

    @staticmethod
    def maximum(a, b):
        return ops.maximum(_f32(a), _f32(b))

    @staticmethod
    def power(base, exponent):
        return ops.power(_f32(base), _f32(exponent))

    @staticmethod
    def clip(x, low, high):
        return ops.clip(_f32(x), low, high)


def _schedule(sched: Any, name: str = "sched") -> Schedule:
    """A schedule from a schedule or a spec string."""
    if isinstance(sched, Schedule):
        return sched
    if isinstance(sched, str):
        return unisched.parse(sched)
    raise TypeError(f"{name} must be a unisched schedule or a spec string, "
                    f"got {sched!r} ({type(sched).__name__})")


def _eager_step(step: Any) -> float | None:
    """The step as a Python float when it can be read right now (eager
    execution, one scalar); None inside a traced function."""
    if not tf.executing_eagerly():
        return None
    if isinstance(step, keras.Variable):
        step = step.value
    value = np.asarray(step)
    return float(value) if value.ndim == 0 else None


def _constant(value: float) -> Any:
    # tf.constant: keras.ops.convert_to_tensor costs ~15x more eagerly.
    return tf.constant(value, dtype=DTYPE)


class _LiveScale:
    """A ReduceOnPlateau seen with another ``scale`` (the graph's variable
    read), so that its own ``_eval`` formula is the one evaluated."""

    def __init__(self, sched: ReduceOnPlateau, scale: Any) -> None:
        self._sched = sched
        self.scale = scale

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sched, name)


@keras.saving.register_keras_serializable(package="unisched")
class LearningRateSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Any unisched schedule as a Keras learning-rate schedule.

    ``__call__(step)`` returns ``sched(step)`` as a float32 tensor: inside
    a traced function (``model.fit``, ``tf.function``, ``jit_compile``)
    it is ``sched._eval(cast(step, float32), KerasOps)``, graph ops that
    read the step at run time (nothing is retraced per step); called
    eagerly with a scalar it evaluates the same formula in Python floats
    and rounds once to float32.  The optimizer calls it with
    ``optimizer.iterations``, 0 for the first update.

    A :class:`unisched.ReduceOnPlateau` keeps its ``scale`` in a Keras
    variable that the graph reads; change it only through :meth:`observe`
    (or :class:`ReduceOnPlateauCallback`), which updates both.

    ``get_config()`` is ``{'schedule': sched.to_config()}`` (plus
    ``'state'`` for ReduceOnPlateau), so the schedule round-trips through
    ``model.save`` / ``keras.models.load_model``.

    Args:
        schedule: a unisched schedule or a spec string.

    >>> import keras
    >>> lr = LearningRateSchedule("cosine(max_update=100, base_lr=0.1)")
    >>> opt = keras.optimizers.SGD(learning_rate=lr)
    >>> round(float(lr(50)), 6)
    0.05
    """

    def __init__(self, schedule: Schedule | str) -> None:
        super().__init__()
        self.schedule = _schedule(schedule, "schedule")
        self._scale = None
        if isinstance(self.schedule, ReduceOnPlateau):
            self._scale = keras.Variable(
                self.schedule.scale, dtype=DTYPE, trainable=False,
                name="plateau_scale")

    def _formula(self, scale: Any) -> Callable:
        sched = self.schedule
        if self._scale is None:
            return sched._eval
        view = _LiveScale(sched, scale)
        return lambda t, o: type(sched)._eval(view, t, o)

    def __call__(self, step: Any) -> Any:
        now = _eager_step(step)
        if now is not None:
            scale = None if self._scale is None \
                else float(np.asarray(self._scale.value))
            value = self._formula(scale)(now, ScalarOps)
            return _constant(float(value))
        scale = None if self._scale is None else self._scale.value
        return self._formula(scale)(ops.cast(step, DTYPE), KerasOps)

    # -- ReduceOnPlateau ----------------------------------------------------
    def observe(self, metric: float, step: int = 0) -> bool:
        """Feed ``metric`` to the wrapped ReduceOnPlateau and update the
        variable the graph reads; returns True if the rate was cut."""
        if self._scale is None:
            raise TypeError(f"observe() needs a ReduceOnPlateau schedule, "
                            f"this one is {self.schedule!r}")
        cut = self.schedule.observe(metric, step)
        self._scale.assign(self.schedule.scale)
        return cut

    # -- serialization ------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        config = {"schedule": self.schedule.to_config()}
        if self.schedule.stateful:
            config["state"] = self.schedule.state_dict()
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "LearningRateSchedule":
        sched = unisched.from_config(config["schedule"])
        if "state" in config:
            sched.load_state_dict(config["state"])
        return cls(sched)

    def __repr__(self) -> str:
        return f"LearningRateSchedule({self.schedule.to_spec()})"


# -- hyperparameters other than the learning rate ---------------------------

def _binary(op: Callable) -> tuple[Callable, Callable]:
    def forward(self, other):
        return op(self.value(), other)

    def reflected(self, other):
        return op(other, self.value())
    return forward, reflected


class ScheduledHyperparameter(float):
    """An optimizer hyperparameter (SGD ``momentum``, Adam ``beta_1``, ...)
    that follows a schedule of ``optimizer.iterations``.

    Keras 3 optimizers read such hyperparameters as Python attributes
    inside ``update_step`` (``ops.cast(self.momentum, dtype)``, ``1 -
    self.beta_1``); a plain float there is baked into the traced graph, so
    assigning a new float later changes nothing in a compiled train step.
    This object replaces the attribute.  Converted to a tensor (TensorFlow's
    ``__tf_tensor__`` protocol) or used in arithmetic, it is
    ``schedule(optimizer.iterations)``, evaluated with :class:`KerasOps`
    when traced, so update k uses ``schedule(k)`` in ``model.fit``, custom
    loops, ``tf.function`` and XLA alike.

    As a Python float it is ``schedule(0)``: that is what ``get_config()``
    and ``model.save`` record, and what build-time checks such as SGD's
    ``momentum != 0`` (which decides whether velocity slots exist) see.
    ``model.save`` therefore stores a constant; call :func:`bind` or
    :func:`bind_hparams` again after ``load_model``.

    Use :func:`bind_hparams` to create one.
    """

    def __new__(cls, optimizer: Any, name: str,
                schedule: Schedule | str) -> "ScheduledHyperparameter":
        sched = _schedule(schedule, name)
        if sched.stateful:
            raise TypeError(f"{name} schedule must be stateless, "
                            f"got {sched!r}")
        obj = super().__new__(cls, sched(0))
        obj.optimizer = optimizer
        obj.name = name
        obj.schedule = sched
        return obj

    def value(self) -> Any:
        """``schedule(optimizer.iterations)`` as a float32 tensor."""
        step = self.optimizer.iterations
        now = _eager_step(step)
        if now is not None:
            return _constant(self.schedule(int(now)))
        return self.schedule._eval(ops.cast(step, DTYPE), KerasOps)

    def __tf_tensor__(self, dtype: Any = None, name: Any = None) -> Any:
        value = self.value()
        return value if dtype is None else tf.cast(value, dtype)

    __add__, __radd__ = _binary(lambda a, b: a + b)
    __sub__, __rsub__ = _binary(lambda a, b: a - b)
    __mul__, __rmul__ = _binary(lambda a, b: a * b)
    __truediv__, __rtruediv__ = _binary(lambda a, b: a / b)
    __pow__, __rpow__ = _binary(lambda a, b: a ** b)

    def __neg__(self):
        return -self.value()

    def __reduce__(self):
        # Copies and pickles hold the recorded constant, like get_config.
        return (float, (float(self),))

    def __repr__(self) -> str:
        return (f"ScheduledHyperparameter({self.name}="
                f"{self.schedule.to_spec()})")

    __str__ = __repr__


def _unwrap(optimizer: Any) -> keras.optimizers.Optimizer:
    """The optimizer that owns the hyperparameters (mixed precision wraps
    it in a LossScaleOptimizer)."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.inner_optimizer
    if isinstance(optimizer, keras.optimizers.MultiOptimizer):
        raise TypeError("a MultiOptimizer has one learning rate per inner "
                        "optimizer: bind each of optimizer.optimizers, or "
                        "build it with unisched.backends.keras."
                        "group_optimizer")
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise TypeError(f"optimizer must be a keras.optimizers.Optimizer, "
                        f"got {type(optimizer).__module__}."
                        f"{type(optimizer).__qualname__}")
    return optimizer


def _float_hparams(optimizer: Any) -> list[str]:
    skip = {"learning_rate", "ema_momentum", "loss_scale_factor"}
    return sorted(k for k, v in vars(optimizer).items()
                  if isinstance(v, float) and not k.startswith("_")
                  and k not in skip)


def _scheduled(optimizer: Any, hparams: Mapping[str, Any]
               ) -> dict[str, ScheduledHyperparameter]:
    """Check ``hparams`` against ``optimizer`` and build the objects,
    changing nothing yet (so a bad name leaves the optimizer as it was)."""
    if not isinstance(hparams, Mapping):
        raise TypeError(f"hparams must be a dict name -> schedule, "
                        f"got {hparams!r}")
    valid = _float_hparams(optimizer)
    out = {}
    for name, sched in hparams.items():
        if name not in valid:
            raise ValueError(
                f"{type(optimizer).__name__} has no float hyperparameter "
                f"{name!r}; it has {valid}")
        current = getattr(optimizer, name)
        param = ScheduledHyperparameter(optimizer, name, sched)
        if name == "momentum":
            # SGD and RMSprop keep velocity slots only if momentum != 0 at
            # build time; the graph needs them for every update.
            if optimizer.built and current == 0:
                raise ValueError(
                    f"{type(optimizer).__name__} was built with momentum="
                    f"{float(current)!r}, so it has no velocity slots; "
                    f"bind before the first update or construct it with "
                    f"momentum > 0")
            if float(param) == 0:
                raise ValueError(
                    f"the momentum schedule starts at 0.0 ({param!r}); "
                    f"Keras would build the optimizer without velocity "
                    f"slots: start it above 0")
        out[name] = param
    return out


def _config_without_schedules(self: Any) -> dict[str, Any]:
    """``get_config`` with scheduled hyperparameters as plain floats, so a
    config never carries an object bound to this optimizer's step into a
    new optimizer (``Optimizer.from_config(opt.get_config())``)."""
    config = type(self).get_config(self)
    return {k: float(v) if isinstance(v, ScheduledHyperparameter) else v
            for k, v in config.items()}


def _set_scheduled(optimizer: Any,
                   bound: Mapping[str, ScheduledHyperparameter]) -> None:
    for name, param in bound.items():
        setattr(optimizer, name, param)
    if bound:
        # A method bound to the instance (deepcopy rebinds it to the copy).
        optimizer.get_config = types.MethodType(_config_without_schedules,
                                                optimizer)


def bind_hparams(optimizer: keras.optimizers.Optimizer,
                 hparams: Mapping[str, Schedule | str]
                 ) -> dict[str, ScheduledHyperparameter]:
    """Make float hyperparameters of ``optimizer`` follow schedules.

    Replaces ``optimizer.<name>`` by a :class:`ScheduledHyperparameter`,
    so update k uses ``hparams[name](k)``, in ``fit`` and in custom loops
    alike (nothing to call per step).  Do it before the first update (or
    before tracing the function that applies the optimizer): a graph
    traced earlier keeps the old constant; ``bind(sched, model)`` resets
    the model's compiled train function for you.

    Args:
        optimizer: a Keras 3 optimizer, e.g. ``SGD`` (``'momentum'``),
            ``Adam`` / ``AdamW`` (``'beta_1'``, ``'beta_2'``).
        hparams: hyperparameter name -> schedule (or spec string).

    Returns:
        name -> the ScheduledHyperparameter now set on the optimizer.

    Raises:
        ValueError: the optimizer has no such float hyperparameter, or a
            ``momentum`` that Keras has switched off at build time.

    >>> import keras, unisched
    >>> s = unisched.OneCycleScheduler(max_lr=0.1, max_update=100)
    >>> opt = keras.optimizers.SGD(learning_rate=LearningRateSchedule(s))
    >>> m = bind_hparams(opt, {"momentum": s.momentum})["momentum"]
    >>> round(float(m.value()), 6)   # the momentum of update 0
    0.95
    """
    optimizer = _unwrap(optimizer)
    bound = _scheduled(optimizer, hparams)
    _set_scheduled(optimizer, bound)
    return bound


def _momentum_name(optimizer: Any) -> str | None:
    """Where the momentum cycle goes, as in PyTorch's OneCycleLR/CyclicLR:
    Adam's ``beta_1`` (``betas[0]``) if present, else ``momentum``."""
    valid = _float_hparams(optimizer)
    for name in ("beta_1", "momentum"):
        if name in valid:
            return name
    return None


# -- learning rate on an optimizer or model ---------------------------------

def _plan(sched: Schedule, optimizer: Any, momentum: Any,
          hparams: Mapping[str, Any] | None
          ) -> tuple[Schedule, dict[str, ScheduledHyperparameter]]:
    """The learning-rate schedule Keras must be given and the checked
    hyperparameter objects, before anything is changed."""
    steps = optimizer.gradient_accumulation_steps
    lr_sched = sched
    if steps:
        # Keras calls the schedule with the micro-batch count; the k-th
        # real update happens at micro-batch (k + 1) * steps - 1.
        if sched.stateful:
            raise ValueError(f"gradient_accumulation_steps={steps} with a "
                             f"stateful schedule is not supported: "
                             f"{sched!r}")
        lr_sched = unisched.epochwise(sched, steps)
    extra = dict(hparams or {})
    if momentum is True:
        cycle = sched.momentum
        if cycle is not None:
            name = _momentum_name(optimizer)
            if name is None:
                raise ValueError(
                    f"{sched.to_spec()} has a momentum cycle but "
                    f"{type(optimizer).__name__} has no 'momentum' or "
                    f"'beta_1'; pass momentum=False to ignore the cycle")
            extra.setdefault(name, cycle)
    elif isinstance(momentum, (Schedule, str)):
        name = _momentum_name(optimizer)
        if name is None:
            raise ValueError(f"{type(optimizer).__name__} has no "
                             f"'momentum' or 'beta_1' to schedule")
        extra.setdefault(name, _schedule(momentum, "momentum"))
    elif momentum is not False:
        raise TypeError(f"momentum must be True, False or a schedule, "
                        f"got {momentum!r}")
    return lr_sched, _scheduled(optimizer, extra)


def _attach(sched: Schedule, optimizer: Any, momentum: Any,
            hparams: Mapping[str, Any] | None) -> LearningRateSchedule:
    optimizer = _unwrap(optimizer)
    lr_sched, bound = _plan(sched, optimizer, momentum, hparams)
    adapter = LearningRateSchedule(lr_sched)
    # The setter accepts a schedule on any Keras 3 optimizer; one built
    # with a float rate drops (untracks) its learning-rate variable.
    optimizer.learning_rate = adapter
    _set_scheduled(optimizer, bound)
    return adapter


def bind(sched: Schedule | str, target: Any, *, momentum: Any = True,
         hparams: Mapping[str, Schedule | str] | None = None,
         monitor: str = "val_loss") -> Any:
    """Attach ``sched`` to a Keras optimizer or a compiled Keras model.

    The optimizer's learning rate becomes ``LearningRateSchedule(sched)``
    (update k uses ``sched(k)``).  If ``sched`` has a momentum cycle
    (``sched.momentum``: cyclic, one-cycle) it drives Adam's ``beta_1`` or
    SGD/RMSprop's ``momentum`` in the graph, as PyTorch's OneCycleLR does.
    With ``gradient_accumulation_steps=n`` the schedule counts real
    updates (``epochwise(sched, n)`` of Keras' micro-batch count).

    Bind before training (or before tracing a function that applies the
    optimizer): graphs traced earlier keep the old values.  For a model,
    its compiled train function is reset so ``fit`` retraces.

    Args:
        sched: a schedule or a spec string.
        target: a ``keras.optimizers.Optimizer`` or a compiled
            ``keras.Model``.
        momentum: True: bind ``sched.momentum`` if there is one (error if
            the optimizer has nowhere to put it); False: leave momentum
            alone; a schedule: bind that one.
        hparams: more hyperparameters to schedule, name -> schedule.
        monitor: for a ReduceOnPlateau on a model, the metric its
            callback watches.

    Returns:
        For an optimizer: the :class:`LearningRateSchedule` attached.  For
        a model: the list of callbacks to pass to ``fit`` -- empty, except
        ``[ReduceOnPlateauCallback]`` for a ReduceOnPlateau (the momentum
        needs no callback).

    >>> import keras
    >>> opt = keras.optimizers.Adam()
    >>> bind("one_cycle(max_lr=0.01, max_update=1000)", opt)
    LearningRateSchedule(one_cycle(max_lr=0.01, max_update=1000))
    >>> opt.beta_1  # doctest: +ELLIPSIS
    ScheduledHyperparameter(beta_1=one_cycle_momentum(...))
    """
    sched = _schedule(sched)
    if isinstance(target, keras.Model):
        optimizer = getattr(target, "optimizer", None)
        if optimizer is None:
            raise ValueError(f"model {target.name!r} has no optimizer: "
                             f"call model.compile(optimizer=...) first")
        adapter = _attach(sched, optimizer, momentum, hparams)
        # fit() reuses a cached train function; it must be retraced to
        # read the new schedule objects.
        target.train_function = None
        if sched.stateful:
            return [ReduceOnPlateauCallback(monitor, adapter)]
        return []
    if isinstance(target, keras.optimizers.Optimizer):
        return _attach(sched, target, momentum, hparams)
    raise TypeError(f"target must be a keras.optimizers.Optimizer or a "
                    f"compiled keras.Model, got "
                    f"{type(target).__module__}.{type(target).__qualname__}")


# -- callbacks ----------------------------------------------------------------

class _EpochRate:
    """``schedule(epoch, lr)`` for keras' LearningRateScheduler."""

    def __init__(self, sched: Schedule) -> None:
        self.schedule = sched

    def __call__(self, epoch: int, lr: float | None = None) -> float:
        return float(self.schedule(epoch))


def epoch_callback(sched: Schedule | str, verbose: int = 0
                   ) -> keras.callbacks.LearningRateScheduler:
    """The d2l chapter's TensorFlow style: a genuine
    ``keras.callbacks.LearningRateScheduler`` that sets the rate of epoch
    ``e`` (counted from 0) to ``sched(e)`` at the start of the epoch, so
    update k uses ``epochwise(sched, steps_per_epoch)(k)``.

    The optimizer must have a float learning rate (Keras refuses to set a
    rate on an optimizer built with a schedule).  A per-update schedule
    in the graph is :func:`bind`; ``bind(epochwise(sched, spe), ...)`` is
    the same curve without a callback.

    Args:
        sched: a schedule of the epoch index, or a spec string.
        verbose: passed to LearningRateScheduler.

    >>> cb = epoch_callback("factor(step=1, factor=0.5, base_lr=0.1)")
    >>> cb.schedule(0), cb.schedule(2)
    (0.1, 0.05)
    """
    return keras.callbacks.LearningRateScheduler(
        _EpochRate(_schedule(sched)), verbose=verbose)


def _adapter_of(optimizer: Any) -> LearningRateSchedule:
    lr = getattr(_unwrap(optimizer), "_learning_rate", None)
    if not isinstance(lr, LearningRateSchedule):
        raise ValueError(f"the optimizer's learning rate is {lr!r}, not a "
                         f"unisched LearningRateSchedule; bind one first")
    return lr


class HyperparameterCallback(keras.callbacks.Callback):
    """Per-batch schedules for hyperparameters other than the learning
    rate (SGD ``momentum``, Adam ``beta_1``...), as a ``model.fit``
    callback.

    Keras bakes a float hyperparameter into the traced train step, so
    setting it from ``on_train_batch_begin`` would not reach the compiled
    update.  This callback instead binds the schedules (see
    :func:`bind_hparams`) when ``fit`` hands it the model, before the
    train function is built, and drops a train function traced earlier;
    update k then uses ``hparams[name](k)`` inside the graph.

    >>> import keras, unisched
    >>> s = unisched.OneCycleScheduler(max_lr=0.1, max_update=100)
    >>> cb = HyperparameterCallback({"momentum": s.momentum})
    >>> # model.fit(x, y, callbacks=[cb])
    """

    def __init__(self, hparams: Mapping[str, Schedule | str]) -> None:
        super().__init__()
        if not isinstance(hparams, Mapping) or not hparams:
            raise TypeError(f"hparams must be a non-empty dict of name -> "
                            f"schedule, got {hparams!r}")
        self.hparams = dict(hparams)

    def set_model(self, model: Any) -> None:
        super().set_model(model)
        if getattr(model, "optimizer", None) is None:
            raise ValueError("HyperparameterCallback needs a compiled "
                             "model (model.optimizer is None)")
        bind_hparams(model.optimizer, self.hparams)
        # fit() builds its train function right after setting the
        # callbacks' model; one traced before would keep old constants.
        model.train_function = None


class ReduceOnPlateauCallback(keras.callbacks.Callback):
    """At each epoch end, feed ``logs[monitor]`` to the ReduceOnPlateau
    inside the optimizer's :class:`LearningRateSchedule` (found on
    ``model.optimizer`` unless given) and update the scale variable the
    compiled train step reads.

    Args:
        monitor: the metric name in the epoch logs (``'val_loss'``,
            ``'loss'``, ...).
        schedule: the LearningRateSchedule holding the ReduceOnPlateau.
    """

    def __init__(self, monitor: str = "val_loss",
                 schedule: LearningRateSchedule | None = None) -> None:
        super().__init__()
        if schedule is not None and (
                not isinstance(schedule, LearningRateSchedule)
                or schedule._scale is None):
            raise TypeError(f"schedule must be a LearningRateSchedule of a "
                            f"ReduceOnPlateau, got {schedule!r}")
        self.monitor = monitor
        self.adapter = schedule

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(f"ReduceOnPlateauCallback monitors "
                             f"{self.monitor!r}, absent from the epoch logs "
                             f"(available: {sorted(logs)})")
        adapter = self.adapter or _adapter_of(self.model.optimizer)
        if adapter._scale is None:
            raise TypeError(f"the optimizer's schedule is not a "
                            f"ReduceOnPlateau: {adapter.schedule!r}")
        step = int(ops.convert_to_numpy(self.model.optimizer.iterations))
        adapter.observe(float(logs[self.monitor]), step)


# -- discriminative (per-group) learning rates ------------------------------

def group_optimizer(sched: Schedule | str,
                    make_optimizer: Callable[[LearningRateSchedule], Any],
                    multipliers: Mapping[str, float],
                    default_multiplier: float = 1.0, *,
                    momentum: Any = True
                    ) -> keras.optimizers.MultiOptimizer:
    """Discriminative learning rates: variables whose ``path`` matches
    pattern ``p`` (``re.fullmatch``, Keras' OptimizerMap rules) train with
    ``multipliers[p] * sched(k)``, the others with ``default_multiplier *
    sched(k)``.

    Each group gets its own optimizer from ``make_optimizer(lr)``; Keras'
    ``MultiOptimizer`` routes every variable to its group's optimizer and
    every inner optimizer steps at every update, so their iteration counts
    stay equal.  For optimizers whose update is elementwise (SGD, Adam,
    AdamW, RMSprop, ...) this equals a per-variable rate multiplier
    exactly -- PyTorch's parameter groups.  Scaling gradients instead is
    not the same for Adam (it is invariant to gradient scale).  Clipping
    by ``global_clipnorm`` would run per group; use ``clipnorm``.

    Args:
        sched: the shared schedule (or a spec string), stateless.
        make_optimizer: called with each group's learning rate, returns a
            new Keras optimizer, e.g. ``lambda lr: keras.optimizers.Adam(
            lr, weight_decay=1e-4)``.
        multipliers: variable-path pattern -> rate multiplier (>= 0).
        default_multiplier: for variables matching no pattern.
        momentum: as in :func:`bind`, for every group.

    >>> import keras
    >>> opt = group_optimizer("cosine(max_update=100, base_lr=0.1)",
    ...                       lambda lr: keras.optimizers.SGD(lr),
    ...                       {"backbone/.*": 0.1})
    >>> [round(float(o.learning_rate), 6) for o in opt.optimizers]
    [0.01, 0.1]
    """
    sched = _schedule(sched)
    if not isinstance(multipliers, Mapping):
        raise TypeError(f"multipliers must be a dict pattern -> float, "
                        f"got {multipliers!r}")
    if not callable(make_optimizer):
        raise TypeError(f"make_optimizer must be callable, "
                        f"got {make_optimizer!r}")
    made: list[Any] = []

    def build(factor: Any, label: str) -> Any:
        if not isinstance(factor, numbers.Real) or isinstance(factor, bool) \
                or not math.isfinite(factor) or factor < 0:
            raise ValueError(f"multiplier for {label} must be a finite "
                             f"number >= 0, got {factor!r}")
        group = sched if factor == 1 else unisched.scale(sched, factor)
        opt = make_optimizer(LearningRateSchedule(group))
        if not isinstance(opt, keras.optimizers.Optimizer) or any(
                opt is o for o in made):
            raise TypeError(f"make_optimizer must return a new "
                            f"keras.optimizers.Optimizer per call, got "
                            f"{opt!r}")
        made.append(opt)
        _attach(group, opt, momentum, None)
        return opt

    for pattern in multipliers:
        if not isinstance(pattern, str):
            raise TypeError(f"multipliers keys must be strings (variable "
                            f"path patterns), got {pattern!r}")
        re.compile(pattern)
    table = keras.optimizers.OptimizerMap(
        build(default_multiplier, "the default group"))
    for pattern, factor in multipliers.items():
        table[pattern] = build(factor, repr(pattern))
    return keras.optimizers.MultiOptimizer(table)


# -- Keras' own schedules -> unisched -----------------------------------------

def _number(name: str, value: Any) -> float:
    try:
        out = float(np.asarray(ops.convert_to_numpy(value)))
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out


def _is_int(value: float) -> bool:
    return float(value).is_integer()


def _from_exponential(obj: Any, cls: type) -> Schedule:
    base = _number("initial_learning_rate", obj.initial_learning_rate)
    period = _number("decay_steps", obj.decay_steps)
    rate = _number("decay_rate", obj.decay_rate)
    if period <= 0:
        raise ValueError(f"decay_steps must be > 0, got {period!r}")
    if _is_int(period):
        return cls(base, rate, int(period), bool(obj.staircase))
    if obj.staircase:
        raise ValueError(f"{type(obj).__name__} with staircase=True and a "
                         f"fractional decay_steps={period!r} has no unisched "
                         f"equal (its step must be an integer)")
    # rate ** (step / d) == (rate ** (1 / d)) ** step; for inverse time
    # rate * step / d == (rate / d) * step.
    if cls is unisched.ExponentialScheduler:
        return cls(base, rate ** (1.0 / period), 1, False)
    return cls(base, rate / period, 1, False)


def _from_piecewise(obj: Any) -> Schedule:
    bounds = [_number(f"boundaries[{i}]", b)
              for i, b in enumerate(obj.boundaries)]
    for i, b in enumerate(bounds):
        if not b.is_integer():
            raise ValueError(f"boundaries[{i}] must be an integer step "
                             f"(Keras compares it with the integer "
                             f"optimizer step), got {b!r}")
    values = [_number(f"values[{i}]", v) for i, v in enumerate(obj.values)]
    return unisched.PiecewiseConstantScheduler([int(b) for b in bounds],
                                               values)


def _from_polynomial(obj: Any) -> Schedule:
    base = _number("initial_learning_rate", obj.initial_learning_rate)
    steps = _number("decay_steps", obj.decay_steps)
    end = _number("end_learning_rate", obj.end_learning_rate)
    power = _number("power", obj.power)
    if obj.cycle:
        raise ValueError(
            "PolynomialDecay(cycle=True) has no unisched equal: its k-th "
            "cycle is a decay over k * decay_steps entered part-way (an "
            "offset PolyScheduler, for ever); use cycle=False or a "
            "unisched cyclic schedule")
    if not _is_int(steps) or steps < 1:
        raise ValueError(f"PolynomialDecay decay_steps must be an integer "
                         f">= 1 to convert, got {steps!r}")
    if power == 0:
        # (1 - p) ** 0 == 1 for every p, 0 ** 0 included.
        return unisched.ConstantScheduler(base)
    if power < 0:
        raise ValueError(f"PolynomialDecay power must be >= 0 to convert "
                         f"(a negative power diverges at decay_steps), got "
                         f"{power!r}")
    return unisched.PolyScheduler(max_update=int(steps), base_lr=base,
                                  pwr=power, final_lr=end)


def _from_cosine(obj: Any) -> Schedule:
    base = _number("initial_learning_rate", obj.initial_learning_rate)
    steps = _number("decay_steps", obj.decay_steps)
    alpha = _number("alpha", obj.alpha)
    if not _is_int(steps):
        raise ValueError(f"CosineDecay decay_steps must be an integer to "
                         f"convert, got {steps!r}")
    if obj.warmup_target is None:
        peak = base
    else:
        peak = _number("warmup_target", obj.warmup_target)
    if alpha < 0:
        raise ValueError(f"CosineDecay alpha must be >= 0 to convert (the "
                         f"final rate alpha * lr would be negative), got "
                         f"{alpha!r}")
    # lr = peak * ((1 - alpha) * (1 + cos(pi p)) / 2 + alpha), p clipped.
    decay = unisched.CosineScheduler(max_update=int(steps), base_lr=peak,
                                     final_lr=alpha * peak)
    if obj.warmup_target is None:
        return decay
    warm = _number("warmup_steps", obj.warmup_steps)
    if not _is_int(warm) or warm < 0:
        raise ValueError(f"CosineDecay warmup_steps must be an integer "
                         f">= 0 to convert, got {warm!r}")
    if warm == 0:
        return decay
    # Keras: (target - initial) * step / warmup_steps + initial below
    # warmup_steps, then the decay at step - warmup_steps.
    return unisched.warmup(decay, int(warm), warmup_begin_lr=base,
                           warmup_mode="linear")


def _from_restarts(obj: Any) -> Schedule:
    base = _number("initial_learning_rate", obj.initial_learning_rate)
    first = _number("first_decay_steps", obj.first_decay_steps)
    t_mul = _number("t_mul", obj._t_mul)
    m_mul = _number("m_mul", obj._m_mul)
    alpha = _number("alpha", obj.alpha)
    if not _is_int(first) or first < 1:
        raise ValueError(f"CosineDecayRestarts first_decay_steps must be an "
                         f"integer >= 1 to convert, got {first!r}")
    if t_mul < 1:
        raise ValueError(f"CosineDecayRestarts t_mul must be >= 1 to "
                         f"convert (cycles that shrink have no unisched "
                         f"equal), got {t_mul!r}")
    if alpha < 0 or m_mul < 0:
        raise ValueError(f"CosineDecayRestarts alpha and m_mul must be >= 0 "
                         f"to convert, got alpha={alpha!r}, m_mul={m_mul!r}")
    return unisched.CosineRestartsScheduler(
        first_cycle=int(first), base_lr=base, final_lr=alpha * base,
        cycle_mult=t_mul, cycle_decay=m_mul)


def from_native(obj: Any) -> Schedule:
    """The unisched schedule equal to a Keras 3 schedule at every step
    (Keras passes ``optimizer.iterations``, 0 for the first update, the
    unisched convention, so no shift is needed).

    ====================================  ====================================
    Keras                                 unisched
    ====================================  ====================================
    ExponentialDecay(lr, d, r, stair)     ExponentialScheduler(lr, r, d, stair)
    InverseTimeDecay(lr, d, r, stair)     InverseTimeScheduler(lr, r, d, stair)
    PiecewiseConstantDecay(b, v)          PiecewiseConstantScheduler(b, v)
    PolynomialDecay(lr, d, end, power)    PolyScheduler(d, lr, power, end)
    CosineDecay(lr, d, alpha)             CosineScheduler(d, lr, alpha * lr)
    CosineDecay(..., warmup_target=T,     warmup(CosineScheduler(d, T,
    warmup_steps=W)                       alpha * T), W, warmup_begin_lr=lr)
    CosineDecayRestarts(lr, d, t, m, a)   CosineRestartsScheduler(d, lr,
                                          a * lr, cycle_mult=t,
                                          cycle_decay=m)
    LearningRateSchedule (this module)    its schedule
    ====================================  ====================================

    A fractional ``decay_steps`` converts for the smooth Exponential and
    InverseTime decays (folded into the factor).  Refused with
    ``ValueError``: ``PolynomialDecay(cycle=True)``, negative powers,
    alphas or rates, fractional periods or boundaries, ``t_mul < 1``.

    >>> import keras
    >>> from_native(keras.optimizers.schedules.CosineDecay(0.1, 100,
    ...                                                    alpha=0.1))
    CosineScheduler(max_update=100, base_lr=0.1, final_lr=0.010000000000000002)
    """
    sch = keras.optimizers.schedules
    if isinstance(obj, LearningRateSchedule):
        return obj.schedule
    converters = [
        (sch.ExponentialDecay,
         lambda o: _from_exponential(o, unisched.ExponentialScheduler)),
        (sch.InverseTimeDecay,
         lambda o: _from_exponential(o, unisched.InverseTimeScheduler)),
        (sch.PiecewiseConstantDecay, _from_piecewise),
        (sch.PolynomialDecay, _from_polynomial),
        (sch.CosineDecayRestarts, _from_restarts),
        (sch.CosineDecay, _from_cosine),
    ]
    for cls, convert in converters:
        if isinstance(obj, cls):
            try:
                return convert(obj)
            except (TypeError, ValueError) as err:
                # Name the Keras object: the core's message names the
                # unisched argument the value landed in.
                raise type(err)(f"cannot convert {cls.__name__}"
                                f"({obj.get_config()}): {err}") from None
    raise TypeError(
        f"from_native converts keras.optimizers.schedules ExponentialDecay, "
        f"InverseTimeDecay, PiecewiseConstantDecay, PolynomialDecay, "
        f"CosineDecay, CosineDecayRestarts and unisched's "
        f"LearningRateSchedule; got {type(obj).__module__}."
        f"{type(obj).__qualname__}")


# The LeNet trainer built on this adapter loads on first use (PEP 562).
from . import lazy_trainer  # noqa: E402

__getattr__ = lazy_trainer(__name__, ("train_lenet", "lr_find",
                                      "fit_one_cycle", "KerasTrainer"))
