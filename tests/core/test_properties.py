"""Properties every schedule must have, checked over the shared catalog.

Each test draws parameter sets from ``tests/catalog.py`` (hypothesis picks
the seed, so a failure shrinks to one reproducible ``draw(name, seed)``;
under CI the seeds are the same every run, see tests/conftest.py)
and checks one property for every registered schedule name: finite,
non-negative rates; vectorized values equal to scalar calls; config, JSON,
pickle and spec round trips; a readable repr; purity; immutability; hash
consistent with equality; momentum cycles that are schedules themselves;
and schedules with a natural end that stay at their final value.
"""
from __future__ import annotations

import inspect
import json
import math
import pickle

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import unisched as us
from unisched import presets
from unisched.combinators import Reverse

from catalog import CATALOG, HORIZON, draw

NAMES = sorted(CATALOG)
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
STEPS = np.arange(HORIZON)
# Far beyond every drawn schedule's end, up to the largest exact float step.
HUGE = [10**6, 10**9, 10**12, 2**53 - 1]
# Schedules that end at default_horizon() - 1 (max_update for fastai-style
# one-cycles) and stay there.
ENDING = ["poly", "cosine", "one_cycle", "one_cycle_momentum",
          "warmup_stable_decay"]

# The number of examples per name and property, and whether they are
# fresh each run, come from the hypothesis profile (tests/conftest.py):
# 8 fresh ones locally, the same 20 every run under CI.  Nothing here may
# choose examples, seeds or a database, or CI stops being
# reproducible.
few = settings(deadline=None)


def _restore_state(copy, original):
    """Configs and specs hold the arguments only; ReduceOnPlateau's
    observations travel separately, through state_dict()."""
    if original.stateful:
        copy.load_state_dict(original.state_dict())
    return copy


def _same(got, want):
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)


def test_catalog_covers_the_registry():
    assert set(CATALOG) == set(us.registered())


def test_every_exported_schedule_class_is_registered():
    exported = {obj for obj in vars(us).values()
                if inspect.isclass(obj) and issubclass(obj, us.Schedule)
                and obj is not us.Schedule}
    # the named presets live in unisched.presets; Reverse is exported from
    # unisched.combinators (and from unisched once __init__ lists it)
    named = {obj for obj in vars(presets).values()
             if inspect.isclass(obj) and issubclass(obj, us.Schedule)
             and obj.__module__ in (presets.__name__, "unisched.hf")
             and obj.name}
    assert exported | named | {Reverse} == set(us.registered().values())
    assert all(cls.name.startswith("hf_") for cls in named)


@pytest.mark.parametrize("name", NAMES)
@few
@given(seed=SEEDS)
def test_values_are_finite_and_non_negative(name, seed):
    sched = draw(name, seed)
    assert sched.name == name
    values = sched.values(STEPS)
    assert np.isfinite(values).all()
    assert (values >= 0).all()


@pytest.mark.parametrize("name", NAMES)
@few
@given(seed=SEEDS, steps=st.lists(st.integers(0, 3 * HORIZON), max_size=40),
       shuffle=st.randoms(use_true_random=False))
def test_values_equal_calls_in_any_order(name, seed, steps, shuffle):
    sched = draw(name, seed)
    # every step of the horizon, shuffled, plus the drawn ones (repeats)
    order = list(range(HORIZON)) + steps + steps[:5]
    shuffle.shuffle(order)
    got = sched.values(np.array(order, dtype=np.int64))
    assert got.dtype == np.float64 and got.shape == (len(order),)
    _same(got, [sched(k) for k in order])
    # the same steps as a list, a float array and a 2-D array
    _same(sched.values(order), got)
    _same(sched.values(np.array(order, dtype=np.float64)), got)
    grid = np.array(order[:HORIZON]).reshape(10, -1)
    out = sched.values(grid)
    assert out.shape == grid.shape
    _same(out, [[sched(int(k)) for k in row] for row in grid])


@pytest.mark.parametrize("name", NAMES)
@few
@given(seed=SEEDS)
def test_huge_steps_give_finite_rates(name, seed):
    sched = draw(name, seed)
    got = [sched(k) for k in HUGE]
    assert all(math.isfinite(v) and v >= 0 for v in got)
    _same(sched.values(np.array(HUGE, dtype=np.uint64)), got)


