"""Adapter contract, binding: what ``bind`` accepts and that update ``k``
applies ``sched(k)``, read back from the weights, in every backend (the
``harness`` fixture, ``conftest.py``).  The contract is the docstring of
``backends/_contract.py``."""
from __future__ import annotations

import re

import numpy as np
import pytest

import unisched as us

import catalog
from harness import assert_applied, values

# Windows where the rate changes: warmup then cosine (every update),
# multi-factor boundaries at 5, 12, 20, a one-cycle's rise and fall.
WARMUP_COSINE = us.warmup(us.CosineScheduler(max_update=60, base_lr=0.1,
                                             final_lr=0.001), 10, 0.0)
MULTI_FACTOR = us.MultiFactorScheduler(step=[5, 12, 20], factor=0.5,
                                       base_lr=0.2)
ONE_CYCLE = us.OneCycleScheduler(0.1, 36)
SCHEDULES = {"warmup_cosine": WARMUP_COSINE, "multi_factor": MULTI_FACTOR,
             "one_cycle": ONE_CYCLE}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
@pytest.mark.parametrize("form", ["schedule", "spec"])
def test_update_k_applies_sched_k_for_a_schedule_or_its_spec(harness, name,
                                                             form):
    sched = SCHEDULES[name]
    assert len(set(values(sched, 0, 40))) > 3  # the window changes
    target = harness.make()
    adapter = harness.bind(sched if form == "schedule" else sched.to_spec(),
                           target, momentum=False)
    assert adapter.schedule == sched
    assert_applied(harness.step(target, 40), values(sched, 0, 40),
                   rtol=harness.rtol)
    assert adapter.updates_done == 40


def test_a_number_binds_a_constant_rate(harness):
    target = harness.make(lrs=(0.1,))
    adapter = harness.bind(0.0375, target)
    assert adapter.schedule == us.ConstantScheduler(0.0375)
    assert_applied(harness.step(target, 30), [0.0375] * 30,
                   rtol=harness.rtol)


@pytest.mark.parametrize("sched", [-0.1, float("nan"), True, [0.1], None])
def test_bind_refuses_a_bad_schedule_naming_the_value(harness, sched):
    target = harness.make()
    with pytest.raises((TypeError, ValueError), match=re.escape(repr(sched))):
        harness.bind(sched, target)


# -- every schedule of the catalog ----------------------------------------

def _first_change(sched):
    rates = sched.values(np.arange(catalog.HORIZON))
    changes = np.nonzero(np.diff(rates))[0]
    return int(changes[0]) + 1 if changes.size else None


def _catalog_cases():
    """(name, seed, updates): one parameter set per schedule, preferably
    one whose first change lies past update 1 (a boundary inside the
    window), else one changing at once; the window runs 10 updates past
    the change."""
    cases = []
    for name in catalog.CATALOG:
        firsts = [(seed, _first_change(catalog.draw(name, seed)))
                  for seed in range(30)]
        late = [(s, f + 10) for s, f in firsts if f and 2 <= f <= 40]
        early = [(s, 12) for s, f in firsts if f == 1]
        seed, updates = (late or early or [(0, 12)])[0]  # [] for constant
        cases.append((name, seed, updates))
    return cases


@pytest.mark.parametrize("name,seed,updates", _catalog_cases())
def test_every_catalog_schedule_applies_sched_k(harness, name, seed,
                                                updates):
    sched = catalog.draw(name, seed)
    want = values(sched, 0, updates)  # before binding: plateau state
    target = harness.make()
    harness.bind(sched, target, momentum=False)
    assert_applied(harness.step(target, updates), want, rtol=harness.rtol)


def test_600_updates_cross_cache_blocks_exactly(harness):
    # A rate that changes at every update, past two cache blocks (256).
    sched = us.CosineScheduler(max_update=700, base_lr=0.1, final_lr=1e-3)
    target = harness.make()
    adapter = harness.bind(sched, target)
    assert_applied(harness.step(target, 600), list(sched.values(
        np.arange(600))), rtol=harness.rtol)
    assert adapter.updates_done == 600


# -- units ----------------------------------------------------------------

def test_epoch_unit_applies_sched_of_the_epoch(harness):
    sched = us.CosineScheduler(max_update=10, base_lr=0.1, final_lr=0.01)
    target = harness.make()
    adapter = harness.bind(sched, target, unit="epoch", steps_per_epoch=4)
    assert (adapter.unit, adapter.steps_per_epoch) == ("epoch", 4)
    assert_applied(harness.step(target, 30),
                   [sched(k // 4) for k in range(30)], rtol=harness.rtol)
    assert adapter.updates_done == 30


def test_epoch_unit_without_steps_per_epoch_is_refused_or_per_epoch(
        harness):
    """Where the framework counts updates (Keras, MXNet, JAX) the epoch
    length is required; PyTorch's scheduler is stepped once per epoch by
    the user instead.  A harness declares which (``spe_required``); one
    that does not must show one of the two, each checked in full."""
    sched = us.CosineScheduler(max_update=10, base_lr=0.1, final_lr=0.01)
    target = harness.make()
    try:
        adapter = harness.bind(sched, target, unit="epoch")
    except ValueError as err:
        assert harness.spe_required is not False, err
        assert "steps_per_epoch" in str(err)
        return
    assert harness.spe_required is not True, "bound without the length"
    assert (adapter.unit, adapter.steps_per_epoch) == ("epoch", None)
    # The harness steps the scheduler after every update: each is an epoch.
    assert_applied(harness.step(target, 12), values(sched, 0, 12),
                   rtol=harness.rtol)


@pytest.mark.parametrize("options,field", [
    ({"unit": "batch"}, "unit"),
    ({"unit": "step", "steps_per_epoch": 4}, "steps_per_epoch"),
    ({"unit": "epoch", "steps_per_epoch": 0}, "steps_per_epoch"),
    ({"on_mismatch": "adopt"}, "on_mismatch"),
    ({"momentum": True}, "momentum"),
])
def test_bad_bind_options_are_refused_naming_the_option(harness, options,
                                                        field):
    target = harness.make()
    with pytest.raises((TypeError, ValueError), match=field):
        harness.bind(0.1, target, **options)
