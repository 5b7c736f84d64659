"""Tests for ``unisched.tools``: the LR finder (sweep, smoothing, stop
rule, fastai's four suggestion rules), discriminative learning rates, the
Recorder and the one-cycle presets.

Expected values are literals derived by hand (derivations in comments) or
printed by fastai 2.8.12 itself (fastcore 2.2.41): its functions in
fastai/callback/schedule.py (valley, slide, minimum, steep, SchedExp,
combined_cos), fastai.learner.AvgSmoothLoss and fastcore's even_mults, run
once from a throwaway install outside the project's environment (fastai is
not a dependency) on float64 tensors, and the results pasted here.
"""
from __future__ import annotations

import json
import math
import os

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import unisched as us
from unisched import tools
from unisched.tools import (
    LossSmoother,
    LRFinderResult,
    LRFinderState,
    Recorder,
    Suggestion,
    TooFewPoints,
    even_mults,
    group_schedules,
    lr_finder_schedule,
    lr_range,
    minimum,
    multipliers,
    one_cycle,
    slide,
    steep,
    suggest,
    trainable_groups,
    valley,
)

# A grid of 0.1 decade per point: x[i] = log10(lr[i]) = i / 10 - 6 exactly
# (i / 10 and the subtraction are exact enough that x[40] == -2.0).
X61 = np.arange(61) / 10 - 6
LRS61 = 10.0 ** X61


# ------------------------------------------------------------ the sweep

def test_finder_schedule_literal_rates():
    s = lr_finder_schedule()  # 1e-7 -> 10 over 100 updates
    # fastai: start * (end/start) ** (k/num_it) = 10 ** (-7 + 8 k / 100)
    assert s(0) == 1e-7
    assert s(49) == pytest.approx(8.317637711026710e-04, rel=1e-13)
    assert s(99) == pytest.approx(8.317637711026710, rel=1e-13)
    # ... and bit for bit what fastai 2.8.12 printed for
    # SchedExp(1e-7, 10)(k / 100) (LRFinder's defaults, pos train_iter/num_it)
    fastai = {0: 1e-07, 1: 1.202264434617413e-07, 49: 0.0008317637711026709,
              50: 0.001, 99: 8.317637711026709}
    assert {k: s(k) for k in fastai} == fastai
    # (the vectorized path uses numpy's pow: equal to an ulp)
    np.testing.assert_allclose(s.values(np.arange(100)),
                               [s(k) for k in range(100)], rtol=1e-15)


def test_finder_schedule_is_a_core_schedule():
    s = lr_finder_schedule(1e-5, 1.0, 50)
    assert isinstance(s, us.ExponentialScheduler)
    assert us.from_config(json.loads(json.dumps(s.to_config()))) == s
    assert us.parse(s.to_spec())(30) == s(30)


