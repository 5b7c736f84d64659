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
