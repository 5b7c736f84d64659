"""Discriminative learning rates: fastai's ``lr`` / ``slice`` expansion
into one rate (or multiplier) per parameter group, and ``freeze_to``."""
from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence

import numpy as np

from .. import _validate as check
from ..base import Schedule
from ..combinators import Scale

# ------------------------------------------- discriminative learning rates

def even_mults(start: float, stop: float, n: int) -> list[float]:
    """fastcore's ``even_mults``: ``n`` rates from ``start`` to ``stop``
    with a constant ratio::

        step = (stop / start) ** (1 / (n - 1));  rates[i] = start * step**i

    (``[stop]`` when ``n == 1``).

    >>> [round(v, 12) for v in even_mults(1e-5, 1e-3, 3)]
    [1e-05, 0.0001, 0.001]
    """
    start = check.positive("start", start)
    stop = check.positive("stop", stop)
    n = check.integer("n", n, 1)
    if n == 1:
        return [stop]
    step = (stop / start) ** (1 / (n - 1))
    return [start * step ** i for i in range(n)]


def lr_range(lr: float | slice | Sequence[float], n_groups: int
             ) -> list[float]:
    """One learning rate per parameter group, as fastai expands ``lr``
    (``Optimizer.set_hyper``; groups ordered from the input layers to the
    head)::

        lr (a number)   -> [lr] * n_groups
        slice(hi)       -> [hi / 10] * (n_groups - 1) + [hi]
        slice(lo, hi)   -> even_mults(lo, hi, n_groups)  (geometric)
        [r_0, ..., r_n-1] -> as given (a 1-element list is repeated)

    fastai reads ``slice(0, hi)`` as ``slice(hi)``; here every rate must
    be > 0 and ``lo <= hi``.

    Args:
        lr: the rate(s); units of a learning rate.
        n_groups: number of parameter groups (>= 1).

    >>> lr_range(slice(1e-3), 3)
    [0.0001, 0.0001, 0.001]
    >>> [round(v, 12) for v in lr_range(slice(1e-6, 1e-4), 3)]
    [1e-06, 1e-05, 0.0001]
    """
    n_groups = check.integer("n_groups", n_groups, 1)
    if isinstance(lr, slice):
        if lr.step is not None:
            raise ValueError(f"lr slice must not have a step, got {lr!r}")
        if lr.stop is None:
            raise ValueError(f"lr slice needs a stop (the last group's "
                             f"rate), got {lr!r}")
        hi = check.positive("lr.stop", lr.stop)
        if lr.start is None:
            return [hi / 10] * (n_groups - 1) + [hi]
        lo = check.positive("lr.start", lr.start)
        if lo > hi:
            raise ValueError(f"lr slice must have start <= stop, got {lr!r}")
        return even_mults(lo, hi, n_groups)
    if isinstance(lr, (list, tuple, np.ndarray)):
        rates = [check.positive(f"lr[{i}]", v) for i, v in enumerate(lr)]
        if len(rates) == 1:
            return rates * n_groups
        if len(rates) != n_groups:
            raise ValueError(f"lr has {len(rates)} rates for {n_groups} "
                             f"parameter groups; give 1 or {n_groups}")
        return rates
    if isinstance(lr, str):
        raise TypeError(f"lr must be a number, a slice or a list of rates, "
                        f"got {lr!r}")
    return [check.positive("lr", lr)] * n_groups


def multipliers(lr: float | slice | Sequence[float], n_groups: int
                ) -> list[float]:
    """Per-group factors relative to the last group: ``lr_range(lr,
    n_groups)[i] / lr_range(lr, n_groups)[-1]``.  A schedule peaking at
    the last group's rate, multiplied by ``multipliers[i]``, is group
    ``i``'s schedule (see :func:`group_schedules`).

    >>> multipliers(slice(1e-3), 3)
    [0.1, 0.1, 1.0]
    """
    rates = lr_range(lr, n_groups)
    return [r / rates[-1] for r in rates]


def group_schedules(schedule: Schedule, lr: float | slice | Sequence[float],
                    n_groups: int) -> list[Schedule]:
    """One schedule per parameter group: ``Scale(schedule, m_i)`` with
    ``m_i = multipliers(lr, n_groups)[i]`` (the last group, ``m = 1``,
    gets ``schedule`` itself).  fastai's ``fit_one_cycle(lr_max=slice(lo,
    hi))`` is ``group_schedules(one_cycle(hi, steps), slice(lo, hi), n)``
    (equal to rounding: fastai divides each group's peak, this scales the
    last group's curve).  Momentum is shared by all groups.

    >>> from unisched import ConstantScheduler
    >>> [s(0) for s in group_schedules(ConstantScheduler(1.0),
    ...                                slice(1.0), 3)]
    [0.1, 0.1, 1.0]
    """
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a unisched schedule, "
                        f"got {schedule!r}")
    return [schedule if m == 1.0 else Scale(schedule, m)
            for m in multipliers(lr, n_groups)]


def trainable_groups(n_groups: int, freeze_to: int = -1) -> list[bool]:
    """Which parameter groups train after fastai's ``freeze_to(n)``:
    groups ``[n:]`` (Python slicing, so ``-1`` is the head only) train,
    the others are frozen.  ``freeze()`` is ``freeze_to(-1)`` (fastai
    requires more than one group), ``unfreeze()`` is ``freeze_to(0)``.
    Freezing every group warns, as fastai does.

    >>> trainable_groups(3), trainable_groups(3, 0), trainable_groups(3, 1)
    ([False, False, True], [True, True, True], [False, True, True])
    """
    n_groups = check.integer("n_groups", n_groups, 1)
    if isinstance(freeze_to, (bool, np.bool_)) or \
            not isinstance(freeze_to, numbers.Integral):
        raise TypeError(f"freeze_to must be an integer, got {freeze_to!r}")
    first = int(freeze_to) if freeze_to >= 0 else \
        max(n_groups + int(freeze_to), 0)
    if first >= n_groups:
        warnings.warn(f"freezing {first} groups of {n_groups}: the whole "
                      f"model is frozen", stacklevel=2)
    return [i >= first for i in range(n_groups)]
