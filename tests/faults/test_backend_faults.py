"""Backend adapters called with steps that are not step counts: a clear
error naming the argument, never a list-index or operand error from deep
inside (issue: reliability)."""
import importlib.util

import pytest

BAD_STEPS = [(1.5, ValueError), (-1, ValueError), ("3", TypeError),
             (float("nan"), ValueError), (True, TypeError)]


@pytest.mark.parametrize("value,error", BAD_STEPS)
def test_mxnet_adapter_names_num_update(value, error):
    if importlib.util.find_spec("mxnet") is None:
        pytest.skip("mxnet is not installed")
    from unisched.backends import mxnet as usm
    sched = usm.LRScheduler("cosine(max_update=10, base_lr=1.0)")
    with pytest.raises(error, match="num_update"):
        sched(value)
    assert sched(2) == sched(2.0) == pytest.approx(0.9755282581475768)


@pytest.mark.parametrize("value,error", BAD_STEPS)
def test_keras_schedule_called_eagerly_names_the_step(value, error):
    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed")
    import tensorflow as tf

    from unisched.backends import keras as usk
    lr = usk.LearningRateSchedule("cosine(max_update=10, base_lr=1.0)")
    with pytest.raises(error, match="step"):
        lr(value)
    with pytest.raises(ValueError, match="step must be >= 0"):
        lr(tf.constant(-2))
    assert float(lr(2)) == float(lr(tf.constant(2, tf.int64))) == \
        pytest.approx(0.9045084714889526, rel=1e-6)


def _exact_schedules():
    from catalog import draw, samples
    return [draw(name, seed) for name, seed in samples(1)
            if not draw(name, seed).stateful]


def test_torch_groups_hold_exactly_sched_k():
    """A float64 framework applies sched(k) bit for bit: the adapter's
    vectorized blocks equal the scalar calls (no one-ulp drift)."""
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    import torch

    from unisched.backends import torch as ust
    for sched in _exact_schedules():
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        adapter = ust.bind(sched, opt, momentum=False)
        got = []
        for _ in range(300):
            got.append(opt.param_groups[0]["lr"])
            opt.step()
            adapter.step()
        assert got == [sched(k) for k in range(300)], sched.to_spec()


def test_mxnet_scheduler_answers_exactly_sched_k():
    if importlib.util.find_spec("mxnet") is None:
        pytest.skip("mxnet is not installed")
    from unisched.backends import mxnet as usm
    for sched in _exact_schedules():
        adapter = usm.LRScheduler(sched)
        got = [adapter(n) for n in range(1, 301)]
        assert got == [sched(k) for k in range(300)], sched.to_spec()
