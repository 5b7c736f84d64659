"""Schedule plots: the curves drawn are the schedules' values, the default
horizon is the longest natural end, momentum cycles on request, and
figures are written in the format their name asks for."""
from __future__ import annotations

import matplotlib
import numpy as np
import pytest

import unisched as us
from unisched.plot import plot_schedules, save_figure

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after the backend is chosen

COS = us.CosineScheduler(10, base_lr=0.5, final_lr=0.1)
CYC = us.CyclicScheduler(0.1, 1.0, step_size_up=3)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _lines(ax):
    return {line.get_label(): (line.get_xdata(), line.get_ydata())
            for line in ax.get_lines()}


def test_each_curve_is_its_schedule_over_the_longest_horizon():
    ax = plot_schedules({"cos": COS, "cyclic": CYC})
    lines = _lines(ax)
    # horizons: cosine 11, cyclic 2 * (3 + 3) + 1 = 13
    for label, sched in (("cos", COS), ("cyclic", CYC)):
        steps, values = lines[label]
        np.testing.assert_array_equal(steps, np.arange(13))
        np.testing.assert_array_equal(values, sched.values(np.arange(13)))
    assert ax.get_xlabel() == "update"
    assert ax.get_ylabel() == "learning rate"
    assert [t.get_text() for t in ax.get_legend().get_texts()] \
        == ["cos", "cyclic"]


def test_momentum_curves_leave_out_schedules_without_one():
    ax = plot_schedules({"cos": COS, "cyclic": CYC}, max_update=7,
                        momentum=True)
    lines = _lines(ax)
    assert list(lines) == ["cyclic"]
    np.testing.assert_array_equal(lines["cyclic"][1],
                                  CYC.momentum.values(np.arange(7)))
    assert lines["cyclic"][1][3] == 0.8         # the rate's peak
    assert ax.get_ylabel() == "momentum"


def test_schedule_plot_labels_with_the_spec_and_draws_on_given_axes():
    _, given = plt.subplots()
    ax = COS.plot(max_update=4, ax=given, color="red")
    assert ax is given
    (label, (steps, values)), = _lines(ax).items()
    assert label == COS.to_spec()
    np.testing.assert_array_equal(values, COS.values(np.arange(4)))
    assert ax.get_lines()[0].get_color() == "red"


@pytest.mark.parametrize("max_update,match", [
    (None, "max_update is required for schedules without a natural end, "
           "got max_update=None"),
    (0, "max_update must be a positive integer, got 0"),
    (2.5, "max_update must be a positive integer, got 2.5"),
    (True, "max_update must be a positive integer, got True"),
])
def test_bad_horizons(max_update, match):
    endless = {"const": us.ConstantScheduler(0.1)}
    with pytest.raises(ValueError, match=match):
        plot_schedules(endless, max_update=max_update)


@pytest.mark.parametrize("name,magic", [
    ("curve.png", b"\x89PNG"),
    ("curve.svg", b"<?xml"),
    ("curve", b"\x89PNG"),               # no extension: PNG
])
def test_figures_are_written_in_the_format_named(tmp_path, name, magic):
    ax = COS.plot()
    path = tmp_path / name
    save_figure(ax.figure, str(path))
    assert path.read_bytes().startswith(magic)
    assert [p.name for p in tmp_path.iterdir()] == [name]   # no temp left


def test_an_unknown_format_is_refused_before_writing(tmp_path):
    ax = COS.plot()
    path = tmp_path / "curve.xyz"
    with pytest.raises(ValueError, match=r"cannot write a figure to .*"
                                         r"curve.xyz'?: format 'xyz' is not "
                                         r"one of .*png"):
        save_figure(ax.figure, str(path))
    assert list(tmp_path.iterdir()) == []
