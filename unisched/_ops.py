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

import numpy as np


class ScalarOps:
    """``math`` for one Python float at a time."""

    @staticmethod
    def where(cond, a, b):
        return a if cond else b

    cos = staticmethod(math.cos)
    sqrt = staticmethod(math.sqrt)
    exp = staticmethod(math.exp)
    log = staticmethod(math.log)

    @staticmethod
    def floor(x):
        return float(math.floor(x))

    @staticmethod
    def ceil(x):
        return float(math.ceil(x))

    minimum = staticmethod(min)
    maximum = staticmethod(max)

    @staticmethod
    def power(base, exponent):
        try:
            return math.pow(base, exponent)
        except OverflowError:  # numpy gives inf; so must one call
            return math.inf

    @staticmethod
    def clip(x, low, high):
        return min(max(x, low), high)


class NumpyOps:
    """numpy ufuncs for float64 arrays."""

    where = staticmethod(np.where)
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
