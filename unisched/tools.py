"""fastai-style training tools, framework-neutral (numpy only).

The per-framework glue (``unisched.backends``) runs the training steps;
everything that decides *what* to do lives here, once:

* **Learning-rate finder** (Leslie Smith's range test as fastai runs it):
  :func:`lr_finder_schedule` is the exponential sweep as a real unisched
  schedule, :class:`LRFinderState` smooths the losses and decides when to
  stop, :func:`suggest` (with :func:`minimum`, :func:`steep`,
  :func:`valley`, :func:`slide`) turns the curve into learning rates, and
  :class:`LRFinderResult` holds, plots and serializes the outcome.
* **Discriminative learning rates**: :func:`lr_range` expands ``lr``,
  ``slice(hi)`` or ``slice(lo, hi)`` into one rate per parameter group as
  fastai does; :func:`multipliers` and :func:`group_schedules` scale one
  schedule per group; :func:`trainable_groups` is fastai's ``freeze_to``.
* **Recorder**: per-update rate / momentum / loss, per-epoch metrics,
  atomic JSON and CSV files, fastai's ``plot_sched`` and the d2l chapter's
  three metric curves.
* **One-cycle presets**: :func:`one_cycle` with fastai's or PyTorch's
  defaults.

A glue loop for the finder looks like this (``train_step`` being the
framework's update on the next batch, cycling through the training data
for as many epochs as ``num_it`` needs, returning the loss as a float)::

    state = LRFinderState()            # 1e-7 -> 10 over 100 updates
    while not state.should_stop:
        set_learning_rate(state.next_lr)
        state.update(train_step())
    result = state.result()            # suggestions from fastai's rules
    # ... and restore the weights (and optimizer state) saved before.

The fastai definitions replicated here are those of
``fastai/callback/schedule.py`` (``LRFinder``, ``lr_find``, ``valley``,
``slide``, ``minimum``, ``steep``, ``plot_lr_find``, ``plot_sched``),
``fastai/learner.py`` (``AvgSmoothLoss``, ``Recorder``),
``fastai/optimizer.py`` (``set_hyper`` with a ``slice``, ``freeze_to``)
and ``fastcore.basics.even_mults``.  fastai computes in float32 tensors;
this module computes in float64, so values agree to float32 rounding.
"""
from __future__ import annotations

import csv
import functools
import inspect
import io
import json
import math
import numbers
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

import numpy as np

from . import _validate as check
from ._io import write_text
from .base import Schedule
from .combinators import Scale
from .cyclic import OneCycleScheduler
from .schedules import ExponentialScheduler

__all__ = [
    "lr_finder_schedule", "LossSmoother", "LRFinderState", "LRFinderResult",
    "Suggestion", "minimum", "steep", "valley", "slide", "suggest",
    "SUGGESTION_METHODS", "DEFAULT_SUGGESTIONS",
    "lr_range", "even_mults", "multipliers", "group_schedules",
    "trainable_groups", "Recorder", "one_cycle", "ONE_CYCLE_PRESETS",
]

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
           ) -> tuple[np.ndarray, np.ndarray]:
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


def _encode_floats(values: Iterable[float | None]) -> list:
    return [_encode_float(None if v is None else float(v)) for v in values]


def _decode_floats(values: Iterable[Any]) -> list:
    return [_decode_float(v) for v in values]


def _pyplot():
    from .plot import _pyplot as pyplot
    return pyplot()


# ------------------------------------------------------- LR finder sweep

