"""unisched: one learning-rate schedule for PyTorch, Keras and MXNet.

Schedules are pure, immutable functions of the step (the number of
optimizer updates already done; 0 for the first update).  The framework
adapters live in ``unisched.backends`` and are imported only on demand:
``import unisched`` never imports a framework.

>>> import unisched
>>> s = unisched.parse("cosine(max_update=20, base_lr=0.5, final_lr=0.01)")
>>> s(0), s(20)
(0.5, 0.01)
"""
import importlib
from typing import Any

from . import presets  # noqa: F401  (registers the hf_* spec names)
from .base import Schedule, from_config, registered
from .combinators import (
    Epochwise,
    Floor,
    Join,
    Multiply,
    Reverse,
    Scale,
    Shift,
    Warmup,
    epochwise,
    floor,
    join,
    multiply,
    reverse,
    scale,
    shift,
    warmup,
)
from .cyclic import (
    CosineRestartsScheduler,
    CyclicMomentum,
    CyclicScheduler,
    OneCycleMomentum,
    OneCycleScheduler,
    WarmupStableDecayScheduler,
)
from .plateau import ReduceOnPlateau
from .schedules import (
    ConstantScheduler,
    CosineScheduler,
    ExponentialScheduler,
    FactorScheduler,
    InverseTimeScheduler,
    MultiFactorScheduler,
    PiecewiseConstantScheduler,
    PolyScheduler,
    SquareRootScheduler,
)
from .spec import SpecError, parse

__version__ = "0.1.0"


def _backends() -> Any:
    """``unisched.backends``, imported on demand (it imports no framework
    by itself)."""
    # the folder backends/ (setup.cfg's package_dir): mypy, which maps
    # files to modules by folder, checks it as the package `backends`
    return importlib.import_module(f"{__name__}.backends")


def bind(sched: Any, target: Any, **options: Any) -> Any:
    """Attach ``sched`` to a PyTorch optimizer, a Keras optimizer or model,
    or an MXNet Gluon Trainer; see :func:`unisched.backends.bind`."""
    return _backends().bind(sched, target, **options)


def from_native(obj: Any, **options: Any) -> Schedule:
    """Convert a framework's own scheduler into the equal unisched
    schedule; see :func:`unisched.backends.from_native`."""
    sched: Schedule = _backends().from_native(obj, **options)
    return sched


__all__ = [
    "Schedule", "from_config", "registered", "parse", "SpecError", "bind",
    "from_native",
    "ConstantScheduler", "SquareRootScheduler", "FactorScheduler",
    "MultiFactorScheduler", "PolyScheduler", "CosineScheduler",
    "ExponentialScheduler", "InverseTimeScheduler",
    "PiecewiseConstantScheduler", "CosineRestartsScheduler",
    "CyclicScheduler", "CyclicMomentum", "OneCycleScheduler",
    "OneCycleMomentum", "WarmupStableDecayScheduler", "ReduceOnPlateau",
    "Warmup", "Join", "Epochwise", "Shift", "Scale", "Multiply", "Floor",
    "Reverse",
    "warmup", "join", "epochwise", "shift", "scale", "multiply", "floor",
    "reverse",
]
