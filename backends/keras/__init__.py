"""Keras 3 adapter: any unisched schedule in the graph, on every Keras
backend (``KERAS_BACKEND=tensorflow``, ``jax`` or ``torch``; the few
things that differ are in ``_backend.py``).

Convention (the same in every backend): the k-th optimizer update after
the bind (k = 0, 1, ...) uses ``sched(k)``.  A Keras 3 optimizer calls its
schedule with ``optimizer.iterations`` *before* incrementing it, i.e. with
0, 1, 2, ... for updates 1, 2, 3; the adapter subtracts the count at the
bind (0 for a new optimizer).

What is here:

* :func:`bind` -> :class:`KerasAdapter`: the adapter contract
  (``backends/_contract.py``): the rate, every hyperparameter and
  per-variable multipliers in the graph; ``model.save`` /
  ``keras.models.load_model`` restore the binding (import this module
  before loading); :func:`adapter_of` finds it on a loaded optimizer.
* :class:`KerasOps` -- the ops namespace over ``keras.ops``: every schedule
  evaluates its own ``_eval(t, ops)`` formula as graph ops (float64;
  float32 on jax without x64, exact to 2**24 updates: see
  ``_backend.py``), so a schedule is written once and compiles into
  ``tf.function``, ``jax.jit`` and XLA.
* :class:`LearningRateSchedule` -- a ``keras.optimizers.schedules``
  schedule wrapping any unisched schedule; serializable
  (``model.save`` / ``keras.models.load_model`` restore it).
* :class:`ScheduledHyperparameter` -- momentum, Adam's ``beta_1`` or any
  other float hyperparameter that the optimizer reads with ops inside
  ``update_step``, evaluated in the graph from the optimizer's step count
  at every update (no callback, no retracing); ``bind(hparams=...)``
  makes them.
* :func:`epoch_callback` -- the d2l chapter's per-epoch style, a genuine
  ``keras.callbacks.LearningRateScheduler``.
* :class:`ReduceOnPlateauCallback` -- feeds a metric to a bound
  :class:`unisched.ReduceOnPlateau` at epoch end
  (``adapter.callback(monitor)``); its ``scale`` lives in a variable
  that the graph reads.
* :func:`from_native` (see ``unisched.backends``).

* :class:`KerasTrainer`, :func:`train_lenet`, :func:`lr_find`,
  :func:`fit_one_cycle` -- the LeNet trainer (``lenet.py``; its steps per
  backend in ``steps.py``).

Importing this module imports keras, which imports the framework of its
backend (TensorFlow only under ``KERAS_BACKEND=tensorflow``, the default);
``unisched`` itself never does.  Set ``KERAS_BACKEND`` before anything
imports keras: the backend is fixed for the process.
"""
from .adapter import KerasAdapter, adapter_of, bind
from .callbacks import ReduceOnPlateauCallback, epoch_callback
from .hparams import ScheduledHyperparameter, bound_class
from .lenet import KerasTrainer, fit_one_cycle, lr_find, train_lenet
from .native import from_native
from .schedule import KerasOps, LearningRateSchedule

__all__ = [
    "KerasOps", "LearningRateSchedule", "ScheduledHyperparameter",
    "ReduceOnPlateauCallback", "KerasAdapter", "adapter_of", "bind",
    "bound_class", "epoch_callback", "from_native",
    "train_lenet", "lr_find", "fit_one_cycle", "KerasTrainer",
]
