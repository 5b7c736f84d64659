"""One-cycle presets: fastai's or PyTorch's defaults."""
from __future__ import annotations

import inspect
from typing import Any

from .. import _validate as check
from ..cyclic import OneCycleScheduler

# ---------------------------------------------------------- one-cycle

ONE_CYCLE_PRESETS = ("fastai", "torch")


def one_cycle(max_lr: float, total_steps: int, preset: str = "fastai",
              **overrides: Any) -> OneCycleScheduler:
    """A one-cycle schedule with fastai's or PyTorch's defaults.

    ``'fastai'`` is ``fit_one_cycle``: :meth:`OneCycleScheduler.fastai`
    (warm up over the first 25% from ``max_lr / 25``, cosine down to
    ``max_lr / 1e5``, momentum 0.95 -> 0.85 -> 0.95; overrides
    ``pct_start``, ``div``, ``div_final``, ``moms``).  ``'torch'`` is
    ``OneCycleLR``'s defaults (30% warmup from ``max_lr / 25``, down to
    ``max_lr / 25 / 1e4``, momentum 0.95 -> 0.85; overrides are
    :class:`OneCycleScheduler` arguments).

    Args:
        max_lr: peak rate.  For per-group rates use
            :func:`group_schedules` on the result.
        total_steps: updates in the whole cycle.
        preset: ``'fastai'`` or ``'torch'``.

    >>> s = one_cycle(0.1, 100)
    >>> round(s(0), 6), round(s(25), 6), round(s.momentum(25), 6)
    (0.004, 0.1, 0.85)
    """
    check.choice("preset", preset, ONE_CYCLE_PRESETS)
    factory = OneCycleScheduler.fastai if preset == "fastai" \
        else OneCycleScheduler
    params = inspect.signature(factory).parameters
    valid = [p for p in params if p not in ("self", "max_lr", "max_update",
                                            "style")]
    unknown = [k for k in overrides if k not in valid]
    if unknown:
        raise ValueError(f"one_cycle(preset={preset!r}) got unknown "
                         f"argument(s) {', '.join(unknown)}; valid: "
                         f"{', '.join(valid)}")
    return factory(max_lr, total_steps, **overrides)
