"""Binding a schedule to a Keras optimizer or model.
"""
from __future__ import annotations

from typing import Any, Mapping

import keras
import unisched
from unisched.base import Schedule

from .callbacks import ReduceOnPlateauCallback
from .hparams import (
    ScheduledHyperparameter,
    _momentum_name,
    _scheduled,
    _set_scheduled,
    _unwrap,
)
from .schedule import (
    LearningRateSchedule,
    _schedule,
)

# -- learning rate on an optimizer or model ---------------------------------

def _plan(sched: Schedule, optimizer: Any, momentum: Any,
          hparams: Mapping[str, Any] | None
          ) -> tuple[Schedule, dict[str, ScheduledHyperparameter]]:
    """The learning-rate schedule Keras must be given and the checked
    hyperparameter objects, before anything is changed."""
    steps = optimizer.gradient_accumulation_steps
    lr_sched = sched
    if steps:
        # Keras calls the schedule with the micro-batch count; the k-th
        # real update happens at micro-batch (k + 1) * steps - 1.
        if sched.stateful:
            raise ValueError(f"gradient_accumulation_steps={steps} with a "
                             f"stateful schedule is not supported: "
                             f"{sched!r}")
        lr_sched = unisched.epochwise(sched, steps)
    extra = dict(hparams or {})
    if momentum is True:
        cycle = sched.momentum
        if cycle is not None:
            name = _momentum_name(optimizer)
            if name is None:
                raise ValueError(
                    f"{sched.to_spec()} has a momentum cycle but "
                    f"{type(optimizer).__name__} has no 'momentum' or "
                    f"'beta_1'; pass momentum=False to ignore the cycle")
            extra.setdefault(name, cycle)
    elif isinstance(momentum, (Schedule, str)):
        name = _momentum_name(optimizer)
        if name is None:
            raise ValueError(f"{type(optimizer).__name__} has no "
                             f"'momentum' or 'beta_1' to schedule")
        extra.setdefault(name, _schedule(momentum, "momentum"))
    elif momentum is not False:
        raise TypeError(f"momentum must be True, False or a schedule, "
                        f"got {momentum!r}")
    return lr_sched, _scheduled(optimizer, extra)


def _attach(sched: Schedule, optimizer: Any, momentum: Any,
            hparams: Mapping[str, Any] | None) -> LearningRateSchedule:
    optimizer = _unwrap(optimizer)
    lr_sched, bound = _plan(sched, optimizer, momentum, hparams)
    adapter = LearningRateSchedule(lr_sched)
    # The setter accepts a schedule on any Keras 3 optimizer; one built
    # with a float rate drops (untracks) its learning-rate variable.
    optimizer.learning_rate = adapter
    _set_scheduled(optimizer, bound)
    return adapter


def bind(sched: Schedule | str, target: Any, *, momentum: Any = True,
         hparams: Mapping[str, Schedule | str] | None = None,
         monitor: str = "val_loss") -> Any:
    """Attach ``sched`` to a Keras optimizer or a compiled Keras model.

    The optimizer's learning rate becomes ``LearningRateSchedule(sched)``
    (update k uses ``sched(k)``).  If ``sched`` has a momentum cycle
    (``sched.momentum``: cyclic, one-cycle) it drives Adam's ``beta_1`` or
    SGD/RMSprop's ``momentum`` in the graph, as PyTorch's OneCycleLR does.
    With ``gradient_accumulation_steps=n`` the schedule counts real
    updates (``epochwise(sched, n)`` of Keras' micro-batch count).

    Bind before training (or before tracing a function that applies the
    optimizer): graphs traced earlier keep the old values.  For a model,
    its compiled train function is reset so ``fit`` retraces.

    Args:
        sched: a schedule or a spec string.
        target: a ``keras.optimizers.Optimizer`` or a compiled
            ``keras.Model``.
        momentum: True: bind ``sched.momentum`` if there is one (error if
            the optimizer has nowhere to put it); False: leave momentum
            alone; a schedule: bind that one.
        hparams: more hyperparameters to schedule, name -> schedule.
        monitor: for a ReduceOnPlateau on a model, the metric its
            callback watches.

    Returns:
        For an optimizer: the :class:`LearningRateSchedule` attached.  For
        a model: the list of callbacks to pass to ``fit`` -- empty, except
        ``[ReduceOnPlateauCallback]`` for a ReduceOnPlateau (the momentum
        needs no callback).

    >>> import keras
    >>> opt = keras.optimizers.Adam()
    >>> bind("one_cycle(max_lr=0.01, max_update=1000)", opt)
    LearningRateSchedule(one_cycle(max_lr=0.01, max_update=1000))
    >>> opt.beta_1  # doctest: +ELLIPSIS
    ScheduledHyperparameter(beta_1=one_cycle_momentum(...))
    """
    sched = _schedule(sched)
    if isinstance(target, keras.Model):
        optimizer = getattr(target, "optimizer", None)
        if optimizer is None:
            raise ValueError(f"model {target.name!r} has no optimizer: "
                             f"call model.compile(optimizer=...) first")
        adapter = _attach(sched, optimizer, momentum, hparams)
        # fit() reuses a cached train function; it must be retraced to
        # read the new schedule objects.
        target.train_function = None
        if sched.stateful:
            return [ReduceOnPlateauCallback(monitor, adapter)]
        return []
    if isinstance(target, keras.optimizers.Optimizer):
        return _attach(sched, target, momentum, hparams)
    raise TypeError(f"target must be a keras.optimizers.Optimizer or a "
                    f"compiled keras.Model, got "
                    f"{type(target).__module__}.{type(target).__qualname__}")
