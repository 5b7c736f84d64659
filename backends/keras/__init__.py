"""Keras 3 (TensorFlow backend) adapter: any unisched schedule in the graph.

Convention (the same in every backend): the k-th optimizer update
(k = 0, 1, ...) uses ``sched(k)``.  A Keras 3 optimizer calls its schedule
with ``optimizer.iterations`` *before* incrementing it, i.e. with 0, 1, 2,
... for updates 1, 2, 3, so the schedule is handed over unshifted.

What is here:

* :func:`bind` -> :class:`KerasAdapter`: the adapter contract
  (``backends/_contract.py``): the rate, every hyperparameter and
  per-variable multipliers in the graph; ``model.save`` /
  ``keras.models.load_model`` restore the binding (import this module
  before loading); :func:`adapter_of` finds it on a loaded optimizer.
* :class:`KerasOps` -- the ops namespace over ``keras.ops``: every schedule
  evaluates its own ``_eval(t, ops)`` formula as float32 graph ops, so a
  schedule is written once and compiles into ``tf.function`` / XLA.
* :class:`LearningRateSchedule` -- a ``keras.optimizers.schedules``
  schedule wrapping any unisched schedule; serializable
  (``model.save`` / ``keras.models.load_model`` restore it).
* :class:`ScheduledHyperparameter` and :func:`bind_hparams` -- momentum,
  Adam's ``beta_1`` or any other float hyperparameter that the optimizer
  reads with ops inside ``update_step``, evaluated in the graph from
  ``optimizer.iterations`` at every update (no callback, no retracing).
* :func:`epoch_callback` -- the d2l chapter's per-epoch style, a genuine
  ``keras.callbacks.LearningRateScheduler``.
* :class:`ReduceOnPlateauCallback` -- feeds a metric to a bound
  :class:`unisched.ReduceOnPlateau` at epoch end
  (``adapter.callback(monitor)``); its ``scale`` lives in a variable
  that the graph reads.
* :func:`group_optimizer` -- one optimizer per group of variables
  (superseded by ``bind(..., multipliers=...)``).
* :func:`from_native` (see ``unisched.backends``).

Importing this module imports keras and tensorflow; ``unisched`` itself
never does.
"""
from .adapter import KerasAdapter, adapter_of, bind
from .callbacks import (HyperparameterCallback, ReduceOnPlateauCallback,
                        epoch_callback)
from .groups import group_optimizer
from .hparams import ScheduledHyperparameter, bind_hparams, bound_class
from .native import from_native
from .schedule import KerasOps, LearningRateSchedule
from .lenet import KerasTrainer, fit_one_cycle, lr_find, train_lenet

__all__ = [
    "KerasOps", "LearningRateSchedule", "ScheduledHyperparameter",
    "ReduceOnPlateauCallback", "HyperparameterCallback", "KerasAdapter",
    "adapter_of", "bind", "bound_class",
    "bind_hparams", "epoch_callback",
    "from_native", "group_optimizer",
    "train_lenet", "lr_find", "fit_one_cycle", "KerasTrainer",
]
