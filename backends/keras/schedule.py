"""Keras 3 side of a schedule: the ``keras.ops`` namespace every formula
evaluates in, and :class:`LearningRateSchedule`, any unisched schedule in
the graph.
"""
from __future__ import annotations

from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf
import unisched
from keras import ops
from unisched import _validate as check
from unisched._ops import ScalarOps
from unisched.base import Schedule
from unisched.plateau import ReduceOnPlateau

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        f"unisched.backends.keras needs the TensorFlow backend of Keras 3 "
        f"(it reads hyperparameters through TensorFlow's tensor "
        f"conversion); KERAS_BACKEND is {keras.backend.backend()!r}")


#: the dtype of every rate handed to an optimizer (optimizers cast it to
#: each variable's dtype, as they do for Keras' own schedules)
DTYPE = "float32"
#: the dtype formulas are evaluated in: steps are exact below 2**53 and
#: only the final rate is rounded to DTYPE
FORMULA_DTYPE = "float64"


def _f64(x: Any) -> Any:
    """``x`` as a float64 tensor; Python numbers become float64 constants
    so that ``floatx`` never leaks into a schedule's arithmetic."""
    if ops.is_tensor(x):
        return x if x.dtype == FORMULA_DTYPE else ops.cast(x, FORMULA_DTYPE)
    return ops.convert_to_tensor(x, FORMULA_DTYPE)


def _unary(fn: Callable) -> Any:
    return staticmethod(lambda x: fn(_f64(x)))


def _binary(fn: Callable) -> Any:
    return staticmethod(lambda a, b: fn(_f64(a), _f64(b)))


class KerasOps:
    """The ops namespace of ``unisched._ops`` over ``keras.ops``, in
    float64: ``where, cos, sqrt, exp, log, floor, ceil, minimum, maximum,
    power, clip``.  Arithmetic and comparisons between a float64 tensor
    and Python numbers stay float64 (TensorFlow converts the number to the
    tensor's dtype), so every period, boundary and cycle position is exact
    for steps below 2**53, as in ``sched(k)``; the caller rounds the final
    rate to :data:`DTYPE`.

    >>> import keras
    >>> from unisched import CosineScheduler
    >>> s = CosineScheduler(max_update=10, base_lr=1.0)
    >>> t = keras.ops.cast(keras.ops.arange(0, 11, 5), "float64")
    >>> keras.ops.convert_to_numpy(s._eval(t, KerasOps)).round(6).tolist()
    [1.0, 0.5, 0.0]
    """

    where = staticmethod(lambda c, a, b: ops.where(c, _f64(a), _f64(b)))
    cos, sqrt, exp = _unary(ops.cos), _unary(ops.sqrt), _unary(ops.exp)
    log, floor, ceil = _unary(ops.log), _unary(ops.floor), _unary(ops.ceil)
    minimum, maximum = _binary(ops.minimum), _binary(ops.maximum)
    power = _binary(ops.power)
    clip = staticmethod(lambda x, low, high: ops.clip(_f64(x), low, high))


def rate(value: Any) -> Any:
    """A formula's float64 result as the :data:`DTYPE` rate."""
    return ops.cast(value, DTYPE)


def _schedule(sched: Any, name: str = "sched") -> Schedule:
    """A schedule from a schedule or a spec string."""
    if isinstance(sched, Schedule):
        return sched
    if isinstance(sched, str):
        return unisched.parse(sched)
    raise TypeError(f"{name} must be a unisched schedule or a spec string, "
                    f"got {sched!r} ({type(sched).__name__})")


def _eager_step(step: Any) -> int | None:
    """The step as a Python int when it can be read right now (eager
    execution, one scalar; checked like ``sched(step)``: a non-negative
    integer below 2**53); None inside a traced function."""
    if not tf.executing_eagerly():
        return None
    if isinstance(step, keras.Variable):
        step = step.value
    value = np.asarray(step)
    if value.ndim != 0:
        return None
    if value.dtype.kind not in "iuf":
        raise TypeError(f"step must be an integer, got {step!r:.80} "
                        f"({type(step).__name__})")
    return check.step(value.item())


def index(step: Any, every: int, start: Any = None) -> Any:
    """``(step - start) // every`` as a float64 tensor (the schedule's
    argument in the graph), computed in the step's own integer dtype so
    that it is exact; ``start`` is an integer variable (None: 0), read
    when the graph runs."""
    if start is not None:
        step = step - ops.cast(start, step.dtype)
    if every != 1:
        step = ops.floor_divide(step, ops.cast(every, step.dtype))
    return ops.cast(step, FORMULA_DTYPE)


def eager_index(step: Any, every: int, start: Any = None) -> int | None:
    """:func:`index` as a Python int when it can be read right now
    (eager execution, one scalar); None inside a traced function."""
    now = _eager_step(step)
    if now is None:
        return None
    if start is not None:
        now -= int(np.asarray(start.value))
    return now // every


def _constant(value: float) -> Any:
    # tf.constant: keras.ops.convert_to_tensor costs ~15x more eagerly.
    return tf.constant(value, dtype=DTYPE)


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

    With ``every=n`` the schedule is called with ``floor(step / n)``
    instead (a unit of ``n`` optimizer steps: an epoch, or one real update
    of ``gradient_accumulation_steps`` micro-batches); ``get_config``
    keeps it.  With ``start`` (an integer ``keras.Variable``, the step at
    which a :func:`bind` happened) it is ``floor((step - start) / n)``.

    Args:
        schedule: a unisched schedule or a spec string.
        every: optimizer steps per schedule step (an integer >= 1).
        start: None, or the variable holding the optimizer step that is
            the schedule's step 0 (not part of the config: the binding
            saves it).

    >>> import keras
    >>> lr = LearningRateSchedule("cosine(max_update=100, base_lr=0.1)")
    >>> opt = keras.optimizers.SGD(learning_rate=lr)
    >>> round(float(lr(50)), 6)
    0.05
    """

    def __init__(self, schedule: Schedule | str, every: int = 1,
                 start: Any = None) -> None:
        super().__init__()
        self.schedule = _schedule(schedule, "schedule")
        self.every = check.integer("every", every, 1)
        self.start = start
        self._scale = None
        if isinstance(self.schedule, ReduceOnPlateau):
            self._scale = keras.Variable(
                self.schedule.scale, dtype=DTYPE, trainable=False,
                name="plateau_scale")

    def _formula(self, scale: Any) -> Callable:
        sched = self.schedule
        if self._scale is None:
            return sched._eval
        return lambda t, o: sched.eval_scaled(t, o, scale)

    def __call__(self, step: Any) -> Any:
        now = eager_index(step, self.every, self.start)
        if now is not None:
            scale = None if self._scale is None \
                else float(np.asarray(self._scale.value))
            return _constant(float(self._formula(scale)(now, ScalarOps)))
        scale = None if self._scale is None \
            else ops.cast(self._scale.value, FORMULA_DTYPE)
        return rate(self._formula(scale)(index(step, self.every, self.start),
                                         KerasOps))

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
        if self.every != 1:
            config["every"] = self.every
        if self.schedule.stateful:
            config["state"] = self.schedule.state_dict()
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "LearningRateSchedule":
        sched = unisched.from_config(config["schedule"])
        if "state" in config:
            sched.load_state_dict(config["state"])
        return cls(sched, config.get("every", 1))

    def __repr__(self) -> str:
        every = f", every={self.every}" if self.every != 1 else ""
        return f"LearningRateSchedule({self.schedule.to_spec()}{every})"
