"""The ``harness`` fixture: the contract suite runs once per backend (and
per execution mode) listed in :data:`HARNESSES`; see ``harness.py``."""
from __future__ import annotations

import importlib
import importlib.util

import pytest

#: test id -> (harness module, class, framework it needs).  Adding a
#: backend adds one line here and its harness module.
HARNESSES = {
    "torch": ("harness_torch", "TorchHarness", "torch"),
    "keras-eager": ("harness_keras", "KerasEagerHarness", "keras"),
    "keras-function": ("harness_keras", "KerasFunctionHarness", "keras"),
    "mxnet": ("harness_mxnet", "MXNetHarness", "mxnet"),
    "jax": ("harness_jax", "JaxHarness", "jax"),
}


@pytest.fixture(params=sorted(HARNESSES))
def harness(request):
    module, cls, requires = HARNESSES[request.param]
    if importlib.util.find_spec(requires) is None:
        pytest.skip(f"{requires} is not installed")
    if importlib.util.find_spec(module) is None:
        # A listed backend without its harness fails: it is not tested.
        pytest.fail(f"tests/backends/{module}.py is missing: the "
                    f"{request.param} backend has no contract harness",
                    pytrace=False)
    return getattr(importlib.import_module(module), cls)()
