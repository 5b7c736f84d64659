"""Combinators: build schedules out of schedules.

``warmup`` puts a ramp in front of any schedule, ``join`` runs schedules
one after another (each later piece sees ``step - boundary``),
``epochwise`` holds a schedule constant within each epoch, ``shift``
starts a schedule some updates in, ``reverse`` plays one backwards,
``scale``, ``multiply`` and ``floor`` transform values.  Momentum cycles
follow their schedule through each combinator.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from . import _validate as check
from ._ops import Ops, Tensor
from .base import Schedule, register
from .schedules import WARMUP_MODES, piecewise, warmup_ramp


def _schedule(name: str, value: Any) -> Schedule:
    if not isinstance(value, Schedule):
        raise TypeError(f"{name} must be a unisched schedule, got {value!r}")
    if value.stateful:
        raise TypeError(f"{name} must be a stateless schedule; wrap the "
                        f"whole schedule in ReduceOnPlateau instead of "
                        f"nesting it, got {value!r}")
    return value


@register
class Warmup(Schedule):
    """A ramp of ``warmup_steps`` updates in front of ``schedule``::

        lr(step) = begin + (schedule(0) - begin) * step / warmup_steps
                                               step < warmup_steps, linear
                 = begin                       step < warmup_steps, constant
                 = schedule(step - warmup_steps)  otherwise

    The wrapped schedule starts from its own step 0 after the warmup, and
    the ramp ends where it starts; ``'cosine'`` and ``'1-sqrt'`` shape it
    as :data:`unisched.schedules.WARMUP_MODES` says.

    >>> from unisched import CosineScheduler
    >>> s = Warmup(CosineScheduler(10, base_lr=1.0), warmup_steps=4)
    >>> s(0), s(2), s(4)
    (0.0, 0.5, 1.0)
    """

    name = "warmup"
    schedule: Schedule
    warmup_steps: int
    warmup_begin_lr: float
    warmup_mode: str
    _first: float

    def __init__(self, schedule: Schedule, warmup_steps: int,
                 warmup_begin_lr: float = 0.0,
                 warmup_mode: str = "linear") -> None:
        super().__init__(
            schedule=_schedule("schedule", schedule),
            warmup_steps=check.integer("warmup_steps", warmup_steps, 1),
            warmup_begin_lr=check.rate("warmup_begin_lr", warmup_begin_lr),
            warmup_mode=check.choice("warmup_mode", warmup_mode,
                                     WARMUP_MODES))
        # Where the ramp ends; derived, so not part of the config.
        object.__setattr__(self, "_first", self.schedule(0))

    def _eval(self, t: Tensor, ops: Ops) -> Tensor:
        w = self.warmup_steps
        after = self.schedule._eval(ops.maximum(t - w, 0.0), ops)
        return warmup_ramp(t, ops, after, w, self.warmup_begin_lr,
                           self._first, self.warmup_mode)

    @property
    def momentum(self) -> Schedule | None:
        inner = self.schedule.momentum
        if inner is None:
            return None
        # The momentum holds its first value while the rate warms up.
        return Warmup(inner, self.warmup_steps, inner(0), "constant")

    def default_horizon(self) -> int | None:
        inner = self.schedule.default_horizon()
        return None if inner is None else inner + self.warmup_steps


@register
class Join(Schedule):
    """Run ``schedules[i]`` from ``boundaries[i-1]`` to ``boundaries[i]``;
    each piece sees ``step - boundaries[i-1]`` (optax's
    ``join_schedules``).  A boundary may be fractional (fastai's
    ``combine_scheds`` puts its phases at fractions of the run): the
    piece starts at the first update at or after it, seeing the
    fractional offset.

    >>> from unisched import ConstantScheduler as C
    >>> s = Join([C(1.0), C(0.5)], boundaries=[3])
    >>> s(2), s(3)
    (1.0, 0.5)
    """

    name = "join"
    schedules: tuple[Schedule, ...]
    boundaries: tuple[int | float, ...]

    def __init__(self, schedules: Sequence[Schedule],
                 boundaries: Sequence[float]) -> None:
        if isinstance(schedules, Schedule) or \
                not isinstance(schedules, (list, tuple)):
            raise TypeError(f"schedules must be a list of schedules, "
                            f"got {schedules!r}")
        pieces = [_schedule(f"schedules[{i}]", s)
                  for i, s in enumerate(schedules)]
        starts = check.increasing_lengths("boundaries", boundaries)
        super().__init__(schedules=check.pieces("schedules", pieces, starts),
                         boundaries=starts)

    def _eval(self, t: Tensor, ops: Ops) -> Tensor:
        starts = (0,) + self.boundaries
        return piecewise(t, ops, self.boundaries, [
            piece._eval(ops.maximum(t - start, 0.0), ops)
            for start, piece in zip(starts, self.schedules, strict=True)],
            from_boundary=True)

    @property
    def momentum(self) -> Schedule | None:
        moms = [s.momentum for s in self.schedules]
        cycles = [m for m in moms if m is not None]
        if not cycles:
            return None
        if len(cycles) < len(moms):
            raise ValueError("join: some pieces have a momentum cycle and "
                             "some do not; give every piece one")
        return Join(cycles, self.boundaries)

    def default_horizon(self) -> int | None:
        last = self.schedules[-1].default_horizon()
        return None if last is None \
            else math.ceil(self.boundaries[-1]) + last


@register
class Epochwise(Schedule):
    """Hold ``schedule`` constant within each epoch::

        lr(step) = schedule(step // steps_per_epoch)

    so ``schedule`` counts epochs, as the d2l chapter's PyTorch and
    TensorFlow code does.

    >>> from unisched import ExponentialScheduler
    >>> s = Epochwise(ExponentialScheduler(1.0, factor=0.5), 3)
    >>> [s(k) for k in (0, 2, 3, 6)]
    [1.0, 1.0, 0.5, 0.25]
    """

    name = "epochwise"
    schedule: Schedule
    steps_per_epoch: int

    def __init__(self, schedule: Schedule, steps_per_epoch: int) -> None:
        super().__init__(
            schedule=_schedule("schedule", schedule),
            steps_per_epoch=check.integer("steps_per_epoch",
                                          steps_per_epoch, 1))

    def _eval(self, t: Tensor, ops: Ops) -> Tensor:
        return self.schedule._eval(ops.floor(t / self.steps_per_epoch), ops)

    @property
    def momentum(self) -> Schedule | None:
        inner = self.schedule.momentum
        return None if inner is None else Epochwise(inner,
                                                    self.steps_per_epoch)

    def default_horizon(self) -> int | None:
        inner = self.schedule.default_horizon()
        return None if inner is None else inner * self.steps_per_epoch


class _ValueMap(Schedule):
    """A combinator that changes values, not time, with one rate-valued
    argument: the momentum cycle and the horizon are the wrapped
    schedule's."""

    schedule: Schedule

    def __init__(self, schedule: Schedule, **value: float) -> None:
        (key, rate), = value.items()
        super().__init__(schedule=_schedule("schedule", schedule),
                         **{key: check.rate(key, rate)})

    def _eval(self, t: Tensor, ops: Ops) -> Tensor:
        return self._map(self.schedule._eval(t, ops), ops)

    def _map(self, value: Tensor, ops: Ops) -> Tensor:
        raise NotImplementedError

    @property
    def momentum(self) -> Schedule | None:
        return self.schedule.momentum

    def default_horizon(self) -> int | None:
        return self.schedule.default_horizon()


@register
class Scale(_ValueMap):
    """``lr(step) = factor * schedule(step)``; the momentum is untouched.

    >>> from unisched import ConstantScheduler
    >>> Scale(ConstantScheduler(0.5), 0.1)(0)
    0.05
    """

    name = "scale"
    factor: float

    def __init__(self, schedule: Schedule, factor: float) -> None:
        super().__init__(schedule, factor=factor)

    def _map(self, value: Tensor, ops: Ops) -> Tensor:
        return self.factor * value


@register
class Floor(_ValueMap):
    """``lr(step) = max(schedule(step), min_lr)``.

    >>> from unisched import ExponentialScheduler
    >>> Floor(ExponentialScheduler(1.0, 0.5), 0.2)(5)
    0.2
    """

    name = "floor"
    min_lr: float

    def __init__(self, schedule: Schedule, min_lr: float) -> None:
        super().__init__(schedule, min_lr=min_lr)

    def _map(self, value: Tensor, ops: Ops) -> Tensor:
        return ops.maximum(value, self.min_lr)


@register
class Multiply(_ValueMap):
    """A schedule used as a multiplier of another::

        lr(step) = schedule(step) * factor(step)

    ``factor`` is read as a pure number (a schedule with ``base_lr=1.0``
    is a factor curve): what :func:`scale` does with a constant, with a
    factor that changes over time.  This is how PyTorch's
    ``ChainedScheduler`` composes multiplicative schedulers.  The
    momentum cycle is ``schedule.momentum``: the factor multiplies the
    rate only, and a momentum cycle of the factor itself is not used.

    >>> from unisched import ConstantScheduler, ExponentialScheduler
    >>> s = Multiply(ExponentialScheduler(1.0, 0.5),
    ...              warmup(ConstantScheduler(1.0), 2, 0.5))
    >>> [s(k) for k in range(4)]
    [0.5, 0.375, 0.25, 0.125]
    """

    name = "multiply"
    factor: Schedule

    def __init__(self, schedule: Schedule, factor: Schedule) -> None:
        # both arguments are schedules: not _ValueMap's one rate
        Schedule.__init__(self,
                          schedule=_schedule("schedule", schedule),
                          factor=_schedule("factor", factor))

    def _eval(self, t: Tensor, ops: Ops) -> Tensor:
        return self.schedule._eval(t, ops) * self.factor._eval(t, ops)

    def default_horizon(self) -> int | None:
        mine, its = (self.schedule.default_horizon(),
                     self.factor.default_horizon())
        return None if mine is None or its is None else max(mine, its)


@register
class Shift(Schedule):
    """``lr(step) = schedule(step + steps)``: start ``steps`` updates into
    ``schedule`` (e.g. an MXNet-named schedule, which counts updates from
    one under a Gluon Trainer, is ``shift(sched, 1)`` in unisched's count).

    >>> from unisched import CosineScheduler
    >>> s = Shift(CosineScheduler(4, base_lr=1.0), 2)
    >>> s(0), s(2)
    (0.5, 0.0)
    """

    name = "shift"
    schedule: Schedule
    steps: int

    def __init__(self, schedule: Schedule, steps: int) -> None:
        super().__init__(schedule=_schedule("schedule", schedule),
                         steps=check.integer("steps", steps, 0))

    def _eval(self, t: Tensor, ops: Ops) -> Tensor:
        return self.schedule._eval(t + float(self.steps), ops)

    @property
    def momentum(self) -> Schedule | None:
        inner = self.schedule.momentum
        return None if inner is None else Shift(inner, self.steps)

    def default_horizon(self) -> int | None:
        inner = self.schedule.default_horizon()
        return None if inner is None else max(inner - self.steps, 1)


@register
class Reverse(Schedule):
    """``schedule`` played backwards over ``steps`` updates::

        lr(step) = schedule(max(steps - step, 0))

    from ``schedule(steps)`` at step 0 to ``schedule(0)`` at ``steps``,
    held from there on.  A decay reversed is a rise of the mirrored
    shape: fastai's ``SchedPoly(start, end, power)`` over ``n`` updates,
    ``start + (end - start) * (step / n) ** power``, is
    ``reverse(poly(max_update=n, base_lr=end, pwr=power,
    final_lr=start), n)``.  ``steps`` may be fractional.

    >>> from unisched import PolyScheduler
    >>> s = Reverse(PolyScheduler(4, base_lr=1.0, pwr=2), 4)
    >>> [s(k) for k in range(6)]
    [0.0, 0.0625, 0.25, 0.5625, 1.0, 1.0]
    """

    name = "reverse"
    schedule: Schedule
    steps: int | float

    def __init__(self, schedule: Schedule, steps: float) -> None:
        super().__init__(schedule=_schedule("schedule", schedule),
                         steps=check.length("steps", steps))

    def _eval(self, t: Tensor, ops: Ops) -> Tensor:
        return self.schedule._eval(ops.maximum(self.steps - t, 0.0), ops)

    @property
    def momentum(self) -> Schedule | None:
        inner = self.schedule.momentum
        return None if inner is None else Reverse(inner, self.steps)

    def default_horizon(self) -> int:
        return math.ceil(self.steps) + 1


def warmup(schedule: Schedule, warmup_steps: int,
           warmup_begin_lr: float = 0.0,
           warmup_mode: str = "linear") -> Warmup:
    """Put a warmup of ``warmup_steps`` updates in front of ``schedule``."""
    return Warmup(schedule, warmup_steps, warmup_begin_lr, warmup_mode)


def join(schedules: Sequence[Schedule], boundaries: Sequence[float]
         ) -> Join:
    """Run ``schedules`` one after another, switching at ``boundaries``."""
    return Join(list(schedules), boundaries)


def epochwise(schedule: Schedule, steps_per_epoch: int) -> Epochwise:
    """Step ``schedule`` once per epoch of ``steps_per_epoch`` updates."""
    return Epochwise(schedule, steps_per_epoch)


def shift(schedule: Schedule, steps: int) -> Shift:
    """Start ``steps`` updates into ``schedule``."""
    return Shift(schedule, steps)


def reverse(schedule: Schedule, steps: float) -> Reverse:
    """Play ``schedule`` backwards over ``steps`` updates."""
    return Reverse(schedule, steps)


def scale(schedule: Schedule, factor: float) -> Scale:
    """Multiply ``schedule`` by a constant ``factor``."""
    return Scale(schedule, factor)


def multiply(schedule: Schedule, factor: Schedule) -> Multiply:
    """Multiply ``schedule`` by the schedule ``factor``, step by step."""
    return Multiply(schedule, factor)


def floor(schedule: Schedule, min_lr: float) -> Floor:
    """Never let ``schedule`` go below ``min_lr``."""
    return Floor(schedule, min_lr)
