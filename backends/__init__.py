"""Framework adapters, imported only on demand.

``from unisched.backends import torch as ust`` (or ``keras``, ``mxnet``,
``jax``) loads one framework; :func:`bind` and :func:`from_native` find
the right backend from the object they are given, without importing a
framework the caller has not already imported.

Convention shared by every adapter: the k-th optimizer update
(k = 0, 1, ...) uses ``sched(k)``.
"""
from __future__ import annotations

import functools
import importlib
import sys
import types
from typing import Any

BACKENDS = ("torch", "keras", "mxnet", "jax")

# the top-level module of a class (or function) -> its backend
_ROOTS = {"torch": "torch", "keras": "keras", "tensorflow": "keras",
          "tf_keras": "keras", "mxnet": "mxnet", "optax": "jax",
          "jax": "jax", "flax": "jax"}


def _backend(name: str) -> types.ModuleType:
    return importlib.import_module(f"{__name__}.{name}")


def _owner(obj: Any) -> str | None:
    """The framework that defines ``obj``'s class (for a function, such as
    an optax optimizer factory or a ``functools.partial`` of one: the
    function), judged by module name: a framework that is not imported
    cannot have made the object."""
    modules = [klass.__module__ or "" for klass in type(obj).__mro__]
    if isinstance(obj, (types.FunctionType, functools.partial)):
        modules.insert(0, getattr(getattr(obj, "func", obj), "__module__",
                                  None) or "")
    for module in modules:
        parts = module.split(".")
        if module.startswith(f"{__name__}.") and parts[2] in BACKENDS:
            return parts[2]
        owner = _ROOTS.get(parts[0])
        if owner is not None and parts[0] in sys.modules:
            return owner
    return None


def bind(sched: Any, target: Any, **options: Any) -> Any:
    """Attach a schedule (or a spec string) to ``target``: a PyTorch
    optimizer, a Keras optimizer or model, an MXNet Gluon Trainer or an
    optax optimizer factory.
    Returns that backend's adapter; ``options`` go to it."""
    owner = _owner(target)
    if owner is None:
        raise TypeError(f"target must be a torch optimizer, a Keras "
                        f"optimizer or model, a Gluon Trainer or an optax "
                        f"optimizer factory, got "
                        f"{type(target).__module__}."
                        f"{type(target).__qualname__}")
    return _backend(owner).bind(sched, target, **options)


def from_native(obj: Any, **options: Any) -> Any:
    """The unisched schedule equal to a framework's own scheduler at every
    update (index shifts included); anything that cannot be converted
    exactly raises ``ValueError``/``TypeError``.  ``options`` go to the
    backend's converter (e.g. ``horizon`` for PyTorch's periodic
    ``CosineAnnealingLR``)."""
    owner = _owner(obj)
    if owner is None:
        raise TypeError(f"from_native takes a PyTorch, Keras or MXNet "
                        f"scheduler, got {type(obj).__module__}."
                        f"{type(obj).__qualname__}")
    return _backend(owner).from_native(obj, **options)
