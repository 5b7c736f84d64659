"""PyTorch's composite schedulers (``SequentialLR``, ``ChainedScheduler``)
converted from their children.

:data:`COMPOSITE` maps each supported composite type to a converter
``(obj, convert) -> Schedule``, where ``convert(child)`` converts one
child scheduler (``native.from_native``'s own dispatch)."""
from __future__ import annotations

from typing import Any, Callable

from unisched.base import Schedule

Converter = Callable[[Any, Callable[[Any], Schedule]], Schedule]

COMPOSITE: dict[type, Converter] = {}