@pytest.mark.parametrize("kwargs, error", [
    (dict(start_lr=0.0), ValueError),
    (dict(start_lr=-1e-7), ValueError),
    (dict(start_lr=1.0, end_lr=0.5), ValueError),
    (dict(num_it=5), ValueError),
    (dict(num_it=10.5), ValueError),
    (dict(end_lr="10"), TypeError),
])
def test_finder_schedule_bad_arguments(kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        lr_finder_schedule(**kwargs)


# ------------------------------------------------------------ smoothing

def test_smoother_literal_values():
    # beta = 49/50: avg_n = 0.98 avg + 0.02 loss; value = avg / (1 - .98^n)
    # n=1: 0.02 / 0.02 = 1
    # n=2: (0.0196 + 0.04) / 0.0396 = 596 / 396 = 149 / 99
    # n=3: (0.058408 + 0.06) / 0.058808 = 118408 / 58808 = 14801 / 7351
    s = LossSmoother()
    assert math.isnan(s.value)
    got = [s.update(v) for v in (1.0, 2.0, 3.0)]
    assert got == pytest.approx([1.0, 149 / 99, 14801 / 7351], rel=1e-13)
    assert s.count == 3
    s.reset()
    assert s.update(5.0) == pytest.approx(5.0, rel=1e-13)


def test_smoother_beta_zero_is_the_raw_loss():
    s = LossSmoother(beta=0.0)
    assert [s.update(v) for v in (3.0, 1.0, 7.0)] == [3.0, 1.0, 7.0]


@pytest.mark.parametrize("beta", [1.0, -0.1, float("nan")])
def test_smoother_bad_beta(beta):
    with pytest.raises(ValueError, match="beta"):
        LossSmoother(beta)


def test_smoother_bad_loss():
    with pytest.raises(TypeError, match="loss"):
        LossSmoother().update("1.0")


# ---------------------------------------------------------- stop rule

def _run(state, losses):
    stops = []
    for loss in losses:
        stops.append(state.update(loss))
        if stops[-1]:
            break
    return stops


def test_stops_exactly_when_smoothed_exceeds_four_times_best():
    # Four losses of 1 keep the smoothed value at 1 (= best).  Update 5
    # (loss 15): (0.98 - .98^5 + 0.3) / (1 - .98^5)
    #   = 117524751 / 30024751 = 3.914 < 4  -> go on;
    # update 6 (loss 16): 10758712799 / 1783712799 = 6.03 > 4 -> stop.
    state = LRFinderState(num_it=100)
    stops = _run(state, [1, 1, 1, 1, 15, 16, 1, 1])
    assert stops == [False] * 5 + [True]
    assert state.stop_reason == "diverged" and state.step == 6
    assert state.smoothed[4:] == pytest.approx(
        [117524751 / 30024751, 10758712799 / 1783712799], rel=1e-12)
    assert state.best_loss == pytest.approx(1.0, rel=1e-12)
    # The update that stopped the run is recorded (as fastai's Recorder).
    assert state.losses.tolist() == [1, 1, 1, 1, 15, 16]
    assert state.lrs.tolist() == [state.schedule(k) for k in range(6)]
    with pytest.raises(RuntimeError, match="already stopped"):
        state.update(1.0)


def test_no_divergence_stop_without_stop_div_then_num_it():
    state = LRFinderState(num_it=8, stop_div=False)
    stops = _run(state, [1, 1, 1, 1, 15, 16, 100, 1000, 1])
    assert stops == [False] * 7 + [True]
    assert state.stop_reason == "num_it" and state.step == 8


def test_stops_after_num_it_updates():
    state = LRFinderState(1e-3, 1.0, num_it=6)
    assert state.next_lr == 1e-3
    assert _run(state, [1.0] * 10) == [False] * 5 + [True]
    assert state.stop_reason == "num_it"
    assert state.lrs[-1] == pytest.approx(1e-3 * 1000 ** (5 / 6), rel=1e-13)


@pytest.mark.parametrize("bad", [float("nan"), float("-inf")])
def test_stops_on_non_finite_loss(bad):
    state = LRFinderState(num_it=100, stop_div=False)
    assert _run(state, [1.0, 1.0, bad, 1.0]) == [False, False, True]
    assert state.stop_reason == "non-finite"


def test_stops_on_inf_as_divergence():
    state = LRFinderState(num_it=100)
    assert _run(state, [1.0, math.inf]) == [False, True]
    assert state.stop_reason == "diverged"


# fastai 2.8.12's lr_find on the curve of the test below: it trains on
# through NaN up to num_it = 40 (recorder: AvgSmoothLoss(0.98), SchedExp
# rates), then runs each rule on recorder[num_it//10 : -5] cut at the first
# NaN: (suggested lr, marked lr, marked loss) as fastai printed them.
FASTAI_AFTER_NAN = {
    "valley": (3.981071705534973e-05, 3.981071705534973e-05,
               2.456883113969123),
    "slide": (3.981071705534973e-06, 3.981071705534973e-06,
              2.6811794084469596),
    "minimum": (0.000630957344480193, 0.006309573444801929,
                1.937375398957274),
    "steep": (0.000630957344480193, 0.000630957344480193,
              2.178128532371104),
}


def test_result_window_matches_fastai_after_nan():
    # Our run stops at the NaN; its suggestions must be fastai's.
    rng = np.random.default_rng(0)
    losses = list(3 - np.linspace(0, 2, 25) + rng.uniform(0, .05, 25))
    state = LRFinderState(num_it=40)
    _run(state, losses + [math.nan])
    assert state.stop_reason == "non-finite" and state.step == 26
    got = state.result().suggestions
    assert sorted(got) == sorted(FASTAI_AFTER_NAN)
    for name, (lr, mark_lr, mark_loss) in FASTAI_AFTER_NAN.items():
        # rates are exact; the smoothed loss differs in the last bits
        # (fastai's lerp vs our update order)
        assert (got[name].lr, got[name].mark_lr) == (lr, mark_lr), name
        assert got[name].mark_loss == pytest.approx(mark_loss, rel=1e-14)


def test_result_default_window_is_fastai_slice():
    state = LRFinderState(num_it=60)
    losses = 2 + np.cos(np.linspace(0, 3, 60))
    _run(state, losses)
    res = state.result(methods=["minimum", "valley"])
    assert res.skip_start == 6 and res.skip_end == 5
    # fastai 2.8.12's lr_find on the same 60 losses (window [6:-5]):
    fastai = {"minimum": (0.1584893192461114, 1.584893192461114,
                          1.9331661828194742),
              "valley": (0.0007356422544596414, 0.0007356422544596414,
                         2.6213233881899667)}
    assert sorted(res.suggestions) == sorted(fastai)
    for name, (lr, mark_lr, mark_loss) in fastai.items():
        got = res.suggestions[name]
        assert (got.lr, got.mark_lr) == (lr, mark_lr), name
        assert got.mark_loss == pytest.approx(mark_loss, rel=1e-14)


def test_result_too_short_leaves_rules_out_but_keeps_the_curve():
    # Diverged after 6 updates: the window [10, 1) is empty, so every
    # rule is left out; suggest() itself still refuses such a curve.
    state = LRFinderState(num_it=100)
    _run(state, [1, 1, 1, 1, 15, 16])
    result = state.result()
    assert state.stop_reason == "diverged"
    assert result.suggestions == {}
    assert len(result.lrs) == 6
    with pytest.raises(TooFewPoints, match="at least"):
        suggest(state.lrs[10:1], state.smoothed[10:1], ["minimum"])
    assert issubclass(TooFewPoints, ValueError)


# ---------------------------------------------------------- suggestions

def test_minimum_on_quadratic():
    # loss = (log10 lr + 2)^2 is 0 at index 40 (lr = 1e-2), > 0 elsewhere.
    # (fastai 2.8.12's minimum: (0.001, (0.01, 0.0)))
    losses = (X61 + 2) ** 2
    assert minimum(LRS61, losses) == (pytest.approx(1e-3, rel=1e-14),
                                      pytest.approx(1e-2, rel=1e-14), 0.0)


def test_valley_on_quadratic():
    # Strictly decreasing to index 40, then rising: the longest decreasing
    # run ends at 40 with 41 points, so start = 40 - 41 = -1 (fastai's
    # off-by-one), sections = 41/3, i = -1 + 13 + int(6.83) = 18:
    # lr = 10 ** (1.8 - 6) = 10 ** -4.2, loss = (-4.2 + 2)^2 = 4.84.
    # (fastai 2.8.12's valley: 6.309573444801929e-05, loss 4.84)
    s = valley(LRS61, (X61 + 2) ** 2)
    assert s.lr == pytest.approx(6.309573444801932e-05, rel=1e-12)
    assert s.mark_lr == s.lr
    assert s.mark_loss == pytest.approx(4.84, rel=1e-12)


def test_valley_of_two_points_takes_the_last_point():
    # run = [1, 2, 1, 1]: end 1, start -1, sections 2/3 -> i = -1, which
    # Python (and so fastai) reads as the last point.  (fastai 2.8.12:
    # (1.0, (1.0, 4.0)); on the constant curve below: (0.001, (0.001, 1.0)))
    s = valley([1e-3, 1e-2, 1e-1, 1.0], [2.0, 1.0, 3.0, 4.0])
    assert s == Suggestion(1.0, 1.0, 4.0)


def test_valley_constant_curve_is_first_point():
    assert valley([1e-3, 1e-2, 1e-1], [1.0, 1.0, 1.0]).lr == 1e-3


# Index fastai 2.8.12's valley() chose on each random walk below (seeds
# 0..29); ties happen, so this pins its strict "<" comparisons and its
# max_start update inside the inner loop.
FASTAI_VALLEY_INDEX = [24, 19, 24, 39, 35, 27, 23, 32, 34, 6, 23, 4, 28, 36,
                       0, 38, 23, 32, 46, 27, 33, 8, 18, 0, 16, 24, 21, 0,
                       3, 9]


@pytest.mark.parametrize("seed", range(30))
def test_valley_equals_fastai(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 60))
    losses = np.round(rng.normal(size=n).cumsum(), 1)  # ties happen
    lrs = np.logspace(-6, 0, n)
    i = FASTAI_VALLEY_INDEX[seed]
    assert valley(lrs, losses) == (lrs[i], lrs[i], losses[i])


