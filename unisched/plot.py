"""Schedule plots (matplotlib is imported only when a plot is made)."""
from __future__ import annotations

import os
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import numpy as np

from .base import Schedule


def _pyplot() -> ModuleType:
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError("plotting needs matplotlib: "
                          "pip install 'unisched[plot]'") from err
    return plt


def plot_schedules(schedules: Mapping[str, Schedule],
                   max_update: int | None = None, ax: Any = None,
                   momentum: bool = False, **plot_kwargs: Any) -> Any:
    """Overlay ``{label: schedule}`` curves for steps ``0..max_update-1``
    on ``ax`` (a new figure if None); with ``momentum`` the momentum cycles
    are drawn instead.  ``max_update`` defaults to the longest natural
    horizon among the schedules."""
    if max_update is None:
        horizons = [s.default_horizon() for s in schedules.values()]
        ends = [h for h in horizons if h is not None]
        if not ends:
            raise ValueError("max_update is required for schedules without "
                             "a natural end, got max_update=None")
        max_update = max(ends)
    if isinstance(max_update, bool) or not isinstance(max_update, int) \
            or max_update < 1:
        raise ValueError(f"max_update must be a positive integer, "
                         f"got {max_update!r}")
    if ax is None:
        _, ax = _pyplot().subplots(figsize=(6, 3.5))
    steps = np.arange(max_update)
    for label, sched in schedules.items():
        curve = sched.momentum if momentum else sched
        if curve is None:
            continue
        ax.plot(steps, curve.values(steps), label=label, **plot_kwargs)
    ax.set_xlabel("update")
    ax.set_ylabel("momentum" if momentum else "learning rate")
    ax.grid(True, alpha=0.3)
    if len(schedules) > 1 or any(schedules):
        ax.legend(fontsize="small")
    return ax


def save_figure(fig: Any, path: str) -> None:
    """Write ``fig`` to ``path`` atomically (temp file + rename), in the
    format its extension names (``.png``, ``.svg``, ``.pdf``...); a name
    without an extension gets PNG."""
    from ._io import atomic_path
    ext = os.path.splitext(os.fspath(path))[1][1:].lower() or "png"
    supported = fig.canvas.get_supported_filetypes()
    if ext not in supported:
        raise ValueError(f"cannot write a figure to {os.fspath(path)!r}: "
                         f"format {ext!r} is not one of "
                         f"{', '.join(sorted(supported))}")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=ext, dpi=110, bbox_inches="tight")
