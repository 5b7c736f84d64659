"""fastai's schedules written in unisched, against literal tables printed
by fastai 2.8.12 itself.

fastai's annealers (``SchedLin``, ``SchedCos``, ``SchedNo``,
``SchedExp``, ``SchedPoly``), ``combine_scheds`` of arbitrary annealers,
``combined_cos`` and the schedules of ``fit_one_cycle`` (rate and
momentum), ``fit_flat_cos`` and ``fit_sgdr`` are functions of the
position ``pos = k / n`` in a run of ``n`` updates (fastai's
``pct_train``).  Each is one unisched composition in updates: an annealer
over ``n`` updates is a decay (``SchedPoly``, a rise, is one played
backwards with ``reverse``) and ``combine_scheds(pcts, ...)`` is a
``join`` at ``cumsum(pcts) * n``, boundaries that need not fall on an
update.  (The learning-rate finder's suggestion rules are tested against
fastai in ``tests/tools/test_tools.py``.)

How the tables were made: fastai cannot be installed in the project's
environment (``pip install fastai`` pulls torchvision, which breaks torch
here).  A throwaway virtualenv in /tmp (``python -m venv``, a ``.pth``
file pointing at the project's site-packages for torch and numpy, then
``pip install --no-deps fastai==2.8.12 fastcore==2.2.41
fastprogress==1.0.3 fasttransform plum-dispatch beartype fastdownload
'pandas<2.3' pytz``, no torchvision) ran this script, and its output is
pasted below::

    import torch
    import fastai.callback.schedule as fs
    fs.tensor = lambda x: torch.tensor(x, dtype=torch.float64)
    from fastai.callback.schedule import (SchedLin, SchedCos, SchedNo,
        SchedExp, SchedPoly, combine_scheds, combined_cos)
    def table(f, n, ks=None):
        return [float(f(k / n)) for k in (range(n + 1) if ks is None
                                          else ks)]
    LIN = table(SchedLin(0.1, 1.0), 10)          # and so on, as below

fastai's ``tensor()`` turns float64 into float32, so as fastai runs,
``combine_scheds`` keeps its phase boundaries in float32 and its rates
differ from the exact formula by up to ~2e-7 of the peak (see
``FASTAI_F32`` in ``tests/tools/test_tools.py``); with the module's
``tensor`` replaced by a float64 one, the tables hold fastai's own
formulas in float64, and unisched must equal them to 1e-12.
"""
from __future__ import annotations

import numpy as np
import pytest

import unisched as us
from unisched._ops import ScalarOps
from unisched.combinators import Reverse

LIN = [
    0.1, 0.19, 0.28, 0.37, 0.4600000000000001, 0.55, 0.64, 0.73,
    0.8200000000000001, 0.91, 1.0]

COS = [
    1.0, 0.975772975566101, 0.9054634122155989, 0.7959536998847742,
    0.657963412215599, 0.505, 0.35203658778440106, 0.21404630011522596,
    0.104536587784401, 0.03422702443389891, 0.010000000000000009]

NO = [
    0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]

EXP = [
    0.001, 0.00199526231496888, 0.0039810717055349725, 0.007943282347242814,
    0.015848931924611138, 0.03162277660168379, 0.06309573444801932,
    0.12589254117941667, 0.25118864315095807, 0.5011872336272724, 1.0]

POLY = [
    0.2, 0.20800000000000002, 0.232, 0.272, 0.32800000000000007, 0.4, 0.488,
    0.592, 0.7120000000000002, 0.8480000000000001, 1.0]

POLY_DOWN = [
    1.0, 0.683772233983162, 0.5527864045000421, 0.4522774424948339,
    0.3675444679663241, 0.2928932188134524, 0.2254033307585166,
    0.16333997346592444, 0.10557280900008414, 0.05131670194948623, 0.0]

COMBINE_2 = [
    0.01, 0.23448979591836733, 0.9079591836734693, 0.9190521480406757,
    0.6727152589579326, 0.35780043306381515, 0.09938325974711493,
    9.999999999998899e-05]

