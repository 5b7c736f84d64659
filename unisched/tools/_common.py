"""Helpers shared by the finder and the recorder: loss checks, curves,
JSON-safe floats and the lazy pyplot import."""
from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from types import ModuleType
from typing import Any

import numpy as np

#: a finder curve (rates, losses): float64, one value per update
Floats = np.ndarray[Any, np.dtype[np.float64]]

# fastai's LRFinder stops once the smoothed loss exceeds this multiple of
# the best smoothed loss seen so far.
DIVERGENCE_FACTOR = 4.0
# fastai's ``lr_find`` drops the last 5 recorded points before suggesting
# and ``plot_lr_find`` does not draw them (the curve there is already
# exploding); the first ``num_it // 10`` points are dropped as well.
SKIP_END = 5
STOP_REASONS = ("num_it", "diverged", "non-finite")


# ---------------------------------------------------------------- helpers

def _loss(name: str, value: Any) -> float:
    """A loss as a Python float; NaN and infinities pass (the finder must
    see them), bools, strings and non-numbers do not."""
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item()
    if not isinstance(value, numbers.Real):
        try:
            value = float(value)  # framework scalars with __float__
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a real number, got {value!r} "
                            f"({type(value).__name__})") from None
    return float(value)


class TooFewPoints(ValueError):
    """A suggestion rule got a curve too short for it (e.g. a sweep that
    diverged early)."""


def _curve(lrs: Any, losses: Any, minimum_points: int, method: str
           ) -> tuple[Floats, Floats]:
    """Validate a finder curve for a suggestion rule: 1-D, equal lengths,
    positive increasing rates, finite losses, enough points."""
    lrs = np.asarray(lrs, dtype=np.float64)
    losses = np.asarray(losses, dtype=np.float64)
    if lrs.ndim != 1 or losses.ndim != 1:
        raise ValueError(f"{method}: lrs and losses must be 1-D, got shapes "
                         f"{lrs.shape} and {losses.shape}")
    if lrs.shape != losses.shape:
        raise ValueError(f"{method}: lrs and losses must have the same "
                         f"length, got {lrs.size} and {losses.size}")
    if lrs.size < minimum_points:
        raise TooFewPoints(f"{method} needs at least {minimum_points} "
                         f"point(s), got {lrs.size}; run the finder for "
                         f"more updates or skip fewer points")
    if not np.all(np.isfinite(lrs)) or np.any(lrs <= 0):
        raise ValueError(f"{method}: lrs must be finite and > 0, "
                         f"got {lrs!r}")
    if np.any(np.diff(lrs) <= 0):
        raise ValueError(f"{method}: lrs must be strictly increasing")
    if not np.all(np.isfinite(losses)):
        bad = int(np.flatnonzero(~np.isfinite(losses))[0])
        raise ValueError(f"{method}: losses must be finite, got "
                         f"losses[{bad}]={losses[bad]!r}; suggest() cuts "
                         f"the curve at its first NaN")
    return lrs, losses


def _encode_float(value: float | None) -> float | str | None:
    """JSON has no NaN or infinities: store them as strings."""
    if value is None or math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else (
        "Infinity" if value > 0 else "-Infinity")


def _decode_float(value: Any) -> float | None:
    if value is None:
        return None
    return float(value)  # float("NaN"), float("-Infinity") work


def _encode_floats(values: Iterable[float | None]
                   ) -> list[float | str | None]:
    return [_encode_float(None if v is None else float(v)) for v in values]


def _decode_floats(values: Iterable[Any]) -> list[float | None]:
    return [_decode_float(v) for v in values]


def _pyplot() -> ModuleType:
    from ..plot import _pyplot as pyplot
    return pyplot()
