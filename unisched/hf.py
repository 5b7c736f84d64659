"""Hugging Face's schedule functions as named unisched schedules
(``hf_cosine(...)`` and the others): each expands into the one
vocabulary; :mod:`unisched.presets` re-exports them."""
from __future__ import annotations

from typing import Any

from . import _validate as check
from ._ops import Ops, Tensor
from .base import Schedule, register
from .combinators import join, shift, warmup
from .cyclic import DECAY_SHAPES, WarmupStableDecayScheduler
from .schedules import (
    ConstantScheduler,
    CosineScheduler,
    PiecewiseConstantScheduler,
    PolyScheduler,
    SquareRootScheduler,
)

# -- Hugging Face ------------------------------------------------------------

class _Named(Schedule):
    """A schedule known by a library's name and arguments.  Subclasses
    validate their arguments and build :attr:`expanded`, which every
    evaluation runs (so every backend runs the same formulas)."""

    _expanded: Schedule

    def __init__(self, **args: Any) -> None:
        super().__init__(**args)
        object.__setattr__(self, "_expanded", self._expand())

    def _expand(self) -> Schedule:
        raise NotImplementedError

    @property
    def expanded(self) -> Schedule:
        """The same schedule in unisched's own vocabulary."""
        return self._expanded

    def _eval(self, t: Tensor, ops: Ops) -> Tensor:
        return self._expanded._eval(t, ops)

    def default_horizon(self) -> int | None:
        return self._expanded.default_horizon()


def _steps(name: str, value: Any) -> int:
    return check.integer(name, value, 0)


def _decay_span(warmup_steps: int, training_steps: int) -> int:
    """Hugging Face's decay length, ``max(1, N - W)``: a run no longer
    than its warmup decays over one update."""
    return max(1, training_steps - warmup_steps)


def _min_rate(base_lr: float, min_lr: Any, min_lr_rate: Any) -> float:
    """The final rate from exactly one of ``min_lr`` / ``min_lr_rate``."""
    if (min_lr is None) == (min_lr_rate is None):
        raise ValueError(f"give exactly one of min_lr and min_lr_rate, got "
                         f"min_lr={min_lr!r}, min_lr_rate={min_lr_rate!r}")
    if min_lr is not None:
        return check.rate("min_lr", min_lr)
    return base_lr * check.rate("min_lr_rate", min_lr_rate)


@register
class HFConstantWithWarmup(_Named):
    """``get_constant_schedule_with_warmup``: a linear warmup from 0 over
    ``num_warmup_steps`` updates, then ``base_lr``.

    >>> s = HFConstantWithWarmup(1.0, num_warmup_steps=4)
    >>> s(2), s(4), s.expanded
    (0.5, 1.0, Warmup(schedule=ConstantScheduler(base_lr=1.0), \
warmup_steps=4))
    """

    name = "hf_constant_with_warmup"
    base_lr: float
    num_warmup_steps: int

    def __init__(self, base_lr: float, num_warmup_steps: int) -> None:
        super().__init__(base_lr=check.rate("base_lr", base_lr),
                         num_warmup_steps=_steps("num_warmup_steps",
                                                 num_warmup_steps))

    def _expand(self) -> Schedule:
        flat = ConstantScheduler(self.base_lr)
        w = self.num_warmup_steps
        return warmup(flat, w) if w else flat


@register
class HFLinear(_Named):
    """``get_linear_schedule_with_warmup``: a linear warmup from 0, then a
    linear decay to 0 at ``num_training_steps``, 0 after it.

    >>> s = HFLinear(1.0, num_warmup_steps=2, num_training_steps=6)
    >>> [s(k) for k in (1, 2, 4, 6, 9)]
    [0.5, 1.0, 0.5, 0.0, 0.0]
    """

    name = "hf_linear"
    base_lr: float
    num_warmup_steps: int
    num_training_steps: int

    def __init__(self, base_lr: float, num_warmup_steps: int,
                 num_training_steps: int) -> None:
        super().__init__(
            base_lr=check.rate("base_lr", base_lr),
            num_warmup_steps=_steps("num_warmup_steps", num_warmup_steps),
            num_training_steps=_steps("num_training_steps",
                                      num_training_steps))

    def _expand(self) -> Schedule:
        w, n = self.num_warmup_steps, self.num_training_steps
        if w == 0 and n == 0:
            return ConstantScheduler(0.0)
        # a run no longer than its warmup is 0 from the warmup's end on
        return PolyScheduler(max(n, w), self.base_lr, pwr=1.0,
                             warmup_steps=w)


