"""The framework's own side for JAX: :func:`from_native` and checkpoints
of the optimizer state with Orbax (:func:`save`, :func:`restore`).

optax schedules are closures (``optax.cosine_decay_schedule(...)``
returns a Python function): nothing in them says what they compute, so
they cannot be converted; write the schedule as a unisched one instead
(``cosine(max_update=..., base_lr=...)``) and pass it to :func:`bind`
or wrap it as ``OptaxSchedule``.  An ``inject_hyperparams`` state holds
only the values of the last update, not the schedules.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import types
import uuid
from collections.abc import Callable
from typing import Any

import jax
import optax
import orbax.checkpoint as ocp

from unisched._io import write_text
from unisched.base import Schedule

from .. import _contract as contract
from .adapter import STATE_FORMAT, Adapter, bind
from .ops import OptaxSchedule, PlateauSchedule

#: the file beside the Orbax pytree holding the adapter's state_dict
BINDING_FILE = "unisched.json"
STATE_DIR = "state"


def _strip(sched: Schedule) -> Schedule:
    """``sched`` without its momentum cycle (optax applies only the
    rate of a schedule it is given)."""
    if sched.momentum is None:
        return sched
    if "cycle_momentum" not in sched.args:
        raise ValueError(f"{sched.to_spec()} has a momentum cycle that "
                         f"cannot be turned off")
    return type(sched)(**{**sched.args, "cycle_momentum": False})


def _optax_schedule(obj: Any) -> Schedule:
    if obj.steps_per_epoch:
        raise ValueError(f"steps_per_epoch={obj.steps_per_epoch}: it "
                         f"counts epochs; bind obj.schedule with "
                         f"unit='epoch', steps_per_epoch="
                         f"{obj.steps_per_epoch}")
    return _strip(obj.schedule)


def _adapter(obj: Adapter) -> Schedule:
    hps = dict(obj.hparams)
    cycle = hps.pop("beta1", None) or hps.pop("momentum", None)
    if obj.steps_per_epoch:
        raise ValueError(f"steps_per_epoch={obj.steps_per_epoch}: its "
                         f"schedule counts epochs")
    if obj.multipliers is not None:
        raise ValueError(f"multipliers={obj.multipliers!r} scale its "
                         f"leaves; its schedule is obj.schedule")
    if hps:
        raise ValueError(f"hparams {sorted(hps)} are driven too; a "
                         f"schedule carries only a momentum cycle")
    sched = obj.schedule
    if cycle is None:
        return _strip(sched)
    if cycle != sched.momentum:
        raise ValueError(f"its momentum {cycle.to_spec()} is not the "
                         f"schedule's own cycle")
    return sched


_CONVERTERS: dict[type, Callable[[Any], Schedule]] = {
    OptaxSchedule: _optax_schedule,
    PlateauSchedule: lambda obj: _optax_schedule(obj),
    Adapter: _adapter,
}


def from_native(obj: Any) -> Schedule:
    """The unisched schedule a JAX-side object applies at every update.

    ==========================  ===========================================
    ``OptaxSchedule``           its schedule (without a momentum cycle:
    / ``PlateauSchedule``       optax given it drives only the rate)
    ``Adapter`` (bind's)        its schedule, with the momentum cycle it
                                drives
    ==========================  ===========================================

    Types match exactly.  A plain function (every optax schedule is a
    closure) or an ``inject_hyperparams`` state is a ``TypeError`` saying
    why; one that counts epochs or scales leaves is a ``ValueError``.

    >>> import unisched as us
    >>> from_native(OptaxSchedule(us.CosineScheduler(10, base_lr=0.1)))
    CosineScheduler(max_update=10, base_lr=0.1)
    """
    if isinstance(obj, (types.FunctionType, functools.partial)):
        raise TypeError(
            f"from_native got a Python function ({obj!r:.60}): optax "
            f"schedules are closures, which do not say what they compute; "
            f"write the schedule as a unisched one (e.g. 'cosine(max_update"
            f"=1000, base_lr=0.1)' for optax.cosine_decay_schedule(0.1, "
            f"1000)) and bind it, or wrap it with OptaxSchedule")
    if isinstance(obj, optax.InjectStatefulHyperparamsState):
        raise TypeError(
            "from_native got an optax InjectStatefulHyperparamsState: it "
            "holds the values of the last update, not the schedules; "
            "convert the Adapter (or its OptaxSchedule) instead")
    return contract.convert_exact(obj, _CONVERTERS)


# -- checkpoints ------------------------------------------------------------

def save(directory: str, adapter: Adapter, state: Any = None,
         params: Any = None) -> None:
    """Write the optimizer state (``adapter.state`` by default) and
    ``params`` (optional) with Orbax into a new ``directory/state.<id>``
    and the adapter's ``state_dict()`` (the binding, position, plateau
    state) as JSON beside it (``directory/unisched.json``), which names
    that folder.  The JSON is written last and atomically: it is the
    commit point, so a save that dies part way leaves the previous
    checkpoint whole.  Older state folders go after the commit."""
    state = adapter.state if state is None else state
    if state is None:
        raise ValueError("save needs an optimizer state: call adapter.init"
                         "(params) first or pass state")
    directory = os.path.abspath(directory)
    os.makedirs(directory, exist_ok=True)
    folder = f"{STATE_DIR}.{uuid.uuid4().hex[:12]}"
    ckptr = ocp.StandardCheckpointer()
    ckptr.save(os.path.join(directory, folder),
               {"inner_state": state.inner_state, "params": params})
    ckptr.wait_until_finished()
    write_text(os.path.join(directory, BINDING_FILE),
               json.dumps(dict(adapter.state_dict(), state_dir=folder)))
    for entry in os.listdir(directory):
        if entry != folder and (entry == STATE_DIR or
                                entry.startswith(f"{STATE_DIR}.")):
            shutil.rmtree(os.path.join(directory, entry),
                          ignore_errors=True)


def restore(directory: str, target: Callable, params: Any, *,
            sched: Any = None, **options: Any) -> tuple[Adapter, Any, Any]:
    """``(adapter, state, params)`` from :func:`save`'s ``directory``, in
    any process.  ``target`` is the factory and ``params`` a pytree of the
    saved structure (shapes, dtypes).  Without ``sched`` the checkpoint's
    binding continues as saved (no second bind); with ``sched`` (and
    ``options``) that binding is made first and the checkpoint is loaded
    into it, its ``on_mismatch`` deciding a different one.  The optimizer
    moments come back exactly; count, hyperparameters and the plateau
    scale are rewritten for the position."""
    directory = os.path.abspath(directory)
    with open(os.path.join(directory, BINDING_FILE)) as f:
        saved = json.load(f)
    folder = saved.pop("state_dir", STATE_DIR) if isinstance(saved, dict) \
        else STATE_DIR
    if not isinstance(folder, str) or os.sep in folder or \
            not folder.startswith(STATE_DIR):
        raise ValueError(f"{BINDING_FILE}: state_dir must name a state "
                         f"folder beside it, got {folder!r}")
    if sched is None:
        # the checkpoint's binding, every driven hyperparameter included
        b = contract.check_state(saved, STATE_FORMAT).binding
        sched = b.schedule
        options = dict(options, unit=b.unit,
                       steps_per_epoch=b.steps_per_epoch,
                       multipliers=b.multipliers, hparams=b.hparams,
                       momentum=False)
    adapter = bind(sched, target, **options)
    adapter.load_state_dict(saved)
    fresh = adapter.init(params)
    ckptr = ocp.StandardCheckpointer()
    abstract = jax.tree_util.tree_map(
        ocp.utils.to_shape_dtype_struct,
        {"inner_state": fresh.inner_state, "params": params})
    got = ckptr.restore(os.path.join(directory, folder), abstract)
    state = adapter.restore(fresh._replace(inner_state=got["inner_state"]))
    return adapter, state, got["params"]
