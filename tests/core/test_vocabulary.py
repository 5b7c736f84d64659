"""What the vocabulary gained for Hugging Face's and fastai's schedules,
beyond the literal tables (``tables_extra.py``) and the catalog's
properties: fractional lengths, the cosine's cycles / restarts /
periodic, ``reverse``."""
from __future__ import annotations

import json

import numpy as np
import pytest

import unisched as us
from unisched.combinators import Reverse, reverse


def test_whole_lengths_stay_integers_and_fractions_stay_fractions():
    assert us.CosineScheduler(20.0) == us.CosineScheduler(20)
    assert us.CosineScheduler(20.0).to_config()["max_update"] == 20
    assert type(us.CosineScheduler(20.0).max_update) is int
    sched = us.join([us.ConstantScheduler(1.0), us.PolyScheduler(7.5, 1.0)],
                    [2.5])
    assert json.loads(sched.to_json())["boundaries"] == [2.5]
    assert us.parse(sched.to_spec()) == sched
    # the horizon counts whole updates: up to 2.5 + 7.5 = 10, plus one
    assert sched.default_horizon() == 3 + 9
    assert us.PolyScheduler(7.5).default_horizon() == 9


def test_a_wave_that_is_not_periodic_ends_at_final_lr():
    # two falls: down and back up to base_lr at max_update; from there on
    # the rate is final_lr, as after one fall
    sched = us.CosineScheduler(8, 1.0, 0.1, cycles=2)
    assert sched(7) == pytest.approx(0.1 + 0.9 * (1 + np.cos(np.pi * 1.75))
                                     / 2)
    assert [sched(k) for k in (8, 9, 10 ** 9)] == [0.1] * 3
    assert sched.default_horizon() == 9
    periodic = us.CosineScheduler(8, 1.0, 0.1, cycles=2, periodic=True)
    # one fall per 4 updates, on and on: back at base_lr at 8, down at 12
    assert [round(periodic(k), 12) for k in (8, 10, 12)] == [1.0, 0.55, 0.1]
    assert periodic.default_horizon() is None


def test_the_one_half_cosine_is_unchanged():
    # cycles=1 without restarts is the d2l/MXNet formula, bit for bit
    sched = us.CosineScheduler(20, 0.5, 0.01, warmup_steps=5)
    same = us.CosineScheduler(20, 0.5, 0.01, warmup_steps=5, cycles=1.0,
                              restarts=False, periodic=False)
    k = np.arange(30)
    assert sched == same
    want = 0.01 + 0.49 * (1 + np.cos(np.pi * np.clip((k - 5) / 15, 0, 1))) \
        / 2
    want[:5] = 0.5 * k[:5] / 5
    np.testing.assert_array_equal(sched.values(k), want)


def test_periodic_phase_is_exact_far_out():
    # at 10**12 + k the rate is the one at k: whole periods counted apart
    sched = us.CosineScheduler(4, 1.0, periodic=True)
    far = 10 ** 12
    np.testing.assert_allclose(sched.values(far + np.arange(9)),
                               sched.values(np.arange(9)), atol=1e-15)
    restarts = us.CosineScheduler(10, 1.0, cycles=5, restarts=True,
                                  periodic=True)
    np.testing.assert_allclose(restarts.values(far + np.arange(9)),
                               restarts.values(np.arange(9)), atol=1e-15)


def test_reverse_plays_the_momentum_backwards_too():
    cycle = us.OneCycleScheduler(1.0, 20, pct_start=0.25)
    back = reverse(cycle, 19)
    assert isinstance(back, Reverse)
    assert back.momentum == Reverse(cycle.momentum, 19)
    k = np.arange(25)
    np.testing.assert_array_equal(
        back.momentum.values(k), cycle.momentum.values(np.maximum(19 - k,
                                                                  0)))
    assert reverse(us.ConstantScheduler(0.1), 3).momentum is None
