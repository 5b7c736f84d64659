"""fastai's learning-rate suggestion rules over a finder curve:
``minimum``, ``steep``, ``valley`` and ``slide``."""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from .. import _validate as check
from ._common import Floats, TooFewPoints, _curve

# ----------------------------------------------------- suggestion rules

class Suggestion(NamedTuple):
    """One suggested learning rate and the point fastai marks for it on
    the finder plot.  ``mark_lr == lr`` except for :func:`minimum`, which
    suggests a tenth of the rate it marks."""

    lr: float
    mark_lr: float
    mark_loss: float


def minimum(lrs: Any, losses: Any) -> Suggestion:
    """fastai's ``minimum``: a tenth of the rate at the lowest loss::

        lr = lrs[argmin(losses)] / 10      (marked at the minimum itself)

    >>> minimum([1e-3, 1e-2, 1e-1], [2.0, 1.0, 3.0])
    Suggestion(lr=0.001, mark_lr=0.01, mark_loss=1.0)
    """
    lrs, losses = _curve(lrs, losses, 1, "minimum")
    i = int(np.argmin(losses))
    return Suggestion(float(lrs[i] / 10), float(lrs[i]), float(losses[i]))


def steep(lrs: Any, losses: Any) -> Suggestion:
    """fastai's ``steep``: the rate where the loss falls fastest against
    ``log(lr)``::

        slope_i = (losses[i+1] - losses[i]) / (ln lrs[i+1] - ln lrs[i])
        lr = lrs[argmin(slope)]            (left end of the steepest step)

    >>> steep([1e-3, 1e-2, 1e-1, 1.0], [3.0, 2.9, 1.0, 4.0])
    Suggestion(lr=0.01, mark_lr=0.01, mark_loss=2.9)
    """
    lrs, losses = _curve(lrs, losses, 2, "steep")
    slope = np.diff(losses) / np.diff(np.log(lrs))
    i = int(np.argmin(slope))
    return Suggestion(float(lrs[i]), float(lrs[i]), float(losses[i]))


def _longest_valley(losses: Floats) -> tuple[int, int]:
    """fastai's longest-valley search.  ``run[i]`` is the length of the
    longest strictly decreasing subsequence ending at ``i``::

        run[i] = 1 + max(run[j] for j < i if losses[j] > losses[i])

    (1 if there is none).  The valley ends at the first ``i`` with the
    largest ``run`` and starts at ``end - run[end]``: one index before its
    first point, -1 when that point is the first one.  With no decreasing
    pair at all the valley is ``(0, 0)``.  (fastai updates
    ``max_start`` inside its inner loop, but ``run[i]`` can exceed the
    best so far only by reaching ``best + 1``, its largest value, so the
    start it keeps is always this one.)"""
    n = losses.size
    run = np.ones(n, dtype=np.int64)
    for i in range(1, n):
        higher = losses[:i] > losses[i]
        if higher.any():
            run[i] = 1 + int(run[:i][higher].max())
    end = int(np.argmax(run))
    if end == 0:  # no decreasing pair at all: fastai keeps (0, 0)
        return 0, 0
    return end - int(run[end]), end


def valley(lrs: Any, losses: Any) -> Suggestion:
    """fastai's ``valley``: a rate about two thirds into the longest
    valley (longest strictly decreasing run of losses, see
    ``_longest_valley``)::

        sections = (end - start) / 3
        i = start + int(sections) + int(sections / 2)
        lr = lrs[i]

    ``start`` can be -1 (fastai's off-by-one), which for a valley of two
    points gives ``i = -1``: the last point, as Python indexing in fastai
    does.

    >>> lrs = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0]
    >>> valley(lrs, [6.0, 5.0, 4.5, 4.0, 2.0, 1.0, 3.0])  # run 6, start -1
    Suggestion(lr=0.001, mark_lr=0.001, mark_loss=4.5)
    """
    lrs, losses = _curve(lrs, losses, 1, "valley")
    start, end = _longest_valley(losses)
    sections = (end - start) / 3
    i = start + int(sections) + int(sections / 2)
    return Suggestion(float(lrs[i]), float(lrs[i]), float(losses[i]))


