"""Convert PyTorch's own schedulers into the equal unisched schedule
(:func:`from_native`; ``SequentialLR`` / ``ChainedScheduler`` through
:data:`.composite.COMPOSITE`).
"""
from __future__ import annotations

import math
import numbers
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from torch.optim import lr_scheduler as _tl

import unisched
from unisched import _validate as check
from unisched.base import Schedule

from .adapter import LRScheduler
from .composite import COMPOSITE


def _name(obj: Any) -> str:
    return type(obj).__name__


def _build(obj: Any, cls: type, args: dict[str, tuple[str, Any]],
           **fixed: Any) -> Schedule:
    """``cls(**args values, **fixed)``, where ``args`` maps each unisched
    argument to ``(torch attribute, value)``: an error of the unisched
    constructor is re-raised naming the torch class and attribute."""
    try:
        return cls(**{k: v for k, (_, v) in args.items()}, **fixed)
    except (TypeError, ValueError) as err:
        text = str(err)
        hits = [(m.start(), k) for k in args
                if (m := re.search(rf"\b{k}\b", text))]
        if hits:
            attr, value = args[min(hits)[1]]
            what = f"{attr}={value!r}"
        else:
            what = ", ".join(f"{a}={v!r}" for a, v in args.values())
        raise ValueError(f"{_name(obj)} {what} cannot be converted: "
                         f"{text}") from None


def _one(obj: Any, what: str, values: Sequence[Any]) -> float:
    """The value all param groups share; a scheduler whose groups differ
    cannot be one schedule."""
    vals = [float(v) for v in values]
    if any(v != vals[0] for v in vals):
        hint = ""
        if what in ("base_lrs", "max_lrs", "max_lr") and vals[0] > 0:
            hint = (f"; convert a copy over one group and bind it with "
                    f"multipliers={[v / vals[0] for v in vals]}")
        raise ValueError(f"{_name(obj)}: the param groups have different "
                         f"{what} {vals}; from_native returns one "
                         f"schedule{hint}")
    return vals[0]