@pytest.mark.parametrize("name", ENDING)
@few
@given(seed=SEEDS)
def test_schedules_with_an_end_stay_at_their_final_value(name, seed):
    sched = draw(name, seed)
    # a periodic cosine has no end (PyTorch's and Hugging Face's rise again)
    assume(not getattr(sched, "periodic", False))
    base = sched.schedule if name == "one_cycle_momentum" else sched
    last = sched.default_horizon() - 1
    if name.startswith("one_cycle") and base.style == "fastai":
        last += 1  # progress step / max_update reaches 1 a step later
    final = sched(last)
    after = [last + 1, last + 2, 2 * last + 7, HORIZON * 10] + HUGE
    assert [sched(k) for k in after] == [final] * len(after)
    assert sched.values(after).tolist() == [final] * len(after)
    if name in ("poly", "cosine", "warmup_stable_decay"):
        assert final == base.final_lr
    elif name == "one_cycle":
        # torch's linear anneal, (end - start) * p + start, rounds at
        # p = 1 by ~1e-16 of max_lr, which is ~1e-11 of the minimum
        assert math.isclose(final, base.max_lr / base.div_factor
                            / base.final_div_factor, rel_tol=1e-9)
    else:
        assert math.isclose(final, base.max_momentum, rel_tol=1e-12)


@pytest.mark.parametrize("name", NAMES)
@few
@given(seed=SEEDS)
def test_config_round_trip(name, seed):
    sched = draw(name, seed)
    config = sched.to_config()
    assert config["name"] == name
    # JSON-safe: the JSON text gives back exactly the same dict
    text = json.dumps(config)
    assert json.loads(text) == config
    assert sched.to_json() == text
    for source in (config, json.loads(text), text):
        copy = _restore_state(us.from_config(source), sched)
        assert type(copy) is type(sched) and copy == sched
        assert copy.to_config() == config
        assert np.array_equal(copy.values(STEPS), sched.values(STEPS))


@pytest.mark.parametrize("name", NAMES)
@few
@given(seed=SEEDS)
def test_pickle_round_trip(name, seed):
    sched = draw(name, seed)
    copy = pickle.loads(pickle.dumps(sched))
    assert type(copy) is type(sched) and copy == sched
    assert np.array_equal(copy.values(STEPS), sched.values(STEPS))
    if sched.stateful:
        assert copy.state_dict() == sched.state_dict()


@pytest.mark.parametrize("name", NAMES)
@few
@given(seed=SEEDS)
def test_spec_round_trip(name, seed):
    sched = draw(name, seed)
    spec = sched.to_spec()
    assert str(sched) == spec and spec.startswith(f"{name}(")
    copy = _restore_state(us.parse(spec), sched)
    assert copy == sched
    assert np.array_equal(copy.values(STEPS), sched.values(STEPS))


@pytest.mark.parametrize("name", NAMES)
@few
@given(seed=SEEDS)
def test_repr_names_the_class_and_its_arguments(name, seed):
    sched = draw(name, seed)
    text = repr(sched)
    cls = type(sched)
    assert text.startswith(f"{cls.__name__}(") and text.endswith(")")
    assert " at 0x" not in text
    params = inspect.signature(cls.__init__).parameters
    for key, value in sched.args.items():
        default = params[key].default
        if default is not inspect.Parameter.empty and default == value:
            continue
        assert f"{key}=" in text
        if not isinstance(value, (us.Schedule, list, tuple)):
            assert f"{key}={value!r}" in text


@pytest.mark.parametrize("name", NAMES)
@few
@given(seed=SEEDS, shuffle=st.randoms(use_true_random=False))
def test_calls_are_pure(name, seed, shuffle):
    sched = draw(name, seed)
    config = sched.to_config()
    state = sched.state_dict() if sched.stateful else None
    forward = [sched(k) for k in range(HORIZON)]
    order = list(range(HORIZON))
    shuffle.shuffle(order)
    shuffled = {k: sched(k) for k in order}
    sched.values(STEPS[::-1])
    backward = [sched(k) for k in reversed(range(HORIZON))][::-1]
    assert [shuffled[k] for k in range(HORIZON)] == forward == backward
    assert sched.to_config() == config
    if sched.stateful:
        assert sched.state_dict() == state
    # a fresh draw is equal, so nothing leaked between draws either
    assert draw(name, seed) == sched


@pytest.mark.parametrize("name", NAMES)
@few
@given(seed=SEEDS)
def test_schedules_are_immutable(name, seed):
    sched = draw(name, seed)
    before = sched.values(STEPS)
    for key in list(sched.args) + ["name", "fresh_attribute"]:
        with pytest.raises(AttributeError, match="immutable"):
            setattr(sched, key, 1.0)
    for key in list(sched.args)[:1] + ["fresh_attribute"]:
        with pytest.raises(AttributeError, match="immutable"):
            delattr(sched, key)
    sched.args.clear()  # a copy: the schedule keeps its arguments
    assert np.array_equal(sched.values(STEPS), before)


@pytest.mark.parametrize("name", NAMES)
@few
@given(seed=SEEDS)
def test_hash_agrees_with_equality(name, seed):
    sched = draw(name, seed)
    twin = draw(name, seed)
    assert twin == sched and not twin != sched
    if sched.stateful:
        with pytest.raises(TypeError, match="unhashable"):
            hash(sched)
        return
    assert hash(twin) == hash(sched)
    assert hash(us.from_config(sched.to_json())) == hash(sched)
    assert len({sched, twin, us.parse(sched.to_spec())}) == 1
    assert sched != sched.to_config() and sched != name


