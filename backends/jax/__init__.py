"""JAX / optax backend: :func:`bind` a unisched schedule to an optax
optimizer factory (``optax.sgd``, ``optax.adam``...), run any schedule as
an optax schedule (:class:`OptaxSchedule`, formulas traced once in
``jax.numpy`` through :class:`JaxOps`), convert what converts honestly
(:func:`from_native`) and checkpoint the optimizer state with Orbax
(:func:`save`, :func:`restore`); and the chapter's LeNet in Flax
(:func:`train_lenet`, :func:`lr_find`, :func:`fit_one_cycle`).

Convention (the same in every backend): update ``k`` (optax's ``count``
``k``) uses ``sched(k)``.  Precision: see :mod:`.ops` (exact steps to
``2**24`` updates in float32, to ``2**31 - 1`` with ``jax_enable_x64``).

>>> import jax.numpy as jnp, optax
>>> from unisched.backends import jax as usj
>>> ad = usj.bind("one_cycle(max_lr=0.5, max_update=10)", optax.sgd)
>>> state = ad.init({"w": jnp.zeros(2)})
>>> sorted(state.hyperparams)
['learning_rate', 'momentum', 'weight_decay']
>>> round(float(state.hyperparams["momentum"]), 6)
0.95

Importing this package imports jax, optax, orbax and flax; ``unisched`` itself
never does.
"""
from . import _xla  # noqa: F401  (before any JAX computation)
from .adapter import STATE_FORMAT, Adapter, bind
from .lenet import JaxTrainer, fit_one_cycle, lr_find, train_lenet
from .native import from_native, restore, save
from .ops import (
    JaxOps,
    OptaxSchedule,
    PlateauSchedule,
    leaf_names,
    optax_schedule,
)

__all__ = ["Adapter", "bind", "from_native", "save", "restore",
           "JaxOps", "OptaxSchedule", "PlateauSchedule", "optax_schedule",
           "leaf_names", "STATE_FORMAT", "JaxTrainer", "train_lenet",
           "lr_find", "fit_one_cycle"]
