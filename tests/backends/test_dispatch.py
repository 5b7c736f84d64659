"""unisched.bind / unisched.from_native find the backend from the object
and import no framework the caller has not imported."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import pytest

import unisched as us


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="needs torch")
def test_binding_a_torch_optimizer_imports_no_other_framework():
    code = textwrap.dedent("""
        import sys, torch, unisched as us
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        sch = us.bind("cosine(max_update=10, base_lr=0.5)", opt)
        native = torch.optim.lr_scheduler.StepLR(opt, 3, 0.5)
        print(type(sch).__module__, opt.param_groups[0]["lr"],
              us.from_native(native).to_spec())
        print(sorted(m for m in ("tensorflow", "keras", "mxnet", "jax")
                     if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], check=True,
                         capture_output=True, text=True).stdout.splitlines()
    assert out[0].split()[0] == "unisched.backends.torch.adapter"
    assert float(out[0].split()[1]) == 0.5
    assert "exponential(" in out[0] and "staircase=True" in out[0]
    assert out[1] == "[]"


@pytest.mark.parametrize("target", [object(), 0.1, "sgd", None])
def test_bind_refuses_what_is_not_an_optimizer(target):
    with pytest.raises(TypeError, match="optimizer"):
        us.bind(us.ConstantScheduler(0.1), target)


@pytest.mark.parametrize("native", [object(), us.ConstantScheduler(0.1),
                                    lambda step: 0.1])
def test_from_native_refuses_what_is_not_a_framework_scheduler(native):
    with pytest.raises(TypeError, match="scheduler"):
        us.from_native(native)


def test_binding_an_optax_factory_imports_no_other_framework():
    code = textwrap.dedent("""
        import functools, sys, optax, unisched as us
        for target in (optax.sgd, functools.partial(optax.adam, b2=0.99)):
            adapter = us.bind("cosine(max_update=10, base_lr=0.5)", target)
            print(type(adapter).__module__, us.from_native(adapter))
        print(sorted(m for m in ("torch", "tensorflow", "keras", "mxnet")
                     if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], check=True,
                         capture_output=True, text=True).stdout.splitlines()
    assert out[:2] == ["unisched.backends.jax.adapter "
                       "cosine(max_update=10, base_lr=0.5)"] * 2
    assert out[2] == "[]"
