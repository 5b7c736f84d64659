"""What a ``dist_sync`` kvstore server runs under ``update_on_kvstore=True``:
:class:`ServerOptimizer`, the user's optimizer (its unisched adapter
inside) wrapped so that a few reserved kvstore keys carry unisched's own
traffic instead of gradients.

A MXNet server knows one command, "unpickle this optimizer and make a new
``Updater`` of it"; the ``Updater`` then calls, for every key once all
workers have pushed it, ``optimizer.update_multi_precision(key, stored,
summed_push, state)`` (``state`` from ``create_state_multi_precision`` on
the key's first update).  The wrapper answers the reserved keys itself,
never counting them as updates (``num_update`` is untouched):

=========================  ==============================================
``REDUCE + n`` (n values)  ``stored = sum``: the workers' sum, pulled back
                           (:func:`~.distributed.sum_across_workers`)
``KeyPlan.save(i, j)``     ``stored = leaf j`` of parameter ``i``'s state
                           (momentum, Adam's two...), pulled by a save
``KeyPlan.load(i, j)``     leaf ``j`` of parameter ``i``'s state ``= sum``
                           (worker 0 pushes the values, the others zeros)
=========================  ==============================================

The parameters' ``lr_mult`` and ``wd_mult`` (the adapter's multipliers),
which MXNet leaves out of the pickled optimizer, travel with the wrapper.
A state loaded before the parameter's first update waits and fills the
state ``create_state`` makes then.  An optimizer sent again (to carry a
``ReduceOnPlateau`` cut) makes a new ``Updater``; its wrapper takes over
the states of the previous one of the same Trainer (:attr:`token`) from
this module's :data:`_LINEAGES`.

Keys and servers.  MXNet sends a key of fewer than
``MXNET_KVSTORE_BIGARRAY_BOUND`` elements (10**6) to server ``(key * 9973)
% servers``, computed in a C ``int``: keys above :data:`LAST` overflow it.
So the reserved keys lie in ``[RESERVED, LAST]`` and a parameter's state
keys are congruent to its key modulo the number of servers (same server).
A larger array is split over all servers by element ranges; a state leaf
has its parameter's size, so its keys split the same way and every server
gets the slice of the state it holds.  This module imports no more than
the adapter's unpickling does (a server may be inside ``import mxnet``).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

#: the first reserved key: a Trainer's own keys (its parameter indices)
#: stay below it
RESERVED = 1 << 17
#: the last key MXNet can place without overflowing ``key * 9973``
LAST = (2 ** 31 - 1) // 9973
#: reduction keys: ``REDUCE + n`` for a vector of ``n`` values
REDUCE = RESERVED
#: the longest vector :func:`~.distributed.sum_across_workers` reduces
MAX_REDUCE = 1024
#: the most arrays in one parameter's optimizer state (FTML's three with
#: a float16 master copy)
MAX_LEAVES = 4
#: the attribute of a Trainer holding its link to the servers (made by
#: :func:`~.distributed.prepare`; the adapter's ``observe`` uses it)
LINK = "_unisched_servers"
#: token -> (states, pending loads) of one Trainer, on a server
_LINEAGES: dict[str, tuple[dict, dict]] = {}


@dataclass(frozen=True)
class KeyPlan:
    """The state keys for ``servers`` servers: ``save(i, j)`` and
    ``load(i, j)`` for leaf ``j`` of parameter ``i``, ``i < capacity``.

    >>> plan = KeyPlan.for_servers(3)
    >>> plan.save(5, 0) % 3, plan.load(5, 3) % 3    # parameter 5's server
    (2, 2)
    >>> plan.decode(plan.load(7, 2))
    ('load', 7, 2)
    """

    base: int
    stride: int

    @classmethod
    def for_servers(cls, servers: int) -> KeyPlan:
        """Base and stride multiples of ``servers``, the keys in
        ``(REDUCE + MAX_REDUCE, LAST]``."""
        base = math.ceil((REDUCE + MAX_REDUCE + 1) / servers) * servers
        stride = (LAST + 1 - base) // (2 * MAX_LEAVES) // servers * servers
        if stride < 1:
            raise ValueError(f"servers must leave room for the reserved "
                             f"kvstore keys, got {servers}")
        return cls(base, stride)

    @property
    def capacity(self) -> int:
        """The most parameters a Trainer may have."""
        return self.stride

    def save(self, index: int, leaf: int) -> int:
        return self.base + leaf * self.stride + index

    def load(self, index: int, leaf: int) -> int:
        return self.base + (MAX_LEAVES + leaf) * self.stride + index

    def decode(self, key: int) -> tuple[str, int, int]:
        """``('reduce', n, 0)``, ``('save', i, j)`` or ``('load', i, j)``."""
        if key < self.base:
            return "reduce", key - REDUCE, 0
        slot, index = divmod(key - self.base, self.stride)
        if slot < MAX_LEAVES:
            return "save", index, slot
        return "load", index, slot - MAX_LEAVES


def leaves(state: Any) -> list[Any]:
    """The arrays of an optimizer state (None, an array, or nested
    tuples and lists of those), in order."""
    if state is None:
        return []
    if isinstance(state, (tuple, list)):
        return [leaf for part in state for leaf in leaves(part)]
    return [state]


def ships_optimizer(trainer: Any) -> bool:
    """Whether ``trainer``'s kvstore runs its optimizer on servers (a dist
    kvstore with ``update_on_kvstore`` True, MXNet's default there), also
    before the kvstore is created."""
    if trainer._kv_initialized:
        return bool(trainer._update_on_kvstore and trainer._distributed)
    config = trainer._kvstore_params
    kind = config["kvstore"]
    kind = kind if isinstance(kind, str) else getattr(kind, "type", "")
    if "dist" not in kind:
        return False
    if config["update_on_kvstore"] is None:     # MXNet's choice
        return "async" in kind or \
            os.environ.get("MXNET_UPDATE_ON_KVSTORE", "1") != "0"
    return bool(config["update_on_kvstore"])


class ServerOptimizer:
    """``optimizer`` as the servers run it: every attribute is the
    optimizer's, the reserved keys (see the module docstring) are answered
    here.  ``token`` names the Trainer (the same on every worker), ``plan``
    its :class:`KeyPlan`."""

    def __init__(self, optimizer: Any, token: str, plan: KeyPlan) -> None:
        self.inner, self.token, self.plan = optimizer, token, plan
        # MXNet pickles an optimizer without its param_dict, so the
        # servers would lose the parameters' lr_mult and wd_mult
        self.mults = {i: (p.lr_mult, p.wd_mult)
                      for i, p in optimizer.param_dict.items()}
        self._states: dict[int, Any] = {}
        self._pending: dict[int, dict[int, Any]] = {}

    def __getattr__(self, name: str) -> Any:
        # only for names not set here (not while unpickling: no inner yet)
        if name.startswith("__") or "inner" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __getstate__(self) -> dict[str, Any]:
        return {"inner": self.inner, "token": self.token, "plan": self.plan,
                "mults": self.mults}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for index, (lr_mult, wd_mult) in self.mults.items():
            self.inner.lr_mult[index] = lr_mult
            self.inner.wd_mult[index] = wd_mult
        # a successor of the same Trainer keeps its states
        self._states, self._pending = _LINEAGES.setdefault(self.token,
                                                           ({}, {}))

    def create_state_multi_precision(self, index: Any, weight: Any) -> Any:
        if isinstance(index, int) and index >= RESERVED:
            return None
        if index in self._states:
            return self._states[index]
        state = self.inner.create_state_multi_precision(index, weight)
        loaded = self._pending.pop(index, {})
        for j, leaf in enumerate(leaves(state)):
            if j in loaded:
                leaf[:] = loaded[j].reshape(leaf.shape)
        self._states[index] = state
        return state

    def update_multi_precision(self, index: Any, weight: Any, grad: Any,
                               state: Any) -> None:
        if not isinstance(index, (tuple, list)):
            if isinstance(index, int) and index >= RESERVED:
                self._reserved(index, weight, grad)
            else:
                self.inner.update_multi_precision(index, weight, grad, state)
            return
        # MXNet's aggregated form: one key per call on a server
        if not any(isinstance(i, int) and i >= RESERVED for i in index):
            self.inner.update_multi_precision(index, weight, grad, state)
            return
        for i, w, g, s in zip(index, weight, grad, state, strict=True):
            self.update_multi_precision(i, w, g, s)

    def _reserved(self, key: int, stored: Any, pushed: Any) -> None:
        kind, index, j = self.plan.decode(key)
        if kind == "save":
            source = self._leaf(index, j)
            if source is None:      # no state: not from prepare()
                stored[:] = math.nan
            else:
                stored[:] = source.reshape(stored.shape)
            return
        if kind == "load":
            if index in self._states:
                leaf = leaves(self._states[index])[j]
                leaf[:] = pushed.reshape(leaf.shape)
            else:
                self._pending.setdefault(index, {})[j] = pushed.copy()
        stored[:] = pushed

    def _leaf(self, index: int, j: int) -> Any:
        if index in self._states:
            return leaves(self._states[index])[j]
        return self._pending.get(index, {}).get(j)
