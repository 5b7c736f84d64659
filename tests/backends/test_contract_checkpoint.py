"""Adapter contract, ``state_dict`` / ``load_state_dict``: plain data,
exact continuation, the mismatch policy and whole validation of corrupt
checkpoints (a bad one changes nothing), in every backend."""
from __future__ import annotations

import json
import math

import pytest

import unisched as us

from harness import assert_applied, values

COSINE = us.CosineScheduler(max_update=30, base_lr=0.1, final_lr=0.01)
ONE_CYCLE = us.OneCycleScheduler(0.1, 30)
MULTI_FACTOR = us.MultiFactorScheduler(step=[8, 12], factor=0.5,
                                       base_lr=0.3)
K = 10  # updates before the checkpoint


def _json(state):
    """A deep copy through JSON: what a checkpoint file gives back."""
    return json.loads(json.dumps(state))


def _plateau_run(harness, target, **options):
    """Bind a ReduceOnPlateau, cut it once after 4 updates, run to K."""
    sched = us.ReduceOnPlateau(COSINE, patience=0, factor=0.5)
    adapter = harness.bind(sched, target, **options)
    harness.step(target, 4)
    adapter.observe(1.0)
    assert adapter.observe(2.0)
    harness.step(target, K - 4)
    return adapter


def _plateau_rates(start, stop):
    return [0.5 * r for r in values(COSINE, start, stop)]


@pytest.mark.parametrize("kind", ["one_cycle", "plateau"])
def test_state_dict_is_plain_data(harness, kind):
    target = harness.make(momentum=0.9)
    if kind == "plateau":
        adapter = _plateau_run(harness, target)
    else:
        adapter = harness.bind(ONE_CYCLE, target)
        harness.step(target, K)
    state = adapter.state_dict()
    assert _json(state) == state  # no tuples, arrays or tensors
    assert state["updates_done"] == K


def test_load_state_dict_continues_one_cycle_at_update_k(harness):
    source = harness.make(momentum=0.9)
    adapter = harness.bind(ONE_CYCLE, source)
    harness.step(source, K)
    state = _json(adapter.state_dict())
    # A fresh optimizer whose own state is not loaded: the adapter must
    # write rate and momentum for update K itself.
    target = harness.make(momentum=0.9)
    resumed = harness.bind(ONE_CYCLE, target)
    resumed.load_state_dict(state)
    assert resumed.updates_done == K
    assert_applied(harness.step(target, 12), values(ONE_CYCLE, K, K + 12),
                   values(ONE_CYCLE.momentum, K, K + 12),
                   rtol=harness.rtol, first=K)


def test_load_state_dict_continues_a_cut_plateau_at_update_k(harness):
    state = _json(_plateau_run(harness, harness.make()).state_dict())
    target = harness.make()
    resumed = harness.bind(us.ReduceOnPlateau(COSINE, patience=0,
                                              factor=0.5), target)
    resumed.load_state_dict(state)
    assert resumed.schedule.scale == 0.5
    assert_applied(harness.step(target, 8), _plateau_rates(K, K + 8),
                   rtol=harness.rtol, first=K)