COMBINE_3 = [
    0.5, 0.5, 0.5, 0.4723076923076923, 0.40307692307692305,
    0.3338461538461538, 0.2646153846153846, 0.19538461538461538,
    0.12615384615384606, 0.05692307692307691, 0.020272158976387608,
    0.007434755124108238, 0.0027266747374977136, 0.001]

COMBINED_COS = [
    0.004, 0.037167184270002526, 0.09083281572999748, 0.09890739096288992,
    0.09045094521025018, 0.07500025000000002, 0.055226870899151057,
    0.03454980478974981, 0.016544304247360267, 0.00432368389059877,
    1.000000000001e-06]

ONE_CYCLE_LR = [
    0.0004, 0.0008149818033155153, 0.0019881730894774807,
    0.0037167184270002532, 0.005701736623684737, 0.007600000000000001,
    0.009083281572999749, 0.009895108483522267, 0.009987820373096609,
    0.009890739096288991, 0.009698466119298503, 0.009414743816914992,
    0.009045094521025018, 0.008596713034703237, 0.008078326593554523,
    0.007500025000000001, 0.00687306423674989, 0.006209647381903558,
    0.005522687089915105, 0.00482555426146233, 0.004131817794074231,
    0.003454980478974981, 0.002808216184611953, 0.0022041134422914384,
    0.001654430424736026, 0.0011698660866272664, 0.0007598519216226764,
    0.000432368389059877, 0.00019378958339320157, 4.875916969558462e-05,
    9.999999999940612e-08]

ONE_CYCLE_MOM = [
    0.95, 0.94567727288213, 0.9334565303179428, 0.9154508497187474,
    0.8947735768366173, 0.875, 0.8595491502812526, 0.8510926199633096,
    0.8501217974870088, 0.8510926199633096, 0.8530153689607045,
    0.8558526203570537, 0.8595491502812526, 0.8640330099830674,
    0.869216926233717, 0.875, 0.8812696703292043, 0.8879039052200166,
    0.8947735768366173, 0.9017449748351251, 0.9086824088833465,
    0.9154508497187474, 0.9219185573394538, 0.9279596451735374,
    0.9334565303179428, 0.9383022221559488, 0.9424024048078212,
    0.94567727288213, 0.9480630847969159, 0.9495134034370785, 0.95]

FLAT_COS = [
    0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01,
    0.01, 0.01, 0.01, 0.01, 0.009045094521025017, 0.0065451195210250186,
    0.00345498047897498, 0.000955005478974983, 9.999999999940612e-08]

SGDR = [
    0.01, 0.008535533905932738, 0.005, 0.001464466094067262, 0.01,
    0.009619397662556433, 0.008535533905932738, 0.006913417161825449, 0.005,
    0.003086582838174549, 0.0014644660940672603, 0.00038060233744356686, 0.01,
    0.009903926402016152, 0.009619397662556433, 0.009157348061512726,
    0.008535533905932738, 0.0077778511650980105, 0.006913417161825445,
    0.0059754516100806385, 0.0049999999999999975, 0.004024548389919356,
    0.0030865828381745506, 0.002222148834901989, 0.001464466094067262,
    0.0008426519384872721, 0.00038060233744356686, 9.607359798384854e-05]

LR = 0.01  # fit_one_cycle, fit_flat_cos and fit_sgdr's lr_max


def _poly_rise(n, start, end, power):
    """fastai's SchedPoly(start, end, power) over n updates."""
    return Reverse(us.PolyScheduler(n, end, power, start), n)


def _phases(pcts, n):
    """combine_scheds' boundaries in updates: cumsum(pcts) * n."""
    return [float(c) * n for c in np.cumsum(pcts)[:-1]]