def test_steep_on_tanh_step():
    # loss = -tanh(2 (x + 3.05)) falls fastest around x = -3.05; the
    # segment [-3.1, -3.0] is centred there, so steep returns its left end
    # lr = 10 ** -3.1 with loss tanh(0.1).  (fastai 2.8.12's steep:
    # 0.0007943282347242813; on the next test's curve: 0.1)
    s = steep(LRS61, -np.tanh(2 * (X61 + 3.05)))
    assert s.lr == pytest.approx(7.943282347242815e-04, rel=1e-12)
    assert s.mark_loss == pytest.approx(0.09966799462495582, rel=1e-12)


def test_steep_slope_is_per_log_lr():
    # Same loss drops, but the second step spans 10x fewer decades: it is
    # the steeper one per log(lr).
    s = steep([1e-3, 1e-1, 10 ** -0.8, 1.0], [3.0, 2.0, 1.0, 0.9])
    assert s.lr == 1e-1


def _slide_curve():
    # Linear with slope -0.1 per point up to index 40, then a parabola:
    #   loss[i] = 5 - 0.1 i              i <= 40
    #           = 1 + 0.05 (i - 40)^2    i >= 40
    # numpy.gradient: g = -0.1 (i <= 39), -0.025 (40), 0.1 (i - 40)
    # (41..58), 1.85 (59, one-sided).  Window [l, r] = [44 - k, 59 - k]
    # differs by > 0.005 for k = 0..19 (k = 19: g[40] - g[25] = 0.075) and
    # agrees at k = 20 (both -0.1): the answer is lrs[25], loss 2.5.
    # (fastai 2.8.12's slide: 0.00031622776601683794, loss 2.5; with
    # adjust_value=10 ** 0.05: 0.00035481338923357543, loss 2.45)
    i = np.arange(60)
    return np.where(i <= 40, 5 - 0.1 * i, 1 + 0.05 * (i - 40) ** 2)


