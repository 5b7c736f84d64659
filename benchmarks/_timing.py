"""Timing shared by the benchmark scripts (run them from any directory:
Python puts this folder on the path of the script it runs)."""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    """The fastest of ``repeats`` runs of ``fn()``, in seconds: on a
    shared machine the minimum is the least disturbed measurement."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def interleaved(runs: dict[str, Callable[[], object]], repeats: int,
                sync: Callable[[], object] = lambda: None
                ) -> dict[str, np.ndarray]:
    """Seconds of each run, ``repeats`` times, after one warm-up each;
    the order rotates so that no variant always runs first.  ``sync``
    waits for the framework's pending work inside each timing."""
    names = list(runs)
    times: dict[str, list[float]] = {name: [] for name in names}
    for fn in runs.values():             # warm-up: graphs, compilations
        fn()
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            start = time.perf_counter()
            runs[name]()
            sync()
            times[name].append(time.perf_counter() - start)
    return {name: np.array(t) for name, t in times.items()}


def print_speeds(times: dict[str, np.ndarray], images: int) -> None:
    """Images/s of each run (best, median), then the first run's speed
    over each other one's (best of each, median of paired repeats)."""
    names = list(times)
    width = max(len(n) for n in names) + 4
    for name in names:
        print(f"{name:<{width}}{images / times[name].min():8.0f} images/s "
              f"(best), {images / np.median(times[name]):6.0f} (median)")
    ours = times[names[0]]
    for name in names[1:]:
        paired = np.median(times[name] / ours)
        print(f"ours / {name:<{width}}"
              f"{times[name].min() / ours.min():.3f}x speed (best of "
              f"each), {paired:.3f}x (median of paired repeats)")