def lr_finder_schedule(start_lr: float = 1e-7, end_lr: float = 10.0,
                       num_it: int = 100) -> ExponentialScheduler:
    """The learning-rate finder's exponential sweep, as fastai runs it::

        lr(k) = start_lr * (end_lr / start_lr) ** (k / num_it)

    for updates ``k = 0 .. num_it - 1`` (fastai's ``LRFinder`` sets
    ``SchedExp(start_lr, end_lr)`` at ``pos = train_iter / num_it`` before
    each batch).  The first update uses ``start_lr``; the last one uses
    ``end_lr * (start_lr / end_lr) ** (1 / num_it)``: the sweep stops one
    multiplicative step short of ``end_lr``.  It is an
    :class:`~unisched.ExponentialScheduler` (``factor = end_lr /
    start_lr`` per ``num_it`` steps), so any backend can bind it.

    Args:
        start_lr: rate of the first update (> 0).
        end_lr: rate the sweep heads for (> ``start_lr``).
        num_it: number of updates in the sweep (>= 6; fastai silently
            raises smaller values to 6, this refuses them).

    >>> s = lr_finder_schedule(1e-3, 1.0, num_it=10)
    >>> s(0), round(s(5), 12), round(s(9), 12)
    (0.001, 0.031622776602, 0.501187233627)
    """
    start_lr = check.positive("start_lr", start_lr)
    end_lr = check.positive("end_lr", end_lr)
    if end_lr <= start_lr:
        raise ValueError(f"end_lr must be > start_lr={start_lr!r}, "
                         f"got {end_lr!r}")
    num_it = check.integer("num_it", num_it, 6)
    return ExponentialScheduler(start_lr, factor=end_lr / start_lr,
                                step=num_it)


class LossSmoother:
    """fastai's ``AvgSmoothLoss``: an exponential moving average of the
    losses with bias correction::

        avg_n   = beta * avg_(n-1) + (1 - beta) * loss_n,   avg_0 = 0
        value_n = avg_n / (1 - beta ** n)

    The correction makes ``value_1 == loss_1`` instead of ``0.02 *
    loss_1``.  ``value`` is NaN before the first update.

    >>> s = LossSmoother(beta=0.5)
    >>> s.update(2.0), s.update(4.0)
    (2.0, 3.3333333333333335)
    """

    def __init__(self, beta: float = 0.98) -> None:
        self.beta = check.in_range("beta", beta, 0.0, 1.0, high_open=True)
        self.reset()

    def reset(self) -> None:
        """Forget every loss seen."""
        self.count = 0
        self._avg = 0.0

    def update(self, loss: float) -> float:
        """Add one loss; return the smoothed, bias-corrected value."""
        loss = _loss("loss", loss)
        self.count += 1
        self._avg = self.beta * self._avg + (1.0 - self.beta) * loss
        return self.value

    @property
    def value(self) -> float:
        if self.count == 0:
            return math.nan
        return self._avg / (1.0 - self.beta ** self.count)

    def __repr__(self) -> str:
        return (f"LossSmoother(beta={self.beta!r}, count={self.count}, "
                f"value={self.value!r})")


