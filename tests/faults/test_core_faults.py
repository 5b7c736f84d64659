"""What was tried to break the core, as a careful user would (issue:
reliability).  Each case failed before its fix: a wrong or non-finite
rate, a traceback from deep inside Python or numpy, or a message naming
the wrong thing.  Now each is a value, or a ValueError/TypeError naming
the argument."""
import numpy as np
import pytest

import unisched as us

from catalog import draw, samples


@pytest.mark.parametrize("make,match", [
    (lambda: us.OneCycleScheduler(0.1, 100, final_div_factor=1e-320),
     "final_div_factor=1e-320"),
    (lambda: us.OneCycleScheduler(1e300, 10, div_factor=1e-10),
     "div_factor=1e-10"),
    (lambda: us.CyclicScheduler(0.01, 0.1, step_size_up=2 ** 64,
                                step_size_down=3), "step_size_up"),
    (lambda: us.CosineScheduler(max_update=1e308), "max_update"),
    (lambda: us.CosineRestartsScheduler(2 ** 64, 0.1), "first_cycle"),
    (lambda: us.ConstantScheduler(10 ** 400), "base_lr.*401 digits"),
])
def test_extreme_arguments_are_refused_by_name(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_extreme_but_valid_arguments_give_finite_rates():
    sched = us.CosineScheduler(max_update=20, base_lr=1e308, final_lr=1e308)
    assert sched.values(range(30)).tolist() == [1e308] * 30
    far = us.CyclicScheduler(0.01, 0.1, step_size_up=2 ** 52,
                             step_size_down=3)
    assert far(0) == far.values([0])[0] == 0.01


@pytest.mark.parametrize("step", [2 ** 53, 2 ** 1024, -1])
def test_steps_beyond_the_exact_range_are_refused(step):
    sched = us.ConstantScheduler(0.1)
    with pytest.raises(ValueError, match="step"):
        sched(step)
    with pytest.raises((ValueError, TypeError), match="steps"):
        sched.values([step])


def test_the_largest_exact_step_still_works():
    sched = us.CosineScheduler(10, base_lr=1.0)
    assert sched(2 ** 53 - 1) == 0.0
    assert sched.values([2 ** 53 - 1]).tolist() == [0.0]


@pytest.mark.parametrize("spec,match", [
    ("constant(" + "1" * 400 + ")", "number of 400 characters"),
    ("constant(" + "9" * 5000 + ")", "number of 5000 characters"),
    ("join(" + "[" * 5000 + "]", "nested deeper than 100"),
    ("warmup(" * 200 + "constant(1)" + ")" * 200, "nested deeper"),
])
def test_huge_or_deep_specs_are_spec_errors(spec, match):
    with pytest.raises(us.SpecError, match=match):
        us.parse(spec)


def test_spec_errors_quote_an_excerpt_not_the_whole_spec():
    spec = "cosine(max_update=10, base_lr=0.5" + " " * 4_000_000 + "?"
    with pytest.raises(us.SpecError) as err:
        us.parse(spec)
    assert len(str(err.value)) < 300
    assert "position 4000033" in str(err.value)
    with pytest.raises(us.SpecError) as err:
        us.parse("x" * 4_000_000 + "(1)")
    assert len(str(err.value)) < 1000


def test_deep_and_self_referencing_configs_are_value_errors():
    deep = {"name": "constant", "base_lr": 0.1}
    for _ in range(5000):
        deep = {"name": "scale", "schedule": deep, "factor": 1.0}
    with pytest.raises(ValueError, match="nested deeper than 100"):
        us.from_config(deep)
    loop = {"name": "scale", "factor": 1.0}
    loop["schedule"] = loop
    with pytest.raises(ValueError, match="contains itself"):
        us.from_config(loop)
    with pytest.raises(ValueError, match="not valid JSON"):
        us.from_config("[" * 100_000)


@pytest.mark.parametrize("state,match", [
    ({"scale": float("nan")}, "scale"),
    ({"scale": -0.5}, "scale"),
    ({"scale": 2.0}, "scale"),
    ({"best": "x"}, "best"),
    ({"best": float("nan")}, "best"),
    ({"num_bad_epochs": -1}, "num_bad_epochs"),
    ({"last_epoch": 1.5}, "last_epoch"),
])
def test_bad_plateau_state_is_refused_and_changes_nothing(state, match):
    sched = us.ReduceOnPlateau(0.1, patience=0, factor=0.5)
    sched.observe(1.0)
    sched.observe(2.0)
    before = sched.state_dict()
    with pytest.raises((ValueError, TypeError), match=match):
        sched.load_state_dict({**before, **state})
    assert sched.state_dict() == before
    assert sched(0) == 0.05


@pytest.mark.parametrize("name,seed", samples(3))
def test_values_are_bit_identical_to_scalar_calls(name, seed):
    sched = draw(name, seed)
    rng = np.random.default_rng(seed)
    steps = np.unique(np.concatenate([
        np.arange(300), rng.integers(0, 10 ** 7, 100),
        rng.integers(0, 2 ** 53, 20)]))
    scalar = [sched(int(k)) for k in steps]
    assert sched.values(steps).tolist() == scalar


@pytest.mark.parametrize("sched,first", [
    (us.ExponentialScheduler(1.0, 2.0), 1024),
    (us.scale(us.ConstantScheduler(1e300), 1e10), 0),
    (us.multiply(us.ExponentialScheduler(1e200, 10.0),
                 us.ConstantScheduler(1e100)), 9),
])
def test_growth_past_float64_is_an_error_not_inf(sched, first):
    # Growing schedules (and products of large rates) cannot be bounded
    # in the constructor: the first step without a finite rate is named.
    with pytest.raises(ValueError, match=f"no finite value at step "
                                         f"{first} "):
        sched.values(range(first + 5))
    with pytest.raises(ValueError, match=f"at step {first} "):
        sched(first)
    if first:
        assert np.isfinite(sched.values(range(first))).all()
