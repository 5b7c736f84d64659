"""Literal reference tables for what was added to express Hugging Face's
and fastai's schedules: the cosine's ``cycles`` / ``restarts`` /
``periodic``, the cosine and 1-sqrt warmups, fractional lengths,
``reverse``, the warmup-stable-decay's ``cycles`` and the ``hf_*`` named
schedules.  ``test_reference_tables.py`` checks them with its own tables.

How the numbers were made, independently of unisched:

* the unisched shapes: the definitions re-typed in plain Python and
  evaluated in 60-digit mpmath (float parameters converted exactly):
  ``lr = final + (base - final) * (1 + cos(pi x)) / 2`` with ``x =
  cycles * (t - W) / (M - W)`` (taken modulo 1 with restarts, ``final``
  from ``p >= 1`` on unless periodic); warmup shapes ``(1 - cos(pi q)) /
  2`` and ``1 - sqrt(1 - q)``; ``reverse`` as ``f(max(n - t, 0))``;
  fastai's phases at fractional boundaries;
* the ``hf_*`` schedules: printed by ``transformers`` 5.24.0 itself, as
  its ``LambdaLR`` computes them, ``base_lr * lr_lambda(k)``, for the
  same arguments (``get_*_schedule*`` on ``SGD(lr=base_lr)``).
"""
from __future__ import annotations

import pytest

import unisched as us
from unisched import presets as P
from unisched.combinators import Reverse


def T(ident, sched, table):
    return pytest.param(sched, table, id=ident)