def test_load_state_dict_in_epoch_unit_continues_the_epoch(harness):
    source = harness.make()
    adapter = harness.bind(COSINE, source, unit="epoch", steps_per_epoch=3)
    harness.step(source, K)
    target = harness.make()
    resumed = harness.bind(COSINE, target, unit="epoch", steps_per_epoch=3)
    resumed.load_state_dict(_json(adapter.state_dict()))
    assert_applied(harness.step(target, 8),
                   [COSINE(k // 3) for k in range(K, K + 8)],
                   rtol=harness.rtol, first=K)


# -- a checkpoint of another schedule --------------------------------------

def _state_of_cosine(harness):
    source = harness.make()
    adapter = harness.bind(COSINE, source)
    harness.step(source, K)
    return _json(adapter.state_dict())


def test_mismatched_checkpoint_is_an_error_showing_both_specs(harness):
    state = _state_of_cosine(harness)
    target = harness.make()
    adapter = harness.bind(MULTI_FACTOR, target)
    before = adapter.state_dict()
    with pytest.raises(ValueError) as err:
        adapter.load_state_dict(state)
    assert COSINE.to_spec() in str(err.value)
    assert MULTI_FACTOR.to_spec() in str(err.value)
    assert adapter.state_dict() == before
    assert_applied(harness.step(target, 3), values(MULTI_FACTOR, 0, 3),
                   rtol=harness.rtol)


def test_mismatch_policy_checkpoint_continues_the_checkpoint_schedule(
        harness):
    state = _state_of_cosine(harness)
    target = harness.make()
    adapter = harness.bind(MULTI_FACTOR, target, on_mismatch="checkpoint")
    adapter.load_state_dict(state)
    assert (adapter.schedule, adapter.updates_done) == (COSINE, K)
    assert_applied(harness.step(target, 8), values(COSINE, K, K + 8),
                   rtol=harness.rtol, first=K)


def test_mismatch_policy_bound_keeps_the_bound_schedule_from_k(harness):
    state = _state_of_cosine(harness)
    target = harness.make()
    adapter = harness.bind(MULTI_FACTOR, target, on_mismatch="bound")
    adapter.load_state_dict(state)
    assert (adapter.schedule, adapter.updates_done) == (MULTI_FACTOR, K)
    assert_applied(harness.step(target, 8), values(MULTI_FACTOR, K, K + 8),
                   rtol=harness.rtol, first=K)


def test_mismatch_policy_bound_takes_the_plateau_state_of_the_checkpoint(
        harness):
    state = _json(_plateau_run(harness, harness.make()).state_dict())
    other = us.ReduceOnPlateau(MULTI_FACTOR, patience=0, factor=0.5)
    target = harness.make()
    adapter = harness.bind(other, target, on_mismatch="bound")
    adapter.load_state_dict(state)
    assert adapter.schedule.scale == 0.5  # the checkpoint's cut
    assert_applied(harness.step(target, 6),
                   [0.5 * r for r in values(MULTI_FACTOR, K, K + 6)],
                   rtol=harness.rtol, first=K)


def test_a_checkpoint_in_another_unit_is_a_mismatch(harness):
    source = harness.make()
    adapter = harness.bind(COSINE, source, unit="epoch", steps_per_epoch=3)
    harness.step(source, K)
    target = harness.make()
    resumed = harness.bind(COSINE, target)
    with pytest.raises(ValueError, match="steps_per_epoch=3"):
        resumed.load_state_dict(_json(adapter.state_dict()))
    assert_applied(harness.step(target, 2), values(COSINE, 0, 2),
                   rtol=harness.rtol)


# -- corrupt checkpoints ----------------------------------------------------

def _parent(state, path):
    for key in path[:-1]:
        state = state[key]
    return state


def _set(path, value):
    def corrupt(state):
        _parent(state, path)[path[-1]] = value
    return corrupt


def _delete(path):
    def corrupt(state):
        del _parent(state, path)[path[-1]]
    return corrupt


# (id, corruption, what the message must name); each is loaded into an
# adapter at update K + its index, so their number stays below COSINE's 30
CORRUPT = [
    ("format", _set(["format"], "unisched.nothing/0"), "format"),
    ("negative_updates", _set(["updates_done"], -3), "updates_done"),
    ("float_updates", _set(["updates_done"], 2.5), "updates_done"),
    ("unknown_schedule", _set(["schedule", "name"], "no_such_schedule"),
     "no_such_schedule"),
    ("nan_rate", _set(["schedule", "schedule", "base_lr"], math.nan),
     "base_lr"),
    ("unknown_hparam_config", _set(["hparams"], {"momentum": {
        "name": "no_such_schedule"}}), "no_such_schedule"),
    ("negative_multiplier", _set(["multipliers"], [-1.0]), "multipliers"),
    ("unit", _set(["unit"], "hour"), "unit"),
    ("plateau_scale_nan", _set(["schedule_state", "scale"], math.nan),
     "scale"),
    ("plateau_best_str", _set(["schedule_state", "best"], "x"), "best"),
    ("missing_updates_done", _delete(["updates_done"]), "updates_done"),
    ("missing_schedule", _delete(["schedule"]), "schedule"),
    ("missing_plateau_scale", _delete(["schedule_state", "scale"]),
     "scale"),
]


def test_corrupt_checkpoints_are_refused_naming_the_field_changing_nothing(
        harness):
    # One adapter for every corruption (setting one up per case would
    # cost more than the cases): each refused load must leave it exactly
    # as it was, so the next update applies what it would have.
    target = harness.make()
    adapter = _plateau_run(harness, target)
    failures = []
    for k, (case, corrupt, field) in enumerate(CORRUPT, start=K):
        before = _json(adapter.state_dict())
        state = _json(before)
        corrupt(state)
        try:
            adapter.load_state_dict(state)
            failures.append(f"{case}: loaded")
        except (ValueError, TypeError) as err:
            if field not in str(err):
                failures.append(f"{case}: {err!r} does not name {field}")
        if _json(adapter.state_dict()) != before:
            failures.append(f"{case}: the state changed")
        try:
            assert_applied(harness.step(target, 1), _plateau_rates(k, k + 1),
                           rtol=harness.rtol, first=k)
        except AssertionError as err:
            failures.append(f"{case}: {err}")
    assert not failures, "\n".join(failures)


def test_a_checkpoint_that_is_not_a_dict_is_a_type_error(harness):
    target = harness.make()
    adapter = harness.bind(COSINE, target)
    with pytest.raises(TypeError, match="list"):
        adapter.load_state_dict([("updates_done", 3)])
    assert adapter.updates_done == 0
