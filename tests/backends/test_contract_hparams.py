"""Adapter contract, everything but the rate: momentum, other
hyperparameters, multipliers, ReduceOnPlateau's ``observe``, rebinding and
``unbind``; values read back from the weights in every backend."""
from __future__ import annotations

import pytest

import unisched as us

from harness import assert_applied, close, values

ONE_CYCLE = us.OneCycleScheduler(0.1, 30)
COSINE = us.CosineScheduler(max_update=30, base_lr=0.1, final_lr=0.01)
MOMENTUM = us.CosineScheduler(max_update=20, base_lr=0.95, final_lr=0.85)
OWN = {"sgd": "momentum", "adam": "beta1"}  # the optimizer's own momentum


def _own_momentum(harness, target, optimizer):
    return harness.own_hparams(target)[OWN[optimizer]]


# -- momentum -------------------------------------------------------------

@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_auto_momentum_applies_the_one_cycle_momentum(harness, optimizer):
    target = harness.make(optimizer=optimizer, momentum=0.9)
    adapter = harness.bind(ONE_CYCLE, target)  # momentum='auto'
    assert adapter.hparams == {OWN[optimizer]: ONE_CYCLE.momentum}
    assert_applied(harness.step(target, 30), values(ONE_CYCLE, 0, 30),
                   values(ONE_CYCLE.momentum, 0, 30), rtol=harness.rtol)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("sched,momentum", [
    (ONE_CYCLE, False), (COSINE, "auto")], ids=["false", "auto_no_cycle"])
def test_momentum_false_or_no_cycle_leaves_the_optimizer_momentum(
        harness, optimizer, sched, momentum):
    target = harness.make(optimizer=optimizer, momentum=0.9)
    own = _own_momentum(harness, target, optimizer)
    assert close(own, 0.9, 1e-7)  # SGD's as made, Adam's default beta1
    adapter = harness.bind(sched, target, momentum=momentum)
    assert adapter.hparams == {}
    assert_applied(harness.step(target, 30), values(sched, 0, 30),
                   [own] * 30, rtol=harness.rtol)
    assert _own_momentum(harness, target, optimizer) == own


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("form", ["schedule", "spec", "number"])
def test_a_momentum_schedule_drives_momentum(harness, optimizer, form):
    cycle = {"schedule": MOMENTUM, "spec": MOMENTUM.to_spec(),
             "number": 0.8}[form]
    want = MOMENTUM if form != "number" else us.ConstantScheduler(0.8)
    target = harness.make(optimizer=optimizer, momentum=0.9)
    adapter = harness.bind(COSINE, target, momentum=cycle)
    assert adapter.hparams == {OWN[optimizer]: want}
    assert_applied(harness.step(target, 25), values(COSINE, 0, 25),
                   values(want, 0, 25), rtol=harness.rtol)


@pytest.mark.parametrize("optimizer,name", [
    ("sgd", "momentum"), ("adam", "beta1")])
def test_hparams_by_common_name_drive_momentum(harness, optimizer, name):
    target = harness.make(optimizer=optimizer, momentum=0.9)
    adapter = harness.bind(COSINE, target, hparams={name: MOMENTUM})
    assert adapter.hparams == {name: MOMENTUM}
    assert_applied(harness.step(target, 25), values(COSINE, 0, 25),
                   values(MOMENTUM, 0, 25), rtol=harness.rtol)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_hparams_weight_decay_is_driven(harness, optimizer):
    decay = us.ExponentialScheduler(1e-3, factor=0.5, step=2)
    target = harness.make(optimizer=optimizer)
    adapter = harness.bind(0.1, target, hparams={"weight_decay": decay})
    assert adapter.hparams == {"weight_decay": decay}
    own = harness.own_hparams(target)
    if "weight_decay" in own:  # where the harness reads it back
        assert close(own["weight_decay"], decay(0), harness.rtol)


