"""``model.fit`` callbacks: per-epoch rates, plateaus.
"""
from __future__ import annotations

from typing import Any

import keras

from unisched.base import Schedule

from .adapter import adapter_of
from .schedule import _schedule

# -- callbacks ----------------------------------------------------------------

class _EpochRate:
    """``schedule(epoch, lr)`` for keras' LearningRateScheduler."""

    def __init__(self, sched: Schedule) -> None:
        self.schedule = sched

    def __call__(self, epoch: int, lr: float | None = None) -> float:
        return float(self.schedule(epoch))


def epoch_callback(sched: Schedule | str, verbose: int = 0
                   ) -> keras.callbacks.LearningRateScheduler:
    """The d2l chapter's TensorFlow style: a genuine
    ``keras.callbacks.LearningRateScheduler`` that sets the rate of epoch
    ``e`` (counted from 0) to ``sched(e)`` at the start of the epoch, so
    update k uses ``epochwise(sched, steps_per_epoch)(k)``.

    The optimizer must have a float learning rate (Keras refuses to set a
    rate on an optimizer built with a schedule).  A per-update schedule
    in the graph is :func:`bind`; ``bind(epochwise(sched, spe), ...)`` is
    the same curve without a callback.

    Args:
        sched: a schedule of the epoch index, or a spec string.
        verbose: passed to LearningRateScheduler.

    >>> cb = epoch_callback("factor(step=1, factor=0.5, base_lr=0.1)")
    >>> cb.schedule(0), cb.schedule(2)
    (0.1, 0.05)
    """
    return keras.callbacks.LearningRateScheduler(
        _EpochRate(_schedule(sched)), verbose=verbose)


class ReduceOnPlateauCallback(keras.callbacks.Callback):
    """At each epoch end, feed ``logs[monitor]`` to a bound adapter's
    ReduceOnPlateau (:meth:`KerasAdapter.observe`): the scale variable the
    compiled train step reads changes before the next epoch.  Usually
    made by ``adapter.callback(monitor)``.

    Args:
        monitor: the metric name in the epoch logs (``'val_loss'``,
            ``'loss'``, ...).
        adapter: the :class:`KerasAdapter`; None: the one bound to
            ``model.optimizer`` when ``fit`` runs.
    """

    def __init__(self, monitor: str = "val_loss",
                 adapter: Any = None) -> None:
        super().__init__()
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a metric name (str), got "
                            f"{monitor!r}")
        if adapter is not None and not hasattr(adapter, "observe"):
            raise TypeError(f"adapter must be a KerasAdapter (from bind), "
                            f"got {adapter!r}")
        self.monitor = monitor
        self.adapter = adapter

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(f"ReduceOnPlateauCallback monitors "
                             f"{self.monitor!r}, absent from the epoch logs "
                             f"(available: {sorted(logs)})")
        adapter = self.adapter or adapter_of(self.model.optimizer)
        if adapter is None:
            raise ValueError("the model's optimizer has no unisched "
                             "schedule bound: bind(sched, model) first")
        adapter.observe(logs[self.monitor])