class _HFCosineFamily(_Named):
    """The arguments every Hugging Face cosine shares."""

    base_lr: float
    num_warmup_steps: int
    num_training_steps: int
    num_cycles: float

    def _common(self, base_lr: Any, num_warmup_steps: Any,
                num_training_steps: Any, num_cycles: Any
                ) -> dict[str, Any]:
        return dict(base_lr=check.rate("base_lr", base_lr),
                    num_warmup_steps=_steps("num_warmup_steps",
                                            num_warmup_steps),
                    num_training_steps=_steps("num_training_steps",
                                              num_training_steps),
                    num_cycles=check.rate("num_cycles", num_cycles))

    def _cosine(self, final_lr: float, restarts: bool = False
                ) -> CosineScheduler:
        """Hugging Face's cosine after its linear warmup: its smooth one
        falls ``2 * num_cycles`` times and goes on past
        ``num_training_steps`` (it rises again); its hard restarts fall
        ``num_cycles`` times and stay at 0 after the end."""
        w = self.num_warmup_steps
        cycles = self.num_cycles if restarts else 2.0 * self.num_cycles
        return CosineScheduler(
            w + _decay_span(w, self.num_training_steps), self.base_lr,
            final_lr, warmup_steps=w, cycles=cycles, restarts=restarts,
            periodic=not restarts)


@register
class HFCosine(_HFCosineFamily):
    """``get_cosine_schedule_with_warmup``: a linear warmup from 0, then
    a cosine of ``num_cycles`` periods over the remaining updates (0.5: a
    half cosine down to 0); the wave goes on after
    ``num_training_steps``.

    >>> s = HFCosine(1.0, num_warmup_steps=2, num_training_steps=6)
    >>> [round(s(k), 12) for k in (1, 2, 4, 6, 8)]
    [0.5, 1.0, 0.5, 0.0, 0.5]
    """

    name = "hf_cosine"

    def __init__(self, base_lr: float, num_warmup_steps: int,
                 num_training_steps: int, num_cycles: float = 0.5) -> None:
        super().__init__(**self._common(base_lr, num_warmup_steps,
                                        num_training_steps, num_cycles))

    def _expand(self) -> Schedule:
        return self._cosine(0.0)


@register
class HFCosineWithMinLR(_HFCosineFamily):
    """``get_cosine_with_min_lr_schedule_with_warmup``: :class:`HFCosine`
    falling to ``min_lr`` (or ``min_lr_rate * base_lr``) instead of 0.

    >>> s = HFCosineWithMinLR(1.0, 0, 4, min_lr_rate=0.1)
    >>> [round(s(k), 12) for k in (0, 2, 4)]
    [1.0, 0.55, 0.1]
    """

    name = "hf_cosine_with_min_lr"
    min_lr: float | None
    min_lr_rate: float | None

    def __init__(self, base_lr: float, num_warmup_steps: int,
                 num_training_steps: int, num_cycles: float = 0.5,
                 min_lr: float | None = None,
                 min_lr_rate: float | None = None) -> None:
        args = self._common(base_lr, num_warmup_steps, num_training_steps,
                            num_cycles)
        _min_rate(args["base_lr"], min_lr, min_lr_rate)
        super().__init__(**args, min_lr=min_lr, min_lr_rate=min_lr_rate)

    def _expand(self) -> Schedule:
        return self._cosine(_min_rate(self.base_lr, self.min_lr,
                                      self.min_lr_rate))


@register
class HFCosineWarmupWithMinLR(_HFCosineFamily):
    """``get_cosine_with_min_lr_schedule_with_warmup_lr_rate``: the
    warmup reaches ``base_lr`` one update earlier and the cosine runs one
    update ahead::

        lr(k) = base_lr * (k + 1) / W              k < W, no warmup_lr_rate
              = base_lr * (r + (1 - r) k / (W - 1))  k < W, r = warmup_lr_rate
              = min_lr + (base_lr - min_lr)
                * (1 + cos(2 pi num_cycles (k - W + 1) / (N - W))) / 2

    >>> s = HFCosineWarmupWithMinLR(1.0, 2, 6, min_lr=0.0)
    >>> [round(s(k), 12) for k in range(7)]
    [0.5, 1.0, 0.853553390593, 0.5, 0.146446609407, 0.0, 0.146446609407]
    """

    name = "hf_cosine_warmup_with_min_lr"
    min_lr: float | None
    min_lr_rate: float | None
    warmup_lr_rate: float | None

    def __init__(self, base_lr: float, num_warmup_steps: int,
                 num_training_steps: int, num_cycles: float = 0.5,
                 min_lr: float | None = None,
                 min_lr_rate: float | None = None,
                 warmup_lr_rate: float | None = None) -> None:
        args = self._common(base_lr, num_warmup_steps, num_training_steps,
                            num_cycles)
        _min_rate(args["base_lr"], min_lr, min_lr_rate)
        if warmup_lr_rate is not None:
            warmup_lr_rate = check.rate("warmup_lr_rate", warmup_lr_rate)
        super().__init__(**args, min_lr=min_lr, min_lr_rate=min_lr_rate,
                         warmup_lr_rate=warmup_lr_rate)

    def _expand(self) -> Schedule:
        w, base = self.num_warmup_steps, self.base_lr
        decay = self._cosine(_min_rate(base, self.min_lr, self.min_lr_rate))
        # the cosine alone (no warmup of its own), one update ahead
        ahead = shift(CosineScheduler(
            decay.max_update - w, base, decay.final_lr,
            cycles=decay.cycles, periodic=True), 1)
        if w == 0:
            return ahead
        flat = ConstantScheduler(base)
        ramp: Schedule
        if self.warmup_lr_rate is None:
            ramp = shift(warmup(flat, w), 1)       # (k + 1) / W
        elif w == 1:
            ramp = ConstantScheduler(base * self.warmup_lr_rate)
        else:
            ramp = warmup(flat, w - 1, base * self.warmup_lr_rate)
        return join([ramp, ahead], [w])


