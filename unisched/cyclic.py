"""Cyclic schedules: cosine with restarts, cyclic (CLR), one-cycle and
warmup-stable-decay.  Cyclic and one-cycle carry a momentum cycle, exposed
as ``sched.momentum`` so backends can drive SGD momentum or Adam's beta1.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

from . import _validate as check
from ._ops import Ops, Tensor
from .base import Schedule, register
from .schedules import cosine_wave


class _MomentumCycle(Schedule):
    """The momentum cycle that goes with a rate schedule of type ``of``
    (built from it; its arguments hold the momentum range)."""

    of: ClassVar[type[Schedule]]
    schedule: Schedule

    def __init__(self, schedule: Schedule) -> None:
        if not isinstance(schedule, self.of):
            raise TypeError(f"schedule must be a {self.of.__name__}, got "
                            f"{schedule!r}")
        super().__init__(schedule=schedule)


@register
class CosineRestartsScheduler(Schedule):
    """Cosine annealing with warm restarts (SGDR; Keras'
    ``CosineDecayRestarts``, and PyTorch's ``CosineAnnealingWarmRestarts``
    for an integer ``cycle_mult`` and ``cycle_decay=1``).

    Cycle ``i`` lasts ``first_cycle * cycle_mult**i`` steps and its peak is
    ``base_lr`` scaled by ``cycle_decay**i`` above ``final_lr``::

        lr(step) = final_lr + (base_lr - final_lr) * cycle_decay**i
                   * (1 + cos(pi * p)) / 2

    where ``p`` is the fraction of cycle ``i`` done.

    >>> s = CosineRestartsScheduler(first_cycle=10, base_lr=1.0)
    >>> s(0), s(5), s(10)
    (1.0, 0.5, 1.0)
    """

    name = "cosine_restarts"
    first_cycle: int
    base_lr: float
    final_lr: float
    cycle_mult: float
    cycle_decay: float

    def __init__(self, first_cycle: int, base_lr: float,
                 final_lr: float = 0.0, cycle_mult: float = 1.0,
                 cycle_decay: float = 1.0) -> None:
        super().__init__(
            first_cycle=check.integer("first_cycle", first_cycle, 1),
            base_lr=check.rate("base_lr", base_lr),
            final_lr=check.rate("final_lr", final_lr),
            cycle_mult=check.in_range("cycle_mult", cycle_mult, 1.0,
                                      math.inf, high_open=True),
            cycle_decay=check.rate("cycle_decay", cycle_decay))

    def _cycle(self, t: Tensor, ops: Ops) -> tuple[Tensor, Tensor]:
        """(index of the cycle, fraction of it done) for step ``t``."""
        x = t / self.first_cycle
        m = self.cycle_mult
        if m == 1.0:
            i = ops.floor(x)
            return i, x - i
        # Cycle i starts at (m**i - 1) / (m - 1) first-cycle lengths; the
        # log gives i up to rounding, corrected by one either way so that
        # restarts fall exactly on their integer steps.
        i = ops.floor(ops.log(1.0 + x * (m - 1.0)) / math.log(m))
        mi = ops.power(m, i)
        down = x < (mi - 1.0) / (m - 1.0)
        i = ops.where(down, i - 1.0, i)
        mi = ops.where(down, mi / m, mi)
        up = x >= (mi * m - 1.0) / (m - 1.0)
        i = ops.where(up, i + 1.0, i)
        mi = ops.where(up, mi * m, mi)
        return i, (x - (mi - 1.0) / (m - 1.0)) / mi

    def _eval(self, t: Tensor, ops: Ops) -> Tensor:
        i, p = self._cycle(t, ops)
        amplitude = self.base_lr - self.final_lr
        if self.cycle_decay != 1.0:
            amplitude = amplitude * ops.power(self.cycle_decay, i)
        return self.final_lr + amplitude * (1.0 + ops.cos(math.pi * p)) / 2


CYCLIC_MODES = ("triangular", "triangular2", "exp_range")


@register
class CyclicScheduler(Schedule):
    """Cyclical learning rates (PyTorch's ``CyclicLR``)::

        cycle = floor(1 + step / (up + down))
        x     = 1 + step / (up + down) - cycle
        h     = x / r if x <= r else (x - 1) / (r - 1),  r = up / (up + down)
        lr    = base_lr + (max_lr - base_lr) * h * scale

    ``scale`` is 1 (``'triangular'``), ``1 / 2**(cycle - 1)``
    (``'triangular2'``) or ``gamma**step`` (``'exp_range'``).  The momentum
    cycle runs the other way: ``max_momentum - (max_momentum -
    base_momentum) * h * scale`` (``sched.momentum``); with
    ``cycle_momentum=False`` there is none, and a backend leaves the
    optimizer's momentum alone (PyTorch's ``cycle_momentum=False``).

    >>> s = CyclicScheduler(0.1, 1.0, step_size_up=4)
    >>> s(0), s(4), s(8)
    (0.1, 1.0, 0.1)
    """

    name = "cyclic"
    base_lr: float
    max_lr: float
    step_size_up: int
    step_size_down: int | None
    mode: str
    gamma: float
    base_momentum: float
    max_momentum: float
    cycle_momentum: bool

    def __init__(self, base_lr: float, max_lr: float, step_size_up: int,
                 step_size_down: int | None = None,
                 mode: str = "triangular", gamma: float = 1.0,
                 base_momentum: float = 0.8,
                 max_momentum: float = 0.9,
                 cycle_momentum: bool = True) -> None:
        if step_size_down is not None:
            step_size_down = check.integer("step_size_down", step_size_down,
                                           1)
        super().__init__(
            base_lr=check.rate("base_lr", base_lr),
            max_lr=check.rate("max_lr", max_lr),
            step_size_up=check.integer("step_size_up", step_size_up, 1),
            step_size_down=step_size_down,
            mode=check.choice("mode", mode, CYCLIC_MODES),
            gamma=check.in_range("gamma", gamma, 0.0, 1.0, low_open=True),
            base_momentum=check.in_range("base_momentum", base_momentum,
                                         0.0, 1.0),
            max_momentum=check.in_range("max_momentum", max_momentum,
                                         0.0, 1.0),
            cycle_momentum=check.boolean("cycle_momentum", cycle_momentum))
        up = float(self.step_size_up)
        total = up + float(self.step_size_down or self.step_size_up)
        if not 0.0 < up / total < 1.0:
            raise ValueError(
                f"step_size_up={self.step_size_up} and step_size_down="
                f"{self.step_size_down} are too far apart for float64: the "
                f"cycle's rising fraction rounds to {up / total!r}")

    def _shape(self, t: Tensor, ops: Ops) -> Tensor:
        """The triangle ``h * scale`` in [0, 1] for step ``t``."""
        up = float(self.step_size_up)
        down = up if self.step_size_down is None \
            else float(self.step_size_down)
        total = up + down
        ratio = up / total
        cycle = ops.floor(1.0 + t / total)
        x = 1.0 + t / total - cycle
        h = ops.where(x <= ratio, x / ratio, (x - 1.0) / (ratio - 1.0))
        if self.mode == "triangular2":
            return h * ops.power(0.5, cycle - 1.0)
        if self.mode == "exp_range":
            return h * ops.power(self.gamma, t)
        return h

    def _eval(self, t: Tensor, ops: Ops) -> Tensor:
        return self.base_lr + (self.max_lr - self.base_lr) \
            * self._shape(t, ops)

    @property
    def momentum(self) -> CyclicMomentum | None:
        """The momentum cycle (None with ``cycle_momentum=False``)."""
        return CyclicMomentum(self) if self.cycle_momentum else None

    def default_horizon(self) -> int:
        down = self.step_size_down or self.step_size_up
        return 2 * (self.step_size_up + down) + 1


@register
class CyclicMomentum(_MomentumCycle):
    """The momentum cycle of a :class:`CyclicScheduler`: high when the
    rate is low and the other way round."""

    name = "cyclic_momentum"
    of = CyclicScheduler
    schedule: CyclicScheduler

    def _eval(self, t: Tensor, ops: Ops) -> Tensor:
        s = self.schedule
        return s.max_momentum - (s.max_momentum - s.base_momentum) \
            * s._shape(t, ops)

    def default_horizon(self) -> int:
        return self.schedule.default_horizon()


ANNEAL_MODES = ("cos", "linear")
ONE_CYCLE_STYLES = ("torch", "fastai")


@register
class OneCycleScheduler(Schedule):
    """The one-cycle policy (PyTorch's ``OneCycleLR``; fastai's
    ``fit_one_cycle`` with ``style='fastai'``).

    The rate anneals from ``max_lr / div_factor`` up to ``max_lr`` over the
    first ``pct_start`` of ``max_update`` steps, then down to
    ``max_lr / div_factor / final_div_factor``; with ``three_phase`` it
    first comes back to the initial rate symmetrically and only then falls
    to the minimum.  Momentum runs the opposite cycle between
    ``max_momentum`` and ``base_momentum`` (``sched.momentum``), unless
    ``cycle_momentum=False``.

    ``style`` fixes where the phases meet.  ``'torch'``: phase ends at steps
    ``pct_start * max_update - 1`` (and ``2 * pct_start * max_update - 2``)
    and ``max_update - 1``, progress measured in steps.  ``'fastai'``:
    progress is ``step / max_update`` and phases end at ``pct_start``
    (``2 * pct_start``) and 1.  Each phase anneals with
    ``anneal(start, end, p)``: ``end + (start - end) * (1 + cos(pi p)) / 2``
    or ``start + (end - start) * p``.  From the last step on the rate stays
    at its minimum.

    >>> s = OneCycleScheduler(max_lr=1.0, max_update=10, pct_start=0.5)
    >>> round(s(0), 12), s(4), round(s(9), 12)
    (0.04, 1.0, 4e-06)
    """

    name = "one_cycle"
    max_lr: float
    max_update: int
    pct_start: float
    anneal: str
    div_factor: float
    final_div_factor: float
    three_phase: bool
    base_momentum: float
    max_momentum: float
    style: str
    cycle_momentum: bool

    def __init__(self, max_lr: float, max_update: int,
                 pct_start: float = 0.3, anneal: str = "cos",
                 div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False, base_momentum: float = 0.85,
                 max_momentum: float = 0.95, style: str = "torch",
                 cycle_momentum: bool = True) -> None:
        super().__init__(
            max_lr=check.rate("max_lr", max_lr),
            max_update=check.integer("max_update", max_update, 1),
            pct_start=check.in_range("pct_start", pct_start, 0.0, 1.0,
                                     low_open=True, high_open=True),
            anneal=check.choice("anneal", anneal, ANNEAL_MODES),
            div_factor=check.positive("div_factor", div_factor),
            final_div_factor=check.positive("final_div_factor",
                                            final_div_factor),
            three_phase=check.boolean("three_phase", three_phase),
            base_momentum=check.in_range("base_momentum", base_momentum,
                                         0.0, 1.0),
            max_momentum=check.in_range("max_momentum", max_momentum,
                                         0.0, 1.0),
            style=check.choice("style", style, ONE_CYCLE_STYLES),
            cycle_momentum=check.boolean("cycle_momentum", cycle_momentum))
        initial = self.max_lr / self.div_factor
        if not math.isfinite(initial):
            raise ValueError(f"div_factor={self.div_factor!r} makes the "
                             f"initial rate max_lr / div_factor = {initial}")
        if not math.isfinite(initial / self.final_div_factor):
            raise ValueError(
                f"final_div_factor={self.final_div_factor!r} makes the "
                f"final rate max_lr / div_factor / final_div_factor = "
                f"{initial / self.final_div_factor}")
        ends = self._phase_ends()
        starts = [0.0] + ends[:-1]
        if any(e <= s for s, e in zip(starts, ends, strict=True)):
            raise ValueError(
                f"pct_start={self.pct_start!r} with max_update="
                f"{self.max_update} leaves a phase of the cycle empty "
                f"(phase ends at {ends}); raise max_update or move "
                f"pct_start away from the ends")

    @classmethod
    def fastai(cls, max_lr: float, max_update: int, pct_start: float = 0.25,
               div: float = 25.0, div_final: float = 1e5,
               moms: tuple[float, float, float] = (0.95, 0.85, 0.95)
               ) -> OneCycleScheduler:
        """fastai's ``fit_one_cycle`` defaults: from ``max_lr / div`` up to
        ``max_lr`` over the first quarter, cosine down to
        ``max_lr / div_final``; momentum 0.95 -> 0.85 -> 0.95."""
        if moms[0] != moms[2]:
            raise ValueError(f"moms must start and end at the same value "
                             f"(a one-cycle), got {moms!r}")
        return cls(max_lr, max_update, pct_start=pct_start, anneal="cos",
                   div_factor=div, final_div_factor=div_final / div,
                   base_momentum=moms[1], max_momentum=moms[0],
                   style="fastai")

    def _phase_ends(self) -> list[float]:
        n, pct = self.max_update, self.pct_start
        if self.style == "fastai":
            return [pct, 2 * pct, 1.0] if self.three_phase else [pct, 1.0]
        if self.three_phase:
            return [pct * n - 1, 2 * pct * n - 2, n - 1.0]
        return [pct * n - 1, n - 1.0]

    def _anneal(self, start: float, end: float, p: Tensor, ops: Ops
                ) -> Tensor:
        if self.anneal == "cos":
            return end + (start - end) / 2.0 * (ops.cos(math.pi * p) + 1.0)
        return (end - start) * p + start

    def _cycle(self, t: Tensor, ops: Ops, points: Sequence[float]
               ) -> Tensor:
        """Anneal through ``points`` (one value per phase boundary)."""
        u = t / self.max_update if self.style == "fastai" else t
        ends = self._phase_ends()
        out = None
        start = 0.0
        for i, end in enumerate(ends):
            p = ops.clip((u - start) / (end - start), 0.0, 1.0)
            value = self._anneal(points[i], points[i + 1], p, ops)
            # Phase i covers u <= end (torch) or u < end (fastai).
            out = value if out is None else ops.where(
                u > start if self.style == "torch" else u >= start,
                value, out)
            start = end
        return out

    def _eval(self, t: Tensor, ops: Ops) -> Tensor:
        initial = self.max_lr / self.div_factor
        minimum = initial / self.final_div_factor
        if self.three_phase:
            points = [initial, self.max_lr, initial, minimum]
        else:
            points = [initial, self.max_lr, minimum]
        return self._cycle(t, ops, points)

    @property
    def momentum(self) -> OneCycleMomentum | None:
        """The momentum cycle (None with ``cycle_momentum=False``)."""
        return OneCycleMomentum(self) if self.cycle_momentum else None

    def default_horizon(self) -> int:
        return self.max_update


@register
class OneCycleMomentum(_MomentumCycle):
    """The momentum cycle of a :class:`OneCycleScheduler`: from
    ``max_momentum`` down to ``base_momentum`` while the rate rises, back
    up while it falls."""

    name = "one_cycle_momentum"
    of = OneCycleScheduler
    schedule: OneCycleScheduler

    def _eval(self, t: Tensor, ops: Ops) -> Tensor:
        s = self.schedule
        hi, lo = s.max_momentum, s.base_momentum
        points = [hi, lo, hi, hi] if s.three_phase else [hi, lo, hi]
        return s._cycle(t, ops, points)

    def default_horizon(self) -> int:
        return self.schedule.max_update


DECAY_SHAPES = ("linear", "cosine", "1-sqrt")


@register
class WarmupStableDecayScheduler(Schedule):
    """Warmup-stable-decay (the "trapezoid" used for LLM pre-training)::

        lr = base_lr * step / warmup_steps            step < W
           = base_lr                                  W <= step < W + S
           = final_lr + (base_lr - final_lr) * d(p)   then, p in [0, 1)
           = final_lr                                 from W + S + D on

    with ``p = (step - W - S) / decay_steps`` and ``d(p)`` one of
    ``1 - p`` (``'linear'``), ``(1 + cos(pi cycles p)) / 2``
    (``'cosine'``; ``cycles`` falls and rises, 1 by default, as in
    :class:`unisched.CosineScheduler`), ``1 - sqrt(p)`` (``'1-sqrt'``).
    For a warmup of another shape or from another rate, put
    :func:`unisched.warmup` in front of ``warmup_steps=0``.

    >>> s = WarmupStableDecayScheduler(1.0, 2, 3, 4, final_lr=0.2)
    >>> s(1), s(4), round(s(7), 12), s(9)
    (0.5, 1.0, 0.6, 0.2)
    """

    name = "warmup_stable_decay"
    base_lr: float
    warmup_steps: int
    stable_steps: int
    decay_steps: int
    final_lr: float
    decay: str
    cycles: float

    def __init__(self, base_lr: float, warmup_steps: int, stable_steps: int,
                 decay_steps: int, final_lr: float = 0.0,
                 decay: str = "linear", cycles: float = 1.0) -> None:
        decay = check.choice("decay", decay, DECAY_SHAPES)
        cycles = check.rate("cycles", cycles)
        if cycles != 1.0 and decay != "cosine":
            raise ValueError(f"cycles shapes the cosine decay only; with "
                             f"decay={decay!r} it must be 1, got "
                             f"{cycles!r}")
        super().__init__(
            base_lr=check.rate("base_lr", base_lr),
            warmup_steps=check.integer("warmup_steps", warmup_steps),
            stable_steps=check.integer("stable_steps", stable_steps),
            decay_steps=check.integer("decay_steps", decay_steps, 1),
            final_lr=check.rate("final_lr", final_lr),
            decay=decay, cycles=cycles)

    def _eval(self, t: Tensor, ops: Ops) -> Tensor:
        w, base = self.warmup_steps, self.base_lr
        start = w + self.stable_steps
        p = ops.clip((t - start) / self.decay_steps, 0.0, 1.0)
        if self.decay == "linear":
            d = 1.0 - p
        elif self.decay == "cosine":
            d = cosine_wave(p, ops, self.cycles)
        else:
            d = 1.0 - ops.sqrt(p)
        out = self.final_lr + (base - self.final_lr) * d
        if self.cycles != 1.0:
            # other cycles need not end at final_lr
            out = ops.where(t >= start + self.decay_steps,
                            self.final_lr + 0.0 * t, out)
        if w:
            out = ops.where(t < w, base * (t / w), out)
        return out

    def default_horizon(self) -> int:
        return self.warmup_steps + self.stable_steps + self.decay_steps + 1