def test_slide_on_kinked_curve():
    lrs = 10.0 ** (np.arange(60) / 10 - 6)
    s = slide(lrs, _slide_curve())
    assert s.lr == pytest.approx(3.162277660168379e-04, rel=1e-12)
    assert s.mark_loss == pytest.approx(2.5, rel=1e-12)
    # adjust_value scales the rate; the loss is interpolated in log10(lr):
    # 10 ** -3.5 * 10 ** 0.05 sits half-way between points 25 and 26.
    t = slide(lrs, _slide_curve(), adjust_value=10 ** 0.05)
    assert t.lr == pytest.approx(10 ** -3.45, rel=1e-12)
    assert t.mark_loss == pytest.approx(2.45, rel=1e-12)


def test_slide_runs_to_the_first_point_on_a_parabola():
    # g = 0.1 i (central differences of 0.05 i^2): every window differs
    # by 1.5 > thresh, the window reaches l = 0 and the answer is lrs[0].
    lrs = np.logspace(-5, 0, 30)
    assert slide(lrs, 0.05 * np.arange(30) ** 2).lr == lrs[0]


def test_slide_first_window_agrees():
    lrs = np.logspace(-5, 0, 30)
    s = slide(lrs, 3 - 0.1 * np.arange(30))  # straight line
    assert s.lr == lrs[30 - 1 - 15]


def test_suggest_trims_and_cuts_at_first_nan():
    lrs = LRS61
    losses = (X61 + 2) ** 2
    losses[50] = np.nan
    out = suggest(lrs, losses, skip_start=3, skip_end=5)
    assert list(out) == ["minimum", "steep", "valley", "slide"]
    kept = slice(3, 50)
    assert out["minimum"] == minimum(lrs[kept], losses[kept])
    assert out["valley"] == valley(lrs[kept], losses[kept])
    assert out["steep"] == steep(lrs[kept], losses[kept])
    assert out["slide"] == slide(lrs[kept], losses[kept])


