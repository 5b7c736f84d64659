"""The ``harness`` fixture: the contract suite runs once per backend (and
per execution mode) listed in :data:`HARNESSES`; see ``harness.py``."""
from __future__ import annotations

import importlib
import importlib.util

import pytest

#: harness module -> class name.  Adding a backend adds one line here.
HARNESSES = {
    "harness_torch": "TorchHarness",
    "harness_keras": "KerasEagerHarness",
    "harness_keras:function": "KerasFunctionHarness",
    "harness_mxnet": "MXNetHarness",
}


def _load(key: str):
    module = key.split(":")[0]
    cls = getattr(importlib.import_module(module), HARNESSES[key])
    if importlib.util.find_spec(cls.requires) is None:
        pytest.skip(f"{cls.requires} is not installed")
    return cls()


@pytest.fixture(params=sorted(HARNESSES), ids=lambda k: k.split("_", 1)[1])
def harness(request):
    return _load(request.param)