CASES = {
    # fastai: SchedLin(0.1, 1.0) over 10 updates
    "SchedLin": (LIN, us.PolyScheduler(10, 0.1, 1.0, 1.0)),
    "SchedCos": (COS, us.CosineScheduler(10, 1.0, 0.01)),
    "SchedNo": (NO, us.ConstantScheduler(0.3)),
    "SchedExp": (EXP, us.ExponentialScheduler(1e-3, 1.0 / 1e-3, step=10)),
    "SchedPoly": (POLY, _poly_rise(10, 0.2, 1.0, 2.0)),
    "SchedPoly-down": (POLY_DOWN, _poly_rise(10, 1.0, 0.0, 0.5)),
    # combine_scheds([0.3, 0.7], [SchedPoly(0.01, 1, 2),
    # SchedCos(1, 1e-4)]) over 7 updates: the boundary at 2.1
    "combine_scheds-2": (COMBINE_2, us.join(
        [_poly_rise(0.3 * 7, 0.01, 1.0, 2.0),
         us.CosineScheduler(0.7 * 7, 1.0, 1e-4)], _phases([0.3, 0.7], 7))),
    # combine_scheds([0.2, 0.5, 0.3], [SchedNo(0.5, 0.5),
    # SchedLin(0.5, 0.05), SchedExp(0.05, 0.001)]) over 13 updates
    "combine_scheds-3": (COMBINE_3, us.join(
        [us.ConstantScheduler(0.5), us.PolyScheduler(0.5 * 13, 0.5, 1.0,
                                                     0.05),
         us.ExponentialScheduler(0.05, 0.001 / 0.05, step=0.3 * 13)],
        _phases([0.2, 0.5, 0.3], 13))),
    # combined_cos(0.25, 0.004, 0.1, 1e-6) over 10 updates
    "combined_cos": (COMBINED_COS, us.join(
        [us.CosineScheduler(2.5, 0.004, 0.1),
         us.CosineScheduler(7.5, 0.1, 1e-6)], [2.5])),
    # fit_one_cycle(lr_max=0.01) over 30 updates: its rate and momentum
    "fit_one_cycle": (ONE_CYCLE_LR, us.OneCycleScheduler.fastai(LR, 30)),
    "fit_one_cycle-momentum": (
        ONE_CYCLE_MOM, us.OneCycleScheduler.fastai(LR, 30).momentum),
    "fit_one_cycle-join": (ONE_CYCLE_LR, us.join(
        [us.CosineScheduler(7.5, LR / 25, LR),
         us.CosineScheduler(22.5, LR, LR / 1e5)], [7.5])),
    # fit_flat_cos(lr=0.01) over 20 updates: flat for 75%, then cosine
    "fit_flat_cos": (FLAT_COS, us.join(
        [us.ConstantScheduler(LR), us.CosineScheduler(5, LR, LR / 1e5)],
        [15])),
    # fit_sgdr(n_cycles=3, cycle_len=1, cycle_mult=2) at 4 updates per
    # epoch: cycles of 4, 8 and 16 updates (fastai's last position is
    # update 27: at 28 a fourth cycle would start)
    "fit_sgdr": (SGDR, us.CosineRestartsScheduler(4, LR, cycle_mult=2)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_equals_fastai(name):
    table, sched = CASES[name]
    steps = np.arange(len(table))
    peak = max(table)
    got = sched.values(steps)
    np.testing.assert_allclose(got, table, rtol=1e-12, atol=1e-15 * peak)
    assert [sched(int(k)) for k in steps] == got.tolist()


def test_the_schedules_survive_their_specs():
    # fractional boundaries and lengths, reverse: all in the one grammar
    for name in ("combine_scheds-2", "combine_scheds-3", "SchedPoly"):
        sched = CASES[name][1]
        assert us.parse(sched.to_spec()) == sched
        assert us.from_config(sched.to_json()) == sched


def test_a_fractional_boundary_switches_at_the_next_update():
    # the second phase of combine_scheds([0.3, 0.7], ...) over 7 updates
    # starts at 2.1: update 2 is still in the first piece (at 2 of 2.1),
    # update 3 is 0.9 into the second
    sched = CASES["combine_scheds-2"][1]
    first, second = sched.schedules
    start = sched.boundaries[0]
    assert 2 < start < 3
    assert sched(2) == first(2) == pytest.approx(0.01 + 0.99 * (2 / 2.1)
                                                 ** 2, rel=1e-15)
    assert sched(3) == second._eval(3 - start, ScalarOps)
    assert sched(3) == pytest.approx(
        1e-4 + (1 - 1e-4) * (1 + np.cos(np.pi * 0.9 / 4.9)) / 2, rel=1e-15)
