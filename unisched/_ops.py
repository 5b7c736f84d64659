"""The array operations schedule formulas are written against.

Every schedule writes its formula once, as ``_eval(t, ops)``, where ``t`` is
the step (a float, a float64 array or a framework tensor) and ``ops`` is one
of the namespaces below.  The same code therefore serves scalar calls
(``ScalarOps``, plain ``math`` — a numpy 0-d round trip would cost more than
the formula), whole arrays (``NumpyOps``) and, in the Keras backend,
``keras.ops`` inside a compiled graph.  Formulas must keep both branches of a
``where`` finite (clip before ``power``/``log``/division), because scalar ops
would raise and graph ops would carry NaN through.

An ops namespace provides: ``where(cond, a, b)``, ``cos``, ``sqrt``,
``exp``, ``log``, ``floor``, ``ceil``, ``minimum``, ``maximum``,
``power(base, exponent)`` and ``clip(x, low, high)``.  Arithmetic and
comparisons use Python operators.
"""
from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

#: what a formula computes with: a float, a float64 array or a framework
#: tensor (formulas use only arithmetic, comparisons and an :class:`Ops`)
Tensor = Any


class Ops(Protocol):
    """The namespace a formula is written against (``ScalarOps``,
    ``NumpyOps``, the Keras and JAX backends' ops)."""

    def where(self, cond: Tensor, a: Tensor, b: Tensor, /) -> Tensor: ...
    def cos(self, x: Tensor, /) -> Tensor: ...
    def sqrt(self, x: Tensor, /) -> Tensor: ...
    def exp(self, x: Tensor, /) -> Tensor: ...
    def log(self, x: Tensor, /) -> Tensor: ...
    def floor(self, x: Tensor, /) -> Tensor: ...
    def ceil(self, x: Tensor, /) -> Tensor: ...
    def minimum(self, a: Tensor, b: Tensor, /) -> Tensor: ...
    def maximum(self, a: Tensor, b: Tensor, /) -> Tensor: ...
    def power(self, base: Tensor, exponent: Tensor, /) -> Tensor: ...
    def clip(self, x: Tensor, low: Tensor, high: Tensor, /) -> Tensor: ...


class ScalarOps:
    """``math`` for one Python float at a time."""

    @staticmethod
    def where(cond: Any, a: float, b: float) -> float:
        return a if cond else b

    cos = staticmethod(math.cos)
    sqrt = staticmethod(math.sqrt)
    exp = staticmethod(math.exp)
    log = staticmethod(math.log)

    @staticmethod
    def floor(x: float) -> float:
        return float(math.floor(x))

    @staticmethod
    def ceil(x: float) -> float:
        return float(math.ceil(x))

    minimum = staticmethod(min)
    maximum = staticmethod(max)

    @staticmethod
    def power(base: float, exponent: float) -> float:
        try:
            return math.pow(base, exponent)
        except OverflowError:  # numpy gives inf; so must one call
            return math.inf

    @staticmethod
    def clip(x: float, low: float, high: float) -> float:
        return min(max(x, low), high)


class NumpyOps:
    """numpy ufuncs for float64 arrays."""

    @staticmethod
    def where(cond: Any, a: Any, b: Any) -> Any:
        # np.where itself: its one-argument overload is what mypy would
        # see through staticmethod()
        return np.where(cond, a, b)

    cos = staticmethod(np.cos)
    sqrt = staticmethod(np.sqrt)
    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    floor = staticmethod(np.floor)
    ceil = staticmethod(np.ceil)
    minimum = staticmethod(np.minimum)
    maximum = staticmethod(np.maximum)
    power = staticmethod(np.power)
    clip = staticmethod(np.clip)
