"""The adapter contract's shared checks (``backends/_contract.py``), called
directly: the contract suite reaches them through each framework's
adapter, these pin their values and messages once, without a framework.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import unisched as us
from unisched.backends import _contract as C

SGD = {"momentum": "momentum", "weight_decay": "weight_decay"}
ADAM = {"beta1": "beta_1", "beta2": "beta_2", "weight_decay": "weight_decay"}
COS = us.CosineScheduler(10, base_lr=0.1)
ONE_CYCLE = us.OneCycleScheduler(max_lr=1.0, max_update=10)


# -- multipliers ----------------------------------------------------------

def test_multipliers_checked_as_a_tuple_or_a_pattern_dict():
    assert C.check_multipliers(None) is None
    assert C.check_multipliers([1, 0.5]) == (1.0, 0.5)
    assert C.check_multipliers({"fc.*": 2}) == {"fc.*": 2.0}


@pytest.mark.parametrize("value,error,match", [
    ({1: 0.5}, TypeError, r"keys must be parameter-name patterns \(str\), "
                          r"got 1"),
    ({"fc(": 0.5}, ValueError, r"pattern 'fc\(' is not a regular "
                               r"expression"),
    ({"fc": -1}, ValueError, r"multipliers\['fc'\] must be >= 0"),
    ("fc", TypeError, r"must be a sequence .* got 'fc'"),
    (0.5, TypeError, r"must be a sequence .* got 0.5"),
])
def test_bad_multipliers_name_what_is_wrong(value, error, match):
    with pytest.raises(error, match=match):
        C.check_multipliers(value)


def test_multipliers_resolved_per_group():
    groups = [["conv.w", "conv.b"], ["fc.w", "fc.b"], ["out.w"]]
    assert C.resolve_multipliers(None, groups) is None
    assert C.resolve_multipliers((1.0, 0.5, 0.1), groups) == [1.0, 0.5, 0.1]
    assert C.resolve_multipliers({"fc\\..*": 0.5, "out.w": 2.0}, groups) \
        == [1.0, 0.5, 2.0]
    with pytest.raises(ValueError, match="has 2 entries but the optimizer "
                                         "has 3 parameter group"):
        C.resolve_multipliers((1.0, 0.5), groups)
    with pytest.raises(ValueError, match=r"'.*\\.w' matches part of a "
                                         r"parameter group"):
        C.resolve_multipliers({".*\\.w": 0.5}, groups)
    with pytest.raises(ValueError, match="'bn.*' matches no parameter; "
                                         "parameters: .*'out.w'"):
        C.resolve_multipliers({"bn.*": 0.5}, groups)


def test_kept_ratios_relative_to_the_first_group():
    assert C.kept_ratios([0.1, 0.1]) is None
    assert C.kept_ratios([0.2, 0.1, 0.05]) == [1.0, 0.5, 0.25]
    with pytest.raises(ValueError, match=r"start at rates \[0.0, 0.1\]; "
                                         r"their ratios .* undefined"):
        C.kept_ratios([0.0, 0.1])


# -- units ----------------------------------------------------------------

def test_unit_and_steps_per_epoch_checked_together():
    assert C.check_unit("step", None) == ("step", None)
    assert C.check_unit("epoch", 3) == ("epoch", 3)
    assert C.check_unit("epoch", None, spe_required=False) == ("epoch", None)
    with pytest.raises(ValueError, match="steps_per_epoch is required"):
        C.check_unit("epoch", None)
    with pytest.raises(ValueError, match="only for unit='epoch' "
                                         r"\(unit='step'\), got 3"):
        C.check_unit("step", 3)
    with pytest.raises(ValueError, match="steps_per_epoch must be >= 1"):
        C.check_unit("epoch", 0)


# -- hyperparameters ------------------------------------------------------

def test_hparams_planned_under_canonical_names():
    plan = C.plan_hparams(COS, {"beta_2": 0.99, "weight_decay": "constant("
                                "0.01)"}, "auto", ADAM, "Adam")
    assert plan == {"beta2": us.ConstantScheduler(0.99),
                    "weight_decay": us.ConstantScheduler(0.01)}
    # a one-cycle's momentum cycle drives Adam's beta1, as OneCycleLR does
    plan = C.plan_hparams(ONE_CYCLE, None, "auto", ADAM, "Adam")
    assert plan == {"beta1": ONE_CYCLE.momentum}
    assert plan["beta1"](0) == 0.95
    assert C.plan_hparams(ONE_CYCLE, None, False, ADAM, "Adam") == {}
    mom = us.ConstantScheduler(0.8)
    assert C.plan_hparams(COS, None, mom, SGD, "SGD") == {"momentum": mom}


@pytest.mark.parametrize("hparams,momentum,spellings,error,match", [
    ([("momentum", 0.9)], "auto", SGD, TypeError,
     r"hparams must be a dict name -> schedule, got \[\("),
    ({"lr": 0.1}, "auto", SGD, ValueError,
     "hparams must not contain 'lr': the rate is sched"),
    ({"beta1": 0.9}, "auto", SGD, ValueError,
     r"hparams names 'beta1', which Opt does not have; it has "
     r"\['momentum', 'weight_decay'\]"),
    ({"beta1": 0.9, "beta_1": 0.8}, "auto", ADAM, ValueError,
     r"hparams names 'beta1' twice \('beta_1'\)"),
    ({"beta1": us.ReduceOnPlateau(0.9)}, "auto", ADAM, TypeError,
     r"hparams\['beta1'\] must be a stateless schedule"),
    (None, True, SGD, TypeError,
     "momentum must be 'auto', False or a schedule, got True"),
    (None, None, SGD, TypeError,
     "momentum must be 'auto', False or a schedule, got None"),
    (None, us.ReduceOnPlateau(0.9), SGD, TypeError,
     "momentum must be a stateless schedule"),
])
def test_bad_hparams_name_what_is_wrong(hparams, momentum, spellings, error,
                                        match):
    with pytest.raises(error, match=match):
        C.plan_hparams(COS, hparams, momentum, spellings, "Opt")


def test_a_momentum_cycle_needs_somewhere_to_go():
    with pytest.raises(ValueError, match=r"drives momentum \(one_cycle_"
                                         r"momentum.*RMS has neither "
                                         r"momentum nor beta1"):
        C.plan_hparams(ONE_CYCLE, None, "auto", {"weight_decay": "wd"},
                       "RMS")
    with pytest.raises(ValueError, match=r"momentum and hparams\['beta1'\] "
                                         r"both drive beta1"):
        C.plan_hparams(ONE_CYCLE, {"beta1": 0.9}, "auto", ADAM, "Adam")


def test_a_join_with_and_without_momentum_says_how_to_opt_out():
    mixed = us.join([ONE_CYCLE, COS], [10])
    with pytest.raises(ValueError, match=r"some pieces have a momentum "
                                         r"cycle .* \(or pass momentum="
                                         r"False to leave momentum alone\)"):
        C.plan_hparams(mixed, None, "auto", SGD, "SGD")


def test_check_spelled_refuses_what_the_optimizer_lacks():
    C.check_spelled({"momentum": COS}, SGD, "SGD")
    with pytest.raises(ValueError, match=r"hparams \['beta1'\]: SGD has no "
                                         r"such hyperparameter; it has "
                                         r"\['momentum', 'weight_decay'\]"):
        C.check_spelled({"beta1": COS}, SGD, "SGD")


# -- schedules, metrics, plateau -----------------------------------------

def test_as_schedule_takes_schedules_specs_and_numbers():
    assert C.as_schedule("sched", COS) is COS
    assert C.as_schedule("sched", "constant(0.5)") == us.ConstantScheduler(
        0.5)
    assert C.as_schedule("sched", 0.25) == us.ConstantScheduler(0.25)
    with pytest.raises(TypeError, match="sched must be a unisched schedule "
                                        "or a spec string, got 0.25"):
        C.as_schedule("sched", 0.25, numbers_ok=False)
    with pytest.raises(TypeError, match=r"sched must be a schedule, a spec "
                                        r"string or a number, got True"):
        C.as_schedule("sched", True)


class _Scalar:
    """A framework scalar: a number through ``item()``."""

    def __init__(self, value):
        self.value = value

    def item(self):
        return self.value


def test_metric_value_reads_framework_scalars():
    assert C.metric_value(0.5) == 0.5
    assert C.metric_value(np.float32(0.25)) == 0.25
    assert C.metric_value(_Scalar(3)) == 3.0
    assert math.isnan(C.metric_value(float("nan")))
    for bad in (True, "0.5", b"1"):
        with pytest.raises(TypeError, match="metric must be a number"):
            C.metric_value(bad)
    with pytest.raises(TypeError, match=r"metric must be a number, got "
                                        r"\[1, 2\]"):
        C.metric_value(_Scalar([1, 2]))


def test_plateau_is_found_or_refused():
    plateau = us.ReduceOnPlateau(COS)
    assert C.plateau(plateau, "LRScheduler") is plateau
    with pytest.raises(TypeError, match=r"observe\(\) needs a "
                                        r"ReduceOnPlateau schedule; Adapter "
                                        r"runs cosine\(max_update=10"):
        C.plateau(COS, "Adapter")


def test_convert_exact_dispatches_on_the_exact_type():
    class Native:
        rate = 0.5

    class Sub(Native):
        pass

    def convert(obj):
        if obj.rate > 1:
            raise ValueError("rate above 1")
        return us.ConstantScheduler(obj.rate)

    assert C.convert_exact(Native(), {Native: convert}) \
        == us.ConstantScheduler(0.5)
    with pytest.raises(TypeError, match="converts exactly these types "
                                        r"\(not subclasses\): Native; got "
                                        r".*Sub"):
        C.convert_exact(Sub(), {Native: convert})
    big = Native()
    big.rate = 2
    with pytest.raises(ValueError, match=r"cannot convert .*Native: rate "
                                         r"above 1"):
        C.convert_exact(big, {Native: convert})
    with pytest.raises(ValueError, match="cannot convert the big one: rate "
                                         "above 1"):
        C.convert_exact(big, {Native: convert}, lambda obj: "the big one")


# -- bindings and checkpoints ---------------------------------------------

def test_binding_describes_everything_it_drives():
    binding = C.Binding(COS, {"momentum": us.ConstantScheduler(0.9)},
                        (1.0, 0.5), "epoch", 4)
    assert binding.describe() == (
        "cosine(max_update=10, base_lr=0.1), momentum=constant("
        "base_lr=0.9), multipliers=(1.0, 0.5), unit='epoch', "
        "steps_per_epoch=4")
    assert [binding.index(k) for k in (0, 3, 4, 9)] == [0, 0, 1, 2]
    assert C.Binding(COS).describe() == "cosine(max_update=10, base_lr=0.1)"


def _state(**changes):
    state = C.state_dict("fmt/1", C.Binding(us.ReduceOnPlateau(COS)), 7)
    state.update(changes)
    return state


def test_a_state_round_trips_with_its_plateau():
    plateau = us.ReduceOnPlateau(COS, patience=0)
    plateau.observe(1.0)
    plateau.observe(2.0)                       # a cut: scale 0.1
    state = C.state_dict("fmt/1", C.Binding(plateau), 7)
    assert state["updates_done"] == 7
    assert state["schedule_state"]["scale"] == pytest.approx(0.1)
    ckpt = C.check_state(state, "fmt/1")
    assert ckpt.updates_done == 7
    fresh = C.Binding(us.ReduceOnPlateau(COS, patience=0))
    C.restore_plateau(fresh, ckpt)
    assert fresh.schedule.scale == pytest.approx(0.1)
    assert fresh.schedule(0) == pytest.approx(0.01)
    # no plateau state for a stateless schedule
    assert C.state_dict("fmt/1", C.Binding(COS), 0)["schedule_state"] \
        is None


@pytest.mark.parametrize("changes,error,match", [
    ({"hparams": [1]}, TypeError, r"state hparams must be a dict, got \[1\]"),
    ({"hparams": {1: COS.to_config()}}, TypeError,
     "state hparams key must be a str, got 1"),
    ({"schedule": COS.to_config()}, ValueError,
     r"schedule_state is given but the schedule cosine\(max_update=10, "
     r"base_lr=0.1\) has no state"),
    ({"schedule": {"name": "nope"}}, ValueError,
     "state schedule is not a schedule config: unknown schedule name"),
])
def test_bad_states_name_the_field(changes, error, match):
    with pytest.raises(error, match=match):
        C.check_state(_state(**changes), "fmt/1")


def test_the_top_level_bind_and_from_native_reach_the_backend():
    import torch  # (here: the other tests need no framework)
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=1.0)
    adapter = us.bind("cosine(max_update=10, base_lr=0.5)", opt)
    assert adapter.schedule == us.CosineScheduler(10, base_lr=0.5)
    assert opt.param_groups[0]["lr"] == 0.5
    adapter.unbind()
    native = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    assert us.from_native(native) == us.ExponentialScheduler(
        1.0, factor=0.5, step=3, staircase=True)
