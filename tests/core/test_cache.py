"""unisched._cache.StepCache: the adapters' per-update lookup."""
from __future__ import annotations

import pickle

import pytest

import unisched as us
from unisched._cache import BLOCK, StepCache


def test_lookups_equal_the_schedules_across_blocks():
    cos = us.CosineScheduler(3 * BLOCK, base_lr=1.0)
    mom = us.OneCycleScheduler(1.0, 3 * BLOCK).momentum
    cache = StepCache([cos, mom])
    for k in (0, 1, BLOCK - 1, BLOCK, 2 * BLOCK + 5, 7, 3 * BLOCK + 9):
        lr, m = cache.at(k)
        assert lr == pytest.approx(cos(k), rel=1e-14)
        assert m == pytest.approx(mom(k), rel=1e-14)


def test_aligned_blocks_give_identical_values_in_any_order():
    sched = us.ExponentialScheduler(1.0, factor=0.97)
    forward = [StepCache([sched]).at(k)[0] for k in range(600)]
    resumed = StepCache([sched])
    assert [resumed.at(k)[0] for k in range(300, 600)] == forward[300:]


def test_stateful_schedule_is_read_live():
    plateau = us.ReduceOnPlateau(0.5, patience=0, factor=0.5)
    cache = StepCache([plateau])
    assert cache.at(3) == (0.5,)
    plateau.observe(1.0)
    plateau.observe(1.0)            # no improvement: one cut
    assert cache.at(3) == (0.25,)


def test_pickle_keeps_schedules_not_blocks():
    cache = StepCache([us.ConstantScheduler(0.1)])
    cache.at(5)
    data = pickle.dumps(cache)
    assert len(data) < 400
    assert pickle.loads(data).at(1000) == (0.1,)