def _nudged(config):
    """Configs equal to ``config`` except one float argument moved by one
    ulp towards zero, one per float leaf that still builds a schedule."""
    def leaves(node, path=()):
        items = (node.items() if isinstance(node, dict)
                 else enumerate(node) if isinstance(node, list) else ())
        for key, value in items:
            if isinstance(value, float) and value != 0.0:
                yield path + (key,)
            yield from leaves(value, path + (key,))
    for path in leaves(config):
        copy = json.loads(json.dumps(config))
        node = copy
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = math.nextafter(node[path[-1]], 0.0)
        yield copy


def _equal_both_ways(a, b):
    eq, ne = a == b, a != b
    assert (b == a, b != a) == (eq, ne) and eq is not ne
    return eq


@pytest.mark.parametrize("name", NAMES)
@few
@given(seed=SEEDS)
def test_equality_iff_configs_equal(name, seed):
    sched = draw(name, seed)
    config = sched.to_config()
    pairs = [(draw(name, seed), True), (us.from_config(config), True),
             (draw(name, seed + 1),
              draw(name, seed + 1).to_config() == config)]
    for nudged in _nudged(config):
        try:
            pairs.append((us.from_config(nudged), False))
        except ValueError:  # the nudge crossed a bound: not a schedule
            continue
    assert len(pairs) > 3, f"no float argument could be nudged: {config}"
    for other, same in pairs:
        assert _equal_both_ways(_restore_state(other, sched), sched) is same


@pytest.mark.parametrize("name", NAMES)
@few
@given(seed=SEEDS)
def test_momentum_cycles_are_schedules_in_unit_range(name, seed):
    sched = draw(name, seed)
    try:
        momentum = sched.momentum
    except ValueError as err:
        # a join of pieces with and without a momentum cycle
        assert name == "join" and "some pieces" in str(err)
        pieces = [piece.momentum is None for piece in sched.schedules]
        assert any(pieces) and not all(pieces)
        return
    if name in ("cyclic", "one_cycle"):
        assert momentum is not None
    if momentum is None:
        return
    assert isinstance(momentum, us.Schedule) and not momentum.stateful
    values = momentum.values(STEPS)
    assert ((values >= 0) & (values <= 1)).all()
    _same(values, [momentum(k) for k in range(HORIZON)])
    assert us.from_config(momentum.to_json()) == momentum
    assert us.parse(momentum.to_spec()) == momentum
    assert pickle.loads(pickle.dumps(momentum)) == momentum


# -- edge cases that once were core bugs ------------------------------------

def test_cyclic_triangular2_far_out():
    sched = us.CyclicScheduler(0.1, 1.0, 2, mode="triangular2")
    # cycle 1251, halfway up: 0.1 + 0.9 * 0.5 * 2**-1250 == 0.1
    assert sched(5001) == 0.1
    assert sched.momentum(5001) == 0.9
    assert us.warmup(sched, 3)(5004) == 0.1


@pytest.mark.parametrize("sched", [
    us.ExponentialScheduler(1e-3, factor=10.0, step=10),
    us.CosineRestartsScheduler(10, 1.0, cycle_decay=2.0),
], ids=["exponential-growth", "cosine_restarts-growth"])
def test_scalar_and_vector_agree_on_overflow(sched):
    # Growth past float64's range is an error naming the first such step
    # in both paths, never inf (issue: reliability).
    with pytest.raises(ValueError, match="no finite value at step 100000"):
        sched.values([10**5])
    with pytest.raises(ValueError, match="no finite value at step 100000"):
        sched(10**5)


@pytest.mark.parametrize("make, key", [
    (lambda: us.PiecewiseConstantScheduler([10, 20], [1.0, 0.5, 0.1]),
     "boundaries"),
    (lambda: us.MultiFactorScheduler([5, 9], 0.5, 1.0), "step"),
    (lambda: us.join([us.ConstantScheduler(1.0),
                      us.ConstantScheduler(0.5)], [3]), "schedules"),
], ids=["piecewise_constant", "multi_factor", "join"])
def test_list_arguments_cannot_be_changed_in_place(make, key):
    sched = make()
    before = (sched.to_config(), hash(sched))
    for container in (getattr(sched, key), sched.args[key]):
        try:
            container.append(container[0])
        except AttributeError:
            pass
        try:
            container[0] = container[-1]
        except TypeError:
            pass
    assert (sched.to_config(), hash(sched)) == before


def test_negative_zero_rate_hashes_like_zero():
    neg, pos = us.ConstantScheduler(-0.0), us.ConstantScheduler(0.0)
    assert neg == pos
    assert hash(neg) == hash(pos)
    assert neg.to_config() == pos.to_config()
    assert repr(neg) == repr(pos)
