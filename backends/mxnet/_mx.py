"""The project's one import of MXNet, with the numpy alias shim it needs.
"""
from __future__ import annotations

from types import ModuleType

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


mx = import_mxnet()
