"""The ``harness`` fixture: the contract suite runs once per backend (and
per execution mode) listed in :data:`HARNESSES`; see ``harness.py``."""
from __future__ import annotations

import importlib
import importlib.util
import os

import pytest

#: the Keras harnesses of each Keras backend: test id -> class in
#: ``harness_keras``.  Keras fixes its backend at import, so a process
#: tests the one ``KERAS_BACKEND`` names (tensorflow, keras' default);
#: ``test_keras_backends.py`` runs the others, each in its own process.
KERAS_HARNESSES = {
    "tensorflow": {"keras-eager": "KerasEagerHarness",
                   "keras-function": "KerasFunctionHarness"},
    "jax": {"keras-jax-eager": "KerasEagerHarness",
            "keras-jax-jit": "KerasJitHarness"},
    "torch": {"keras-torch": "KerasEagerHarness"},
}
KERAS_BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")

#: test id -> (harness module, class, framework it needs).  Adding a
#: backend adds one line here and its harness module.
HARNESSES = {
    "torch": ("harness_torch", "TorchHarness", "torch"),
    **{name: ("harness_keras", cls, "keras") for name, cls in
       KERAS_HARNESSES.get(KERAS_BACKEND, {  # unsupported: fails naming it
           f"keras-{KERAS_BACKEND}": "KerasEagerHarness"}).items()},
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
