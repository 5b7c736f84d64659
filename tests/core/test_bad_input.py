"""One test per bad input: the exception type, and a message that names the
argument and shows the value received.

A bad argument must fail in the constructor (or at the call) with a
``ValueError`` / ``TypeError`` a user can act on, never turn into a wrong
rate thousands of updates later.  Each case lists the fragments the
message must contain, in order: the argument's name, then the value.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

import unisched as us
from unisched.combinators import Reverse

NAN, INF = float("nan"), float("inf")


def C(lr=1.0):
    return us.ConstantScheduler(lr)


def case(ident, make, exc, *fragments):
    """``make()`` must raise ``exc`` whose message contains
    ``fragments`` in this order."""
    return pytest.param(make, exc, fragments, id=ident)


def _check(make, exc, fragments):
    pattern = "(?s)" + ".*".join(re.escape(f) for f in fragments)
    with pytest.raises(exc, match=pattern) as info:
        make()
    # exactly the type asked for: SpecError is a ValueError, for example,
    # but a TypeError must not pass for a ValueError or the other way
    assert issubclass(info.type, exc)
    assert not (exc is ValueError and issubclass(info.type, TypeError))


# -- rates: negative, NaN, inf, bool, string, None ---------------------------

RATES = [
    case("constant-negative", lambda: us.ConstantScheduler(-1),
         ValueError, "base_lr", "-1"),
    case("constant-nan", lambda: us.ConstantScheduler(NAN),
         ValueError, "base_lr", "nan"),
    case("constant-inf", lambda: us.ConstantScheduler(INF),
         ValueError, "base_lr", "inf"),
    case("constant-minus-inf", lambda: us.ConstantScheduler(-INF),
         ValueError, "base_lr", "-inf"),
    case("constant-bool", lambda: us.ConstantScheduler(True),
         TypeError, "base_lr", "True"),
    case("constant-string", lambda: us.ConstantScheduler("0.1"),
         TypeError, "base_lr", "'0.1'"),
    case("constant-none", lambda: us.ConstantScheduler(None),
         TypeError, "base_lr", "None"),
    case("constant-list", lambda: us.ConstantScheduler([0.1]),
         TypeError, "base_lr", "[0.1]"),
    case("constant-numpy-bool", lambda: us.ConstantScheduler(np.bool_(1)),
         TypeError, "base_lr", "True"),
    case("square_root-negative", lambda: us.SquareRootScheduler(-0.5),
         ValueError, "base_lr", "-0.5"),
    case("factor-stop_factor_lr-negative",
         lambda: us.FactorScheduler(10, 0.5, stop_factor_lr=-1e-8),
         ValueError, "stop_factor_lr", "-1e-08"),
    case("factor-base_lr-string",
         lambda: us.FactorScheduler(10, 0.5, base_lr="1"),
         TypeError, "base_lr", "'1'"),
    case("multi_factor-base_lr-nan",
         lambda: us.MultiFactorScheduler([5], 0.5, base_lr=NAN),
         ValueError, "base_lr", "nan"),
    case("poly-final_lr-nan",
         lambda: us.PolyScheduler(10, final_lr=NAN),
         ValueError, "final_lr", "nan"),
    case("cosine-final_lr-negative",
         lambda: us.CosineScheduler(10, final_lr=-0.1),
         ValueError, "final_lr", "-0.1"),
    case("cosine-warmup_begin_lr-negative",
         lambda: us.CosineScheduler(10, warmup_steps=2,
                                    warmup_begin_lr=-0.1),
         ValueError, "warmup_begin_lr", "-0.1"),
    case("exponential-base_lr-bool",
         lambda: us.ExponentialScheduler(False, 0.5),
         TypeError, "base_lr", "False"),
    case("inverse_time-factor-negative",
         lambda: us.InverseTimeScheduler(1.0, factor=-1.0),
         ValueError, "factor", "-1.0"),
    case("piecewise-value-negative",
         lambda: us.PiecewiseConstantScheduler([10], [1.0, -0.5]),
         ValueError, "rates[1]", "-0.5"),
    case("piecewise-value-string",
         lambda: us.PiecewiseConstantScheduler([10], [1.0, "0.5"]),
         TypeError, "rates[1]", "'0.5'"),
    case("cosine_restarts-cycle_decay-negative",
         lambda: us.CosineRestartsScheduler(10, 1.0, cycle_decay=-0.5),
         ValueError, "cycle_decay", "-0.5"),
    case("cyclic-max_lr-negative",
         lambda: us.CyclicScheduler(0.1, -1.0, 4),
         ValueError, "max_lr", "-1.0"),
    case("cyclic-base_momentum-nan",
         lambda: us.CyclicScheduler(0.1, 1.0, 4, base_momentum=NAN),
         ValueError, "base_momentum", "nan"),
    case("cyclic-max_momentum-inf",
         lambda: us.CyclicScheduler(0.1, 1.0, 4, max_momentum=INF),
         ValueError, "max_momentum", "inf"),
    case("one_cycle-max_lr-bool",
         lambda: us.OneCycleScheduler(True, 100),
         TypeError, "max_lr", "True"),
    case("one_cycle-max_momentum-above-one",
         lambda: us.OneCycleScheduler(1.0, 100, max_momentum=1.5),
         ValueError, "max_momentum", "1.5"),
    case("cyclic-base_momentum-above-one",
         lambda: us.CyclicScheduler(0.1, 1.0, 4, base_momentum=2.0),
         ValueError, "base_momentum", "2.0"),
    case("shift-steps-negative",
         lambda: us.shift(us.ConstantScheduler(0.1), -1),
         ValueError, "steps", "-1"),
    case("shift-not-a-schedule",
         lambda: us.shift(0.1, 1),
         TypeError, "schedule", "0.1"),
    case("one_cycle-base_momentum-negative",
         lambda: us.OneCycleScheduler(1.0, 100, base_momentum=-0.85),
         ValueError, "base_momentum", "-0.85"),
    case("warmup_stable_decay-final_lr-negative",
         lambda: us.WarmupStableDecayScheduler(1.0, 2, 3, 4, final_lr=-1),
         ValueError, "final_lr", "-1"),
    case("plateau-schedule-negative", lambda: us.ReduceOnPlateau(-0.1),
         ValueError, "schedule", "-0.1"),
    case("plateau-schedule-string", lambda: us.ReduceOnPlateau("0.1"),
         TypeError, "schedule", "'0.1'"),
    case("plateau-schedule-none", lambda: us.ReduceOnPlateau(None),
         TypeError, "schedule", "None"),
    case("plateau-min_lr-negative",
         lambda: us.ReduceOnPlateau(0.1, min_lr=-1.0),
         ValueError, "min_lr", "-1.0"),
    case("plateau-eps-nan", lambda: us.ReduceOnPlateau(0.1, eps=NAN),
         ValueError, "eps", "nan"),
    case("plateau-threshold-negative",
         lambda: us.ReduceOnPlateau(0.1, threshold=-1e-4),
         ValueError, "threshold", "-0.0001"),
    case("warmup-warmup_begin_lr-negative",
         lambda: us.warmup(C(), 3, warmup_begin_lr=-1.0),
         ValueError, "warmup_begin_lr", "-1.0"),
    case("scale-factor-negative", lambda: us.scale(C(), -2.0),
         ValueError, "factor", "-2.0"),
    case("scale-factor-nan", lambda: us.scale(C(), NAN),
         ValueError, "factor", "nan"),
    case("floor-min_lr-inf", lambda: us.floor(C(), INF),
         ValueError, "min_lr", "inf"),
]


# -- lengths and counts: non-positive, fractional, bool ----------------------

LENGTHS = [
    case("poly-max_update-zero", lambda: us.PolyScheduler(0),
         ValueError, "max_update", "0"),
    case("cosine-max_update-negative", lambda: us.CosineScheduler(-5),
         ValueError, "max_update", "-5"),
    case("cosine-max_update-inf", lambda: us.CosineScheduler(INF),
         ValueError, "max_update", "inf"),
    case("cosine-max_update-beyond-2**53",
         lambda: us.CosineScheduler(2.0 ** 53),
         ValueError, "max_update", "2**53", "9007199254740992.0"),
    case("cosine-cycles-negative",
         lambda: us.CosineScheduler(10, cycles=-1),
         ValueError, "cycles", "-1"),
    case("cosine-cycles-string",
         lambda: us.CosineScheduler(10, cycles="2"),
         TypeError, "cycles", "'2'"),
    case("exponential-step-negative-fraction",
         lambda: us.ExponentialScheduler(1.0, 0.5, step=-0.5),
         ValueError, "step", "-0.5"),
    case("join-boundary-negative-fraction",
         lambda: us.join([C(), C()], [-0.5]),
         ValueError, "boundaries[0]", "-0.5"),
    case("join-boundary-bool", lambda: us.join([C(), C()], [True]),
         TypeError, "boundaries[0]", "True"),
    case("reverse-steps-zero", lambda: Reverse(C(), 0),
         ValueError, "steps", "0"),
    case("reverse-steps-nan", lambda: Reverse(C(), NAN),
         ValueError, "steps", "nan"),
    case("reverse-steps-bool", lambda: Reverse(C(), True),
         TypeError, "steps", "True"),
    case("warmup_stable_decay-cycles-negative",
         lambda: us.WarmupStableDecayScheduler(1.0, 2, 3, 4, decay="cosine",
                                               cycles=-2.0),
         ValueError, "cycles", "-2.0"),
    case("cosine-max_update-bool", lambda: us.CosineScheduler(True),
         TypeError, "max_update", "True"),
    case("cosine-max_update-string", lambda: us.CosineScheduler("20"),
         TypeError, "max_update", "'20'"),
    case("cosine-max_update-nan", lambda: us.CosineScheduler(NAN),
         ValueError, "max_update", "nan"),
    case("one_cycle-max_update-zero", lambda: us.OneCycleScheduler(1.0, 0),
         ValueError, "max_update", "0"),
    case("factor-step-zero", lambda: us.FactorScheduler(0, 0.5),
         ValueError, "step", "0"),
    case("factor-step-negative", lambda: us.FactorScheduler(-1, 0.5),
         ValueError, "step", "-1"),
    case("factor-step-fraction", lambda: us.FactorScheduler(2.5, 0.5),
         ValueError, "step", "2.5"),
    case("factor-step-bool", lambda: us.FactorScheduler(True, 0.5),
         TypeError, "step", "True"),
    case("multi_factor-milestone-zero",
         lambda: us.MultiFactorScheduler([0, 5], 0.5),
         ValueError, "step[0]", "0"),
    case("multi_factor-milestone-fraction",
         lambda: us.MultiFactorScheduler([5, 7.5], 0.5),
         ValueError, "step[1]", "7.5"),
    case("exponential-step-zero",
         lambda: us.ExponentialScheduler(1.0, 0.5, step=0),
         ValueError, "step", "0"),
    case("inverse_time-step-zero",
         lambda: us.InverseTimeScheduler(1.0, 0.5, step=0),
         ValueError, "step", "0"),
    case("epochwise-steps_per_epoch-zero", lambda: us.epochwise(C(), 0),
         ValueError, "steps_per_epoch", "0"),
    case("epochwise-steps_per_epoch-fraction",
         lambda: us.epochwise(C(), 2.5),
         ValueError, "steps_per_epoch", "2.5"),
    case("cosine_restarts-first_cycle-zero",
         lambda: us.CosineRestartsScheduler(0, 1.0),
         ValueError, "first_cycle", "0"),
    case("cyclic-step_size_up-zero", lambda: us.CyclicScheduler(0.1, 1.0, 0),
         ValueError, "step_size_up", "0"),
    case("cyclic-step_size_down-zero",
         lambda: us.CyclicScheduler(0.1, 1.0, 4, step_size_down=0),
         ValueError, "step_size_down", "0"),
    case("cyclic-step_size_down-fraction",
         lambda: us.CyclicScheduler(0.1, 1.0, 4, step_size_down=1.5),
         ValueError, "step_size_down", "1.5"),
    case("warmup_stable_decay-decay_steps-zero",
         lambda: us.WarmupStableDecayScheduler(1.0, 2, 3, 0),
         ValueError, "decay_steps", "0"),
    case("warmup_stable_decay-warmup_steps-negative",
         lambda: us.WarmupStableDecayScheduler(1.0, -1, 3, 4),
         ValueError, "warmup_steps", "-1"),
    case("warmup_stable_decay-stable_steps-negative",
         lambda: us.WarmupStableDecayScheduler(1.0, 2, -3, 4),
         ValueError, "stable_steps", "-3"),
    case("warmup-warmup_steps-zero", lambda: us.warmup(C(), 0),
         ValueError, "warmup_steps", "0"),
    case("cosine-warmup_steps-negative",
         lambda: us.CosineScheduler(10, warmup_steps=-2),
         ValueError, "warmup_steps", "-2"),
    case("poly-pwr-zero", lambda: us.PolyScheduler(10, pwr=0),
         ValueError, "pwr", "0"),
    case("one_cycle-div_factor-zero",
         lambda: us.OneCycleScheduler(1.0, 100, div_factor=0),
         ValueError, "div_factor", "0"),
    case("one_cycle-final_div_factor-negative",
         lambda: us.OneCycleScheduler(1.0, 100, final_div_factor=-1),
         ValueError, "final_div_factor", "-1"),
    case("plateau-patience-negative",
         lambda: us.ReduceOnPlateau(0.1, patience=-1),
         ValueError, "patience", "-1"),
    case("plateau-cooldown-fraction",
         lambda: us.ReduceOnPlateau(0.1, cooldown=1.5),
         ValueError, "cooldown", "1.5"),
]


# -- relations between arguments ---------------------------------------------

RELATIONS = [
    case("cosine-warmup-longer-than-max_update",
         lambda: us.CosineScheduler(10, warmup_steps=11),
         ValueError, "warmup_steps", "10", "11"),
    case("poly-warmup-longer-than-max_update",
         lambda: us.PolyScheduler(5, warmup_steps=8),
         ValueError, "warmup_steps", "5", "8"),
    case("factor-warmup_begin_lr-above-base_lr",
         lambda: us.FactorScheduler(10, 0.5, base_lr=0.1,
                                    warmup_steps=2, warmup_begin_lr=0.2),
         ValueError, "warmup_begin_lr", "0.1", "0.2"),
    case("multi_factor-warmup_begin_lr-above-base_lr",
         lambda: us.MultiFactorScheduler([5], 0.5, base_lr=0.1,
                                         warmup_steps=2,
                                         warmup_begin_lr=0.3),
         ValueError, "warmup_begin_lr", "0.3"),
    case("cosine-warmup_begin_lr-above-base_lr",
         lambda: us.CosineScheduler(10, base_lr=0.1, warmup_steps=2,
                                    warmup_begin_lr=0.5),
         ValueError, "warmup_begin_lr", "0.5"),
    case("poly-warmup_begin_lr-above-base_lr",
         lambda: us.PolyScheduler(10, base_lr=0.1, warmup_steps=2,
                                  warmup_begin_lr=0.5),
         ValueError, "warmup_begin_lr", "0.5"),
    case("multi_factor-milestones-equal",
         lambda: us.MultiFactorScheduler([10, 10], 0.5),
         ValueError, "step", "[10, 10]"),
    case("multi_factor-milestones-decreasing",
         lambda: us.MultiFactorScheduler([20, 10], 0.5),
         ValueError, "step", "[20, 10]"),
    case("multi_factor-milestones-empty",
         lambda: us.MultiFactorScheduler([], 0.5),
         ValueError, "step", "[]"),
    case("multi_factor-milestones-not-a-list",
         lambda: us.MultiFactorScheduler(10, 0.5),
         TypeError, "step", "10"),
    case("multi_factor-milestones-string",
         lambda: us.MultiFactorScheduler("10", 0.5),
         TypeError, "step", "'10'"),
    case("piecewise-boundaries-decreasing",
         lambda: us.PiecewiseConstantScheduler([5, 3], [1.0, 0.5, 0.1]),
         ValueError, "boundaries", "[5, 3]"),
    case("piecewise-boundaries-negative",
         lambda: us.PiecewiseConstantScheduler([-1], [1.0, 0.5]),
         ValueError, "boundaries[0]", "-1"),
    case("piecewise-boundaries-empty",
         lambda: us.PiecewiseConstantScheduler([], [1.0]),
         ValueError, "boundaries", "[]"),
    case("piecewise-too-few-values",
         lambda: us.PiecewiseConstantScheduler([10], [1.0]),
         ValueError, "rates", "2", "[1.0]"),
    case("piecewise-too-many-values",
         lambda: us.PiecewiseConstantScheduler([10], [1.0, 0.5, 0.1]),
         ValueError, "rates", "2", "[1.0, 0.5, 0.1]"),
    case("piecewise-values-not-a-list",
         lambda: us.PiecewiseConstantScheduler([10], 0.5),
         TypeError, "rates", "0.5"),
    case("join-boundaries-equal",
         lambda: us.join([C(), C(), C()], [4, 4]),
         ValueError, "boundaries", "[4, 4]"),
    case("join-boundaries-decreasing-fractions",
         lambda: us.join([C(), C(), C()], [4.5, 4.25]),
         ValueError, "boundaries", "[4.5, 4.25]"),
    case("cosine-periodic-without-a-decay",
         lambda: us.CosineScheduler(10, warmup_steps=10, periodic=True),
         ValueError, "periodic", "max_update=10"),
    case("warmup_stable_decay-cycles-of-a-linear-decay",
         lambda: us.WarmupStableDecayScheduler(1.0, 2, 3, 4, cycles=2),
         ValueError, "cycles", "'linear'", "2"),
    case("join-boundary-zero", lambda: us.join([C(), C()], [0]),
         ValueError, "boundaries[0]", "0"),
    case("join-boundaries-empty", lambda: us.join([C()], []),
         ValueError, "boundaries", "[]"),
    case("join-too-few-schedules", lambda: us.join([C()], [3]),
         ValueError, "schedules", "boundaries", "got 1"),
    case("join-too-many-schedules",
         lambda: us.join([C(), C(), C()], [3]),
         ValueError, "schedules", "boundaries", "got 3"),
    case("one_cycle-fastai-moms-not-a-cycle",
         lambda: us.OneCycleScheduler.fastai(1.0, 20,
                                             moms=(0.95, 0.85, 0.9)),
         ValueError, "moms", "(0.95, 0.85, 0.9)"),
]


# -- factors outside their range ---------------------------------------------

FACTORS = [
    case("factor-factor-above-one", lambda: us.FactorScheduler(10, 1.5),
         ValueError, "factor", "1.5"),
    case("factor-factor-negative", lambda: us.FactorScheduler(10, -0.1),
         ValueError, "factor", "-0.1"),
    case("multi_factor-factor-above-one",
         lambda: us.MultiFactorScheduler([5], 2.0),
         ValueError, "factor", "2.0"),
    case("plateau-factor-one", lambda: us.ReduceOnPlateau(0.1, factor=1.0),
         ValueError, "factor", "1.0"),
    case("plateau-factor-above-one",
         lambda: us.ReduceOnPlateau(0.1, factor=1.5),
         ValueError, "factor", "1.5"),
    case("plateau-factor-negative",
         lambda: us.ReduceOnPlateau(0.1, factor=-0.1),
         ValueError, "factor", "-0.1"),
    case("exponential-factor-zero",
         lambda: us.ExponentialScheduler(1.0, 0.0),
         ValueError, "factor", "0.0"),
    case("exponential-factor-negative",
         lambda: us.ExponentialScheduler(1.0, -0.5),
         ValueError, "factor", "-0.5"),
    case("cyclic-gamma-zero",
         lambda: us.CyclicScheduler(0.1, 1.0, 4, mode="exp_range",
                                    gamma=0.0),
         ValueError, "gamma", "0.0"),
    case("cyclic-gamma-above-one",
         lambda: us.CyclicScheduler(0.1, 1.0, 4, gamma=1.5),
         ValueError, "gamma", "1.5"),
    case("cosine_restarts-cycle_mult-below-one",
         lambda: us.CosineRestartsScheduler(10, 1.0, cycle_mult=0.5),
         ValueError, "cycle_mult", "0.5"),
    case("cosine_restarts-cycle_mult-inf",
         lambda: us.CosineRestartsScheduler(10, 1.0, cycle_mult=INF),
         ValueError, "cycle_mult", "inf"),
    case("one_cycle-pct_start-zero",
         lambda: us.OneCycleScheduler(1.0, 100, pct_start=0.0),
         ValueError, "pct_start", "0.0"),
    case("one_cycle-pct_start-one",
         lambda: us.OneCycleScheduler(1.0, 100, pct_start=1.0),
         ValueError, "pct_start", "1.0"),
    case("one_cycle-pct_start-above-one",
         lambda: us.OneCycleScheduler(1.0, 100, pct_start=1.5),
         ValueError, "pct_start", "1.5"),
    case("one_cycle-pct_start-negative",
         lambda: us.OneCycleScheduler(1.0, 100, pct_start=-0.3),
         ValueError, "pct_start", "-0.3"),
    # torch: the warm-up phase would end at 0.1 * 10 - 1 = 0
    case("one_cycle-pct_start-empties-warmup",
         lambda: us.OneCycleScheduler(1.0, 10, pct_start=0.1),
         ValueError, "pct_start", "0.1", "max_update", "10"),
    # three phases: the second would end at 10 after the last at 9
    case("one_cycle-pct_start-empties-three_phase",
         lambda: us.OneCycleScheduler(1.0, 10, pct_start=0.6,
                                      three_phase=True),
         ValueError, "pct_start", "0.6"),
    case("one_cycle-fastai-pct_start-empties-three_phase",
         lambda: us.OneCycleScheduler(1.0, 100, pct_start=0.5,
                                      three_phase=True, style="fastai"),
         ValueError, "pct_start", "0.5"),
    case("one_cycle-max_update-one",
         lambda: us.OneCycleScheduler(1.0, 1),
         ValueError, "pct_start", "max_update", "1"),
]


# -- unknown choices ---------------------------------------------------------

CHOICES = [
    case("factor-warmup_mode",
         lambda: us.FactorScheduler(10, 0.5, warmup_mode="cos"),
         ValueError, "warmup_mode", "'cos'"),
    case("cosine-restarts-int",
         lambda: us.CosineScheduler(10, restarts=1),
         TypeError, "restarts", "1"),
    case("cosine-periodic-string",
         lambda: us.CosineScheduler(10, periodic="yes"),
         TypeError, "periodic", "'yes'"),
    case("cosine-warmup_mode",
         lambda: us.CosineScheduler(10, warmup_mode="Linear"),
         ValueError, "warmup_mode", "'Linear'"),
    case("warmup-warmup_mode",
         lambda: us.warmup(C(), 3, warmup_mode="exp"),
         ValueError, "warmup_mode", "'exp'"),
    case("cyclic-mode", lambda: us.CyclicScheduler(0.1, 1.0, 4,
                                                    mode="triangle"),
         ValueError, "mode", "'triangle'"),
    case("cyclic-mode-none", lambda: us.CyclicScheduler(0.1, 1.0, 4,
                                                         mode=None),
         ValueError, "mode", "None"),
    case("plateau-mode", lambda: us.ReduceOnPlateau(0.1, mode="minimum"),
         ValueError, "mode", "'minimum'"),
    case("plateau-threshold_mode",
         lambda: us.ReduceOnPlateau(0.1, threshold_mode="relative"),
         ValueError, "threshold_mode", "'relative'"),
    case("one_cycle-anneal",
         lambda: us.OneCycleScheduler(1.0, 100, anneal="cosine"),
         ValueError, "anneal", "'cosine'"),
    case("one_cycle-style",
         lambda: us.OneCycleScheduler(1.0, 100, style="keras"),
         ValueError, "style", "'keras'"),
    case("warmup_stable_decay-decay",
         lambda: us.WarmupStableDecayScheduler(1.0, 2, 3, 4, decay="exp"),
         ValueError, "decay", "'exp'"),
    case("exponential-staircase-int",
         lambda: us.ExponentialScheduler(1.0, 0.5, staircase=1),
         TypeError, "staircase", "1"),
    case("one_cycle-three_phase-string",
         lambda: us.OneCycleScheduler(1.0, 100, three_phase="yes"),
         TypeError, "three_phase", "'yes'"),
]


# -- wrapping something that is not a (stateless) schedule -------------------

WRAPPING = [
    case("warmup-number", lambda: us.warmup(0.1, 3),
         TypeError, "schedule", "0.1"),
    case("warmup-spec-string",
         lambda: us.Warmup("cosine(max_update=10)", 3),
         TypeError, "schedule", "'cosine(max_update=10)'"),
    case("epochwise-none", lambda: us.epochwise(None, 3),
         TypeError, "schedule", "None"),
    case("scale-function", lambda: us.scale(math.cos, 2.0),
         TypeError, "schedule", "<built-in function cos>"),
    case("floor-dict", lambda: us.floor({"name": "constant"}, 0.1),
         TypeError, "schedule", "{'name': 'constant'}"),
    case("join-piece-number", lambda: us.join([C(), 0.5], [3]),
         TypeError, "schedules[1]", "0.5"),
    case("join-not-a-list", lambda: us.Join(C(), [3]),
         TypeError, "schedules", "ConstantScheduler(base_lr=1.0)"),
    case("join-string", lambda: us.Join("constant()", [3]),
         TypeError, "schedules", "'constant()'"),
    case("cyclic_momentum-of-constant", lambda: us.CyclicMomentum(C(0.1)),
         TypeError, "schedule", "ConstantScheduler(base_lr=0.1)"),
    case("one_cycle_momentum-of-cyclic",
         lambda: us.OneCycleMomentum(us.CyclicScheduler(0.1, 1.0, 4)),
         TypeError, "schedule", "CyclicScheduler("),
    case("warmup-stateful", lambda: us.warmup(us.ReduceOnPlateau(0.1), 3),
         TypeError, "schedule", "stateless", "ReduceOnPlateau("),
    case("join-stateful",
         lambda: us.join([C(), us.ReduceOnPlateau(0.1)], [3]),
         TypeError, "schedules[1]", "stateless", "ReduceOnPlateau("),
    case("plateau-of-plateau",
         lambda: us.ReduceOnPlateau(us.ReduceOnPlateau(0.1)),
         TypeError, "schedule", "stateless", "ReduceOnPlateau("),
    case("reverse-number", lambda: Reverse(0.1, 3),
         TypeError, "schedule", "0.1"),
    case("reverse-stateful", lambda: Reverse(us.ReduceOnPlateau(0.1), 3),
         TypeError, "schedule", "stateless", "ReduceOnPlateau("),
]


# -- calls: sched(step) ------------------------------------------------------

SCHED = us.CosineScheduler(10, base_lr=1.0)

CALLS = [
    case("call-negative", lambda: SCHED(-1), ValueError, "step", "-1"),
    case("call-fraction", lambda: SCHED(1.5), ValueError, "step", "1.5"),
    case("call-nan", lambda: SCHED(NAN), ValueError, "step", "nan"),
    case("call-inf", lambda: SCHED(INF), ValueError, "step", "inf"),
    case("call-bool", lambda: SCHED(True), TypeError, "step", "True"),
    case("call-string", lambda: SCHED("3"), TypeError, "step", "'3'"),
    case("call-none", lambda: SCHED(None), TypeError, "step", "None"),
    case("call-list", lambda: SCHED([3]), TypeError, "step", "[3]"),
    case("call-numpy-negative", lambda: SCHED(np.int64(-2)),
         ValueError, "step", "-2"),
    case("call-numpy-fraction", lambda: SCHED(np.float64(2.5)),
         ValueError, "step", "2.5"),
    case("call-numpy-bool", lambda: SCHED(np.bool_(True)),
         TypeError, "step", "True"),
    case("call-0d-negative", lambda: SCHED(np.array(-3)),
         ValueError, "step", "-3"),
    case("call-combinator-negative", lambda: us.warmup(SCHED, 3)(-1),
         ValueError, "step", "-1"),
    case("momentum-call-fraction",
         lambda: us.CyclicScheduler(0.1, 1.0, 4).momentum(0.5),
         ValueError, "step", "0.5"),
    case("observe-step-negative",
         lambda: us.ReduceOnPlateau(0.1).observe(1.0, step=-1),
         ValueError, "step", "-1"),
    case("observe-metric-string",
         lambda: us.ReduceOnPlateau(0.1).observe("1.0"),
         TypeError, "metric", "'1.0'"),
    case("observe-metric-none",
         lambda: us.ReduceOnPlateau(0.1).observe(None),
         TypeError, "metric", "None"),
    case("observe-metric-bool",
         lambda: us.ReduceOnPlateau(0.1).observe(True),
         TypeError, "metric", "True"),
    case("load_state_dict-missing-keys",
         lambda: us.ReduceOnPlateau(0.1).load_state_dict({"best": 1.0}),
         ValueError, "state", "scale", "{'best': 1.0}"),
]


# -- values(steps) -----------------------------------------------------------

VALUES = [
    case("values-negative", lambda: SCHED.values([3, -1, 2]),
         ValueError, "steps", "-1"),
    case("values-negative-float", lambda: SCHED.values([3.0, -2.0]),
         ValueError, "steps", "-2.0"),
    case("values-fraction", lambda: SCHED.values([1, 1.5]),
         ValueError, "steps", "1.5"),
    case("values-nan", lambda: SCHED.values(np.array([0.0, NAN])),
         ValueError, "steps", "nan"),
    case("values-inf", lambda: SCHED.values([INF]),
         ValueError, "steps", "inf"),
    case("values-bool", lambda: SCHED.values(np.array([True, False])),
         TypeError, "steps", "bool"),
    case("values-strings", lambda: SCHED.values(["1", "2"]),
         TypeError, "steps", "<U1"),
    case("values-none", lambda: SCHED.values([1, None]),
         TypeError, "steps", "object"),
    case("values-complex", lambda: SCHED.values([1j]),
         TypeError, "steps", "complex"),
    case("values-2d-negative",
         lambda: SCHED.values(np.array([[0, 1], [2, -7]])),
         ValueError, "steps", "-7"),
]


@pytest.mark.parametrize("make, exc, fragments", RATES)
def test_bad_rate(make, exc, fragments):
    _check(make, exc, fragments)


@pytest.mark.parametrize("make, exc, fragments", LENGTHS)
def test_bad_length(make, exc, fragments):
    _check(make, exc, fragments)


@pytest.mark.parametrize("make, exc, fragments", RELATIONS)
def test_bad_relation(make, exc, fragments):
    _check(make, exc, fragments)


@pytest.mark.parametrize("make, exc, fragments", FACTORS)
def test_bad_factor(make, exc, fragments):
    _check(make, exc, fragments)


@pytest.mark.parametrize("make, exc, fragments", CHOICES)
def test_bad_choice(make, exc, fragments):
    _check(make, exc, fragments)


@pytest.mark.parametrize("make, exc, fragments", WRAPPING)
def test_bad_wrapped(make, exc, fragments):
    _check(make, exc, fragments)


@pytest.mark.parametrize("make, exc, fragments", CALLS)
def test_bad_call(make, exc, fragments):
    _check(make, exc, fragments)


@pytest.mark.parametrize("make, exc, fragments", VALUES)
def test_bad_values(make, exc, fragments):
    _check(make, exc, fragments)


def test_a_failed_call_leaves_the_schedule_usable():
    sched = us.ReduceOnPlateau(us.CosineScheduler(10, base_lr=1.0))
    with pytest.raises(TypeError):
        sched.observe("bad")
    with pytest.raises(ValueError):
        sched.values([-1])
    assert sched.state_dict()["last_epoch"] == 0
    assert sched(5) == 0.5