def test_suggest_accepts_partials_named_after_their_function():
    import functools
    lrs = 10.0 ** (np.arange(60) / 10 - 6)
    out = suggest(lrs, _slide_curve(),
                  [functools.partial(slide, lr_diff=10), "minimum"])
    assert list(out) == ["slide", "minimum"]
    assert out["slide"] == slide(lrs, _slide_curve(), lr_diff=10)


@pytest.mark.parametrize("call, error, match", [
    (lambda: suggest([1e-3, 1e-2], [1.0, 2.0], ["maximum"]), ValueError,
     "unknown suggestion method"),
    (lambda: suggest([1e-3, 1e-2], [1.0, 2.0], [3]), TypeError, "methods"),
    (lambda: suggest([1e-3, 1e-2], [1.0], ["minimum"]), ValueError,
     "equal length"),
    (lambda: steep([1e-3], [1.0]), ValueError, "at least 2"),
    (lambda: slide(np.logspace(-3, 0, 15), np.ones(15)), ValueError,
     "at least 16"),
    (lambda: minimum([1e-2, 1e-3], [1.0, 2.0]), ValueError, "increasing"),
    (lambda: minimum([0.0, 1e-3], [1.0, 2.0]), ValueError, "> 0"),
    (lambda: valley([1e-3, 1e-2], [1.0, np.inf]), ValueError, "finite"),
    (lambda: slide(np.logspace(-3, 0, 20), np.ones(20), lr_diff=0),
     ValueError, "lr_diff"),
    (lambda: suggest([1e-3, 1e-2], [1.0, 2.0], skip_end=-1), ValueError,
     "skip_end"),
])
def test_suggestion_bad_inputs(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ------------------------------------------------------------ result

def _finished_result():
    state = LRFinderState(1e-6, 1.0, num_it=60)
    x = np.linspace(-6, 0, 60)
    _run(state, 1 + (x + 2.5) ** 2 / 4)
    return state.result()


def test_result_dict_json_round_trip():
    res = _finished_result()
    res.losses[3] = np.nan  # non-finite values survive strict JSON
    text = res.to_json()
    back = LRFinderResult.from_dict(json.loads(text))
    np.testing.assert_array_equal(back.lrs, res.lrs)
    np.testing.assert_array_equal(back.losses, res.losses)
    np.testing.assert_array_equal(back.smoothed, res.smoothed)
    assert back.suggestions == res.suggestions
    assert (back.num_it, back.stop_reason, back.skip_start) == (60, "num_it",
                                                                6)
    assert "NaN" in text


def test_result_plot_png(tmp_path):
    res = _finished_result()
    ax = res.plot()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert [lab.split(":")[0] for lab in labels] == list(res.suggestions)
    # the curve drawn stops skip_end = 5 points before the end
    assert len(ax.lines[0].get_xdata()) == 55
    path = tmp_path / "finder.png"
    ax.figure.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    matplotlib.pyplot.close("all")


# ------------------------------------------- discriminative learning rates

def test_lr_range_literals():
    assert lr_range(0.1, 3) == [0.1, 0.1, 0.1]
    assert lr_range(slice(1e-3), 4) == [1e-4, 1e-4, 1e-4, 1e-3]
    assert lr_range(slice(1e-5, 1e-3), 3) == pytest.approx(
        [1e-5, 1e-4, 1e-3], rel=1e-12)
    assert lr_range(slice(1e-6, 1e-4), 5) == pytest.approx(
        [1e-6, 10 ** -5.5, 1e-5, 10 ** -4.5, 1e-4], rel=1e-12)
    assert lr_range(slice(1e-5, 1e-3), 1) == [1e-3]
    assert lr_range(slice(1e-3), 1) == [1e-3]
    assert lr_range(slice(2e-3, 2e-3), 3) == [2e-3] * 3
    assert lr_range([1e-3, 2e-3], 2) == [1e-3, 2e-3]
    assert lr_range([1e-3], 3) == [1e-3] * 3
    # the first and last rates are exactly lo and hi
    assert lr_range(slice(1e-5, 1e-3), 3)[0] == 1e-5
    assert even_mults(1e-5, 1e-3, 3)[-1] == pytest.approx(1e-3, rel=1e-15)


def test_multipliers_literals():
    assert multipliers(slice(1e-3), 3) == [0.1, 0.1, 1.0]
    assert multipliers(slice(1e-5, 1e-3), 3) == pytest.approx(
        [0.01, 0.1, 1.0], rel=1e-12)
    assert multipliers(0.5, 2) == [1.0, 1.0]


# fastai 2.8.12: fit_one_cycle(lr_max=slice(1e-5, 1e-3)) on 3 groups runs
# combined_cos(0.25, lr_max/25, lr_max, lr_max/1e5) with lr_max =
# even_mults(1e-5, 1e-3, 3) = [1e-5, 1e-4, 1e-3]; printed at pos = k / 80.
FASTAI_GROUPS_80 = {
    0: [4.0000000000000003e-07, 4e-06, 4e-05],
    20: [1e-05, 0.0001, 0.001],
    40: [7.500024864862766e-06, 7.500024864862765e-05,
         0.0007500024864862765],
    79: [6.952244637217043e-09, 6.952244637216365e-08,
         6.952244637216907e-07],
    80: [1.0000000000021927e-10, 1.0000000000021927e-09,
         9.999999999940612e-09],
}
# fastai's combine_scheds keeps the phase boundaries in a float32 tensor,
# so its phase position is a float32: its rates differ from the exact
# formula by up to (float32 eps ~6e-8) x (largest slope ~2.1 per unit
# position / peak) ~ 1.3e-7 of the peak; unisched computes in float64.
FASTAI_F32 = 2e-7


def test_group_schedules_equal_fastai_per_group_one_cycle():
    n, steps = 3, 80
    scheds = group_schedules(one_cycle(1e-3, steps), slice(1e-5, 1e-3), n)
    assert scheds[-1] == one_cycle(1e-3, steps)
    peaks = [1e-5, 1e-4, 1e-3]
    for k, want in FASTAI_GROUPS_80.items():
        for sched, peak, lr in zip(scheds, peaks, want, strict=True):
            assert sched(k) == pytest.approx(lr, abs=FASTAI_F32 * peak), k
    k = np.arange(steps + 1)
    for sched in scheds:
        np.testing.assert_array_equal(sched.momentum.values(k),
                                      scheds[-1].momentum.values(k))


@pytest.mark.parametrize("lr, n, error, match", [
    (0.1, 0, ValueError, "n_groups"),
    (0.1, 2.5, ValueError, "n_groups"),
    (0.1, True, TypeError, "n_groups"),
    (slice(1e-3, 1e-5), 3, ValueError, "start <= stop"),
    (slice(0, 1e-3), 3, ValueError, "lr.start"),
    (slice(None, None), 3, ValueError, "stop"),
    (slice(1e-5, 1e-3, 2), 3, ValueError, "step"),
    (-0.1, 3, ValueError, "lr"),
    ([1e-3, 1e-2], 3, ValueError, "2 rates for 3"),
    ("1e-3", 3, TypeError, "lr"),
])
def test_lr_range_bad_inputs(lr, n, error, match):
    with pytest.raises(error, match=match):
        lr_range(lr, n)


def test_group_schedules_bad_schedule():
    with pytest.raises(TypeError, match="schedule"):
        group_schedules(lambda k: 0.1, 0.1, 2)


def test_trainable_groups_fastai_freeze_to():
    assert trainable_groups(4) == [False, False, False, True]
    assert trainable_groups(4, 0) == [True] * 4
    assert trainable_groups(4, 2) == [False, False, True, True]
    assert trainable_groups(4, -2) == [False, False, True, True]
    assert trainable_groups(4, -9) == [True] * 4
    with pytest.warns(UserWarning, match="whole model is frozen"):
        assert trainable_groups(4, 4) == [False] * 4
    with pytest.raises(TypeError, match="freeze_to"):
        trainable_groups(4, 1.0)


# ------------------------------------------------------------ Recorder

def _recorder(groups=1):
    rec = Recorder()
    for k in range(6):
        lr = 0.1 * (k + 1)
        rec.record_update(k, [lr / 10] * (groups - 1) + [lr],
                          momentum=0.95 - 0.01 * k,
                          loss=2.0 / (k + 1) if k != 4 else math.nan)
    rec.record_epoch(1, train_loss=0.9, train_acc=0.7, test_acc=0.65,
                     time=1.25)
    rec.record_epoch(2, train_loss=0.5123, train_acc=0.8119, test_acc=0.803)
    return rec


def _same(a, b):
    np.testing.assert_array_equal(a.steps, b.steps)
    np.testing.assert_array_equal(a.group_lrs, b.group_lrs)
    np.testing.assert_array_equal(a.momentums, b.momentums)
    np.testing.assert_array_equal(a.losses, b.losses)  # NaN == NaN here
    assert a.epochs == b.epochs


def test_summary_line_literal():
    rec = _recorder()
    assert rec.summary_line(2) == ("epoch 2: train loss 0.512, train acc "
                                   "0.812, test acc 0.803")
    assert rec.summary_line() == rec.summary_line(2)
    rec.record_epoch(3, train_loss=0.25)
    assert rec.summary_line(3) == "epoch 3: train loss 0.250"
    with pytest.raises(ValueError, match="epoch 7"):
        rec.summary_line(7)


def test_recorder_reading():
    rec = _recorder(groups=2)
    assert rec.n_groups == 2 and len(rec) == 6
    assert rec.lrs == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    assert rec.group_lrs[:, 0] == pytest.approx(rec.lrs / 10)
    assert rec.epoch_column("test_acc") == pytest.approx([0.65, 0.803])
    assert math.isnan(rec.epoch_column("time")[1])


@pytest.mark.parametrize("groups", [1, 3])
def test_recorder_json_round_trip(tmp_path, groups):
    rec = _recorder(groups)
    path = tmp_path / "run.json"
    text = rec.to_json(path)
    assert path.read_text() == text + "\n"
    json.loads(text)  # strict JSON: NaN is stored as a string
    assert '"NaN"' in text
    _same(Recorder.from_json(path), rec)
    _same(Recorder.from_dict(json.loads(text)), rec)


@pytest.mark.parametrize("groups", [1, 3])
def test_recorder_csv_round_trip(tmp_path, groups):
    rec = _recorder(groups)
    rec.to_csv(tmp_path / "updates.csv", table="updates")
    rec.to_csv(tmp_path / "epochs.csv")
    header = (tmp_path / "updates.csv").read_text().splitlines()[0]
    lr_cols = "lr" if groups == 1 else "lr_0,lr_1,lr_2"
    assert header == f"step,{lr_cols},momentum,loss"
    assert (tmp_path / "epochs.csv").read_text().splitlines() == [
        "epoch,train_loss,train_acc,test_acc,time",
        "1,0.9,0.7,0.65,1.25",
        "2,0.5123,0.8119,0.803,"]
    back = Recorder.from_csv(updates=tmp_path / "updates.csv",
                             epochs=tmp_path / "epochs.csv")
    _same(back, rec)


def test_atomic_write_leaves_no_temp_and_replaces_on_success(tmp_path):
    path = tmp_path / "run.json"
    path.write_text("old")
    rec = _recorder()
    rec.to_json(path)
    assert json.loads(path.read_text())["epochs"][1]["epoch"] == 2
    rec.to_csv(tmp_path / "e.csv")
    assert sorted(os.listdir(tmp_path)) == ["e.csv", "run.json"]


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "run.json"
    path.write_text("old")

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        _recorder().to_json(path)
    with pytest.raises(OSError, match="disk full"):
        _recorder().to_csv(path)
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["run.json"]


@pytest.mark.parametrize("call, error, match", [
    (lambda r: r.record_update(3, 0.1), ValueError, "step must increase"),
    (lambda r: r.record_update(9, [0.1, 0.2]), ValueError, "group"),
    (lambda r: r.record_update(9, -0.1), ValueError, "lr"),
    (lambda r: r.record_update(9, []), ValueError, "lr"),
    (lambda r: r.record_update(9, 0.1, loss="x"), TypeError, "loss"),
    (lambda r: r.record_update(-1, 0.1), ValueError, "step"),
    (lambda r: r.record_epoch(2, 0.1), ValueError, "epoch must increase"),
    (lambda r: r.record_epoch(3, 0.1, train_acc=81.2), ValueError,
     "train_acc"),
    (lambda r: r.to_csv("x.csv", table="batches"), ValueError, "table"),
    (lambda r: r.plot_sched(ax=[None]), ValueError, "2 axes"),
    (lambda r: Recorder.from_dict({"updates": {"step": [0, 1],
                                               "lr": [0.1]}}),
     ValueError, "updates.lr"),
])
def test_recorder_bad_inputs(call, error, match):
    with pytest.raises(error, match=match):
        call(_recorder())


def test_empty_recorder_errors():
    with pytest.raises(ValueError, match="no epoch"):
        Recorder().summary_line()
    with pytest.raises(ValueError, match="no update"):
        Recorder().plot_sched()


def test_recorder_plots_png(tmp_path):
    import matplotlib.pyplot as plt
    rec = _recorder(groups=2)
    axes = rec.plot_sched()
    assert [a.get_ylabel() for a in axes] == ["lr", "mom"]
    assert len(axes[0].lines) == 2  # one line per group
    np.testing.assert_allclose(axes[1].lines[0].get_ydata(), rec.momentums)
    axes[0].figure.savefig(tmp_path / "sched.png")
    ax = rec.plot_metrics()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "train loss", "train acc", "test acc"]
    ax.figure.savefig(tmp_path / "metrics.png")
    for name in ("sched.png", "metrics.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    plt.close("all")


def test_plot_sched_without_momentum_has_one_panel():
    import matplotlib.pyplot as plt
    rec = Recorder()
    rec.record_update(0, 0.1)
    rec.record_update(1, 0.2)
    assert [a.get_ylabel() for a in rec.plot_sched()] == ["lr"]
    plt.close("all")


# ------------------------------------------------------------ one cycle

# fastai 2.8.12, fit_one_cycle(lr_max=1.0) over 100 updates: lr is
# combined_cos(0.25, 1/25, 1.0, 1e-5) and momentum combined_cos(0.25, 0.95,
# 0.85, 0.95), printed at pos = k / 100 (k: (lr, momentum)).
FASTAI_ONE_CYCLE_100 = {
    0: (0.04, 0.95),
    10: (0.37167185124828167, 0.915450848828304),
    25: (1.0, 0.85),
    50: (0.7500024864862765, 0.8750000013513858),
    60: (0.5522686593312814, 0.8947735818026898),
    99: (0.0004485797283180215, 0.949956141588584),
}


def test_one_cycle_fastai_preset_literals():
    s = one_cycle(1.0, 100)
    for k, (lr, mom) in FASTAI_ONE_CYCLE_100.items():
        # within fastai's float32 phase position (FASTAI_F32 above)
        assert s(k) == pytest.approx(lr, abs=FASTAI_F32), k
        assert s.momentum(k) == pytest.approx(mom, abs=FASTAI_F32), k
    # The exact formula, by hand: pos 0.5 is 1/3 into the second phase,
    # cos(pi (1 - 1/3)) = -1/2: 1e-5 + (1 - 1e-5) * 3/4.
    assert s(50) == pytest.approx(0.7500025, rel=1e-15)
    assert s(25) == 1.0 and s.momentum(25) == 0.85
    assert one_cycle(1.0, 100, pct_start=0.5)(50) == pytest.approx(1.0)


def test_one_cycle_torch_preset_literals():
    s = one_cycle(1.0, 100, preset="torch")
    # OneCycleLR: peak at step pct_start * total - 1 = 29, last step 99 at
    # max_lr / 25 / 1e4
    assert (s(0), s(29)) == (pytest.approx(0.04), pytest.approx(1.0))
    assert s(99) == pytest.approx(4e-6, rel=1e-9)
    assert s == us.OneCycleScheduler(1.0, 100)


@pytest.mark.parametrize("kwargs, match", [
    (dict(preset="keras"), "preset"),
    (dict(div_factor=10), "div_factor"),  # a torch name under fastai
    (dict(preset="torch", div=10), "div"),
])
def test_one_cycle_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        one_cycle(1.0, 100, **kwargs)


def test_public_names_exist():
    for name in tools.__all__:
        assert hasattr(tools, name), name