def slide(lrs: Any, losses: Any, lr_diff: int = 15, thresh: float = 0.005,
          adjust_value: float = 1.0) -> Suggestion:
    """fastai's ``slide`` (interval slide rule).  With ``g =
    numpy.gradient(losses)`` (per point, not per log-rate), a window
    ``[l, r] = [n-1-lr_diff, n-1]`` slides left one point at a time while
    ``|g[r] - g[l]| > thresh`` and ``l >= 0``; the suggestion is the rate
    at the last left end that still differed (``lrs[n-1-lr_diff]`` when
    the first window already agrees), times ``adjust_value``.  Its loss is
    interpolated linearly in ``log10(lr)``.

    Args:
        lr_diff: window width in points (>= 1); the curve needs
            ``lr_diff + 1`` points.
        thresh: gradient difference (loss per point) counted as equal.
        adjust_value: factor applied to the rate found.
    """
    lr_diff = check.integer("lr_diff", lr_diff, 1)
    thresh = check.rate("thresh", thresh)
    adjust_value = check.positive("adjust_value", adjust_value)
    lrs, losses = _curve(lrs, losses, lr_diff + 1, "slide")
    grad = np.gradient(losses)
    n = losses.size
    right = n - 1
    left = right - lr_diff
    found = left
    while left >= 0 and abs(grad[right] - grad[left]) > thresh:
        found = left
        left -= 1
        right -= 1
    lr = float(lrs[found]) * adjust_value
    loss = float(np.interp(np.log10(lr), np.log10(lrs), losses))
    return Suggestion(lr, lr, loss)


SUGGESTION_METHODS: dict[str, Callable[..., Suggestion]] = {
    "minimum": minimum, "steep": steep, "valley": valley, "slide": slide}
DEFAULT_SUGGESTIONS = ("minimum", "steep", "valley", "slide")


def _method(method: str | Callable[..., Suggestion]
            ) -> tuple[str, Callable[..., Suggestion]]:
    if isinstance(method, str):
        if method not in SUGGESTION_METHODS:
            raise ValueError(f"unknown suggestion method {method!r}; valid "
                             f"names: {', '.join(SUGGESTION_METHODS)}")
        return method, SUGGESTION_METHODS[method]
    if callable(method):
        inner = method.func if isinstance(method, functools.partial) \
            else method
        return getattr(inner, "__name__", repr(method)), method
    raise TypeError(f"methods must hold names or callables, got {method!r}")


def suggest(lrs: Any, losses: Any,
            methods: Sequence[str | Callable[..., Suggestion]]
            = DEFAULT_SUGGESTIONS, *,
            skip_start: int = 0, skip_end: int = 0,
            skip_short: bool = False) -> dict[str, Suggestion]:
    """Apply suggestion rules to a finder curve, as fastai's ``lr_find``:
    keep ``[skip_start, len - skip_end)``, cut at the first NaN loss,
    then call each rule.  (``LRFinderState.result`` passes fastai's
    ``skip_start = num_it // 10``, ``skip_end = 5``.)

    Args:
        lrs: rate of each update, increasing.
        losses: smoothed loss of each update.
        methods: names from ``SUGGESTION_METHODS`` or callables
            ``f(lrs, losses) -> Suggestion`` (e.g. a ``functools.partial``
            of :func:`slide`; named after the function).
        skip_start, skip_end: points dropped at each end.
        skip_short: leave out a rule the curve is too short for (a sweep
            that diverged early) instead of raising :class:`TooFewPoints`.

    Returns:
        ``{name: Suggestion(lr, mark_lr, mark_loss)}`` in ``methods``
        order.

    >>> lrs = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0]
    >>> losses = [6.0, 5.0, 4.5, 4.0, 2.0, 1.0, 3.0]
    >>> out = suggest(lrs, losses, ["minimum", "valley"])
    >>> {k: v.lr for k, v in out.items()}
    {'minimum': 0.1, 'valley': 0.001}
    """
    lrs = np.asarray(lrs, dtype=np.float64)
    losses = np.asarray(losses, dtype=np.float64)
    if lrs.ndim != 1 or lrs.shape != losses.shape:
        raise ValueError(f"lrs and losses must be 1-D of equal length, got "
                         f"shapes {lrs.shape} and {losses.shape}")
    skip_start = check.integer("skip_start", skip_start, 0)
    skip_end = check.integer("skip_end", skip_end, 0)
    if isinstance(methods, str) or callable(methods):
        methods = [methods]
    named = [_method(m) for m in methods]
    stop = lrs.size - skip_end
    lrs, losses = lrs[skip_start:max(stop, 0)], losses[skip_start:max(stop, 0)]
    nan = np.flatnonzero(np.isnan(losses))
    if nan.size:
        lrs, losses = lrs[:nan[0]], losses[:nan[0]]
    out = {}
    for name, fn in named:
        try:
            out[name] = Suggestion(*fn(lrs, losses))
        except TooFewPoints:
            if not skip_short:
                raise
    return out
