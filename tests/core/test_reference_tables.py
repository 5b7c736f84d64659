"""Literal reference tables for every schedule and combinator.

Each table lists the expected rate at step 0, the end of any warmup, both
sides of every boundary (MXNet-style schedules switch AFTER a boundary,
torch- and Keras-style ones AT it, so the boundary step and the one after
are both listed), the last step and well beyond the end.

The numbers were computed independently of unisched: the original
frameworks' definitions were re-typed in plain Python and evaluated with
60-digit mpmath arithmetic (float parameters converted exactly), then
pasted here as literals.  The definitions used:

* MXNet 1.9.1 ``lr_scheduler`` (Factor, MultiFactor, Poly, Cosine): the
  stateful objects, called with 0, 1, 2, ... in order;
* the d2l chapter's own ``SquareRootScheduler`` and ``FactorScheduler``;
* Keras ``ExponentialDecay``, ``InverseTimeDecay``,
  ``PiecewiseConstantDecay`` (``values[i]`` while ``step <=
  boundaries[i]``) and ``CosineDecayRestarts`` (cycles walked with exact
  fractions);
* torch ``CyclicLR``, ``OneCycleLR`` (phase ends ``pct * total - 1`` in
  float) and ``ReduceLROnPlateau``, all with momentum;
* fastai ``combined_cos`` for ``OneCycleScheduler.fastai``;
* optax ``join_schedules`` for ``join``.

The re-typed definitions were also checked against MXNet, torch and Keras
themselves before the numbers were pasted.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import unisched as us

from tables_extra import TABLES as EXTRA

REL = 1e-12
ABS = 1e-15  # a value that is 0 in exact arithmetic may come out ~1e-17


def T(ident, sched, table):
    return pytest.param(sched, table, id=ident)


def _observed(sched, metrics):
    """``sched`` after observing ``metrics`` (step 0 each time)."""
    for metric in metrics:
        sched.observe(metric)
    return sched


def _mismatches(got, table):
    return [(step, value, want)
            for (step, want), value in zip(table, got, strict=True)
            if not math.isclose(value, want, rel_tol=REL, abs_tol=ABS)]


TABLES = [
    T('constant',
      us.ConstantScheduler(0.5),
      [(0, 0.5), (1, 0.5), (1000000, 0.5)]),
    T('constant-default',
      us.ConstantScheduler(),
      [(0, 0.01), (1000000000, 0.01)]),
    # d2l: lr = 0.1 * (t + 1) ** -0.5
    T('square_root-d2l',
      us.SquareRootScheduler(0.1),
      [(0, 0.1), (1, 0.07071067811865475), (3, 0.05),
       (8, 0.03333333333333333), (29, 0.018257418583505537), (99, 0.01),
       (1000000, 9.99999500000375e-05)]),
    T('square_root-d2l-plot',
      us.SquareRootScheduler(base_lr=0.3),
      [(0, 0.3), (3, 0.15), (29, 0.054772255750516606)]),
    # MXNet: the k-th decay applies AFTER step k * 10 (11, 21, ...);
    # 0.5**27 < stop_factor_lr=1e-8 from step 271 on
    T('factor',
      us.FactorScheduler(step=10, factor=0.5, base_lr=1.0),
      [(0, 1.0), (1, 1.0), (9, 1.0), (10, 1.0), (11, 0.5), (20, 0.5),
       (21, 0.25), (30, 0.25), (31, 0.125), (270, 1.4901161193847656e-08),
       (271, 1e-08), (1000, 1e-08)]),
    # the d2l chapter's parameters, MXNet semantics (first decay at 2);
    # 2 * 0.9**51 < 0.01, so the floor holds from step 52
    T('factor-d2l',
      us.FactorScheduler(step=1, factor=0.9, stop_factor_lr=1e-2,
                         base_lr=2.0),
      [(0, 2.0), (1, 2.0), (2, 1.8), (3, 1.62), (51, 0.01030755041464024),
       (52, 0.01), (53, 0.01), (100, 0.01)]),
    # decays keep counting from step 0 during the warmup (MXNet)
    T('factor-warmup',
      us.FactorScheduler(step=2, factor=0.5, base_lr=1.0,
                         warmup_steps=5, warmup_begin_lr=0.2),
      [(0, 0.2), (1, 0.36), (4, 0.84), (5, 0.25), (6, 0.25), (7, 0.125),
       (8, 0.125), (1000, 1e-08)]),
    T('factor-warmup-constant',
      us.FactorScheduler(step=10, factor=0.5, base_lr=1.0,
                         warmup_steps=3, warmup_begin_lr=0.1,
                         warmup_mode='constant'),
      [(0, 0.1), (2, 0.1), (3, 1.0), (10, 1.0), (11, 0.5)]),
    T('factor-zero',
      us.FactorScheduler(step=5, factor=0.0, stop_factor_lr=0.01,
                         base_lr=1.0),
      [(0, 1.0), (5, 1.0), (6, 0.01), (100, 0.01)]),
    # the d2l chapter; MXNet switches AFTER each milestone (16, 31)
    T('multi_factor-d2l',
      us.MultiFactorScheduler(step=[15, 30], factor=0.5, base_lr=0.5),
      [(0, 0.5), (14, 0.5), (15, 0.5), (16, 0.25), (29, 0.25), (30, 0.25),
       (31, 0.125), (1000, 0.125)]),
    T('multi_factor-d2l-warmup',
      us.MultiFactorScheduler(step=[15, 30], factor=0.5, base_lr=0.5,
                              warmup_steps=5),
      [(0, 0.0), (1, 0.1), (4, 0.4), (5, 0.5), (6, 0.5), (15, 0.5),
       (16, 0.25), (30, 0.25), (31, 0.125)]),
    T('multi_factor-milestone-in-warmup',
      us.MultiFactorScheduler(step=[2, 6], factor=0.5, base_lr=1.0,
                              warmup_steps=4),
      [(0, 0.0), (3, 0.75), (4, 0.5), (6, 0.5), (7, 0.25), (100, 0.25)]),
    T('poly',
      us.PolyScheduler(max_update=10, base_lr=1.0, pwr=2),
      [(0, 1.0), (1, 0.81), (5, 0.25), (9, 0.01), (10, 0.0), (11, 0.0),
       (1000, 0.0)]),
    T('poly-warmup',
      us.PolyScheduler(max_update=10, base_lr=1.0, pwr=1, final_lr=0.1,
                       warmup_steps=2, warmup_begin_lr=0.5),
      [(0, 0.5), (1, 0.75), (2, 1.0), (3, 0.8875), (6, 0.55), (9, 0.2125),
       (10, 0.1), (11, 0.1), (50, 0.1)]),
    T('poly-sqrt',
      us.PolyScheduler(max_update=4, base_lr=1.0, pwr=0.5),
      [(0, 1.0), (1, 0.8660254037844386), (3, 0.5), (4, 0.0), (5, 0.0)]),
    # warmup_steps == max_update: MXNet divides by zero at step 3;
    # unisched is at final_lr from max_update on, as everywhere
    T('poly-all-warmup',
      us.PolyScheduler(max_update=3, base_lr=1.0, warmup_steps=3),
      [(0, 0.0), (1, 0.3333333333333333), (2, 0.6666666666666666), (3, 0.0),
       (4, 0.0)]),
    T('cosine-d2l',
      us.CosineScheduler(max_update=20, base_lr=0.3, final_lr=0.01),
      [(0, 0.3), (1, 0.29821480938629497), (10, 0.155),
       (19, 0.01178519061370503), (20, 0.01), (21, 0.01), (29, 0.01),
       (1000, 0.01)]),
    T('cosine-d2l-0.5',
      us.CosineScheduler(max_update=20, base_lr=0.5, final_lr=0.01),
      [(0, 0.5), (5, 0.4282411613907041), (10, 0.255),
       (15, 0.08175883860929585), (20, 0.01), (29, 0.01)]),
    # the d2l chapter's warmup example
    T('cosine-d2l-warmup',
      us.CosineScheduler(20, warmup_steps=5, base_lr=0.5, final_lr=0.01),
      [(0, 0.0), (1, 0.1), (4, 0.4), (5, 0.5), (6, 0.49464616217978236),
       (10, 0.3775), (19, 0.015353837820217618), (20, 0.01), (21, 0.01),
       (29, 0.01)]),
    T('cosine-warmup-constant',
      us.CosineScheduler(10, base_lr=1.0, warmup_steps=2,
                         warmup_begin_lr=0.25, warmup_mode='constant'),
      [(0, 0.25), (1, 0.25), (2, 1.0), (6, 0.5), (10, 0.0), (11, 0.0)]),
    # Keras ExponentialDecay(1.0, decay_steps=2, decay_rate=0.5)
    T('exponential',
      us.ExponentialScheduler(1.0, factor=0.5, step=2),
      [(0, 1.0), (1, 0.7071067811865476), (2, 0.5), (3, 0.3535533905932738),
       (4, 0.25), (100, 8.881784197001252e-16)]),
    T('exponential-staircase',
      us.ExponentialScheduler(1.0, factor=0.5, step=2, staircase=True),
      [(0, 1.0), (1, 1.0), (2, 0.5), (3, 0.5), (4, 0.25), (5, 0.25)]),
    T('exponential-torch-ExponentialLR',
      us.ExponentialScheduler(0.1, factor=0.9),
      [(0, 0.1), (1, 0.09000000000000001), (2, 0.081),
       (10, 0.03486784401000001)]),
    # torch StepLR(step_size=30, gamma=0.1) switches AT the boundary
    T('exponential-torch-StepLR',
      us.ExponentialScheduler(0.1, factor=0.1, step=30, staircase=True),
      [(0, 0.1), (29, 0.1), (30, 0.010000000000000002),
       (31, 0.010000000000000002), (59, 0.010000000000000002),
       (60, 0.0010000000000000002)]),
    T('exponential-growth',
      us.ExponentialScheduler(1e-3, factor=10.0, step=10),
      [(0, 0.001), (5, 0.0031622776601683794), (10, 0.01), (30, 1.0)]),
    # Keras InverseTimeDecay(1.0, decay_steps=2, decay_rate=0.5)
    T('inverse_time',
      us.InverseTimeScheduler(1.0, factor=0.5, step=2),
      [(0, 1.0), (1, 0.8), (2, 0.6666666666666666), (4, 0.5), (6, 0.4),
       (100, 0.038461538461538464)]),
    T('inverse_time-staircase',
      us.InverseTimeScheduler(1.0, factor=0.5, step=2, staircase=True),
      [(0, 1.0), (1, 1.0), (2, 0.6666666666666666), (3, 0.6666666666666666),
       (4, 0.5)]),
    T('inverse_time-zero',
      us.InverseTimeScheduler(0.3, factor=0.0),
      [(0, 0.3), (1000, 0.3)]),
    # Keras PiecewiseConstantDecay: values[i] while step <= boundaries[i]
    T('piecewise_constant',
      us.PiecewiseConstantScheduler([10, 20], [1.0, 0.5, 0.1]),
      [(0, 1.0), (9, 1.0), (10, 1.0), (11, 0.5), (19, 0.5), (20, 0.5),
       (21, 0.1), (1000000, 0.1)]),
    T('piecewise_constant-keras-doc',
      us.PiecewiseConstantScheduler([100000, 110000], [1.0, 0.5, 0.1]),
      [(0, 1.0), (100000, 1.0), (100001, 0.5), (110000, 0.5), (110001, 0.1)]),
    T('piecewise_constant-zero',
      us.PiecewiseConstantScheduler([0], [1.0, 0.5]),
      [(0, 1.0), (1, 0.5), (2, 0.5)]),
    T('cosine_restarts',
      us.CosineRestartsScheduler(first_cycle=10, base_lr=1.0),
      [(0, 1.0), (5, 0.5), (9, 0.024471741852423214), (10, 1.0), (15, 0.5),
       (19, 0.024471741852423214), (20, 1.0), (1000, 1.0), (1005, 0.5)]),
    # cycles [0, 10), [10, 30), [30, 70), [70, 150)
    T('cosine_restarts-mult2-decay',
      us.CosineRestartsScheduler(10, 1.0, final_lr=0.1, cycle_mult=2.0,
                                 cycle_decay=0.5),
      [(0, 1.0), (9, 0.1220245676671809), (10, 0.55), (20, 0.325),
       (29, 0.10277012336609402), (30, 0.325), (50, 0.2125),
       (69, 0.1003467999550231), (70, 0.2125)]),
    # cycles start at 0, 10, 25, 47.5, 81.25
    T('cosine_restarts-mult1.5',
      us.CosineRestartsScheduler(10, 1.0, cycle_mult=1.5, cycle_decay=0.8),
      [(9, 0.024471741852423214), (10, 0.8), (24, 0.008740959706477746),
       (25, 0.6400000000000001), (47, 0.0007795039168562409),
       (48, 0.5117227805026624), (81, 6.931425805780937e-05),
       (82, 0.4093782244021299)]),
    # restarts at 1, 4, 13, 40, 121, 364: exactly on the integer steps
    T('cosine_restarts-mult3',
      us.CosineRestartsScheduler(1, 1.0, cycle_mult=3.0),
      [(0, 1.0), (1, 1.0), (3, 0.25), (4, 1.0), (12, 0.030153689607045807),
       (13, 1.0), (39, 0.0033808211290285058), (40, 1.0),
       (120, 0.00037602374788496534), (121, 1.0),
       (363, 4.178507228133734e-05), (364, 1.0)]),
    # torch CyclicLR(base_lr=0.1, max_lr=1.0, step_size_up=4)
    T('cyclic',
      us.CyclicScheduler(0.1, 1.0, step_size_up=4),
      [(0, 0.1), (1, 0.325), (2, 0.55), (4, 1.0), (6, 0.55), (8, 0.1),
       (12, 1.0), (16, 0.1)]),
    T('cyclic-asymmetric',
      us.CyclicScheduler(0.1, 1.0, step_size_up=4, step_size_down=2),
      [(0, 0.1), (3, 0.775), (4, 1.0), (5, 0.55), (6, 0.1), (10, 1.0),
       (12, 0.1)]),
    T('cyclic-triangular2',
      us.CyclicScheduler(0.1, 1.0, step_size_up=2, mode='triangular2'),
      [(0, 0.1), (2, 1.0), (4, 0.1), (6, 0.55), (8, 0.1), (10, 0.325)]),
    T('cyclic-exp_range',
      us.CyclicScheduler(0.1, 1.0, step_size_up=2, mode='exp_range',
                         gamma=0.9),
      [(0, 0.1), (1, 0.505), (2, 0.8290000000000001),
       (3, 0.42805000000000004), (4, 0.1), (6, 0.5782969000000001)]),
    T('cyclic_momentum',
      us.CyclicScheduler(0.1, 1.0, step_size_up=4).momentum,
      [(0, 0.9), (2, 0.8500000000000001), (4, 0.8), (6, 0.8500000000000001),
       (8, 0.9), (12, 0.8)]),
    T('cyclic_momentum-triangular2',
      us.CyclicMomentum(us.CyclicScheduler(
          0.1, 1.0, 2, mode='triangular2', base_momentum=0.5,
          max_momentum=0.9)),
      [(0, 0.9), (2, 0.5), (4, 0.9), (6, 0.7), (10, 0.8)]),
    T('cyclic_momentum-exp_range',
      us.CyclicScheduler(0.1, 1.0, 2, mode='exp_range', gamma=0.9).momentum,
      [(0, 0.9), (2, 0.8190000000000001), (4, 0.9), (6, 0.8468559)]),
    # torch OneCycleLR(max_lr=1.0, total_steps=10, pct_start=0.5): phase
    # ends at steps 4 and 9; from step 9 on the minimum 0.04 / 1e4
    T('one_cycle',
      us.OneCycleScheduler(max_lr=1.0, max_update=10, pct_start=0.5),
      [(0, 0.04), (2, 0.52), (4, 1.0), (5, 0.904508879153485),
       (7, 0.34549412084651504), (9, 4e-06), (10, 4e-06), (1000, 4e-06)]),
    # phase end 0.3 * 100 - 1 = 29.000000000000004 in float (torch too)
    T('one_cycle-default',
      us.OneCycleScheduler(max_lr=0.1, max_update=100),
      [(0, 0.004), (15, 0.05459866761210004), (29, 0.1),
       (30, 0.09994965352845243), (64, 0.0500002),
       (98, 5.0746471547575894e-05), (99, 4.0000000000000003e-07),
       (100, 4.0000000000000003e-07)]),
    # phase ends 4, 8, 19
    T('one_cycle-three_phase',
      us.OneCycleScheduler(1.0, 20, pct_start=0.25, three_phase=True),
      [(0, 0.04), (2, 0.52), (4, 1.0), (5, 0.8594112549695428), (8, 0.04),
       (9, 0.039189940486342716), (14, 0.017155987864210843), (19, 4e-06),
       (20, 4e-06)]),
    T('one_cycle-linear',
      us.OneCycleScheduler(1.0, 10, pct_start=0.5, anneal='linear',
                           div_factor=10.0, final_div_factor=100.0),
      [(0, 0.1), (2, 0.55), (4, 1.0), (5, 0.8002), (7, 0.4006), (9, 0.001),
       (12, 0.001)]),
    # fastai fit_one_cycle: combined_cos(0.25, 1/25, 1, 1e-5) at
    # pos = step / 20; the second phase starts at pos >= 0.25
    T('one_cycle-fastai',
      us.OneCycleScheduler.fastai(max_lr=1.0, max_update=20),
      [(0, 0.04), (2, 0.37167184270002523), (4, 0.9083281572999747), (5, 1.0),
       (6, 0.9890739096288992), (12, 0.5522687089915104),
       (19, 0.01093609037110085), (20, 1e-05), (25, 1e-05)]),
    T('one_cycle_momentum',
      us.OneCycleScheduler(max_lr=1.0, max_update=10, pct_start=0.5).momentum,
      [(0, 0.95), (2, 0.8999999999999999), (4, 0.85), (5, 0.8595491502812526),
       (7, 0.9154508497187474), (9, 0.95), (10, 0.95)]),
    T('one_cycle_momentum-three_phase',
      us.OneCycleMomentum(us.OneCycleScheduler(1.0, 20, pct_start=0.25,
                                               three_phase=True)),
      [(0, 0.95), (2, 0.8999999999999999), (4, 0.85), (6, 0.8999999999999999),
       (8, 0.95), (9, 0.95), (19, 0.95), (20, 0.95)]),
    T('one_cycle_momentum-fastai',
      us.OneCycleScheduler.fastai(1.0, 20, moms=(0.9, 0.8, 0.9)).momentum,
      [(0, 0.9), (2, 0.8654508497187474), (5, 0.8), (12, 0.8447735768366174),
       (20, 0.9)]),
    # warmup [0, 2), stable [2, 5), decay [5, 9], final from 9 on
    T('warmup_stable_decay',
      us.WarmupStableDecayScheduler(1.0, 2, 3, 4, final_lr=0.2),
      [(0, 0.0), (1, 0.5), (2, 1.0), (4, 1.0), (5, 1.0), (6, 0.8), (7, 0.6),
       (8, 0.4), (9, 0.2), (10, 0.2), (1000, 0.2)]),
    T('warmup_stable_decay-cosine',
      us.WarmupStableDecayScheduler(1.0, 0, 2, 4, decay='cosine'),
      [(0, 1.0), (1, 1.0), (2, 1.0), (3, 0.8535533905932737), (4, 0.5),
       (6, 0.0), (7, 0.0)]),
    T('warmup_stable_decay-1-sqrt',
      us.WarmupStableDecayScheduler(2.0, 4, 0, 4, decay='1-sqrt'),
      [(0, 0.0), (2, 1.0), (3, 1.5), (4, 2.0), (5, 1.0),
       (7, 0.2679491924311227), (8, 0.0), (9, 0.0)]),
    # the ramp ends at schedule(0); schedule(k) at step 4 + k
    T('warmup',
      us.Warmup(us.CosineScheduler(10, base_lr=1.0), warmup_steps=4),
      [(0, 0.0), (1, 0.25), (2, 0.5), (3, 0.75), (4, 1.0),
       (5, 0.9755282581475768), (9, 0.5), (14, 0.0), (15, 0.0), (100, 0.0)]),
    # the spec example
    T('warmup-factor-issue',
      us.warmup(us.FactorScheduler(step=10, factor=0.5, base_lr=1.0),
                warmup_steps=3),
      [(0, 0.0), (1, 0.3333333333333333), (2, 0.6666666666666666), (3, 1.0),
       (13, 1.0), (14, 0.5), (23, 0.5), (24, 0.25)]),
    T('warmup-constant',
      us.Warmup(us.ConstantScheduler(1.0), 4, warmup_begin_lr=0.2,
                warmup_mode='constant'),
      [(0, 0.2), (3, 0.2), (4, 1.0), (5, 1.0)]),
    T('warmup-begin',
      us.Warmup(us.ExponentialScheduler(2.0, 0.5), 2, warmup_begin_lr=1.0),
      [(0, 1.0), (1, 1.5), (2, 2.0), (3, 1.0), (4, 0.5)]),
    # the momentum holds its first value through the warmup
    T('warmup-momentum',
      us.Warmup(us.OneCycleScheduler(1.0, 10, pct_start=0.5), 3).momentum,
      [(0, 0.95), (2, 0.95), (3, 0.95), (5, 0.8999999999999999), (7, 0.85),
       (12, 0.95), (13, 0.95)]),
    # optax join_schedules: piece i sees step - boundaries[i - 1]
    T('join',
      us.Join([us.ConstantScheduler(1.0), us.CosineScheduler(10, base_lr=0.5),
               us.ConstantScheduler(0.1)], boundaries=[3, 13]),
      [(0, 1.0), (2, 1.0), (3, 0.5), (4, 0.4877641290737884), (8, 0.25),
       (12, 0.012235870926211607), (13, 0.1), (14, 0.1), (1000, 0.1)]),
    T('join-warmup-cosine',
      us.join([us.PolyScheduler(4, base_lr=0.0, pwr=1, final_lr=1.0),
               us.CosineScheduler(8, base_lr=1.0)], [4]),
      [(0, 0.0), (1, 0.25), (2, 0.5), (3, 0.75), (4, 1.0), (8, 0.5),
       (11, 0.038060233744356624), (12, 0.0), (13, 0.0)]),
    T('join-momentum',
      us.join([us.CyclicScheduler(0.1, 1.0, 2),
               us.CyclicScheduler(0.1, 1.0, 4, base_momentum=0.5)],
              [4]).momentum,
      [(0, 0.9), (2, 0.8), (3, 0.8500000000000001), (4, 0.9), (6, 0.7),
       (8, 0.5), (12, 0.9)]),
    T('epochwise',
      us.Epochwise(us.ExponentialScheduler(1.0, factor=0.5), 3),
      [(0, 1.0), (2, 1.0), (3, 0.5), (5, 0.5), (6, 0.25),
       (30, 0.0009765625)]),
    # epoch e = step // 10; MXNet semantics switch after epoch 15
    T('epochwise-multi_factor',
      us.epochwise(us.MultiFactorScheduler(step=[15, 30], factor=0.5,
                                           base_lr=0.5), 10),
      [(0, 0.5), (159, 0.5), (160, 0.25), (169, 0.25), (170, 0.25),
       (309, 0.25), (310, 0.125), (319, 0.125), (320, 0.125)]),
    T('epochwise-momentum',
      us.epochwise(us.CyclicScheduler(0.1, 1.0, 2), 3).momentum,
      [(0, 0.9), (2, 0.9), (3, 0.8500000000000001), (5, 0.8500000000000001),
       (6, 0.8), (9, 0.8500000000000001), (12, 0.9)]),
    # shift: start `steps` updates in (MXNet's Trainer counts from one)
    T('shift',
      us.Shift(us.CosineScheduler(4, base_lr=1.0), 2),
      [(0, 0.5), (1, 0.14644660940672627), (2, 0.0), (100, 0.0)]),
    T('shift-multi_factor',
      us.shift(us.MultiFactorScheduler(step=[15], factor=0.5, base_lr=1.0),
               1),
      [(0, 1.0), (14, 1.0), (15, 0.5), (16, 0.5)]),
    T('shift-momentum',
      us.shift(us.CyclicScheduler(0.1, 1.0, 2), 1).momentum,
      [(0, 0.8500000000000001), (1, 0.8), (3, 0.9)]),
    T('scale',
      us.Scale(us.CosineScheduler(10, base_lr=1.0), 0.1),
      [(0, 0.1), (5, 0.05), (9, 0.0024471741852423214), (10, 0.0),
       (11, 0.0)]),
    T('scale-constant',
      us.scale(us.ConstantScheduler(0.5), 0.1),
      [(0, 0.05), (1000, 0.05)]),
    # scaling the rate leaves the momentum alone
    T('scale-momentum',
      us.scale(us.CyclicScheduler(0.1, 1.0, 2), 3.0).momentum,
      [(0, 0.9), (1, 0.8500000000000001), (2, 0.8), (4, 0.9)]),
    # ChainedScheduler([LinearLR(0.5, total_iters=4), StepLR(3, 0.5)]) at
    # lr=1.0: the warmup factor times the staircase
    T('multiply',
      us.multiply(us.warmup(us.ConstantScheduler(1.0), 4, 0.5),
                  us.ExponentialScheduler(1.0, 0.5, 3, staircase=True)),
      [(0, 0.5), (1, 0.625), (2, 0.75), (3, 0.4375), (4, 0.5), (5, 0.5),
       (6, 0.25), (9, 0.125), (30, 1 / 1024)]),
    # a cosine decay switched off by a piecewise-constant factor
    T('multiply-cut',
      us.multiply(us.CosineScheduler(10, 2.0, 0.0),
                  us.PiecewiseConstantScheduler([4], [1.0, 0.0])),
      [(0, 2.0), (4, 1.3090169943749475), (5, 0.0), (10, 0.0),
       (10**9, 0.0)]),
    T('floor',
      us.Floor(us.ExponentialScheduler(1.0, 0.5), 0.2),
      [(0, 1.0), (1, 0.5), (2, 0.25), (3, 0.2), (100, 0.2)]),
    T('floor-momentum',
      us.floor(us.OneCycleScheduler(1.0, 10, pct_start=0.5), 0.5).momentum,
      [(0, 0.95), (2, 0.8999999999999999), (4, 0.85), (9, 0.95)]),
    # torch ReduceLROnPlateau(factor=0.5, patience=1) after three flat
    # epochs: one cut
    T('reduce_on_plateau',
      _observed(us.ReduceOnPlateau(1.0, factor=0.5, patience=1),
                [1.0, 1.0, 1.0]),
      [(0, 0.5), (1, 0.5), (10**6, 0.5)]),
    # a multiplier on a schedule: max(0.5 ** step * 0.5, min_lr)
    T('reduce_on_plateau-schedule',
      _observed(us.ReduceOnPlateau(us.ExponentialScheduler(1.0, 0.5),
                                   factor=0.5, patience=0, min_lr=0.1),
                [1.0, 1.0]),
      [(0, 0.5), (1, 0.25), (2, 0.125), (3, 0.1), (100, 0.1)]),
] + EXTRA  # the shapes added for Hugging Face and fastai


@pytest.mark.parametrize("sched, table", TABLES)
def test_call_matches_table(sched, table):
    got = [sched(step) for step, _ in table]
    assert all(type(v) is float for v in got)
    assert _mismatches(got, table) == []


@pytest.mark.parametrize("sched, table", TABLES)
def test_values_match_table(sched, table):
    steps = np.array([step for step, _ in table])
    got = sched.values(steps)
    assert got.dtype == np.float64 and got.shape == steps.shape
    assert _mismatches(got.tolist(), table) == []


def test_every_registered_name_has_a_table():
    names = {param.values[0].name for param in TABLES}
    assert names == set(us.registered())


# -- the d2l chapter's own classes, run with its own parameters ------------

def test_d2l_factor_class_is_factor_scheduler_two_steps_on():
    """The chapter's ``FactorScheduler`` multiplies on EVERY call, the
    first included: call i returns max(0.01, 2 * 0.9 ** (i + 1)).  MXNet's
    (and unisched's) first decay applies after step 1, so call i of the
    chapter's class is unisched's step i + 2."""
    chapter = {0: 1.8, 1: 1.62, 2: 1.4580000000000002, 3: 1.3122,
               4: 1.1809800000000001, 49: 0.01030755041464024,
               50: 0.01, 51: 0.01, 59: 0.01}
    sched = us.FactorScheduler(step=1, factor=0.9, stop_factor_lr=1e-2,
                               base_lr=2.0)
    got = [sched(i + 2) for i in chapter]
    assert _mismatches(got, list(chapter.items())) == []


# -- ReduceOnPlateau: torch ReduceLROnPlateau, one observation at a time ---

NAN = float("nan")

PLATEAU = [
    pytest.param(
        dict(schedule=1.0, factor=0.5, patience=1),
        [(1.0, False, 1.0), (1.0, False, 1.0), (1.0, True, 0.5),
         (0.5, False, 0.5), (0.6, False, 0.5), (0.6, True, 0.25),
         (0.4, False, 0.25), (0.4, False, 0.25), (0.4, True, 0.125)],
        id="patience"),
    pytest.param(
        dict(schedule=1.0, factor=0.5, patience=0, cooldown=2),
        [(1, False, 1.0), (1, True, 0.5), (1, False, 0.5), (1, False, 0.5),
         (1, True, 0.25), (1, False, 0.25), (1, False, 0.25)],
        id="cooldown"),
    pytest.param(
        dict(schedule=1.0, mode="max", threshold_mode="abs", threshold=0.1,
             patience=0, factor=0.1, min_lr=0.001),
        [(0.5, False, 1.0), (0.55, True, 0.1), (0.7, False, 0.1),
         (0.75, True, 0.010000000000000002),
         (0.79, True, 0.0010000000000000002),
         (0.81, False, 0.0010000000000000002),
         (0.81, False, 0.0010000000000000002)],
        id="max-abs-min_lr"),
    pytest.param(
        # cuts of 5e-8, 2.5e-8, 1.25e-8 pass; 6.25e-9 <= eps is skipped
        dict(schedule=1e-7, factor=0.5, patience=0),
        [(1, False, 1e-07), (1, True, 5e-08), (1, True, 2.5e-08),
         (1, True, 1.25e-08), (1, False, 1.25e-08), (1, False, 1.25e-08)],
        id="eps"),
    pytest.param(
        dict(schedule=1.0, factor=0.5, patience=0),
        [(1.0, False, 1.0), (NAN, True, 0.5), (0.5, False, 0.5),
         (0.5, True, 0.25)],
        id="nan-is-never-better"),
    pytest.param(
        # rel threshold 1e-4: better means < best * 0.9999
        dict(schedule=1.0, factor=0.5, patience=0),
        [(1.0, False, 1.0), (0.99995, True, 0.5), (0.9999, True, 0.25),
         (0.9998, False, 0.25)],
        id="rel-threshold"),
]


@pytest.mark.parametrize("kwargs, rows", PLATEAU)
def test_reduce_on_plateau_follows_torch(kwargs, rows):
    sched = us.ReduceOnPlateau(**kwargs)
    cuts, rates, arrays = [], [], []
    for metric, _, _ in rows:
        cuts.append(sched.observe(metric))
        rates.append(sched(0))
        arrays.append(float(sched.values(np.array([0, 9]))[1]))
    assert cuts == [cut for _, cut, _ in rows]
    table = [(i, lr) for i, (_, _, lr) in enumerate(rows)]
    assert _mismatches(rates, table) == []
    assert _mismatches(arrays, table) == []
    assert sched.state_dict()["num_reductions"] == sum(cuts)


def test_reduce_on_plateau_eps_uses_the_schedule_at_step():
    """The eps rule compares the rates at ``step``: at step 4 the inner
    rate 1/16 is already below min_lr, so a cut changes nothing there and
    is skipped; at step 0 it is made."""
    sched = _observed(us.ReduceOnPlateau(us.ExponentialScheduler(1.0, 0.5),
                                         factor=0.5, patience=0, min_lr=0.1),
                      [1.0, 1.0])
    assert sched.observe(1.0, step=4) is False
    assert sched.scale == 0.5
    assert sched.observe(1.0, step=0) is True
    assert sched.scale == 0.25
    assert [sched(k) for k in (0, 1, 2)] == [0.25, 0.125, 0.1]


def test_reduce_on_plateau_state_round_trip_and_reset():
    sched = _observed(us.ReduceOnPlateau(1.0, factor=0.5, patience=0),
                      [1.0, 2.0, 2.0])
    assert sched(0) == 0.25
    state = sched.state_dict()
    assert state == {"best": 1.0, "num_bad_epochs": 0,
                     "cooldown_counter": 0, "last_epoch": 3, "scale": 0.25,
                     "num_reductions": 2}
    fresh = us.ReduceOnPlateau(1.0, factor=0.5, patience=0)
    assert fresh != sched
    fresh.load_state_dict(state)
    assert fresh == sched and fresh(7) == 0.25
    # the restored copy goes on exactly like the original
    assert fresh.observe(3.0) is True
    assert sched.observe(3.0) is True
    assert fresh(0) == sched(0) == 0.125
    sched.reset()
    assert sched(0) == 1.0 and sched.state_dict()["last_epoch"] == 0
