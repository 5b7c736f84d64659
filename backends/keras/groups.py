"""Discriminative (per-group) learning rates in Keras with one optimizer
per group (a ``MultiOptimizer``).

Superseded by ``bind(sched, optimizer, multipliers=...)`` (one optimizer,
a factor per variable); kept until the trainer stops using it.
"""
from __future__ import annotations

import math
import numbers
import re
from typing import Any, Callable, Mapping

import keras
import unisched
from unisched.base import Schedule

from .adapter import bind
from .schedule import (
    LearningRateSchedule,
    _schedule,
)

# -- discriminative (per-group) learning rates ------------------------------

def group_optimizer(sched: Schedule | str,
                    make_optimizer: Callable[[LearningRateSchedule], Any],
                    multipliers: Mapping[str, float],
                    default_multiplier: float = 1.0, *,
                    momentum: Any = True
                    ) -> keras.optimizers.MultiOptimizer:
    """Discriminative learning rates: variables whose ``path`` matches
    pattern ``p`` (``re.fullmatch``, Keras' OptimizerMap rules) train with
    ``multipliers[p] * sched(k)``, the others with ``default_multiplier *
    sched(k)``.

    Each group gets its own optimizer from ``make_optimizer(lr)``; Keras'
    ``MultiOptimizer`` routes every variable to its group's optimizer and
    every inner optimizer steps at every update, so their iteration counts
    stay equal.  For optimizers whose update is elementwise (SGD, Adam,
    AdamW, RMSprop, ...) this equals a per-variable rate multiplier
    exactly -- PyTorch's parameter groups.  Scaling gradients instead is
    not the same for Adam (it is invariant to gradient scale).  Clipping
    by ``global_clipnorm`` would run per group; use ``clipnorm``.

    Args:
        sched: the shared schedule (or a spec string), stateless.
        make_optimizer: called with each group's learning rate, returns a
            new Keras optimizer, e.g. ``lambda lr: keras.optimizers.Adam(
            lr, weight_decay=1e-4)``.
        multipliers: variable-path pattern -> rate multiplier (>= 0).
        default_multiplier: for variables matching no pattern.
        momentum: as in :func:`bind`, for every group.

    >>> import keras
    >>> opt = group_optimizer("cosine(max_update=100, base_lr=0.1)",
    ...                       lambda lr: keras.optimizers.SGD(lr),
    ...                       {"backbone/.*": 0.1})
    >>> [round(float(o.learning_rate), 6) for o in opt.optimizers]
    [0.01, 0.1]
    """
    sched = _schedule(sched)
    if not isinstance(multipliers, Mapping):
        raise TypeError(f"multipliers must be a dict pattern -> float, "
                        f"got {multipliers!r}")
    if not callable(make_optimizer):
        raise TypeError(f"make_optimizer must be callable, "
                        f"got {make_optimizer!r}")
    made: list[Any] = []

    def build(factor: Any, label: str) -> Any:
        if not isinstance(factor, numbers.Real) or isinstance(factor, bool) \
                or not math.isfinite(factor) or factor < 0:
            raise ValueError(f"multiplier for {label} must be a finite "
                             f"number >= 0, got {factor!r}")
        group = sched if factor == 1 else unisched.scale(sched, factor)
        opt = make_optimizer(LearningRateSchedule(group))
        if not isinstance(opt, keras.optimizers.Optimizer) or any(
                opt is o for o in made):
            raise TypeError(f"make_optimizer must return a new "
                            f"keras.optimizers.Optimizer per call, got "
                            f"{opt!r}")
        made.append(opt)
        bind(group, opt, momentum="auto" if momentum is True else momentum)
        return opt

    for pattern in multipliers:
        if not isinstance(pattern, str):
            raise TypeError(f"multipliers keys must be strings (variable "
                            f"path patterns), got {pattern!r}")
        re.compile(pattern)
    table = keras.optimizers.OptimizerMap(
        build(default_multiplier, "the default group"))
    for pattern, factor in multipliers.items():
        table[pattern] = build(factor, repr(pattern))
    return keras.optimizers.MultiOptimizer(table)
