"""Keras 3 side of a schedule: the ``keras.ops`` namespace every formula
evaluates in, and :class:`LearningRateSchedule`, any unisched schedule in
the graph (``tf.function``, ``jax.jit``, ``model.fit``) on every Keras
backend (what differs between them is in ``_backend.py``).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import ops

import unisched
from unisched import _validate as check
from unisched._ops import ScalarOps
from unisched.base import Schedule
from unisched.plateau import ReduceOnPlateau

from ._backend import DTYPE, FLOAT64_OPS, constant, formula_dtype, is_traced


def _f64(x: Any) -> Any:
    """``x`` as a tensor of :func:`formula_dtype` (float64, or float32 on
    jax without x64); Python numbers become constants of that dtype so
    that ``floatx`` never leaks into a schedule's arithmetic."""
    dtype = formula_dtype()
    if ops.is_tensor(x):
        return x if x.dtype == dtype else ops.cast(x, dtype)
    return ops.convert_to_tensor(x, dtype)


def _unary(fn: Callable) -> Any:
    fn = FLOAT64_OPS.get(fn.__name__, fn)
    return staticmethod(lambda x: fn(_f64(x)))


def _binary(fn: Callable) -> Any:
    fn = FLOAT64_OPS.get(fn.__name__, fn)
    return staticmethod(lambda a, b: fn(_f64(a), _f64(b)))


class KerasOps:
    """The ops namespace of ``unisched._ops`` over ``keras.ops`` (and, where
    ``keras.ops`` would return float32, the framework's own function:
    ``_backend.FLOAT64_OPS``), in float64: ``where, cos, sqrt, exp, log,
    floor, ceil, minimum, maximum, power, clip``.  Arithmetic and
    comparisons between a float64 tensor and Python numbers stay float64
    (every backend converts the number to the tensor's dtype), so every
    period, boundary and cycle position is exact for steps below 2**53, as
    in ``sched(k)``; the caller rounds the final rate to :data:`DTYPE`.
    On jax without x64 all of it is float32 (exact below 2**24; see
    ``_backend.py``).

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
    """A formula's result as the :data:`DTYPE` rate."""
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
    if isinstance(step, keras.Variable):
        step = step.value
    if is_traced(step):
        return None
    value = np.asarray(step)
    if value.ndim != 0:
        return None
    if value.dtype.kind not in "iuf":
        raise TypeError(f"step must be an integer, got {step!r:.80} "
                        f"({type(step).__name__})")
    return check.step(value.item())


def index(step: Any, every: int, start: Any = None) -> Any:
    """``(step - start) // every`` as a :func:`formula_dtype` tensor (the
    schedule's argument in the graph), computed in the step's own integer
    dtype so that it is exact; ``start`` is an integer variable (None:
    0), read when the graph runs."""
    if isinstance(step, keras.Variable):
        step = step.value
    if start is not None:
        step = step - ops.cast(start, step.dtype)
    if every != 1:
        step = ops.floor_divide(step, ops.cast(every, step.dtype))
    return ops.cast(step, formula_dtype())


def eager_index(step: Any, every: int, start: Any = None) -> int | None:
    """:func:`index` as a Python int when it can be read right now
    (eager execution, one scalar); None inside a traced function."""
    now = _eager_step(step)
    if now is None:
        return None
    if start is not None:
        now -= int(np.asarray(start.value))
    return now // every


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
        # a ReduceOnPlateau's scale, in a variable the graph reads
        self._plateau: ReduceOnPlateau | None = None
        self._scale: Any = None
        if isinstance(self.schedule, ReduceOnPlateau):
            self._plateau = self.schedule
            self._scale = keras.Variable(
                self.schedule.scale, dtype=DTYPE, trainable=False,
                name="plateau_scale")

    def _formula(self, scale: Any) -> Callable:
        plateau = self._plateau
        if plateau is None:
            return self.schedule._eval
        return lambda t, o: plateau.eval_scaled(t, o, scale)

    def __call__(self, step: Any) -> Any:
        now = eager_index(step, self.every, self.start)
        if now is not None:
            scale = None if self._scale is None \
                else float(np.asarray(self._scale.value))
            return constant(float(self._formula(scale)(now, ScalarOps)))
        scale = None if self._scale is None \
            else ops.cast(self._scale.value, formula_dtype())
        return rate(self._formula(scale)(index(step, self.every, self.start),
                                         KerasOps))

    # -- ReduceOnPlateau ----------------------------------------------------
    def observe(self, metric: float, step: int = 0) -> bool:
        """Feed ``metric`` to the wrapped ReduceOnPlateau and update the
        variable the graph reads; returns True if the rate was cut."""
        if self._plateau is None:
            raise TypeError(f"observe() needs a ReduceOnPlateau schedule, "
                            f"this one is {self.schedule!r}")
        cut = self._plateau.observe(metric, step)
        self._sync_scale()
        return cut

    def _sync_scale(self) -> None:
        """The plateau's scale into the variable the graph reads (after
        an observe, or a restored state)."""
        if self._plateau is not None:
            self._scale.assign(self._plateau.scale)

    # -- serialization ------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"schedule": self.schedule.to_config()}
        if self.every != 1:
            config["every"] = self.every
        if self._plateau is not None:
            config["state"] = self._plateau.state_dict()
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LearningRateSchedule:
        sched = unisched.from_config(config["schedule"])
        if "state" in config:
            if not isinstance(sched, ReduceOnPlateau):
                raise ValueError(f"config has a 'state' but its schedule "
                                 f"{sched.to_spec()} keeps none")
            sched.load_state_dict(config["state"])
        return cls(sched, config.get("every", 1))

    def __repr__(self) -> str:
        every = f", every={self.every}" if self.every != 1 else ""
        return f"LearningRateSchedule({self.schedule.to_spec()}{every})"
