"""Every docstring example in ``unisched.backends`` runs.

pytest's ``--doctest-modules`` would import ``backends/`` under the
folder's own name (``backends.keras...``), a second copy of each module
beside the installed ``unisched.backends``, and Keras would register the
serializable classes twice.  The examples are run here instead, from the
modules as users import them, one test per framework module.
"""
import doctest
import importlib
import importlib.util
import pkgutil

import pytest

import unisched.backends

FRAMEWORK_MODULE = {"torch": "torch", "keras": "keras", "mxnet": "mxnet",
                    "jax": "optax"}


def _modules():
    names = ["unisched.backends"]
    for fw in unisched.backends.BACKENDS:
        package = f"unisched.backends.{fw}"
        names.append(package)
        spec = importlib.util.find_spec(package)
        found = pkgutil.iter_modules(spec.submodule_search_locations)
        names += [f"{package}.{m.name}" for m in found]
    return names


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name):
    fw = name.split(".")[2] if name.count(".") >= 2 else None
    if fw is not None and importlib.util.find_spec(FRAMEWORK_MODULE[fw]) \
            is None:
        pytest.skip(f"{FRAMEWORK_MODULE[fw]} is not installed")
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