class LRFinderState:
    """The bookkeeping of one learning-rate finder run (fastai's
    ``LRFinder`` callback plus the part of its ``Recorder`` it reads).

    Per update ``k`` the glue sets the rate ``next_lr`` (=
    ``schedule(k)``), trains one batch and calls ``update(loss)``, which
    records ``(lr, loss, smoothed loss)`` and decides whether to stop:

    * ``'diverged'``: with ``stop_div``, the smoothed loss exceeds
      ``4 * best`` smoothed loss so far (best updated first, as fastai);
    * ``'non-finite'``: the loss or its smoothed value is NaN or -inf
      (fastai would keep training on NaN to ``num_it``, but every later
      smoothed value is NaN and its suggestions cut at the first NaN;
      :meth:`result` trims as if the run had continued, so suggestions
      are the same);
    * ``'num_it'``: ``num_it`` updates done.

    ``update`` returns ``should_stop``.  Restoring the weights saved
    before the sweep is the glue's job.

    Args:
        start_lr, end_lr, num_it: the sweep, see :func:`lr_finder_schedule`.
        stop_div: stop when the loss diverges (fastai's default True).
        beta: smoothing of :class:`LossSmoother` (0.98 in fastai).

    >>> state = LRFinderState(1e-4, 1.0, num_it=6)
    >>> for loss in (2.0, 1.0, 9.0):
    ...     stop = state.update(loss)
    >>> state.step, state.should_stop, round(state.smoothed[-1], 6)
    (3, False, 4.04734)
    >>> state.update(500.0), state.stop_reason
    (True, 'diverged')
    """

    def __init__(self, start_lr: float = 1e-7, end_lr: float = 10.0,
                 num_it: int = 100, stop_div: bool = True,
                 beta: float = 0.98) -> None:
        self.schedule = lr_finder_schedule(start_lr, end_lr, num_it)
        self.num_it = self.schedule.step
        self.stop_div = check.boolean("stop_div", stop_div)
        self.smoother = LossSmoother(beta)
        self.best_loss = math.inf
        self.stop_reason: str | None = None
        self._lrs: list[float] = []
        self._losses: list[float] = []
        self._smoothed: list[float] = []

    @property
    def step(self) -> int:
        """Updates recorded so far."""
        return len(self._lrs)

    @property
    def next_lr(self) -> float:
        """The rate for the next update: ``schedule(step)``."""
        return self.schedule(self.step)

    @property
    def should_stop(self) -> bool:
        return self.stop_reason is not None

    def update(self, loss: float) -> bool:
        """Record the loss of the update just made with ``next_lr``;
        return True when the sweep must stop."""
        if self.should_stop:
            raise RuntimeError(f"the finder already stopped "
                               f"({self.stop_reason!r}) after {self.step} "
                               f"updates; start a new LRFinderState")
        loss = _loss("loss", loss)
        lr = self.next_lr
        smooth = self.smoother.update(loss)
        self._lrs.append(lr)
        self._losses.append(loss)
        self._smoothed.append(smooth)
        if smooth < self.best_loss:
            self.best_loss = smooth
        if self.stop_div and smooth > DIVERGENCE_FACTOR * self.best_loss:
            self.stop_reason = "diverged"
        elif math.isnan(loss) or math.isnan(smooth) or smooth == -math.inf:
            self.stop_reason = "non-finite"
        elif self.step >= self.num_it:
            self.stop_reason = "num_it"
        return self.should_stop

    @property
    def lrs(self) -> np.ndarray:
        return np.array(self._lrs, dtype=np.float64)

    @property
    def losses(self) -> np.ndarray:
        """Raw losses, one per update."""
        return np.array(self._losses, dtype=np.float64)

    @property
    def smoothed(self) -> np.ndarray:
        """Smoothed losses (what fastai records, plots and suggests on)."""
        return np.array(self._smoothed, dtype=np.float64)

    def _fastai_window(self, skip_start: int, skip_end: int
                       ) -> tuple[int, int]:
        """``[skip_start, len - skip_end)`` of the record fastai would have
        made.  After a NaN at update ``m`` fastai trains on to ``num_it``
        recording NaN; its window ends at ``min(m, num_it - skip_end)``."""
        n = self.step
        if self.stop_reason == "non-finite" and math.isnan(self._smoothed[-1]):
            return skip_start, max(0, n - (self.num_it - skip_end))
        return skip_start, skip_end

    def result(self, methods: Sequence[str | Callable] | None = None,
               skip_start: int | None = None, skip_end: int = SKIP_END
               ) -> "LRFinderResult":
        """The curve and fastai's suggestions on the smoothed losses.

        Args:
            methods: suggestion rules (names in ``SUGGESTION_METHODS`` or
                callables ``f(lrs, losses) -> Suggestion``); default all
                four; ``()`` for the curve alone.
            skip_start: points dropped at the start; fastai's
                ``num_it // 10`` by default.
            skip_end: points dropped at the end (fastai: 5).
        """
        if skip_start is None:
            skip_start = self.num_it // 10
        skip_start = check.integer("skip_start", skip_start, 0)
        skip_end = check.integer("skip_end", skip_end, 0)
        if methods is None:
            methods = DEFAULT_SUGGESTIONS
        start, end = self._fastai_window(skip_start, skip_end)
        # A sweep that diverged early may be too short for some rules
        # (slide needs 16 points); those are left out, not fatal.
        suggestions = suggest(self.lrs, self.smoothed, methods,
                              skip_start=start, skip_end=end,
                              skip_short=True)
        return LRFinderResult(lrs=self.lrs, losses=self.losses,
                              smoothed=self.smoothed,
                              suggestions=suggestions, num_it=self.num_it,
                              stop_reason=self.stop_reason,
                              skip_start=skip_start, skip_end=skip_end)

    def __repr__(self) -> str:
        return (f"LRFinderState(step={self.step}, num_it={self.num_it}, "
                f"stop_reason={self.stop_reason!r})")


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


def _longest_valley(losses: np.ndarray) -> tuple[int, int]:
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


def _method(method: str | Callable) -> tuple[str, Callable]:
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
            methods: Sequence[str | Callable] = DEFAULT_SUGGESTIONS, *,
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


# --------------------------------------------------------- finder result

