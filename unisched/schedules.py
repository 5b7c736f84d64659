"""Decay schedules: the d2l/MXNet family and the Keras/PyTorch decays.

Vocabulary (the same in every schedule): ``base_lr`` is the rate the decay
starts from, ``final_lr`` the rate it ends at, ``max_update`` the step at
which the decay reaches ``final_lr``, ``step`` a period in updates,
``factor`` a multiplier applied per period, ``warmup_steps`` /
``warmup_begin_lr`` / ``warmup_mode`` MXNet's built-in warmup.  All lengths
are in updates (optimizer steps).  A length that places a phase boundary
(``max_update`` of the cosine and polynomial decays, the period ``step``
of the exponential and inverse-time decays, :func:`unisched.join`'s
boundaries) may be fractional: fastai sets its phases at a fraction of
the run (``pct_start * total``), which need not fall on an update.  The
schedule is still called at whole updates only.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from . import _validate as check
from ._ops import Ops, Tensor
from .base import Schedule, register

#: the warmup shapes: the fraction ``q = step / warmup_steps`` of the ramp
#: becomes ``q`` (linear), ``(1 - cos(pi q)) / 2`` (cosine),
#: ``1 - sqrt(1 - q)`` (1-sqrt, Hugging Face's WSD) or 0 (constant)
WARMUP_MODES = ("linear", "constant", "cosine", "1-sqrt")


def cosine_wave(p: Tensor, ops: Ops, cycles: float = 1.0,
                restarts: bool = False, whole: Tensor | None = None
                ) -> Tensor:
    """``(1 + cos(pi x)) / 2`` at ``x = cycles * p`` half-periods: 1 at
    ``p = 0``, 0 where ``x`` is odd.  With ``restarts`` each half-period
    falls from 1 to 0 and jumps back (``x`` taken modulo 1: Hugging
    Face's hard restarts).

    Far out, a periodic wave passes its progress in two parts, ``p +
    whole`` with ``whole`` a whole number: ``cycles * whole`` is reduced
    modulo the period on its own (exactly, for cycles such as 0.5, 1, 2,
    3), so the phase does not drown in the rounding of a huge ``p``.
    ``x`` is reduced before the cosine (except for the one half cosine),
    so no value depends on how a library reduces huge arguments."""
    if cycles == 1.0 and not restarts and whole is None:
        return (1.0 + ops.cos(math.pi * p)) / 2.0
    period = 1.0 if restarts else 2.0
    x = cycles * p
    if whole is not None:
        turns = cycles * whole
        x = (turns - period * ops.floor(turns / period)) + x
    x = x - period * ops.floor(x / period)
    return (1.0 + ops.cos(math.pi * x)) / 2.0


class _MXNetWarmup(Schedule):
    """MXNet's built-in warmup: for ``step < warmup_steps`` the rate ramps
    linearly from ``warmup_begin_lr`` towards ``base_lr`` (``'linear'``)
    or stays at ``warmup_begin_lr`` (``'constant'``)."""

    base_lr: float
    warmup_steps: int
    warmup_begin_lr: float
    warmup_mode: str

    def _check_warmup(self, base_lr: float, warmup_steps: Any,
                      warmup_begin_lr: Any, warmup_mode: Any
                      ) -> dict[str, Any]:
        """The three warmup arguments, validated, by name."""
        warmup_steps = check.integer("warmup_steps", warmup_steps)
        warmup_begin_lr = check.rate("warmup_begin_lr", warmup_begin_lr)
        warmup_mode = check.choice("warmup_mode", warmup_mode, WARMUP_MODES)
        if warmup_begin_lr > base_lr:
            raise ValueError(f"warmup_begin_lr must be <= base_lr "
                             f"({base_lr!r}), got {warmup_begin_lr!r}")
        return dict(warmup_steps=warmup_steps,
                    warmup_begin_lr=warmup_begin_lr, warmup_mode=warmup_mode)

    def _with_warmup(self, t: Tensor, ops: Ops, after: Tensor) -> Tensor:
        if self.warmup_steps == 0:
            return after
        return warmup_ramp(t, ops, after, self.warmup_steps,
                           self.warmup_begin_lr, self.base_lr,
                           self.warmup_mode)


def warmup_ramp(t: Tensor, ops: Ops, after: Tensor, steps: int,
                begin: float, end: float, mode: str) -> Tensor:
    """``after`` from step ``steps`` on; before it ``begin`` rising
    towards ``end`` in the shape ``mode`` (:data:`WARMUP_MODES`), or held
    at ``begin`` (``'constant'``).  The one warmup formula, for MXNet's
    built-in warmups and :func:`unisched.warmup`."""
    if mode == "linear":
        ramp = begin + (end - begin) * (t / steps)
    elif mode == "constant":
        ramp = begin + 0.0 * t
    else:
        # clipped: the branch not taken must stay finite (sqrt of < 0)
        q = ops.clip(t / steps, 0.0, 1.0)
        shape = (1.0 - ops.cos(math.pi * q)) / 2.0 if mode == "cosine" \
            else 1.0 - ops.sqrt(1.0 - q)
        ramp = begin + (end - begin) * shape
    return ops.where(t < steps, ramp, after)


@register
class ConstantScheduler(Schedule):
    """``lr(step) = base_lr``.

    >>> ConstantScheduler(0.1)(1000)
    0.1
    """

    name = "constant"
    base_lr: float

    def __init__(self, base_lr: float = 0.01) -> None:
        super().__init__(base_lr=check.rate("base_lr", base_lr))

    def _eval(self, t: Tensor, ops: Ops) -> Tensor:
        return self.base_lr + 0.0 * t


@register
class SquareRootScheduler(Schedule):
    """The d2l square-root decay: ``lr(step) = base_lr / sqrt(step + 1)``.

    >>> s = SquareRootScheduler(base_lr=0.1)
    >>> s(0), round(s(3), 6)
    (0.1, 0.05)
    """

    name = "square_root"
    base_lr: float

    def __init__(self, base_lr: float = 0.1) -> None:
        super().__init__(base_lr=check.rate("base_lr", base_lr))

    def _eval(self, t: Tensor, ops: Ops) -> Tensor:
        return self.base_lr / ops.sqrt(t + 1.0)


@register
class FactorScheduler(_MXNetWarmup):
    """Multiply the rate by ``factor`` every ``step`` updates (MXNet's
    ``FactorScheduler`` called with 0, 1, 2, ...)::

        k(step)  = max(0, ceil(step / step_size) - 1)
        lr(step) = base_lr                              if k = 0
                 = max(base_lr * factor**k, stop_factor_lr)  otherwise

    so the first decay applies at ``step + 1`` (MXNet counts updates from
    one; the backends shift that).  Warmup, if any, replaces the first
    ``warmup_steps`` values; decays still count from step 0.

    >>> s = FactorScheduler(step=10, factor=0.5, base_lr=1.0)
    >>> s(10), s(11), s(21)
    (1.0, 0.5, 0.25)
    """

    name = "factor"
    step: int
    factor: float
    stop_factor_lr: float

    def __init__(self, step: int, factor: float = 1.0,
                 stop_factor_lr: float = 1e-8, base_lr: float = 0.01,
                 warmup_steps: int = 0, warmup_begin_lr: float = 0.0,
                 warmup_mode: str = "linear") -> None:
        base_lr = check.rate("base_lr", base_lr)
        super().__init__(
            step=check.integer("step", step, 1),
            factor=check.in_range("factor", factor, 0.0, 1.0),
            stop_factor_lr=check.rate("stop_factor_lr", stop_factor_lr),
            base_lr=base_lr,
            **self._check_warmup(base_lr, warmup_steps, warmup_begin_lr,
                                 warmup_mode))

    def _eval(self, t: Tensor, ops: Ops) -> Tensor:
        k = ops.maximum(ops.ceil(t / self.step) - 1.0, 0.0)
        decayed = ops.maximum(self.base_lr * ops.power(self.factor, k),
                              self.stop_factor_lr)
        after = ops.where(k > 0, decayed, self.base_lr + 0.0 * t)
        return self._with_warmup(t, ops, after)


@register
class MultiFactorScheduler(_MXNetWarmup):
    """Multiply the rate by ``factor`` after each milestone in ``step``
    (MXNet's ``MultiFactorScheduler`` called with 0, 1, 2, ...)::

        lr(step) = base_lr * factor ** #{m in step : m < step}

    >>> s = MultiFactorScheduler(step=[15, 30], factor=0.5, base_lr=0.5)
    >>> s(15), s(16), s(31)
    (0.5, 0.25, 0.125)
    """

    name = "multi_factor"
    step: tuple[int, ...]
    factor: float

    def __init__(self, step: Sequence[int], factor: float = 1.0,
                 base_lr: float = 0.01, warmup_steps: int = 0,
                 warmup_begin_lr: float = 0.0,
                 warmup_mode: str = "linear") -> None:
        base_lr = check.rate("base_lr", base_lr)
        super().__init__(
            step=check.increasing_ints("step", step, 1),
            factor=check.in_range("factor", factor, 0.0, 1.0),
            base_lr=base_lr,
            **self._check_warmup(base_lr, warmup_steps, warmup_begin_lr,
                                 warmup_mode))

    def _eval(self, t: Tensor, ops: Ops) -> Tensor:
        k = 0.0 * t
        for milestone in self.step:
            k = k + ops.where(t > milestone, 1.0, 0.0)
        after = self.base_lr * ops.power(self.factor, k)
        return self._with_warmup(t, ops, after)


class _Annealed(_MXNetWarmup):
    """Shared checks and progress for the decays that end at
    ``max_update`` (MXNet's Poly and Cosine schedulers)."""

    max_update: int | float
    final_lr: float

    def _check(self, max_update: Any, base_lr: Any, final_lr: Any,
               warmup_steps: Any, warmup_begin_lr: Any, warmup_mode: Any
               ) -> dict[str, Any]:
        max_update = check.length("max_update", max_update)
        base_lr = check.rate("base_lr", base_lr)
        warmup = self._check_warmup(base_lr, warmup_steps, warmup_begin_lr,
                                    warmup_mode)
        if warmup["warmup_steps"] > max_update:
            raise ValueError(f"warmup_steps must be <= max_update "
                             f"({max_update}), got {warmup['warmup_steps']}")
        return dict(max_update=max_update, base_lr=base_lr,
                    final_lr=check.rate("final_lr", final_lr), **warmup)

    def _progress(self, t: Tensor, ops: Ops) -> Tensor:
        """Fraction of the decay done, clipped to [0, 1]."""
        span = self.max_update - self.warmup_steps
        if span == 0:
            return 1.0 + 0.0 * t
        return ops.clip((t - self.warmup_steps) / span, 0.0, 1.0)

    def default_horizon(self) -> int | None:
        return math.ceil(self.max_update) + 1


@register
class PolyScheduler(_Annealed):
    """Polynomial decay from ``base_lr`` to ``final_lr`` (MXNet's
    ``PolyScheduler``)::

        p        = clip((step - warmup_steps)
                        / (max_update - warmup_steps), 0, 1)
        lr(step) = final_lr + (base_lr - final_lr) * (1 - p) ** pwr

    pinned at ``final_lr`` from ``max_update`` on.  fastai's
    ``SchedLin(start, end)`` over ``n`` updates is ``PolyScheduler(n,
    start, pwr=1, final_lr=end)``; its ``SchedPoly(start, end, power)``,
    ``start + (end - start) * p ** power``, is this decay played
    backwards: ``reverse(PolyScheduler(n, end, power, start), n)``.

    >>> PolyScheduler(max_update=10, base_lr=1.0, pwr=2)(5)
    0.25
    """

    name = "poly"
    pwr: float

    def __init__(self, max_update: float, base_lr: float = 0.01,
                 pwr: float = 2, final_lr: float = 0.0,
                 warmup_steps: int = 0, warmup_begin_lr: float = 0.0,
                 warmup_mode: str = "linear") -> None:
        args = self._check(max_update, base_lr, final_lr, warmup_steps,
                           warmup_begin_lr, warmup_mode)
        super().__init__(max_update=args.pop("max_update"),
                         base_lr=args.pop("base_lr"),
                         pwr=check.positive("pwr", pwr), **args)

    def _eval(self, t: Tensor, ops: Ops) -> Tensor:
        p = self._progress(t, ops)
        after = self.final_lr + (self.base_lr - self.final_lr) \
            * ops.power(1.0 - p, self.pwr)
        return self._with_warmup(t, ops, after)


@register
class CosineScheduler(_Annealed):
    """Cosine decay from ``base_lr`` to ``final_lr`` (MXNet's
    ``CosineScheduler``, the d2l chapter's formula, by default)::

        lr(step) = final_lr + (base_lr - final_lr) * (1 + cos(pi x)) / 2

    with ``x = cycles * p`` and ``p`` as in :class:`PolyScheduler`.

    ``cycles`` is the number of times the rate falls from ``base_lr`` to
    ``final_lr`` between ``warmup_steps`` and ``max_update`` (a real >=
    0; 1 is the half cosine).  The wave turns back up smoothly after each
    fall, or with ``restarts=True`` jumps back to ``base_lr`` (SGDR with
    cycles of ``(max_update - warmup_steps) / cycles`` updates, a whole
    number or not).  From ``max_update`` on the rate is ``final_lr``;
    with ``periodic=True`` the wave goes on instead (PyTorch's
    ``CosineAnnealingLR`` and Hugging Face's cosine schedules rise again
    after their end).  Hugging Face's ``num_cycles`` counts full periods
    for its smooth cosines (``cycles = 2 * num_cycles``) and falls for its
    hard restarts (``cycles = num_cycles``).

    >>> s = CosineScheduler(max_update=20, base_lr=0.3, final_lr=0.01)
    >>> s(0), s(20), s(100)
    (0.3, 0.01, 0.01)
    >>> s = CosineScheduler(max_update=4, base_lr=1.0, periodic=True)
    >>> s(4), round(s(6), 12), s(8)
    (0.0, 0.5, 1.0)
    >>> s = CosineScheduler(max_update=4, base_lr=1.0, cycles=2,
    ...                     restarts=True)
    >>> s(1), s(2), s(4)
    (0.5, 1.0, 0.0)
    """

    name = "cosine"
    cycles: float
    restarts: bool
    periodic: bool

    def __init__(self, max_update: float, base_lr: float = 0.01,
                 final_lr: float = 0.0, warmup_steps: int = 0,
                 warmup_begin_lr: float = 0.0,
                 warmup_mode: str = "linear", cycles: float = 1.0,
                 restarts: bool = False, periodic: bool = False) -> None:
        args = self._check(max_update, base_lr, final_lr, warmup_steps,
                           warmup_begin_lr, warmup_mode)
        periodic = check.boolean("periodic", periodic)
        if periodic and args["warmup_steps"] == args["max_update"]:
            raise ValueError(f"periodic=True needs max_update > "
                             f"warmup_steps (the period), got max_update="
                             f"{args['max_update']} == warmup_steps")
        super().__init__(**args, cycles=check.rate("cycles", cycles),
                         restarts=check.boolean("restarts", restarts),
                         periodic=periodic)

    def _eval(self, t: Tensor, ops: Ops) -> Tensor:
        if self.periodic:
            # p = whole + fraction, the whole decays counted apart (exact
            # even if the division rounds across a whole number)
            span = self.max_update - self.warmup_steps
            done = ops.maximum(t - self.warmup_steps, 0.0)
            whole = ops.floor(done / span)
            wave = cosine_wave((done - whole * span) / span, ops,
                               self.cycles, self.restarts, whole)
        else:
            p = self._progress(t, ops)
            wave = cosine_wave(p, ops, self.cycles, self.restarts)
        after = self.final_lr + (self.base_lr - self.final_lr) * wave
        if not self.periodic and (self.cycles != 1.0 or self.restarts):
            # the wave need not end at final_lr (2 cycles end at base_lr)
            after = ops.where(p >= 1.0, self.final_lr + 0.0 * t, after)
        return self._with_warmup(t, ops, after)

    def default_horizon(self) -> int | None:
        return None if self.periodic else super().default_horizon()


class _PeriodDecay(Schedule):
    """Keras' time-based decays: both take ``(base_lr, factor, step,
    staircase)`` and decay in ``periods = step_index / step`` (floored
    with ``staircase``)."""

    base_lr: float
    factor: float
    step: int | float
    staircase: bool

    _factor_check = staticmethod(check.rate)

    def __init__(self, base_lr: float, factor: float, step: float = 1,
                 staircase: bool = False) -> None:
        super().__init__(base_lr=check.rate("base_lr", base_lr),
                         factor=self._factor_check("factor", factor),
                         step=check.length("step", step),
                         staircase=check.boolean("staircase", staircase))

    def _periods(self, t: Tensor, ops: Ops) -> Tensor:
        e = t / self.step
        return ops.floor(e) if self.staircase else e


@register
class ExponentialScheduler(_PeriodDecay):
    """``lr(step) = base_lr * factor ** (step / step_size)`` (Keras'
    ``ExponentialDecay``); with ``staircase`` the exponent is floored.
    ``step=1`` is PyTorch's ``ExponentialLR``; staircase is ``StepLR``.
    ``factor > 1`` grows the rate (the learning-rate finder's sweep).
    fastai's ``SchedExp(start, end)`` over ``n`` updates is
    ``ExponentialScheduler(start, end / start, step=n)``.

    >>> ExponentialScheduler(1.0, factor=0.5, step=2)(3)
    0.3535533905932738
    """

    name = "exponential"
    _factor_check = staticmethod(check.positive)

    def _eval(self, t: Tensor, ops: Ops) -> Tensor:
        return self.base_lr * ops.power(self.factor, self._periods(t, ops))


@register
class InverseTimeScheduler(_PeriodDecay):
    """``lr(step) = base_lr / (1 + factor * step / step_size)`` (Keras'
    ``InverseTimeDecay``); with ``staircase`` the ratio is floored.

    >>> InverseTimeScheduler(1.0, factor=0.5)(2)
    0.5
    """

    name = "inverse_time"

    def _eval(self, t: Tensor, ops: Ops) -> Tensor:
        return self.base_lr / (1.0 + self.factor * self._periods(t, ops))


@register
class PiecewiseConstantScheduler(Schedule):
    """``rates[i]`` while ``boundaries[i-1] < step <= boundaries[i]``
    (Keras' ``PiecewiseConstantDecay``, whose ``values`` are ``rates``
    here, so that the argument does not hide :meth:`values`)::

        lr(step) = rates[#{b in boundaries : b < step}]

    >>> s = PiecewiseConstantScheduler([10, 20], [1.0, 0.5, 0.1])
    >>> s(10), s(11), s(21)
    (1.0, 0.5, 0.1)
    >>> s.rates
    (1.0, 0.5, 0.1)
    """

    name = "piecewise_constant"
    boundaries: tuple[int, ...]
    rates: tuple[float, ...]
    renamed = {"values": "rates"}

    def __init__(self, boundaries: Sequence[int],
                 rates: Sequence[float]) -> None:
        boundaries = check.increasing_ints("boundaries", boundaries)
        rates = check.pieces("rates", check.rates("rates", rates),
                             boundaries)
        super().__init__(boundaries=boundaries, rates=rates)

    def _eval(self, t: Tensor, ops: Ops) -> Tensor:
        return piecewise(t, ops, self.boundaries,
                         [r + 0.0 * t for r in self.rates])


def piecewise(t: Tensor, ops: Ops, boundaries: Sequence[float],
              pieces: Sequence[Tensor], *, from_boundary: bool = False
              ) -> Tensor:
    """``pieces[i]`` where ``boundaries[i-1] < t <= boundaries[i]`` (Keras'
    rule, :class:`PiecewiseConstantScheduler`), or with ``from_boundary``
    where ``boundaries[i-1] <= t < boundaries[i]`` (:func:`unisched.join`:
    a piece starts at its boundary)."""
    out = pieces[0]
    for boundary, value in zip(boundaries, pieces[1:], strict=True):
        after = t >= boundary if from_boundary else t > boundary
        out = ops.where(after, value, out)
    return out
