"""``multiply(schedule, factor)``: a schedule used as a multiplier.

Its literal reference tables are in ``test_reference_tables.py``; here the
config / JSON / spec / pickle round trips,
validation errors naming the argument, the momentum it carries and its
horizon.  The catalog entry makes ``test_properties.py`` check the
remaining properties (``-k multiply``).
"""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

import unisched as us

# ChainedScheduler([LinearLR(0.5, total_iters=4), StepLR(3, 0.5)]) at
# lr=1.0: the warmup factor times the staircase
CHAIN = us.multiply(us.warmup(us.ConstantScheduler(1.0), 4, 0.5),
                    us.ExponentialScheduler(1.0, 0.5, 3, staircase=True))


def test_nested_multiply_multiplies_every_factor():
    # the tables of multiply are in test_reference_tables.py
    sched = us.multiply(CHAIN, us.ConstantScheduler(0.1))
    for step, want in {0: 0.05, 3: 0.04375, 6: 0.025}.items():
        assert sched(step) == pytest.approx(want, rel=1e-15, abs=0)
    np.testing.assert_allclose(sched.values([0, 3, 6]),
                               [0.05, 0.04375, 0.025], rtol=1e-15)


def test_multiply_is_the_class():
    assert isinstance(CHAIN, us.Multiply) and us.Multiply.name == "multiply"
    assert us.multiply(CHAIN.schedule, CHAIN.factor) == CHAIN


def test_config_json_spec_and_pickle_round_trips():
    config = CHAIN.to_config()
    assert config == {
        "name": "multiply",
        "schedule": {"name": "warmup",
                     "schedule": {"name": "constant", "base_lr": 1.0},
                     "warmup_steps": 4, "warmup_begin_lr": 0.5,
                     "warmup_mode": "linear"},
        "factor": {"name": "exponential", "base_lr": 1.0, "factor": 0.5,
                   "step": 3, "staircase": True}}
    assert json.loads(CHAIN.to_json()) == config
    spec = CHAIN.to_spec()
    assert spec == ("multiply(schedule=warmup(schedule=constant(base_lr=1.0)"
                    ", warmup_steps=4, warmup_begin_lr=0.5), factor="
                    "exponential(base_lr=1.0, factor=0.5, step=3, "
                    "staircase=True))")
    for copy in (us.from_config(config), us.from_config(CHAIN.to_json()),
                 us.parse(spec), pickle.loads(pickle.dumps(CHAIN))):
        assert copy == CHAIN and hash(copy) == hash(CHAIN)
        assert np.array_equal(copy.values(np.arange(40)),
                              CHAIN.values(np.arange(40)))
    assert repr(CHAIN).startswith("Multiply(schedule=Warmup(")
    assert us.parse("multiply(constant(0.5), exponential(1.0, 0.5))")(2) \
        == 0.125


@pytest.mark.parametrize("args, error, match", [
    ((0.5, us.ConstantScheduler(1.0)), TypeError,
     r"schedule must be a unisched schedule, got 0.5"),
    ((us.ConstantScheduler(1.0), 0.5), TypeError,
     r"factor must be a unisched schedule, got 0.5"),
    ((us.ConstantScheduler(1.0), "cosine(10)"), TypeError,
     r"factor must be a unisched schedule, got 'cosine\(10\)'"),
    ((us.ConstantScheduler(1.0),
      us.ReduceOnPlateau(us.ConstantScheduler(1.0))), TypeError,
     r"factor must be a stateless schedule"),
])
def test_bad_arguments_name_the_argument(args, error, match):
    with pytest.raises(error, match=match):
        us.multiply(*args)


def test_bad_spec_and_config_name_the_argument():
    with pytest.raises(ValueError, match=r"multiply\(\) got unknown "
                       r"argument\(s\) factors; valid arguments: schedule, "
                       r"factor"):
        us.from_config({"name": "multiply", "factors": []})
    with pytest.raises(TypeError, match="factor must be a unisched"):
        us.parse("multiply(constant(1.0), factor=2)")


def test_momentum_is_the_rate_schedules():
    # the factor scales the rate only; its own momentum cycle is not used
    cyc = us.CyclicScheduler(0.01, 0.1, step_size_up=5)
    assert us.multiply(us.ConstantScheduler(1.0), cyc).momentum is None
    sched = us.multiply(cyc, us.ExponentialScheduler(1.0, 0.9))
    assert sched.momentum == cyc.momentum
    assert sched(3) == pytest.approx(cyc(3) * 0.9 ** 3, rel=1e-15)


def test_horizon_is_the_later_end_or_none():
    cos10, cos30 = us.CosineScheduler(10), us.CosineScheduler(30)
    assert cos30.default_horizon() == 31
    assert us.multiply(cos10, cos30).default_horizon() == 31
    assert us.multiply(cos30, cos10).default_horizon() == 31
    assert us.multiply(cos10, us.ConstantScheduler(1.0)) \
        .default_horizon() is None
