"""The learning-rate finder (Leslie Smith's range test as fastai runs it):
the sweep schedule, loss smoothing, the stop rule and the result."""
from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _validate as check
from .._io import write_text
from ..schedules import ExponentialScheduler
from ._common import (
    DIVERGENCE_FACTOR,
    SKIP_END,
    STOP_REASONS,
    Floats,
    _decode_floats,
    _encode_float,
    _encode_floats,
    _loss,
    _pyplot,
)
from .suggest import (
    DEFAULT_SUGGESTIONS,
    Suggestion,
    suggest,
)

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
    if not math.isfinite(end_lr / start_lr):
        raise ValueError(f"end_lr / start_lr must be finite, got end_lr="
                         f"{end_lr!r} and start_lr={start_lr!r}")
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
        self.num_it = int(self.schedule.step)  # an int: checked above
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
    def lrs(self) -> Floats:
        return np.array(self._lrs, dtype=np.float64)

    @property
    def losses(self) -> Floats:
        """Raw losses, one per update."""
        return np.array(self._losses, dtype=np.float64)

    @property
    def smoothed(self) -> Floats:
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

    def result(self,
               methods: Sequence[str | Callable[..., Suggestion]]
               | None = None,
               skip_start: int | None = None, skip_end: int = SKIP_END
               ) -> LRFinderResult:
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



# --------------------------------------------------------- finder result

def _floats(values: Any) -> Floats:
    """A list written by ``_encode_floats``, as float64 (None: NaN)."""
    return np.asarray(_decode_floats(values), dtype=np.float64)


def _suggestion_dict(s: Suggestion) -> dict[str, float | str | None]:
    return {k: _encode_float(v) for k, v in s._asdict().items()}


@dataclass
class LRFinderResult:
    """A finished finder run: the curve, the suggestions, how it ended.

    ``lrs``, ``losses`` (raw) and ``smoothed`` hold one value per update;
    ``suggestions`` maps rule names to :class:`Suggestion`;
    ``skip_start`` / ``skip_end`` are the points the rules did not see.
    """

    lrs: Floats
    losses: Floats
    smoothed: Floats
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
    def from_dict(cls, data: Mapping[str, Any]) -> LRFinderResult:
        """Inverse of :meth:`to_dict`."""
        if not isinstance(data, Mapping):
            raise TypeError(f"data must be a dict, got {data!r}")
        missing = {"lrs", "losses", "smoothed"} - set(data)
        if missing:
            raise ValueError(f"data lacks {sorted(missing)}")
        # a suggestion's fields are numbers: float() reads the strings
        # _encode_float wrote for NaN and the infinities back
        suggestions = {k: Suggestion(**{f: float(x) for f, x in v.items()})
                       for k, v in data.get("suggestions", {}).items()}
        return cls(lrs=_floats(data["lrs"]), losses=_floats(data["losses"]),
                   smoothed=_floats(data["smoothed"]),
                   suggestions=suggestions, num_it=data.get("num_it"),
                   stop_reason=data.get("stop_reason"),
                   skip_start=data.get("skip_start", 0),
                   skip_end=data.get("skip_end", SKIP_END))

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
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
