"""The tools' inputs and round trips at their edges: losses as framework
scalars, malformed curves and records, the finder's files and its text
forms."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from unisched.tools import (
    LossSmoother,
    LRFinderResult,
    LRFinderState,
    Recorder,
    Suggestion,
    minimum,
    suggest,
    valley,
)


class _Scalar:
    """A framework scalar that is not a ``numbers.Real`` (a 0-d tensor):
    a number through ``__float__`` only."""

    def __init__(self, value):
        self.value = value

    def __float__(self):
        return float(self.value)


@pytest.mark.parametrize("loss,want", [
    (np.array([2.5]), 2.5),             # a one-element array
    (np.array(0.5, dtype=np.float32), 0.5),
    (_Scalar(4.0), 4.0),
])
def test_losses_as_framework_scalars(loss, want):
    smoother = LossSmoother(beta=0.0)
    assert smoother.update(loss) == want
    assert repr(smoother) == f"LossSmoother(beta=0.0, count=1, value={want})"


def test_a_loss_without_a_number_names_its_type():
    with pytest.raises(TypeError, match=r"loss must be a real number, got "
                                        r"\[1.0\] \(list\)"):
        LossSmoother().update([1.0])
    with pytest.raises(TypeError, match="loss must be a real number"):
        LossSmoother().update(_Scalar("x"))


def test_malformed_curves_are_refused_by_every_rule():
    with pytest.raises(ValueError, match=r"minimum: lrs and losses must be "
                                         r"1-D, got shapes \(1, 2\) and "
                                         r"\(2,\)"):
        minimum([[1e-3, 1e-2]], [1.0, 2.0])
    with pytest.raises(ValueError, match="valley: lrs and losses must have "
                                         "the same length, got 3 and 2"):
        valley([1e-3, 1e-2, 1e-1], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"lrs and losses must be 1-D of "
                                         r"equal length, got shapes \(3,\) "
                                         r"and \(2,\)"):
        suggest([1e-3, 1e-2, 1e-1], [1.0, 2.0])


def test_suggest_takes_one_rule_by_name_or_as_a_function():
    lrs, losses = [1e-3, 1e-2, 1e-1], [2.0, 1.0, 3.0]
    want = Suggestion(1e-3, 1e-2, 1.0)      # a tenth of the best rate
    assert suggest(lrs, losses, "minimum") == {"minimum": want}
    assert suggest(lrs, losses, minimum) == {"minimum": want}


def _finished_state():
    state = LRFinderState(1e-4, 1.0, num_it=6)
    for loss in (3.0, 2.5, 2.0, 1.8, 1.9, 2.2):
        state.update(loss)
    return state


def test_the_finder_state_and_result_round_trip_through_json(tmp_path):
    state = _finished_state()
    assert repr(state) == ("LRFinderState(step=6, num_it=6, "
                           "stop_reason='num_it')")
    result = state.result(methods=("minimum",), skip_start=0, skip_end=0)
    path = tmp_path / "finder.json"
    text = result.to_json(path)
    assert path.read_text() == text + "\n"
    back = LRFinderResult.from_dict(json.loads(text))
    np.testing.assert_array_equal(back.lrs, result.lrs)
    np.testing.assert_array_equal(back.smoothed, result.smoothed)
    assert back.suggestions == result.suggestions
    assert back.num_it == 6 and back.stop_reason == "num_it"


def test_a_suggestion_at_infinity_survives_json():
    result = LRFinderResult([1e-3, 1e-2], [1.0, 2.0], [1.0, 2.0],
                            {"x": Suggestion(1e-3, 1e-3, math.inf)})
    data = json.loads(result.to_json())
    assert data["suggestions"]["x"]["mark_loss"] == "Infinity"
    back = LRFinderResult.from_dict(data)
    assert back.suggestions["x"] == Suggestion(1e-3, 1e-3, math.inf)


@pytest.mark.parametrize("data,error,match", [
    ([1, 2], TypeError, r"data must be a dict, got \[1, 2\]"),
    ({"lrs": [1e-3]}, ValueError, r"data lacks \['losses', 'smoothed'\]"),
    ({"lrs": [1e-3, 1e-2], "losses": [1.0], "smoothed": [1.0]},
     ValueError, r"lrs, losses and smoothed must be 1-D of equal length, "
                 r"got shapes \(2,\), \(1,\), \(1,\)"),
    ({"lrs": [1e-3], "losses": [1.0], "smoothed": [1.0],
      "suggestions": {"x": {"lr": None, "mark_lr": 1.0, "mark_loss": 1.0}}},
     TypeError, "float"),
])
def test_bad_finder_results_are_refused(data, error, match):
    with pytest.raises(error, match=match):
        LRFinderResult.from_dict(data)


def test_recorder_refuses_malformed_records(tmp_path):
    with pytest.raises(TypeError, match=r"data must be a dict, got \[\]"):
        Recorder.from_dict([])
    with pytest.raises(ValueError, match=r"unknown epoch field\(s\) "
                                         r"\['acc'\]; valid: epoch, "):
        Recorder.from_dict({"epochs": [{"epoch": 1, "acc": 0.5}]})
    updates = tmp_path / "updates.csv"
    updates.write_text("step,rate,momentum,loss\n0,0.1,,1.0\n")
    with pytest.raises(ValueError, match=r"updates.csv: no lr column"):
        Recorder.from_csv(updates)
    with pytest.raises(ValueError, match="no epoch recorded yet"):
        Recorder().plot_metrics()


def test_recorder_repr_counts_updates_and_epochs():
    rec = Recorder()
    rec.record_update(0, lr=0.1, loss=2.0)
    rec.record_update(1, lr=0.2, loss=1.5)
    rec.record_epoch(1, train_loss=1.75)
    assert repr(rec) == "Recorder(updates=2, epochs=1)"
    assert len(rec) == 2