def _suggestion_dict(s: Suggestion) -> dict:
    return {k: _encode_float(v) for k, v in s._asdict().items()}


@dataclass
class LRFinderResult:
    """A finished finder run: the curve, the suggestions, how it ended.

    ``lrs``, ``losses`` (raw) and ``smoothed`` hold one value per update;
    ``suggestions`` maps rule names to :class:`Suggestion`;
    ``skip_start`` / ``skip_end`` are the points the rules did not see.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestions: dict[str, Suggestion] = field(default_factory=dict)
    num_it: int | None = None
    stop_reason: str | None = None
    skip_start: int = 0
    skip_end: int = SKIP_END

    def __post_init__(self) -> None:
        self.lrs = np.asarray(self.lrs, dtype=np.float64)
        self.losses = np.asarray(self.losses, dtype=np.float64)
        self.smoothed = np.asarray(self.smoothed, dtype=np.float64)
        if not (self.lrs.ndim == 1
                and self.lrs.shape == self.losses.shape
                == self.smoothed.shape):
            raise ValueError(f"lrs, losses and smoothed must be 1-D of "
                             f"equal length, got shapes {self.lrs.shape}, "
                             f"{self.losses.shape}, {self.smoothed.shape}")
        if self.stop_reason is not None:
            check.choice("stop_reason", self.stop_reason, STOP_REASONS)
        self.suggestions = {k: Suggestion(*v)
                            for k, v in self.suggestions.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN and infinities as strings ``'NaN'``,
        ``'Infinity'``, ``'-Infinity'``)."""
        return {
            "lrs": _encode_floats(self.lrs),
            "losses": _encode_floats(self.losses),
            "smoothed": _encode_floats(self.smoothed),
            "suggestions": {k: _suggestion_dict(v)
                            for k, v in self.suggestions.items()},
            "num_it": self.num_it, "stop_reason": self.stop_reason,
            "skip_start": self.skip_start, "skip_end": self.skip_end,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LRFinderResult":
        """Inverse of :meth:`to_dict`."""
        if not isinstance(data, Mapping):
            raise TypeError(f"data must be a dict, got {data!r}")
        missing = {"lrs", "losses", "smoothed"} - set(data)
        if missing:
            raise ValueError(f"data lacks {sorted(missing)}")
        suggestions = {k: Suggestion(**{f: _decode_float(x)
                                        for f, x in v.items()})
                       for k, v in data.get("suggestions", {}).items()}
        return cls(lrs=_decode_floats(data["lrs"]),
                   losses=_decode_floats(data["losses"]),
                   smoothed=_decode_floats(data["smoothed"]),
                   suggestions=suggestions, num_it=data.get("num_it"),
                   stop_reason=data.get("stop_reason"),
                   skip_start=data.get("skip_start", 0),
                   skip_end=data.get("skip_end", SKIP_END))

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The JSON text; also written atomically to ``path`` if given."""
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        if path is not None:
            write_text(path, text + "\n")
        return text

    def plot(self, ax: Any = None, suggestions: bool = True,
             skip_end: int | None = None) -> Any:
        """fastai's ``plot_lr_find``: smoothed loss against the rate on a
        log axis, without the last ``skip_end`` points (default: this
        result's), each suggestion marked at ``(mark_lr, mark_loss)`` and
        labelled with its rate.  Returns the axes."""
        skip_end = self.skip_end if skip_end is None else \
            check.integer("skip_end", skip_end, 0)
        if ax is None:
            _, ax = _pyplot().subplots(figsize=(6, 4))
        stop = max(self.lrs.size - skip_end, 0)
        ax.plot(self.lrs[:stop], self.smoothed[:stop])
        ax.set_xscale("log")
        ax.set_xlabel("Learning Rate")
        ax.set_ylabel("Loss")
        if suggestions and self.suggestions:
            colors = _pyplot().rcParams["axes.prop_cycle"].by_key()["color"]
            for i, (name, s) in enumerate(self.suggestions.items()):
                ax.plot(s.mark_lr, s.mark_loss, "o",
                        color=colors[(i + 1) % len(colors)],
                        label=f"{name}: {s.lr:.2e}")
            ax.legend(loc="best")
        return ax


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


# ----------------------------------------------------------------- Recorder

EPOCH_FIELDS = ("epoch", "train_loss", "train_acc", "test_acc", "time")


def _optional(name: str, value: Any) -> float | None:
    return None if value is None else _loss(name, value)


class Recorder:
    """What a training run did: per update the step, the learning rate
    (one per parameter group, or one), the momentum and the loss; per
    epoch the train loss, train accuracy, test accuracy and time.

    Files are written atomically (:meth:`to_json`, :meth:`to_csv`); plots
    are fastai's ``plot_sched`` and the d2l chapter's three curves.

    >>> rec = Recorder()
    >>> rec.record_update(0, lr=0.1, momentum=0.9, loss=2.3)
    >>> rec.record_epoch(1, train_loss=0.5123, train_acc=0.8119,
    ...                  test_acc=0.803)
    >>> rec.summary_line(1)
    'epoch 1: train loss 0.512, train acc 0.812, test acc 0.803'
    """

    def __init__(self) -> None:
        self._steps: list[int] = []
        self._lrs: list[list[float]] = []
        self._moms: list[float | None] = []
        self._losses: list[float | None] = []
        self._epochs: list[dict[str, Any]] = []

    # -- recording ----------------------------------------------------------
    def record_update(self, step: int, lr: float | Sequence[float],
                      momentum: float | None = None,
                      loss: float | None = None) -> None:
        """Record update ``step`` (0 for the first; strictly increasing).

        Args:
            step: the update's index.
            lr: the rate used, or one rate per parameter group (the same
                number of groups on every call).
            momentum: momentum / Adam beta1 used, if any.
            loss: the batch loss (NaN allowed: a diverging run is data).
        """
        step = check.step(step)
        if self._steps and step <= self._steps[-1]:
            raise ValueError(f"step must increase, got {step} after "
                             f"{self._steps[-1]}")
        if isinstance(lr, (list, tuple, np.ndarray)):
            rates = [check.rate(f"lr[{i}]", v) for i, v in enumerate(lr)]
            if not rates:
                raise ValueError("lr must hold at least one rate, got []")
        else:
            rates = [check.rate("lr", lr)]
        if self._lrs and len(rates) != len(self._lrs[0]):
            raise ValueError(f"lr has {len(rates)} group rate(s), earlier "
                             f"updates had {len(self._lrs[0])}")
        momentum = None if momentum is None else \
            check.rate("momentum", momentum)
        loss = _optional("loss", loss)
        self._steps.append(step)
        self._lrs.append(rates)
        self._moms.append(momentum)
        self._losses.append(loss)

    def record_epoch(self, epoch: int, train_loss: float | None = None,
                     train_acc: float | None = None,
                     test_acc: float | None = None,
                     time: float | None = None) -> None:
        """Record the metrics of ``epoch`` (numbered by the caller,
        strictly increasing; the d2l chapter counts from 1).

        Args:
            epoch: the epoch number.
            train_loss: mean training loss over the epoch.
            train_acc, test_acc: accuracies in [0, 1].
            time: wall time of the epoch, seconds.
        """
        epoch = check.integer("epoch", epoch, 0)
        if self._epochs and epoch <= self._epochs[-1]["epoch"]:
            raise ValueError(f"epoch must increase, got {epoch} after "
                             f"{self._epochs[-1]['epoch']}")
        row = {"epoch": epoch, "train_loss": _optional("train_loss",
                                                       train_loss)}
        for name, value in (("train_acc", train_acc),
                            ("test_acc", test_acc)):
            row[name] = None if value is None else \
                check.in_range(name, value, 0.0, 1.0)
        row["time"] = None if time is None else check.rate("time", time)
        self._epochs.append(row)

    # -- reading ------------------------------------------------------------
    @property
    def steps(self) -> np.ndarray:
        return np.array(self._steps, dtype=np.int64)

    @property
    def n_groups(self) -> int | None:
        """Parameter groups recorded per update (None before any)."""
        return len(self._lrs[0]) if self._lrs else None

    @property
    def group_lrs(self) -> np.ndarray:
        """Rates, shape ``(updates, groups)``."""
        return np.array(self._lrs, dtype=np.float64).reshape(
            len(self._lrs), self.n_groups or 0)

    @property
    def lrs(self) -> np.ndarray:
        """The last group's rate per update (what fastai records)."""
        return self.group_lrs[:, -1] if self._lrs else np.zeros(0)

    @property
    def momentums(self) -> np.ndarray:
        """Momentum per update, NaN where none was recorded."""
        return np.array([math.nan if m is None else m for m in self._moms],
                        dtype=np.float64)

    @property
    def losses(self) -> np.ndarray:
        """Loss per update, NaN where none was recorded."""
        return np.array([math.nan if v is None else v
                         for v in self._losses], dtype=np.float64)

    @property
    def epochs(self) -> list[dict[str, Any]]:
        """One dict per epoch with keys ``EPOCH_FIELDS`` (None = not
        recorded)."""
        return [dict(row) for row in self._epochs]

    def epoch_column(self, name: str) -> np.ndarray:
        """One ``EPOCH_FIELDS`` column as floats (NaN = not recorded)."""
        check.choice("name", name, EPOCH_FIELDS)
        return np.array([math.nan if r[name] is None else r[name]
                         for r in self._epochs], dtype=np.float64)

    def summary_line(self, epoch: int | None = None) -> str:
        """The chapter's progress line for ``epoch`` (default: the last
        one), e.g. ``'epoch 3: train loss 0.512, train acc 0.812, test
        acc 0.803'``; metrics not recorded are left out."""
        if not self._epochs:
            raise ValueError("no epoch recorded yet")
        if epoch is None:
            row = self._epochs[-1]
        else:
            rows = [r for r in self._epochs if r["epoch"] == epoch]
            if not rows:
                raise ValueError(f"epoch {epoch!r} was not recorded; "
                                 f"recorded: "
                                 f"{[r['epoch'] for r in self._epochs]}")
            row = rows[0]
        parts = [f"{label} {row[key]:.3f}" for key, label in
                 (("train_loss", "train loss"), ("train_acc", "train acc"),
                  ("test_acc", "test acc")) if row[key] is not None]
        return f"epoch {row['epoch']}: " + ", ".join(parts)

    # -- serialization ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; NaN and infinities are the strings ``'NaN'``,
        ``'Infinity'``, ``'-Infinity'``, missing values are None."""
        return {
            "updates": {
                "step": list(self._steps),
                "lr": [list(r) for r in self._lrs],
                "momentum": _encode_floats(self._moms),
                "loss": _encode_floats(self._losses),
            },
            "epochs": [{k: (_encode_float(v) if k != "epoch" else v)
                        for k, v in row.items()} for row in self._epochs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Recorder":
        """Rebuild a recorder from :meth:`to_dict` output (validated as
        if recorded again)."""
        if not isinstance(data, Mapping):
            raise TypeError(f"data must be a dict, got {data!r}")
        rec = cls()
        updates = data.get("updates", {})
        steps = updates.get("step", [])
        columns = {k: updates.get(k, [None] * len(steps))
                   for k in ("lr", "momentum", "loss")}
        for k, column in columns.items():
            if len(column) != len(steps):
                raise ValueError(f"updates.{k} has {len(column)} values "
                                 f"for {len(steps)} steps")
        for i, step in enumerate(steps):
            rec.record_update(step, columns["lr"][i],
                              _decode_float(columns["momentum"][i]),
                              _decode_float(columns["loss"][i]))
        for row in data.get("epochs", []):
            unknown = set(row) - set(EPOCH_FIELDS)
            if unknown:
                raise ValueError(f"unknown epoch field(s) {sorted(unknown)}"
                                 f"; valid: {', '.join(EPOCH_FIELDS)}")
            rec.record_epoch(row.get("epoch"), **{
                k: _decode_float(row.get(k)) for k in EPOCH_FIELDS[1:]})
        return rec

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The JSON text; also written atomically to ``path`` if given."""
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        if path is not None:
            write_text(path, text + "\n")
        return text

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "Recorder":
        """Read a file written by :meth:`to_json`."""
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    def _update_rows(self) -> tuple[list[str], list[list[Any]]]:
        groups = self.n_groups or 1
        lr_cols = ["lr"] if groups == 1 else [f"lr_{i}"
                                             for i in range(groups)]
        header = ["step", *lr_cols, "momentum", "loss"]
        rows = [[s, *r, m, v] for s, r, m, v in
                zip(self._steps, self._lrs, self._moms, self._losses)]
        return header, rows

    def _epoch_rows(self) -> tuple[list[str], list[list[Any]]]:
        return list(EPOCH_FIELDS), [[r[k] for k in EPOCH_FIELDS]
                                    for r in self._epochs]

    def to_csv(self, path: str | os.PathLike, table: str = "epochs"
               ) -> None:
        """Write one table atomically: ``'epochs'`` (epoch, train_loss,
        train_acc, test_acc, time) or ``'updates'`` (step, lr or lr_0 ..
        lr_<n-1> per group, momentum, loss).  Floats are written with
        ``repr`` (exact round trip), missing values as empty cells."""
        check.choice("table", table, ("epochs", "updates"))
        header, rows = (self._epoch_rows() if table == "epochs"
                        else self._update_rows())
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if v is None else repr(v) for v in row])
        write_text(path, buf.getvalue())

    @classmethod
    def from_csv(cls, updates: str | os.PathLike | None = None,
                 epochs: str | os.PathLike | None = None) -> "Recorder":
        """Rebuild a recorder from the files :meth:`to_csv` wrote."""
        rec = cls()

        def read(path):
            with open(path, encoding="utf-8", newline="") as f:
                return list(csv.DictReader(f))

        def cell(value: str) -> float | None:
            return None if value == "" else float(value)

        if updates is not None:
            for row in read(updates):
                if "lr" in row:
                    lr: Any = cell(row["lr"])
                else:
                    keys = sorted((k for k in row if k.startswith("lr_")),
                                  key=lambda k: int(k[3:]))
                    if not keys:
                        raise ValueError(f"{updates}: no lr column")
                    lr = [cell(row[k]) for k in keys]
                rec.record_update(int(row["step"]), lr,
                                  cell(row["momentum"]), cell(row["loss"]))
        if epochs is not None:
            for row in read(epochs):
                rec.record_epoch(int(row["epoch"]), **{
                    k: cell(row[k]) for k in EPOCH_FIELDS[1:]})
        return rec

    # -- plots --------------------------------------------------------------
    def plot_sched(self, ax: Any = None) -> list[Any]:
        """fastai's ``plot_sched``: the learning rate and (if recorded)
        the momentum per update, one panel each, side by side.  ``ax``:
        None (new figure) or one axes per panel.  Returns the axes."""
        if not self._steps:
            raise ValueError("no update recorded yet")
        moms = self.momentums
        panels = ["lr"] + (["mom"] if np.isfinite(moms).any() else [])
        if ax is None:
            _, axes = _pyplot().subplots(1, len(panels),
                                         figsize=(6 * len(panels), 4))
            axes = list(np.atleast_1d(axes))
        else:
            axes = list(ax) if isinstance(ax, (list, tuple, np.ndarray)) \
                else [ax]
            if len(axes) != len(panels):
                raise ValueError(f"ax must hold {len(panels)} axes (for "
                                 f"{', '.join(panels)}), got {len(axes)}")
        steps = self.steps
        lrs = self.group_lrs
        for g in range(lrs.shape[1]):
            label = f"group {g}" if lrs.shape[1] > 1 else None
            axes[0].plot(steps, lrs[:, g], label=label)
        if lrs.shape[1] > 1:
            axes[0].legend(fontsize="small")
        axes[0].set_ylabel("lr")
        if len(panels) == 2:
            axes[1].plot(steps, moms)
            axes[1].set_ylabel("mom")
        for a in axes:
            a.set_xlabel("update")
        return axes

    def plot_metrics(self, ax: Any = None) -> Any:
        """The d2l chapter's figure: train loss, train acc and test acc
        per epoch on one axes (metrics never recorded are left out).
        Returns the axes."""
        if not self._epochs:
            raise ValueError("no epoch recorded yet")
        if ax is None:
            _, ax = _pyplot().subplots(figsize=(3.5, 2.5))
        epochs = self.epoch_column("epoch")
        for key, label, style in (("train_loss", "train loss", "-"),
                                  ("train_acc", "train acc", "m--"),
                                  ("test_acc", "test acc", "g-.")):
            values = self.epoch_column(key)
            if np.isfinite(values).any():
                ax.plot(epochs, values, style, label=label)
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
        return ax

    def __len__(self) -> int:
        return len(self._steps)

    def __repr__(self) -> str:
        return (f"Recorder(updates={len(self._steps)}, "
                f"epochs={len(self._epochs)})")


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
