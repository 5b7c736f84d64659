"""MXNet Gluon backend: unisched schedules inside a ``gluon.Trainer``.

Importing this module imports ``mxnet`` (through :func:`import_mxnet`,
which holds the project's only copy of the numpy compatibility shim);
``unisched.backends`` imports it only when asked for.

The index shift.  MXNet's optimizer counts updates from one: before each
update it increments ``num_update`` (the largest per-parameter update
count, ``Optimizer._update_count``) and only then asks its scheduler for
the rate, ``lr_scheduler(num_update)``.  Update ``k`` (0-based) therefore
calls the scheduler with ``k + 1``, and :class:`LRScheduler` answers with
``sched(k)``: the unisched convention (the k-th update uses ``sched(k)``)
holds under a Trainer.

Hyperparameters (momentum, Adam's beta1) follow the same update: MXNet's
``SGD.update`` counts the update, asks the scheduler for the rate and only
then reads ``self.momentum``, so the adapter sets ``optimizer.momentum``
from ``sched.momentum(k)`` inside that scheduler call (see
:data:`SCHEDULABLE` for the optimizers where this order holds).

Saving and loading.  ``Trainer.save_states`` pickles the optimizer, its
update counts and its ``lr_scheduler`` (the adapter: binding, position,
a ``ReduceOnPlateau``'s state); ``load_states`` replaces the Trainer's
optimizer by that copy, so rates, momentum and multipliers (``lr_mult``,
which MXNet does not save, is set again at the next update) continue where
they stopped, even in a new process with no schedule bound; then
:func:`attached` gives the adapter in use.  On a trainer :func:`bind` has
bound, ``load_states`` hands the checkpoint to the bound adapter, which
stays the one in use and applies its ``on_mismatch`` to a checkpoint made
with another binding (on an error the trainer is left as it was).
Binding after ``load_states`` follows the same rules: the order does not
matter.

>>> import unisched as us
>>> from unisched.backends import mxnet as usm
>>> mx = usm.import_mxnet()
>>> w = mx.gluon.Parameter("w", shape=(1,), init=mx.init.Zero())
>>> w.initialize()
>>> trainer = mx.gluon.Trainer([w], "sgd")
>>> adapter = usm.bind(us.MultiFactorScheduler([2], 0.5, base_lr=1.0),
...                    trainer)
>>> w.grad()[:] = 1
>>> rates = []
>>> for k in range(4):
...     before = w.data().asscalar()
...     w.data()._fresh_grad = True     # as if backward() had run
...     trainer.step(1)
...     rates.append(before - w.data().asscalar())
>>> rates
[1.0, 1.0, 1.0, 0.5]
"""

from ._mx import REFUSED, SCHEDULABLE, import_mxnet, mx
from .adapter import LRScheduler, attached, bind
from .lenet import MXNetTrainer, fit_one_cycle, lr_find, train_lenet
from .native import from_native

__all__ = ["LRScheduler", "bind", "attached", "from_native", "import_mxnet",
           "mx", "SCHEDULABLE", "REFUSED", "train_lenet", "lr_find",
           "fit_one_cycle", "MXNetTrainer"]
