"""Convert MXNet's own schedulers into the equal unisched schedule.
"""
from __future__ import annotations

import numbers
from typing import Any

import unisched as us

from .._contract import convert_exact
from ._mx import mx
from .adapter import LRScheduler


def from_native(obj: Any) -> us.Schedule:
    """The unisched schedule ``s`` that gives the same rate at the same
    update as ``obj`` does under a ``gluon.Trainer``.

    A Trainer calls the native scheduler with ``num_update = k + 1`` at
    update ``k``, so ``s(k) = obj(k + 1)``: every boundary moves one step
    earlier. E.g. ``MultiFactorScheduler(step=[15])`` decays for
    ``num_update > 15``, i.e. from update index 15 on, which is
    ``unisched.MultiFactorScheduler(step=[14])``; a warmup of ``W`` steps
    covers updates ``0 .. W - 2``. Converts MXNet's ``FactorScheduler``,
    ``MultiFactorScheduler``, ``PolyScheduler`` and ``CosineScheduler``
    (exact classes, with their original parameters), and a unisched
    :class:`LRScheduler` (its schedule).

    Raises:
        TypeError: ``obj`` is not exactly one of those types (a subclass
            may compute anything; the message lists the types).
        ValueError: a supported type with no exact equivalent, naming the
            attribute and its value: a Factor/MultiFactor scheduler
            already called past its first decay (``count``,
            ``cur_step_ind``: they overwrite ``base_lr``, so the original
            rate is lost); ``warmup_steps == max_update`` (MXNet itself
            divides by zero under a Trainer); ``power <= 0``.

    A ``CosineScheduler`` without warmup becomes ``shift(CosineScheduler(
    ...), 1)``: the Trainer starts its cosine at ``1 / max_update``.

    >>> from_native(mx.lr_scheduler.MultiFactorScheduler([15, 30], 0.5,
    ...                                                   base_lr=1.0))
    MultiFactorScheduler(step=[14, 29], factor=0.5, base_lr=1.0)
    """
    return convert_exact(obj, _CONVERTERS)


def _from_adapter(obj: LRScheduler) -> us.Schedule:
    if obj.unit == "step":
        return obj.schedule
    return us.epochwise(obj.schedule, obj.steps_per_epoch)


def _ramp(native: Any) -> tuple[int, float, str, float]:
    """The native warmup seen by a Trainer: ``(W', begin, mode, target)``
    such that update ``k < W'`` (``W' = warmup_steps - 1``) gets
    ``begin + (target - begin) * k / W'`` (linear) or ``begin``."""
    w = int(native.warmup_steps)
    target = float(native.warmup_final_lr)
    begin = float(native.warmup_begin_lr)
    if w <= 1:
        return 0, 0.0, "linear", target
    if native.warmup_mode == "linear":
        # The value MXNet gives at num_update = 1, computed as MXNet does.
        begin = begin + (target - begin) * float(1) / float(w)
    return w - 1, begin, native.warmup_mode, target


def _after_ramp(native: Any, post: us.Schedule,
                ramp: tuple[int, float, str, float] | None = None
                ) -> us.Schedule:
    """``post`` from update ``W'`` on (it sees ``k - W'``), the native
    warmup before."""
    steps, begin, mode, target = ramp or _ramp(native)
    if steps == 0:
        return post
    head = us.warmup(us.ConstantScheduler(target), steps, begin, mode)
    return us.join([head, post], [steps])


def _decays(base: float, factor: float, count: int) -> list[float]:
    """``base`` multiplied by ``factor`` 0..count times, one multiplication
    at a time, as MXNet's stateful schedulers do."""
    out = [base]
    for _ in range(count):
        out.append(out[-1] * factor)
    return out


def _fresh(native: Any, counter: str, past: str) -> tuple[float, float]:
    """``(base_lr, factor)`` of a Factor/MultiFactor scheduler that has not
    decayed yet (they overwrite ``base_lr`` as they go)."""
    value = getattr(native, counter)
    if value != 0:
        raise ValueError(f"{counter}={value}: it was already called past "
                         f"{past} (base_lr is now {native.base_lr!r}); "
                         f"build a fresh one")
    return float(native.base_lr), float(native.factor)


