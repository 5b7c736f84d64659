"""ReduceOnPlateau: the one stateful schedule."""
from __future__ import annotations

import math
import numbers
from typing import Any, cast

from . import _validate as check
from ._ops import Ops, Tensor
from .base import Schedule, from_config, register
from .schedules import ConstantScheduler

_STATE_KEYS = ("best", "num_bad_epochs", "cooldown_counter", "last_epoch",
               "scale", "num_reductions")


def _restore(config: dict[str, Any], state: dict[str, Any]
             ) -> ReduceOnPlateau:
    # the config of a ReduceOnPlateau: __reduce__ below made it
    sched = cast(ReduceOnPlateau, from_config(config))
    sched.load_state_dict(state)
    return sched


@register
class ReduceOnPlateau(Schedule):
    """Cut the rate by ``factor`` when a metric stops improving (PyTorch's
    ``ReduceLROnPlateau``), as a multiplier on top of any schedule::

        lr(step) = max(schedule(step) * scale, min_lr)

    where ``scale`` starts at 1 and is multiplied by ``factor`` each time
    :meth:`observe` sees ``patience + 1`` metrics in a row that are not
    better than the best by ``threshold`` (relative or absolute), followed
    by ``cooldown`` observations in which bad ones are not counted.  A cut
    smaller than ``eps`` is skipped, as in PyTorch.

    ``schedule`` may be a number (a constant rate).  The state (``scale``,
    ``best``, counters) changes only in ``observe`` and is saved with
    ``state_dict()``; calls are pure between observations.

    >>> s = ReduceOnPlateau(0.1, patience=1, factor=0.5)
    >>> for loss in (1.0, 1.0, 1.0):
    ...     cut = s.observe(loss)
    >>> s(0)
    0.05
    """

    name = "reduce_on_plateau"
    stateful = True
    schedule: Schedule
    mode: str
    factor: float
    patience: int
    threshold: float
    threshold_mode: str
    cooldown: int
    min_lr: float
    eps: float
    #: best, counters and scale: changed only by observe, reset and
    #: load_state_dict
    _state: dict[str, Any]

    def __init__(self, schedule: Schedule | float = 0.01, mode: str = "min",
                 factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float = 0.0,
                 eps: float = 1e-8) -> None:
        if not isinstance(schedule, Schedule):
            schedule = ConstantScheduler(check.rate("schedule", schedule))
        elif schedule.stateful:
            raise TypeError(f"schedule must be stateless, got {schedule!r}")
        super().__init__(
            schedule=schedule,
            mode=check.choice("mode", mode, ("min", "max")),
            factor=check.in_range("factor", factor, 0.0, 1.0,
                                  high_open=True),
            patience=check.integer("patience", patience),
            threshold=check.rate("threshold", threshold),
            threshold_mode=check.choice("threshold_mode", threshold_mode,
                                        ("rel", "abs")),
            cooldown=check.integer("cooldown", cooldown),
            min_lr=check.rate("min_lr", min_lr),
            eps=check.rate("eps", eps))
        object.__setattr__(self, "_state", {})
        self.reset()

    def reset(self) -> None:
        """Forget every observation: back to ``scale = 1``."""
        self._state.update(
            best=math.inf if self.mode == "min" else -math.inf,
            num_bad_epochs=0, cooldown_counter=0, last_epoch=0, scale=1.0,
            num_reductions=0)

    @property
    def scale(self) -> float:
        """The product of the cuts made so far."""
        return float(self._state["scale"])

    def _is_better(self, value: float, best: float) -> bool:
        if self.threshold_mode == "rel":
            if self.mode == "min":
                return value < best * (1.0 - self.threshold)
            return value > best * (1.0 + self.threshold)
        if self.mode == "min":
            return value < best - self.threshold
        return value > best + self.threshold

    def observe(self, metric: float, step: int = 0) -> bool:
        """Feed one metric (once per epoch, say); returns True if the rate
        was cut.  ``step`` is the update the next rate is for; it matters
        only for PyTorch's ``eps`` rule on tiny cuts."""
        # NaN is allowed (a diverged epoch): it is never an improvement.
        if isinstance(metric, (bool, str, bytes)):
            raise TypeError(f"metric must be a number, got {metric!r}")
        try:
            metric = float(metric)
        except (TypeError, ValueError):
            raise TypeError(f"metric must be a number, "
                            f"got {metric!r}") from None
        step = check.step(step)
        st = self._state
        st["last_epoch"] += 1
        if self._is_better(metric, st["best"]):
            st["best"] = metric
            st["num_bad_epochs"] = 0
        else:
            st["num_bad_epochs"] += 1
        if st["cooldown_counter"] > 0:
            st["cooldown_counter"] -= 1
            st["num_bad_epochs"] = 0
        if st["num_bad_epochs"] <= self.patience:
            return False
        st["cooldown_counter"] = self.cooldown
        st["num_bad_epochs"] = 0
        base = self.schedule(step)
        old = max(base * st["scale"], self.min_lr)
        new = max(base * st["scale"] * self.factor, self.min_lr)
        if old - new <= self.eps:
            return False
        st["scale"] *= self.factor
        st["num_reductions"] += 1
        return True

    def _eval(self, t: Tensor, ops: Ops) -> Tensor:
        return self.eval_scaled(t, ops, self.scale)

    def eval_scaled(self, t: Tensor, ops: Ops, scale: Tensor) -> Tensor:
        """The formula with ``scale`` given (a graph backend passes the
        variable or state entry it keeps the scale in, so that a cut
        reaches a compiled step without retracing)."""
        return ops.maximum(self.schedule._eval(t, ops) * scale, self.min_lr)

    @property
    def momentum(self) -> Schedule | None:
        return self.schedule.momentum

    def state_dict(self) -> dict[str, Any]:
        return dict(self._state)

    def check_state(self, state: Any) -> dict[str, Any]:
        """``state`` checked against this schedule, as a new dict; raises
        ``ValueError``/``TypeError`` naming the first bad field and
        changes nothing (so a checkpoint can be validated whole before
        anything is loaded)."""
        if not isinstance(state, dict):
            raise TypeError(f"plateau state must be a dict, got "
                            f"{type(state).__name__}")
        missing = [k for k in _STATE_KEYS if k not in state]
        if missing:
            raise ValueError(f"plateau state is missing {missing}; got "
                             f"{state!r:.200}")
        out: dict[str, Any] = {}
        for key in ("num_bad_epochs", "cooldown_counter", "last_epoch",
                    "num_reductions"):
            out[key] = check.integer(f"plateau state {key}", state[key])
        best = state["best"]
        if isinstance(best, bool) or not isinstance(best, numbers.Real) \
                or math.isnan(best):
            raise ValueError(f"plateau state best must be a number (inf "
                             f"allowed), got {best!r}")
        out["best"] = float(best)
        scale = state["scale"]
        # (`not scale <= 1.0` refuses NaN too)
        if isinstance(scale, bool) or not isinstance(scale, numbers.Real) \
                or scale < 0.0 or not scale <= 1.0:
            raise ValueError(f"plateau state scale must be in [0, 1], "
                             f"got {scale!r}")
        out["scale"] = float(scale)
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output, checked whole first."""
        self._state.update(self.check_state(state))

    def __eq__(self, other: Any) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return (self.to_config() == other.to_config()
                and self._state == other._state)

    # unhashable: observe() changes what it compares equal to
    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (self.to_config(), self.state_dict()))

    def default_horizon(self) -> int | None:
        return self.schedule.default_horizon()
