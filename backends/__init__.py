"""Framework adapters, imported only on demand.

``from unisched.backends import torch as ust`` (or ``keras``, ``mxnet``)
loads one framework; :func:`bind` and :func:`from_native` find the right
backend from the object they are given, without importing a framework the
caller has not already imported.

Convention shared by every adapter: the k-th optimizer update
(k = 0, 1, ...) uses ``sched(k)``.
"""
from __future__ import annotations

import importlib
import sys
from typing import Any

BACKENDS = ("torch", "keras", "mxnet")


def _backend(name: str):
    return importlib.import_module(f"{__name__}.{name}")


def _owner(obj: Any) -> str | None:
    """The framework that defines ``obj``'s class, judged by module name
    (a framework that is not imported cannot have made the object)."""
    for klass in type(obj).__mro__:
        root = (klass.__module__ or "").split(".")[0]
        if root == "torch" and "torch" in sys.modules:
            return "torch"
        if root in ("keras", "tensorflow", "tf_keras") and \
                "keras" in sys.modules:
            return "keras"
        if root == "mxnet" and "mxnet" in sys.modules:
            return "mxnet"
    return None


def bind(sched: Any, target: Any, **options: Any) -> Any:
    """Attach a schedule (or a spec string) to ``target``: a PyTorch
    optimizer, a Keras optimizer or model, or an MXNet Gluon Trainer.
    Returns that backend's adapter; ``options`` go to it."""
    owner = _owner(target)
    if owner is None:
        raise TypeError(f"target must be a torch optimizer, a Keras "
                        f"optimizer or model, or a Gluon Trainer, got "
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