def _from_factor(native: Any) -> us.Schedule:
    base, factor = _fresh(native, "count", "its first decay")
    stop, period = float(native.stop_factor_lr), int(native.step)
    if factor < 0 or factor > 1:
        raise ValueError(f"factor={factor!r}: it must be in [0, 1]")

    def rate(d: int) -> float:
        # Update k (num_update k + 1) has had floor(k / step) decays.
        if d == 0:
            return base
        value = base * factor ** d
        return stop if value < stop else value

    def tail(d0: int) -> us.Schedule:
        """Rates ``rate(d0 + u // step)`` for ``u = 0, 1, ...``."""
        if factor == 0 or base < stop:
            if d0 > 0:
                return us.ConstantScheduler(stop)
            return us.PiecewiseConstantScheduler([period - 1], [base, stop])
        decay = us.ExponentialScheduler(base * factor ** d0, factor, period,
                                        staircase=True)
        return us.floor(decay, stop) if stop > 0 else decay

    ramp = _ramp(native)
    start = ramp[0]
    if start == 0:
        return tail(0)
    d0, rest = divmod(start, period)
    if rest == 0:
        return _after_ramp(native, tail(d0), ramp)
    # The ramp ends inside a decay period: hold that period's rate first.
    first = period * (d0 + 1)
    head = us.warmup(us.ConstantScheduler(ramp[3]), start, ramp[1], ramp[2])
    return us.join([head, us.ConstantScheduler(rate(d0)), tail(d0 + 1)],
                   [start, first])


def _from_multi_factor(native: Any) -> us.Schedule:
    base, factor = _fresh(native, "cur_step_ind", "a milestone")
    milestones = [int(m) for m in native.step]
    steps, begin, mode, target = _ramp(native)
    # Update k >= W' has had #{m : m < k + 1} decays: milestones move to
    # m - 1.
    if min(milestones) >= 2 and (steps == 0 or target == base):
        return us.MultiFactorScheduler(
            [m - 1 for m in milestones], factor, base_lr=base,
            warmup_steps=steps, warmup_begin_lr=begin if steps else 0.0,
            warmup_mode=mode)
    # Milestone 1 would move to 0, which MultiFactorScheduler refuses; the
    # piece after the ramp sees u = k - W', so milestone m is at m - 1 - W'.
    shifted = [m - 1 - steps for m in milestones]
    passed = sum(1 for b in shifted if b < 0)
    rates = _decays(base, factor, len(milestones))[passed:]
    bounds = [b for b in shifted if b >= 0]
    post = (us.PiecewiseConstantScheduler(bounds, rates) if bounds
            else us.ConstantScheduler(rates[0]))
    return _after_ramp(native, post, (steps, begin, mode, target))


def _annealed(native: Any, kind: type) -> us.Schedule | None:
    """Poly/Cosine with a warmup (or none that matters); None when the
    caller must handle ``warmup_steps == 0``."""
    w, top = int(native.warmup_steps), int(native.max_update)
    base, final = float(native.base_lr_orig), float(native.final_lr)
    extra = {"pwr": float(native.power)} if kind is us.PolyScheduler else {}
    if w == top:
        raise ValueError(f"warmup_steps={w} == max_update={top}: MXNet "
                         f"divides by max_update - warmup_steps = 0 at "
                         f"update {top - 1}")
    if w > top:
        # The decay branch never runs: base_lr is returned unchanged.
        return _after_ramp(native, us.ConstantScheduler(
            float(native.base_lr)))
    if w == 0:
        return None
    steps, begin, mode, target = _ramp(native)
    if target == base:
        return kind(top - 1, base_lr=base, final_lr=final,
                    warmup_steps=steps, warmup_begin_lr=begin,
                    warmup_mode=mode, **extra)
    return _after_ramp(native, kind(top - w, base_lr=base, final_lr=final,
                                    **extra))


def _from_poly(native: Any) -> us.Schedule:
    pwr = native.power
    if isinstance(pwr, bool) or not isinstance(pwr, numbers.Real) \
            or pwr <= 0 or pwr != pwr:  # (only NaN != NaN)
        raise ValueError(f"power={pwr!r}: the exponent must be > 0")
    out = _annealed(native, us.PolyScheduler)
    if out is not None:
        return out
    top = int(native.max_update)
    base, final = float(native.base_lr_orig), float(native.final_lr)
    if top == 1:
        return us.ConstantScheduler(final)
    # (1 - (k + 1) / M) ** p = ((M - 1) / M) ** p * (1 - k / (M - 1)) ** p:
    # the same curve over M - 1 steps from a lower start.
    start = final + (base - final) * ((top - 1) / top) ** float(pwr)
    return us.PolyScheduler(top - 1, base_lr=start, pwr=float(pwr),
                            final_lr=final)


def _from_cosine(native: Any) -> us.Schedule:
    out = _annealed(native, us.CosineScheduler)
    if out is not None:
        return out
    top = int(native.max_update)
    if top == 1:
        return us.ConstantScheduler(float(native.final_lr))
    # A Trainer's first update already uses num_update=1, 1/top of the way
    # down: the same cosine started one update in.
    return us.shift(us.CosineScheduler(
        top, base_lr=float(native.base_lr_orig),
        final_lr=float(native.final_lr)), 1)


_CONVERTERS = {LRScheduler: _from_adapter,
               mx.lr_scheduler.FactorScheduler: _from_factor,
               mx.lr_scheduler.MultiFactorScheduler: _from_multi_factor,
               mx.lr_scheduler.PolyScheduler: _from_poly,
               mx.lr_scheduler.CosineScheduler: _from_cosine}
