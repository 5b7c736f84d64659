"""Keras computes rates in the graph; its step part must be exact for
every integer step below 2**53 (issue: reliability).  A float32 step made
PiecewiseConstantDecay's boundaries at 1e8 apply two updates late, and
cosine-restart cycles 4e5 relative wrong near 1e8.  Now the formula runs
in float64 and only the rate is rounded to float32: the rate applied in
the graph equals sched(k) to float32 rounding at any step."""
import importlib.util

import numpy as np
import pytest

if importlib.util.find_spec("keras") is None:
    pytest.skip("keras is not installed", allow_module_level=True)

import tensorflow as tf  # noqa: E402

import unisched as us  # noqa: E402
from catalog import draw, samples  # noqa: E402
from unisched.backends import keras as usk  # noqa: E402

STEPS = [10 ** 7 + 3, 2 ** 24 + 1, 10 ** 8 + 1, 10 ** 10 + 7,
         10 ** 12 + 1]


def _graph(lr, compile):
    @tf.function(jit_compile=compile)
    def at(step):
        return lr(step)
    return at


def _applied(sched, steps, compile):
    lr = usk.LearningRateSchedule(sched)
    at = _graph(lr, compile)
    return np.array([float(at(tf.constant(k, tf.int64))) for k in steps])


@pytest.mark.parametrize("compile", [False, True], ids=["function", "xla"])
def test_piecewise_boundaries_near_1e8_are_exact(compile):
    native = tf.keras.optimizers.schedules.PiecewiseConstantDecay(
        [100000000, 100000001], [0.1, 0.05, 0.01])
    sched = usk.from_native(native)
    got = _applied(sched, [100000000, 100000001, 100000002], compile)
    assert got.tolist() == np.float32([0.1, 0.05, 0.01]).tolist()


@pytest.mark.parametrize("compile", [False, True], ids=["function", "xla"])
@pytest.mark.parametrize("name,seed", samples(1))
def test_every_schedule_is_exact_far_out(name, seed, compile):
    sched = draw(name, seed)
    steps = [k + d for k in STEPS for d in (0, 1)]
    want = np.float32(sched.values(steps))
    got = _applied(sched, steps, compile)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)


def test_restart_cycles_and_cyclic_phases_near_1e8():
    cases = {
        "restarts": us.CosineRestartsScheduler(1000, 1.0, cycle_mult=2.0),
        "cyclic": us.CyclicScheduler(0.1, 1.0, step_size_up=7,
                                     step_size_down=3),
    }
    steps = [10 ** 8 + d for d in range(12)] + [10 ** 7 + d for d in
                                               range(12)]
    for sched in cases.values():
        got = _applied(sched, steps, False)
        np.testing.assert_allclose(got, np.float32(sched.values(steps)),
                                   rtol=1e-6, atol=0)