TABLES = [
    # PyTorch's CosineAnnealingLR(T_max=4) past its end: (1 + cos(pi k/4))/2
    T('cosine-periodic',
      us.CosineScheduler(4, 1.0, periodic=True),
      [(0, 1.0), (1, 0.8535533905932737), (2, 0.5),
       (3, 0.14644660940672624), (4, 0.0), (5, 0.14644660940672624),
       (6, 0.5), (7, 0.8535533905932737), (8, 1.0),
       (9, 0.8535533905932737), (10, 0.5)]),
    # 3 falls of 8/3 updates each after a 2-update warmup, then final
    T('cosine-restarts',
      us.CosineScheduler(10, 1.0, 0.1, warmup_steps=2, cycles=3,
                         restarts=True),
      [(0, 0.0), (1, 0.5), (2, 1.0), (3, 0.7222075445642904),
       (4, 0.23180194846605362), (5, 0.9657457896300791), (6, 0.55),
       (7, 0.13425421036992097), (9, 0.3777924554357096), (10, 0.1),
       (11, 0.1), (100, 0.1)]),
    # down and back up over 12.5 updates, final_lr from update 13 on
    T('cosine-cycles-fractional-max_update',
      us.CosineScheduler(12.5, 2.0, 0.5, cycles=2),
      [(0, 2.0), (3, 1.297092889646985), (6, 0.5059139740141416),
       (7, 0.5526676355838115), (12, 1.9764373708464733), (13, 0.5),
       (1000, 0.5)]),
    T('cosine-cycles-periodic',
      us.CosineScheduler(8, 1.0, cycles=0.6, periodic=True),
      [(0, 1.0), (4, 0.7938926261462366), (8, 0.34549150281252633),
       (13, 0.0015413331334360163), (14, 0.006155829702431127),
       (27, 0.998458666866564)]),
    T('warmup-cosine',
      us.warmup(us.ConstantScheduler(1.0), 4, 0.2, "cosine"),
      [(0, 0.2), (1, 0.317157287525381), (2, 0.6), (3, 0.882842712474619),
       (4, 1.0), (9, 1.0)]),
    T('warmup-1-sqrt',
      us.warmup(us.ConstantScheduler(1.0), 4, 0.2, "1-sqrt"),
      [(0, 0.2), (1, 0.3071796769724491), (2, 0.434314575050762),
       (3, 0.6), (4, 1.0), (9, 1.0)]),
    T('factor-cosine-warmup',
      us.FactorScheduler(10, 0.5, base_lr=1.0, warmup_steps=3,
                         warmup_mode="cosine"),
      [(0, 0.0), (1, 0.25), (2, 0.75), (3, 1.0), (10, 1.0), (11, 0.5),
       (21, 0.25)]),
    T('warmup_stable_decay-cycles',
      us.WarmupStableDecayScheduler(1.0, 2, 1, 4, 0.1, "cosine", cycles=3),
      [(0, 0.0), (1, 0.5), (2, 1.0), (3, 1.0), (4, 0.23180194846605362),
       (5, 0.55), (6, 0.8681980515339464), (7, 0.1), (8, 0.1),
       (50, 0.1)]),
    # fastai's combine_scheds([0.25, 0.75], [SchedCos(1, 0.5),
    # SchedLin(0.5, 0.1)]) over 10 updates: a boundary at 2.5
    T('join-fractional',
      us.join([us.CosineScheduler(2.5, 1.0, 0.5),
               us.PolyScheduler(7.5, 0.5, 1.0, 0.1)], [2.5]),
      [(0, 1.0), (1, 0.8272542485937369), (2, 0.5477457514062631),
       (3, 0.47333333333333333), (4, 0.42), (5, 0.3666666666666667),
       (9, 0.15333333333333335), (10, 0.1), (100, 0.1)]),
    T('exponential-fractional-step',
      us.ExponentialScheduler(1.0, 0.5, step=2.5),
      [(0, 1.0), (1, 0.757858283255199), (2, 0.5743491774985175),
       (5, 0.25), (7, 0.1435872943746294)]),
    T('exponential-fractional-step-staircase',
      us.ExponentialScheduler(1.0, 0.5, step=2.5, staircase=True),
      [(0, 1.0), (2, 1.0), (3, 0.5), (4, 0.5), (5, 0.25), (7, 0.25),
       (8, 0.125)]),
    # fastai's SchedPoly(0.2, 1.0, 2) over 4 updates
    T('reverse',
      Reverse(us.PolyScheduler(4, 1.0, 2, 0.2), 4),
      [(0, 0.2), (1, 0.25), (2, 0.4), (3, 0.65), (4, 1.0), (5, 1.0),
       (100, 1.0)]),
    T('reverse-fractional',
      Reverse(us.PolyScheduler(4.5, 1.0, 3), 4.5),
      [(0, 0.0), (1, 0.010973936899862825), (2, 0.0877914951989026),
       (4, 0.7023319615912208), (5, 1.0), (9, 1.0)]),
    # -- printed by transformers 5.24.0 --------------------------------------
    T('hf_constant_with_warmup',
      P.HFConstantWithWarmup(0.5, 4),
      [(0, 0.0), (1, 0.125), (3, 0.375), (4, 0.5), (100, 0.5)]),
    T('hf_linear',
      P.HFLinear(0.1, 3, 10),
      [(0, 0.0), (1, 0.03333333333333333), (2, 0.06666666666666667),
       (3, 0.1), (4, 0.08571428571428572), (9, 0.014285714285714285),
       (10, 0.0), (11, 0.0), (1000, 0.0)]),
    T('hf_linear-shorter-than-warmup',
      P.HFLinear(1.0, 5, 2),
      [(0, 0.0), (4, 0.8), (5, 0.0), (6, 0.0)]),
    T('hf_cosine',
      P.HFCosine(1.0, 2, 10),
      [(0, 0.0), (1, 0.5), (2, 1.0), (3, 0.9619397662556434), (6, 0.5),
       (9, 0.03806023374435663), (10, 0.0), (11, 0.038060233744356575),
       (14, 0.4999999999999999), (18, 1.0), (26, 0.0)]),
    T('hf_cosine-cycles',
      P.HFCosine(2.0, 0, 8, num_cycles=1.25),
      [(0, 2.0), (2, 0.6173165676349103), (4, 0.2928932188134523),
       (6, 1.9238795325112865), (7, 1.8314696123025453),
       (8, 1.0000000000000002), (9, 0.16853038769745488),
       (12, 1.7071067811865466)]),
    T('hf_cosine_with_min_lr',
      P.HFCosineWithMinLR(1.0, 1, 5, min_lr_rate=0.1),
      [(0, 0.0), (1, 1.0), (2, 0.8681980515339464), (3, 0.55), (5, 0.1),
       (7, 0.5499999999999999), (9, 1.0)]),
    T('hf_cosine_with_min_lr-min_lr',
      P.HFCosineWithMinLR(0.2, 0, 4, min_lr=0.02),
      [(0, 0.2), (2, 0.11000000000000001), (4, 0.02),
       (6, 0.10999999999999999)]),
    T('hf_cosine_warmup_with_min_lr',
      P.HFCosineWarmupWithMinLR(1.0, 3, 9, min_lr_rate=0.1),
      [(0, 0.3333333333333333), (1, 0.6666666666666666), (2, 1.0),
       (3, 0.9397114317029974), (5, 0.55), (7, 0.16028856829700258),
       (8, 0.1), (9, 0.16028856829700264), (14, 1.0)]),
    T('hf_cosine_warmup_with_min_lr-warmup_lr_rate',
      P.HFCosineWarmupWithMinLR(0.5, 3, 9, min_lr=0.05,
                                warmup_lr_rate=0.2),
      [(0, 0.1), (1, 0.30000000000000004), (2, 0.5),
       (3, 0.4698557158514987), (8, 0.05)]),
    T('hf_cosine_with_restarts',
      P.HFCosineWithRestarts(1.0, 1, 11, num_cycles=3),
      [(0, 0.0), (1, 1.0), (2, 0.7938926261462365),
       (4, 0.02447174185242329), (5, 0.9045084971874735),
       (7, 0.09549150281252644), (8, 0.9755282581475769),
       (10, 0.20610737385376326), (11, 0.0), (50, 0.0)]),
    T('hf_polynomial',
      P.HFPolynomial(1.0, 2, 6, lr_end=0.1, power=2.0),
      [(0, 0.0), (1, 0.5), (2, 1.0), (3, 0.60625), (4, 0.325),
       (5, 0.15625), (6, 0.1), (7, 0.1), (100, 0.1)]),
    T('hf_polynomial-power-0',
      P.HFPolynomial(1.0, 0, 3, lr_end=0.25, power=0.0),
      [(0, 1.0), (3, 1.0), (4, 0.25)]),
    T('hf_inverse_sqrt',
      P.HFInverseSqrt(1.0, 4),
      [(0, 0.0), (2, 0.5), (4, 1.0), (5, 0.8944271909999159),
       (12, 0.5773502691896258), (16, 0.5), (100, 0.2)]),
    T('hf_inverse_sqrt-no-warmup',
      P.HFInverseSqrt(1.0, 0),
      [(0, 1.0), (10000, 0.7071067811865475), (30000, 0.5)]),
    T('hf_warmup_stable_decay',
      P.HFWarmupStableDecay(1.0, 2, 4, num_stable_steps=2,
                            warmup_type="cosine", decay_type="1-sqrt",
                            min_lr_ratio=0.1),
      [(0, 0.1), (1, 0.5499999999999999), (2, 1.0), (3, 1.0), (4, 1.0),
       (5, 0.55), (6, 0.36360389693210715), (7, 0.22057713659400527),
       (8, 0.1), (20, 0.1)]),
    T('hf_warmup_stable_decay-cycles',
      P.HFWarmupStableDecay(1.0, 0, 4, num_training_steps=6,
                            num_cycles=1.0),
      [(0, 1.0), (1, 1.0), (2, 1.0), (3, 0.5), (4, 0.0),
       (5, 0.4999999999999999), (6, 0.0), (7, 0.0)]),
    # num_training_steps 6 < warmup 4 + decay 4: the decay starts 2 in
    T('hf_warmup_stable_decay-negative-stable',
      P.HFWarmupStableDecay(1.0, 4, 4, num_training_steps=6,
                            warmup_type="1-sqrt", decay_type="linear"),
      [(0, 0.0), (2, 0.2928932188134524), (3, 0.5), (4, 0.5), (5, 0.25),
       (6, 0.0), (7, 0.0)]),
]