def test_hparams_follow_the_epoch_unit(harness):
    target = harness.make(momentum=0.9)
    adapter = harness.bind(COSINE, target, hparams={"momentum": MOMENTUM},
                           unit="epoch", steps_per_epoch=3)
    assert adapter.hparams == {"momentum": MOMENTUM}
    assert_applied(harness.step(target, 20),
                   [COSINE(k // 3) for k in range(20)],
                   [MOMENTUM(k // 3) for k in range(20)], rtol=harness.rtol)


def test_hparams_with_an_unknown_name_is_refused_naming_it(harness):
    target = harness.make(momentum=0.9)
    with pytest.raises(ValueError, match="no_such_hparam"):
        harness.bind(COSINE, target, hparams={"no_such_hparam": 0.1})


def test_hparams_and_auto_momentum_on_one_target_are_refused(harness):
    target = harness.make(momentum=0.9)
    with pytest.raises(ValueError, match="momentum"):
        harness.bind(ONE_CYCLE, target, hparams={"momentum": 0.9})


# -- multipliers ----------------------------------------------------------

def test_sequence_multipliers_scale_each_group(harness):
    # One factor per group: PyTorch's param_groups, or one per parameter
    # where the framework has no groups (make() gives one each).
    target = harness.make(3)
    adapter = harness.bind(COSINE, target, multipliers=[1.0, 0.5, 0.25])
    assert list(adapter.multipliers) == [1.0, 0.5, 0.25]
    assert_applied(harness.step(target, 20),
                   [[r, 0.5 * r, 0.25 * r] for r in values(COSINE, 0, 20)],
                   rtol=harness.rtol)


@pytest.mark.parametrize("mapping,factors", [
    ({"g1": 0.5}, [1.0, 0.5, 1.0]),
    ({"g[02]": 0.25, "g1": 2.0}, [0.25, 2.0, 0.25]),
])
def test_mapping_multipliers_scale_matching_parameters(harness, mapping,
                                                       factors):
    target = harness.make(3)
    adapter = harness.bind(COSINE, target, multipliers=mapping)
    assert adapter.multipliers == mapping
    assert_applied(harness.step(target, 20),
                   [[f * r for f in factors] for r in values(COSINE, 0, 20)],
                   rtol=harness.rtol)


@pytest.mark.parametrize("multipliers,shown", [
    ({"nothing_matches": 0.5}, "nothing_matches"),
    ({"g": 0.5}, "'g'"),  # fullmatch: 'g' is no parameter's whole name
    ([1.0, 0.5], "2 entries"),
    ([1.0, -0.5, 1.0], "-0.5"),
])
def test_multipliers_that_fit_no_parameter_are_refused(harness, multipliers,
                                                       shown):
    target = harness.make(3)
    with pytest.raises(ValueError, match=shown):
        harness.bind(COSINE, target, multipliers=multipliers)
        # Keras learns the variables when the optimizer is built, at the
        # first update: the refusal comes there, before anything applies.
        harness.step(target, 1)


def test_groups_starting_at_different_rates_keep_their_ratios(harness):
    if harness.group_rates:
        target = harness.make(2, lrs=(0.2, 0.05))
        ratios = [1.0, 0.25]
    else:
        # One rate per optimizer (Keras): groups cannot start apart, so the
        # claim is that all of them apply the one rate.
        assert not harness.group_rates
        target, ratios = harness.make(2), [1.0, 1.0]
    adapter = harness.bind(COSINE, target)
    assert "0.25" not in COSINE.to_spec()
    assert ("0.25" in repr(adapter)) == harness.group_rates, repr(adapter)
    assert_applied(harness.step(target, 20),
                   [[f * r for f in ratios] for r in values(COSINE, 0, 20)],
                   rtol=harness.rtol)


# -- ReduceOnPlateau ------------------------------------------------------

def test_observe_cuts_the_rate_of_the_next_update(harness):
    sched = us.ReduceOnPlateau(COSINE, patience=0, factor=0.5)
    target = harness.make()
    adapter = harness.bind(sched, target)
    assert_applied(harness.step(target, 4), values(COSINE, 0, 4),
                   rtol=harness.rtol)
    assert adapter.observe(1.0) is False
    assert adapter.observe(2.0) is True  # worse, patience 0: a cut
    assert close(harness.own_hparams(target)["lr"][0], 0.5 * COSINE(4),
                 harness.rtol)  # re-applied at once
    assert_applied(harness.step(target, 6),
                   [0.5 * r for r in values(COSINE, 4, 10)],
                   rtol=harness.rtol, first=4)


def test_observe_without_a_plateau_schedule_is_a_type_error(harness):
    target = harness.make()
    adapter = harness.bind(COSINE, target)
    with pytest.raises(TypeError, match="ReduceOnPlateau"):
        adapter.observe(1.0)
    assert_applied(harness.step(target, 2), values(COSINE, 0, 2),
                   rtol=harness.rtol)


# -- rebinding and unbind -------------------------------------------------

def test_rebinding_restores_own_momentum_and_follows_the_new_schedule(
        harness):
    target = harness.make(momentum=0.9)
    harness.bind(ONE_CYCLE, target)
    assert_applied(harness.step(target, 5), values(ONE_CYCLE, 0, 5),
                   values(ONE_CYCLE.momentum, 0, 5), rtol=harness.rtol)
    adapter = harness.bind(0.05, target, momentum=False)
    assert close(harness.own_hparams(target)["momentum"], 0.9, 1e-7)
    # The first adapter runs no more: its rate and momentum cycle would
    # show in these updates.
    assert_applied(harness.step(target, 10), [0.05] * 10, [0.9] * 10,
                   rtol=harness.rtol)
    assert adapter.schedule == us.ConstantScheduler(0.05)
    assert adapter.updates_done == 10  # counted from its own bind


@pytest.mark.parametrize("before", ["own_rate", "another_adapter"])
def test_a_schedule_bound_after_updates_starts_at_sched_0(harness, before):
    # "update k uses sched(k)" counts from the bind, in every framework
    # (PyTorch's schedulers start at 0 whatever the optimizer did before).
    target = harness.make()
    if before == "another_adapter":
        harness.bind(0.05, target)
    harness.step(target, 5)
    adapter = harness.bind(COSINE, target)
    assert adapter.updates_done == 0
    assert_applied(harness.step(target, 10), values(COSINE, 0, 10),
                   rtol=harness.rtol)
    assert adapter.updates_done == 10


def test_unbind_restores_own_rate_and_momentum(harness):
    target = harness.make(2, lrs=None, momentum=0.9)
    before = harness.own_hparams(target)
    adapter = harness.bind(ONE_CYCLE, target)
    harness.step(target, 5)
    adapter.unbind()
    own = harness.own_hparams(target)
    assert close(own["momentum"], 0.9, 1e-7)
    assert [close(a, b, 1e-7)
            for a, b in zip(own["lr"], before["lr"], strict=True)] \
        == [True, True], (own, before)
    assert_applied(harness.step(target, 5), [0.1] * 5, [0.9] * 5,
                   rtol=harness.rtol)