@register
class HFCosineWithRestarts(_HFCosineFamily):
    """``get_cosine_with_hard_restarts_schedule_with_warmup``: a linear
    warmup from 0, then ``num_cycles`` half cosines from ``base_lr`` to 0,
    each restarting at ``base_lr``, over the remaining updates; 0 from
    ``num_training_steps`` on.

    >>> s = HFCosineWithRestarts(1.0, 0, 8, num_cycles=2)
    >>> [round(s(k), 12) for k in (0, 2, 4, 6, 8)]
    [1.0, 0.5, 1.0, 0.5, 0.0]
    """

    name = "hf_cosine_with_restarts"

    def __init__(self, base_lr: float, num_warmup_steps: int,
                 num_training_steps: int, num_cycles: float = 1) -> None:
        super().__init__(**self._common(base_lr, num_warmup_steps,
                                        num_training_steps, num_cycles))

    def _expand(self) -> Schedule:
        return self._cosine(0.0, restarts=True)


@register
class HFPolynomial(_Named):
    """``get_polynomial_decay_schedule_with_warmup``: a linear warmup
    from 0, then ``lr_end + (base_lr - lr_end) * (1 - p) ** power`` to
    ``lr_end`` at ``num_training_steps``, ``lr_end`` after it
    (``base_lr`` is the optimizer's ``lr``, which must exceed ``lr_end``).

    >>> s = HFPolynomial(1.0, 0, 4, lr_end=0.2, power=2.0)
    >>> [round(s(k), 12) for k in (0, 2, 4, 5)]
    [1.0, 0.4, 0.2, 0.2]
    """

    name = "hf_polynomial"
    base_lr: float
    num_warmup_steps: int
    num_training_steps: int
    lr_end: float
    power: float

    def __init__(self, base_lr: float, num_warmup_steps: int,
                 num_training_steps: int, lr_end: float = 1e-7,
                 power: float = 1.0) -> None:
        base_lr = check.rate("base_lr", base_lr)
        lr_end = check.rate("lr_end", lr_end)
        if not base_lr > lr_end:
            raise ValueError(f"lr_end must be below base_lr ({base_lr!r}), "
                             f"got {lr_end!r}")
        w = _steps("num_warmup_steps", num_warmup_steps)
        n = _steps("num_training_steps", num_training_steps)
        if n == w:
            raise ValueError(f"num_training_steps must differ from "
                             f"num_warmup_steps ({w}): transformers "
                             f"divides by their difference at update {n}")
        super().__init__(base_lr=base_lr, num_warmup_steps=w,
                         num_training_steps=n, lr_end=lr_end,
                         power=check.rate("power", power))

    def _expand(self) -> Schedule:
        w, n = self.num_warmup_steps, self.num_training_steps
        base, end = self.base_lr, self.lr_end
        if n < w:  # lr_end as soon as the warmup ends
            return PolyScheduler(w, base, final_lr=end, warmup_steps=w)
        if self.power > 0:
            return PolyScheduler(n, base, self.power, end, warmup_steps=w)
        # 0 ** 0 == 1: base_lr up to num_training_steps, then lr_end
        steps = PiecewiseConstantScheduler([n - w], [base, end])
        return warmup(steps, w) if w else steps


