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
this package computes in float64, so values agree to float32 rounding.
"""
from __future__ import annotations

from ._common import TooFewPoints
from .discriminative import (
                             even_mults,
                             group_schedules,
                             lr_range,
                             multipliers,
                             trainable_groups,
)
from .finder import (
                             LossSmoother,
                             LRFinderResult,
                             LRFinderState,
                             lr_finder_schedule,
)
from .onecycle import ONE_CYCLE_PRESETS, one_cycle
from .recorder import Recorder
from .suggest import (
                             DEFAULT_SUGGESTIONS,
                             SUGGESTION_METHODS,
                             Suggestion,
                             minimum,
                             slide,
                             steep,
                             suggest,
                             valley,
)

__all__ = [
    "lr_finder_schedule", "LossSmoother", "LRFinderState", "LRFinderResult",
    "Suggestion", "minimum", "steep", "valley", "slide", "suggest",
    "SUGGESTION_METHODS", "DEFAULT_SUGGESTIONS",
    "lr_range", "even_mults", "multipliers", "group_schedules",
    "trainable_groups", "Recorder", "one_cycle", "ONE_CYCLE_PRESETS",
    "TooFewPoints",
]