def _int(obj: Any, name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not math.isfinite(value) or value != math.floor(value) or \
            value < minimum:
        raise ValueError(f"{_name(obj)}: {name} must be an integer >= "
                         f"{minimum} to convert, got {value!r}")
    return int(math.floor(value))  # integral: floor is the value


def _gamma(obj: Any, gamma: Any) -> float:
    gamma = float(gamma)
    if not math.isfinite(gamma) or gamma < 0:
        raise ValueError(f"{_name(obj)}: gamma must be finite and >= 0 to "
                         f"give rates >= 0, got {gamma!r}")
    return gamma


def _step_lr(obj) -> Schedule:
    # lr(k) = base * gamma ** (k // step_size)
    base = _one(obj, "base_lrs", obj.base_lrs)
    size = _int(obj, "step_size", obj.step_size, 1)
    gamma = _gamma(obj, obj.gamma)
    if gamma == 0:
        return unisched.PiecewiseConstantScheduler([size - 1], [base, 0.0])
    return unisched.ExponentialScheduler(base, gamma, step=size,
                                         staircase=True)


def _multi_step_lr(obj) -> Schedule:
    # lr(k) = base * gamma ** #{m in milestones : m <= k} (with repeats):
    # a milestone m first affects update m, i.e. the boundary is m - 1
    # in unisched's "switch after the boundary" convention.
    base = _one(obj, "base_lrs", obj.base_lrs)
    gamma = _gamma(obj, obj.gamma)
    ms = sorted(obj.milestones.elements())
    if any(m < 0 or int(m) != m for m in ms):
        raise ValueError(f"{_name(obj)}: milestones must be integers >= 0, "
                         f"got {ms}")
    ms = [int(m) for m in ms]
    if not ms:
        return unisched.ConstantScheduler(base)
    unique = sorted(set(ms))
    if len(unique) == len(ms) and ms[0] >= 2 and gamma <= 1:
        return unisched.MultiFactorScheduler([m - 1 for m in ms],
                                             factor=gamma, base_lr=base)
    counts = Counter(ms)
    first = [m for m in unique if m >= 1]
    done = counts[0]
    values = [base * gamma ** done]
    for m in first:
        done += counts[m]
        values.append(base * gamma ** done)
    if not first:
        return unisched.ConstantScheduler(values[0])
    return unisched.PiecewiseConstantScheduler([m - 1 for m in first],
                                               values)


def _exponential_lr(obj) -> Schedule:
    base = _one(obj, "base_lrs", obj.base_lrs)
    gamma = _gamma(obj, obj.gamma)
    if gamma == 0:
        return unisched.PiecewiseConstantScheduler([0], [base, 0.0])
    return unisched.ExponentialScheduler(base, gamma)


def _cosine_annealing_lr(obj, horizon: int | None) -> Schedule:
    # PyTorch's recursion equals eta_min + (base - eta_min)
    # * (1 + cos(pi k / T_max)) / 2 for EVERY k: past T_max it rises
    # again (period 2 T_max) instead of staying at eta_min.
    base = _one(obj, "base_lrs", obj.base_lrs)
    t_max = _int(obj, "T_max", obj.T_max, 1)
    eta = float(obj.eta_min)
    if eta < 0:
        raise ValueError(f"{_name(obj)}: eta_min must be >= 0, got {eta}")
    # within T_max + 1 updates the pinned decay reads as d2l's cosine
    periodic = horizon is not None and horizon > t_max + 1
    return unisched.CosineScheduler(t_max, base_lr=base, final_lr=eta,
                                    periodic=periodic)


def _polynomial_lr(obj) -> Schedule:
    # lr(k) = base * (1 - min(k, T) / T) ** power
    base = _one(obj, "base_lrs", obj.base_lrs)
    total = _int(obj, "total_iters", obj.total_iters, 1)
    power = float(obj.power)
    if not math.isfinite(power) or power < 0:
        raise ValueError(f"{_name(obj)}: power must be >= 0 to convert, "
                         f"got {power!r}")
    if power == 0:
        return unisched.ConstantScheduler(base)
    return unisched.PolyScheduler(total, base_lr=base, pwr=power,
                                  final_lr=0.0)


def _linear_lr(obj) -> Schedule:
    # lr(k) = base * (s + (e - s) * min(k, T) / T)
    base = _one(obj, "base_lrs", obj.base_lrs)
    s, e = float(obj.start_factor), float(obj.end_factor)
    total = _int(obj, "total_iters", obj.total_iters, 0)
    if total == 0 or s == e:
        # total_iters=0: PyTorch applies start_factor once and never
        # moves again.
        return unisched.ConstantScheduler(base * s)
    if s < e:
        return unisched.warmup(unisched.ConstantScheduler(base * e), total,
                               base * s, "linear")
    return unisched.PolyScheduler(total, base_lr=base * s, pwr=1.0,
                                  final_lr=base * e)


def _constant_lr(obj) -> Schedule:
    # lr(k) = base * factor for k < total_iters, base afterwards
    base = _one(obj, "base_lrs", obj.base_lrs)
    factor = float(obj.factor)
    total = _int(obj, "total_iters", obj.total_iters, 0)
    if total == 0:
        return unisched.ConstantScheduler(base * factor)
    if factor == 0:
        raise ValueError(f"{_name(obj)}: factor=0 makes PyTorch divide by "
                         f"zero at update total_iters={total}")
    if factor == 1:
        return unisched.ConstantScheduler(base)
    return unisched.PiecewiseConstantScheduler([total - 1],
                                               [base * factor, base])


def _momentums(obj) -> tuple[dict[str, Any], bool]:
    """The momentum arguments and ``cycle_momentum``: PyTorch with
    ``cycle_momentum=False`` leaves momentum alone, and so does a bound
    schedule converted with ``cycle_momentum=False``."""
    if not obj.cycle_momentum:
        return {}, False
    if hasattr(obj, "base_momentums"):
        bases, maxes = obj.base_momentums, obj.max_momentums
    else:
        groups = obj.optimizer.param_groups
        bases = [g["base_momentum"] for g in groups]
        maxes = [g["max_momentum"] for g in groups]
    return {"base_momentum": ("base_momentum",
                              _one(obj, "base_momentum", bases)),
            "max_momentum": ("max_momentum",
                             _one(obj, "max_momentum", maxes))}, True


def _cyclic_lr(obj) -> Schedule:
    if obj._scale_fn_custom is not None:
        raise ValueError(f"{_name(obj)} with a custom scale_fn runs "
                         f"arbitrary code; only the modes 'triangular', "
                         f"'triangular2' and 'exp_range' convert")
    base = _one(obj, "base_lrs", obj.base_lrs)
    peak = _one(obj, "max_lrs", obj.max_lrs)
    total, ratio = float(obj.total_size), float(obj.step_ratio)
    up = round(total * ratio)
    down = round(total) - up
    if total != round(total) or up < 1 or down < 1 or \
            up / float(up + down) != ratio:
        raise ValueError(f"{_name(obj)}: step sizes must be integers >= 1 "
                         f"to convert, got a cycle of {total} steps with "
                         f"up ratio {ratio}")
    gamma = float(obj.gamma) if obj.mode == "exp_range" else 1.0
    moms, cycle = _momentums(obj)
    return _build(obj, unisched.CyclicScheduler, {
        "base_lr": ("base_lr", base), "max_lr": ("max_lr", peak),
        "step_size_up": ("step_size_up", up),
        "step_size_down": ("step_size_down", None if up == down else down),
        "mode": ("mode", obj.mode), "gamma": ("gamma", gamma), **moms},
        cycle_momentum=cycle)


def _one_cycle_lr(obj) -> Schedule:
    groups = obj.optimizer.param_groups
    initial = _one(obj, "initial_lr", [g["initial_lr"] for g in groups])
    peak = _one(obj, "max_lr", [g["max_lr"] for g in groups])
    low = _one(obj, "min_lr", [g["min_lr"] for g in groups])
    total = int(obj.total_steps)
    phases = obj._schedule_phases
    anneal = getattr(obj, "_anneal_func_type", None)
    if anneal not in ("cos", "linear"):
        raise ValueError(f"{_name(obj)}: unknown annealing {anneal!r}")
    # PyTorch keeps pct_start only as the first phase's end,
    # float(pct_start * total) - 1; find the float that reproduces it.
    end = phases[0]["end_step"]
    pct = (end + 1.0) / total
    for candidate in (pct, math.nextafter(pct, 0.0),
                      math.nextafter(pct, 1.0)):
        if float(candidate * total) - 1 == end:
            pct = candidate
            break
    moms, cycle = _momentums(obj)
    return _build(obj, unisched.OneCycleScheduler, {
        "max_lr": ("max_lr", peak), "max_update": ("total_steps", total),
        "pct_start": ("pct_start", pct),
        "div_factor": ("div_factor", peak / initial if initial else
                       math.inf),
        "final_div_factor": ("final_div_factor",
                             initial / low if low else math.inf), **moms},
        anneal=anneal, three_phase=len(phases) == 3, style="torch",
        cycle_momentum=cycle)


def _warm_restarts(obj) -> Schedule:
    base = _one(obj, "base_lrs", obj.base_lrs)
    return _build(obj, unisched.CosineRestartsScheduler, {
        "first_cycle": ("T_0", _int(obj, "T_0", obj.T_0, 1)),
        "base_lr": ("lr", base), "final_lr": ("eta_min", obj.eta_min),
        "cycle_mult": ("T_mult", float(_int(obj, "T_mult", obj.T_mult,
                                            1)))})


def _lambda_lr(obj) -> Schedule:
    # imported on use: the transformers table needs native._one
    from .hf import lambda_lr
    return lambda_lr(obj)


_CONVERTERS = {
    _tl.StepLR: _step_lr, _tl.MultiStepLR: _multi_step_lr,
    _tl.ExponentialLR: _exponential_lr,
    _tl.PolynomialLR: _polynomial_lr, _tl.LinearLR: _linear_lr,
    _tl.ConstantLR: _constant_lr, _tl.CyclicLR: _cyclic_lr,
    _tl.OneCycleLR: _one_cycle_lr,
    _tl.CosineAnnealingWarmRestarts: _warm_restarts,
    _tl.LambdaLR: _lambda_lr,
}


def from_native(obj: Any, *, horizon: int | None = None) -> Schedule:
    """The unisched schedule whose value at step ``k`` is the rate
    PyTorch's scheduler ``obj`` gives update ``k`` (its ``last_epoch ==
    k``, ``scheduler.step()`` after ``optimizer.step()``).

    The conversion reads only hyperparameters, never the position: a
    scheduler already stepped gives the whole schedule from step 0.  The
    result counts ``scheduler.step()`` calls, like PyTorch: for a scheduler
    stepped once per epoch use ``epochwise(result, steps_per_epoch)`` (or
    ``bind(result, opt, unit='epoch')``).

    ==============================  =======================================
    PyTorch                         unisched
    ==============================  =======================================
    StepLR                          ExponentialScheduler(staircase=True)
    MultiStepLR                     MultiFactorScheduler(step=m - 1) or
                                    PiecewiseConstantScheduler (repeated
                                    milestones, milestones 0/1, gamma > 1)
    ExponentialLR                   ExponentialScheduler
    CosineAnnealingLR               CosineScheduler (see below)
    PolynomialLR                    PolyScheduler(final_lr=0)
    LinearLR                        warmup(constant) or PolyScheduler(pwr=1)
    ConstantLR                      PiecewiseConstantScheduler
    CyclicLR                        CyclicScheduler (incl. momentum)
    OneCycleLR                      OneCycleScheduler(style='torch')
    CosineAnnealingWarmRestarts     CosineRestartsScheduler
    LambdaLR of transformers        its named schedule (``hf_cosine``...,
                                    :mod:`.hf`)
    LRScheduler (this module's)     its schedule
    ==============================  =======================================

    Types are matched exactly: other classes (``ReduceLROnPlateau``,
    subclasses of the above) raise ``TypeError``
    listing the supported ones; ``SequentialLR`` / ``ChainedScheduler``
    convert where :data:`.composite.COMPOSITE` has a converter.  What a
    supported type holds but no schedule can express raises
    ``ValueError`` naming the class, the attribute and the value: param
    groups with different base rates (the message gives the
    multipliers), ``CyclicLR`` with a custom ``scale_fn``, non-integer
    step sizes, a value the unisched schedule refuses (say
    ``CyclicLR(max_momentum=5)``), a ``LambdaLR`` whose ``lr_lambda`` is
    not one of ``transformers``' schedule functions (code that would have
    to run to be read).

    ``CosineAnnealingLR`` equals ``CosineScheduler(T_max, base, eta_min)``
    for ``k <= T_max``; after ``T_max`` PyTorch's rate rises again
    (period ``2 T_max``) while ``CosineScheduler`` stays at ``eta_min``.
    Pass ``horizon`` (a number of updates) past ``T_max + 1`` to get
    ``CosineScheduler(..., periodic=True)``, equal to PyTorch at every
    update.
    ``OneCycleLR`` is equal on the ``total_steps`` updates it allows
    (PyTorch raises after that).  ``CyclicLR`` / ``OneCycleLR`` carry
    their momentum behaviour: with ``cycle_momentum=True`` the result's
    ``momentum`` is their cycle, with ``False`` it is built with
    ``cycle_momentum=False``, so ``bind`` leaves momentum alone as they
    do.

    Args:
        obj: a PyTorch scheduler.
        horizon: only for ``CosineAnnealingLR``: the number of updates
            over which the result must equal PyTorch past ``T_max``.

    >>> import torch
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1)
    >>> s = from_native(torch.optim.lr_scheduler.MultiStepLR(
    ...     opt, milestones=[3], gamma=0.5))
    >>> s, s(2), s(3)
    (MultiFactorScheduler(step=[2], factor=0.5, base_lr=1.0), 1.0, 0.5)
    """
    if horizon is not None:
        horizon = check.integer("horizon", horizon, 1)
    kind = type(obj)
    if kind is LRScheduler:
        if obj._factors_now is not None and \
                any(f != 1.0 for f in obj._factors_now):
            raise ValueError(f"this LRScheduler scales its groups by "
                             f"{obj._factors_now}; its schedule is "
                             f"obj.schedule")
        return obj.schedule
    if kind in COMPOSITE:
        # children convert with the same horizon (a CosineAnnealingLR
        # child rises again past its T_max)
        return COMPOSITE[kind](
            obj, lambda child: from_native(child, horizon=horizon))
    if kind is _tl.CosineAnnealingLR:
        return _cosine_annealing_lr(obj, horizon)
    if kind in _CONVERTERS:
        return _CONVERTERS[kind](obj)
    names = sorted([k.__name__ for k in (*_CONVERTERS, *COMPOSITE)]
                   + ["CosineAnnealingLR", "LRScheduler (unisched's)"])
    raise TypeError(
        f"from_native converts exactly these types (not subclasses): "
        f"{', '.join(names)}; got {kind.__module__}.{kind.__qualname__}"
        f" (code-defined, metric-driven schedulers and subclasses are "
        f"not pure functions of the step; for ReduceLROnPlateau use "
        f"unisched.ReduceOnPlateau)")