@register
class HFInverseSqrt(_Named):
    """``get_inverse_sqrt_schedule``: a linear warmup from 0, then
    ``base_lr / sqrt((k - W + timescale) / timescale)`` (``timescale``
    defaults to ``num_warmup_steps``, or 10 000 without a warmup).

    >>> s = HFInverseSqrt(1.0, num_warmup_steps=4)
    >>> [round(s(k), 12) for k in (2, 4, 16)]
    [0.5, 1.0, 0.5]
    """

    name = "hf_inverse_sqrt"
    base_lr: float
    num_warmup_steps: int
    timescale: int | None

    def __init__(self, base_lr: float, num_warmup_steps: int,
                 timescale: int | None = None) -> None:
        if timescale is not None:
            timescale = check.integer("timescale", timescale, 1)
        super().__init__(base_lr=check.rate("base_lr", base_lr),
                         num_warmup_steps=_steps("num_warmup_steps",
                                                 num_warmup_steps),
                         timescale=timescale)

    def _expand(self) -> Schedule:
        w = self.num_warmup_steps
        scale = self.timescale or w or 10_000
        # base * sqrt(s) / sqrt(k' + s): the square-root decay s - 1 in
        decay: Schedule = SquareRootScheduler(self.base_lr * scale ** 0.5)
        if scale > 1:
            decay = shift(decay, scale - 1)
        return warmup(decay, w) if w else decay


@register
class HFWarmupStableDecay(_Named):
    """``get_wsd_schedule``: a warmup (``warmup_type`` linear, cosine or
    1-sqrt) from ``min_lr_ratio * base_lr`` up to ``base_lr``, held for
    ``num_stable_steps`` (or ``num_training_steps`` minus warmup and
    decay; a negative count starts the decay that far in), a decay
    (``decay_type``; a cosine of ``num_cycles`` periods) over
    ``num_decay_steps`` to ``min_lr_ratio * base_lr``, held after.

    >>> s = HFWarmupStableDecay(1.0, 2, 4, num_stable_steps=2,
    ...                         min_lr_ratio=0.1)
    >>> [round(s(k), 12) for k in (0, 1, 3, 4, 6, 8)]
    [0.1, 0.55, 1.0, 1.0, 0.55, 0.1]
    """

    name = "hf_warmup_stable_decay"
    base_lr: float
    num_warmup_steps: int
    num_decay_steps: int
    num_training_steps: int | None
    num_stable_steps: int | None
    warmup_type: str
    decay_type: str
    min_lr_ratio: float
    num_cycles: float

    def __init__(self, base_lr: float, num_warmup_steps: int,
                 num_decay_steps: int, num_training_steps: int | None = None,
                 num_stable_steps: int | None = None,
                 warmup_type: str = "linear", decay_type: str = "cosine",
                 min_lr_ratio: float = 0.0, num_cycles: float = 0.5) -> None:
        if (num_training_steps is None) == (num_stable_steps is None):
            raise ValueError(
                f"give exactly one of num_training_steps and "
                f"num_stable_steps, got num_training_steps="
                f"{num_training_steps!r}, num_stable_steps="
                f"{num_stable_steps!r}")
        if num_training_steps is not None:
            num_training_steps = _steps("num_training_steps",
                                        num_training_steps)
        if num_stable_steps is not None:
            num_stable_steps = check.integer(
                "num_stable_steps", num_stable_steps, -check.MAX_STEP + 1)
        super().__init__(
            base_lr=check.rate("base_lr", base_lr),
            num_warmup_steps=_steps("num_warmup_steps", num_warmup_steps),
            num_decay_steps=_steps("num_decay_steps", num_decay_steps),
            num_training_steps=num_training_steps,
            num_stable_steps=num_stable_steps,
            warmup_type=check.choice("warmup_type", warmup_type,
                                     DECAY_SHAPES),
            decay_type=check.choice("decay_type", decay_type, DECAY_SHAPES),
            min_lr_ratio=check.rate("min_lr_ratio", min_lr_ratio),
            num_cycles=check.rate("num_cycles", num_cycles))

    def _expand(self) -> Schedule:
        w, d, base = self.num_warmup_steps, self.num_decay_steps, \
            self.base_lr
        stable, n = self.num_stable_steps, self.num_training_steps
        if stable is None:
            assert n is not None  # __init__ took exactly one of the two
            stable = n - w - d
        low = base * self.min_lr_ratio
        after = self._after_warmup(stable, d, low)
        if w == 0:
            return after
        starts_high = stable > 0 or (stable == 0 and d > 0)
        if starts_high:  # the warmup ends where the rest starts
            return warmup(after, w, low, self.warmup_type)
        ramp = warmup(ConstantScheduler(base), w, low, self.warmup_type)
        return join([ramp, after], [w])

    def _after_warmup(self, stable: int, d: int, low: float) -> Schedule:
        """Stable and decay phases, from the warmup's end."""
        if d == 0 or -stable >= d:  # no decay left: low after stable
            if stable <= 0:
                return ConstantScheduler(low)
            return PiecewiseConstantScheduler([stable - 1],
                                              [self.base_lr, low])
        cycles = 2.0 * self.num_cycles if self.decay_type == "cosine" \
            else 1.0
        decay = WarmupStableDecayScheduler(
            self.base_lr, 0, max(stable, 0), d, low, self.decay_type,
            cycles)
        return shift(decay, -stable) if stable < 0 else decay
