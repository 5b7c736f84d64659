"""Per-update lookups for the framework adapters.

An adapter needs ``sched(k)`` (and its momentum, ...) once per update.
Evaluating the formula each time costs a few microseconds in Python;
:class:`StepCache` evaluates each schedule for ``BLOCK`` steps at once with
``values`` (the same formula, vectorized) and then answers from a list.
Blocks are aligned to multiples of ``BLOCK``, so a run resumed at any step
computes the very same arrays as the uninterrupted run.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ._ops import ScalarOps
from .base import Schedule

BLOCK = 256


class StepCache:
    """Values of several schedules at step ``k``, looked up from aligned
    blocks; stateful schedules (``ReduceOnPlateau``, whose value changes
    with each observation) are evaluated at every lookup.

    ``rows[k - start]`` is the row for ``k`` when ``0 <= k - start <
    BLOCK``; a hot path may read it directly and call :meth:`at` only
    otherwise."""

    def __init__(self, schedules: Iterable[Schedule]) -> None:
        self.schedules = tuple(schedules)
        self._stateful = any(s.stateful for s in self.schedules)
        self.start = -2 * BLOCK
        self.rows: list[tuple[float, ...]] = []

    def at(self, k: int) -> tuple[float, ...]:
        """``(s(k) for s in schedules)`` for a step index ``k >= 0``."""
        i = k - self.start
        if 0 <= i < BLOCK:  # the hot path: one list look-up
            return self.rows[i]
        if self._stateful:
            return tuple(float(s._eval(float(k), ScalarOps))
                         for s in self.schedules)
        start = k - k % BLOCK
        steps = np.arange(start, start + BLOCK)
        self.rows = list(zip(*(s.values(steps).tolist()
                                for s in self.schedules), strict=True))
        self.start = start
        return self.rows[k - start]

    def __getstate__(self) -> dict[str, Any]:
        # Blocks are recomputed on demand: keep pickles (MXNet's
        # save_states, a kvstore server) small.
        return {"schedules": self.schedules}

    def __setstate__(self, state: dict[str, Any]) -> None:
        StepCache.__init__(self, state["schedules"])
