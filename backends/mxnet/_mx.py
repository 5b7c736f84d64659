"""The project's one import of MXNet, with the numpy alias shim it needs,
and the facts about MXNet's optimizers and Trainer the adapter relies on.
"""
from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy


def import_mxnet() -> ModuleType:
    """Import and return ``mxnet``, restoring numpy aliases it needs.

    MXNet 1.9.1 uses ``numpy.bool`` and friends, removed in numpy 1.24;
    without them ``import mxnet`` raises ``AttributeError``. This is the
    project's only copy of that shim.
    """
    for name, typ in (('bool', bool), ('int', int), ('float', float),
                      ('complex', complex), ('object', object), ('str', str)):
        if name not in numpy.__dict__:
            setattr(numpy, name, typ)
    import mxnet
    return mxnet


# MXNet ships no type information: its names are Any to mypy
mx: Any = import_mxnet()
# A kvstore server imports this while ``import mxnet`` is still running.
from mxnet import optimizer as _opt  # noqa: E402

_SGD = {"momentum": "momentum", "weight_decay": "wd"}
_ADAM = {"beta1": "beta1", "beta2": "beta2", "weight_decay": "wd"}
#: Optimizer class -> canonical hyperparameter name -> the attribute an
#: adapter can drive per update.  Each was checked in MXNet 1.9.1's source:
#: the optimizer's ``update`` increments ``num_update``, calls the
#: scheduler and only then reads the attribute, so the value set by the
#: scheduler call applies to the SAME update (tests/backends/test_mxnet.py
#: checks the order for every entry).  Left out on purpose: LAMB (reads
#: ``beta1`` before the scheduler call), LARS (rescales ``momentum`` by
#: its own rate ratio), DCASGD.  Other optimizers: the rate only.
SCHEDULABLE: dict[type, dict[str, str]] = {
    _opt.SGD: _SGD, _opt.NAG: _SGD, _opt.Signum: _SGD, _opt.Adam: _ADAM,
    _opt.Adamax: _ADAM, _opt.Nadam: _ADAM, _opt.FTML: _ADAM}
# These keep a momentum buffer only if ``momentum != 0`` when the buffer
# is created (before the first update's scheduler call).
_BUFFERED = (_opt.SGD, _opt.NAG, _opt.Signum)
#: Optimizers a schedule cannot drive exactly, and why.
REFUSED: dict[type, str] = {
    _opt.LBSGD: "LBSGD asks for the rate before counting the update "
                "(one update late) and applies its own warmup",
    _opt.AdaDelta: "AdaDelta has no learning rate"}


def spellings(optimizer: Any) -> dict[str, str]:
    """Canonical name -> attribute ``optimizer`` lets a scheduler drive
    (empty: the rate only); refuses the :data:`REFUSED` optimizers."""
    for klass in type(optimizer).__mro__:
        if klass in REFUSED:
            raise ValueError(f"cannot schedule {type(optimizer).__name__} "
                             f"exactly: {REFUSED[klass]}")
        if klass in SCHEDULABLE:
            return SCHEDULABLE[klass]
    return {}


def set_position(opt: Any, done: int) -> None:
    """Every update counter of ``opt`` at ``done``: its next update is
    MXNet's ``num_update = done + 1``, i.e. unisched's update ``done``."""
    opt.num_update = opt.begin_num_update = done
    for counts in opt._all_index_update_counts.values():
        for index in counts:
            counts[index] = done


def check_buffers(optimizer: Any, first: float) -> None:
    """SGD-style optimizers create their momentum buffers at the first
    update only if momentum is non-zero then; without buffers a later
    non-zero momentum would crash inside MXNet."""
    if first == 0 and optimizer.num_update == 0:
        raise ValueError(f"the momentum schedule gives 0 at the first "
                         f"update; {type(optimizer).__name__} would create "
                         f"no momentum buffers. Start it above 0")
    if optimizer.momentum == 0 and optimizer.num_update > 0:
        raise ValueError(f"{type(optimizer).__name__} already ran "
                         f"{optimizer.num_update} updates with momentum=0, "
                         f"so it has no momentum buffers; bind before the "
                         f"first step or create it with momentum > 0")


def snapshot(trainer: Any) -> Callable[[], None]:
    """A function putting back ``trainer``'s optimizer and updater states
    as they are now (``load_states`` replaces both wholesale)."""
    # What Trainer.load_states does first, so that it creates nothing the
    # snapshot misses.
    if not trainer._kv_initialized:
        trainer._init_kvstore()
    if trainer._params_to_init:
        trainer._init_params()
    updaters = list(trainer._updaters)
    if getattr(trainer._kvstore, "_updater", None) is not None:
        updaters.append(trainer._kvstore._updater)
    optimizer = trainer._optimizer
    held = [(u, u.states, u.states_synced, u.optimizer) for u in updaters]

    def restore() -> None:
        trainer._optimizer = optimizer
        for u, states, synced, opt in held:
            u.states, u.states_synced, u.optimizer = states, synced, opt

    return restore


def hook_load_states(trainer: Any, after: Callable[[Any], None]) -> None:
    """Make ``trainer.load_states`` (this instance only) call
    ``after(loaded_optimizer)`` once MXNet has loaded; if that raises, the
    trainer is put back as it was before the call.  Removed with
    ``trainer.__dict__.pop('load_states')``."""
    original = type(trainer).load_states

    def load_states(fname: str) -> None:
        before = snapshot(trainer)
        original(trainer, fname)
        try:
            after(trainer._optimizer)
        except BaseException:
            before()
            raise

    load_states.__doc__ = original.__doc__
    trainer.load_states = load_states
