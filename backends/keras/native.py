"""Convert Keras' own schedules into the equal unisched schedule.
"""
from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops

import unisched
from unisched.base import Schedule

from .._contract import convert_exact
from .schedule import (
    LearningRateSchedule,
)

# -- Keras' own schedules -> unisched -----------------------------------------

def _number(name: str, value: Any) -> float:
    try:
        out = float(np.asarray(ops.convert_to_numpy(value)))
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
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
    # Keras' values are the core's rates.
    return unisched.PiecewiseConstantScheduler([int(b) for b in bounds],
                                               rates=values)


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
    InverseTime decays (folded into the factor).  Keras' schedules have no
    momentum, so the converted ones have none.

    Raises:
        TypeError: ``obj`` is not exactly one of these types (a subclass
            may compute anything); the message lists them.
        ValueError: it is, but cannot be converted exactly
            (``PolynomialDecay(cycle=True)``, negative powers, alphas or
            rates, fractional periods or boundaries, ``t_mul < 1``...);
            the message names the Keras class, the attribute, the value
            and the reason.

    >>> import keras
    >>> from_native(keras.optimizers.schedules.CosineDecay(0.1, 100,
    ...                                                    alpha=0.1))
    CosineScheduler(max_update=100, base_lr=0.1, final_lr=0.010000000000000002)
    """
    # Name the Keras object with its config: the core's message names the
    # unisched argument the value landed in.
    return convert_exact(obj, _converters(),
                         lambda o: f"{type(o).__name__}({_config(o)})")


def _config(obj: Any) -> Any:
    try:
        return obj.get_config()
    except Exception:   # a half-built object: its class says enough
        return "..."


def _converters() -> dict[type, Any]:
    """Exact type -> converter (``type(obj) is X``: a subclass may
    compute anything)."""
    sch = keras.optimizers.schedules
    return {
        LearningRateSchedule: lambda o: o.schedule,
        sch.ExponentialDecay:
            lambda o: _from_exponential(o, unisched.ExponentialScheduler),
        sch.InverseTimeDecay:
            lambda o: _from_exponential(o, unisched.InverseTimeScheduler),
        sch.PiecewiseConstantDecay: _from_piecewise,
        sch.PolynomialDecay: _from_polynomial,
        sch.CosineDecayRestarts: _from_restarts,
        sch.CosineDecay: _from_cosine,
    }
