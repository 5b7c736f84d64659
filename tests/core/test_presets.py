"""The named schedules of ``unisched.presets``: Hugging Face's schedule
functions by name (``hf_cosine``, ...) and the d2l chapter's specs.

Their rates are checked against ``transformers`` itself in
``tests/backends/test_torch_hf.py`` and against literal tables in
``tables_extra.py``; the catalog entries make ``test_properties.py``
check the rest (round trips, purity, immutability...).  Here: that
``import unisched`` alone knows the names, what a named schedule is (its
arguments and its expansion), and one test per bad argument, named as
Hugging Face names it.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import unisched as us
from unisched import presets as P

from test_bad_input import _check, case


def test_import_unisched_alone_knows_the_names():
    # parse and from_config in a fresh process, as a Keras model loaded
    # elsewhere rebuilds its schedule from the config
    code = ("import unisched, json; s = unisched.parse('hf_linear(base_lr="
            "0.1, num_warmup_steps=2, num_training_steps=10)'); "
            "print(s(1), unisched.from_config(s.to_json()) == s)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert out.split() == ["0.05", "True"]


# class -> its arguments in a spec (base_lr=0.1 besides)
ARGUMENTS = {
    P.HFConstantWithWarmup: "num_warmup_steps=3",
    P.HFLinear: "num_warmup_steps=3, num_training_steps=20",
    P.HFCosine: "num_warmup_steps=3, num_training_steps=20",
    P.HFCosineWithMinLR: "num_warmup_steps=3, num_training_steps=20, "
                         "min_lr=0.0",
    P.HFCosineWarmupWithMinLR: "num_warmup_steps=3, num_training_steps=20,"
                               " min_lr=0.0",
    P.HFCosineWithRestarts: "num_warmup_steps=3, num_training_steps=20",
    P.HFPolynomial: "num_warmup_steps=3, num_training_steps=20",
    P.HFInverseSqrt: "num_warmup_steps=3",
    P.HFWarmupStableDecay: "num_warmup_steps=3, num_decay_steps=5, "
                           "num_stable_steps=4",
}


@pytest.mark.parametrize("cls", ARGUMENTS, ids=lambda c: c.name)
def test_names_and_class_names_parse(cls):
    assert us.registered()[cls.name] is cls
    by_name = us.parse(f"{cls.name}(base_lr=0.1, {ARGUMENTS[cls]})")
    by_class = us.parse(f"{cls.__name__}(base_lr=0.1, {ARGUMENTS[cls]})")
    assert type(by_name) is cls and by_class == by_name
    assert by_name.to_spec() == f"{cls.name}(base_lr=0.1, {ARGUMENTS[cls]})"


def test_a_named_schedule_is_its_expansion():
    sched = P.HFCosineWarmupWithMinLR(0.5, 3, 9, min_lr=0.05,
                                      warmup_lr_rate=0.2)
    steps = np.arange(40)
    np.testing.assert_array_equal(sched.values(steps),
                                  sched.expanded.values(steps))
    assert sched.expanded.to_spec() == (
        "join(schedules=[warmup(schedule=constant(base_lr=0.5), "
        "warmup_steps=2, warmup_begin_lr=0.1), shift(schedule=cosine("
        "max_update=6, base_lr=0.5, final_lr=0.05, periodic=True), "
        "steps=1)], boundaries=[3])")
    assert sched.to_config() == {
        "name": "hf_cosine_warmup_with_min_lr", "base_lr": 0.5,
        "num_warmup_steps": 3, "num_training_steps": 9, "num_cycles": 0.5,
        "min_lr": 0.05, "min_lr_rate": None, "warmup_lr_rate": 0.2}
    assert sched.momentum is None
    assert sched.default_horizon() is None  # periodic: no end


def test_expansions_in_the_one_vocabulary():
    assert P.HFLinear(0.1, 3, 10).expanded == us.PolyScheduler(
        10, 0.1, 1.0, warmup_steps=3)
    assert P.HFCosineWithRestarts(0.1, 3, 10, 2).expanded == \
        us.CosineScheduler(10, 0.1, warmup_steps=3, cycles=2,
                           restarts=True)
    assert P.HFInverseSqrt(0.1, 4).expanded == us.warmup(
        us.shift(us.SquareRootScheduler(0.2), 3), 4)
    assert P.HFWarmupStableDecay(
        0.1, 2, 4, num_stable_steps=3, warmup_type="cosine",
        min_lr_ratio=0.5).expanded == us.warmup(
            us.WarmupStableDecayScheduler(0.1, 0, 3, 4, 0.05, "cosine"),
            2, 0.05, "cosine")


# -- Hugging Face's named schedules: its argument names ----------------------

HF = [
    case("hf_linear-num_warmup_steps-negative",
         lambda: P.HFLinear(0.1, -1, 10),
         ValueError, "num_warmup_steps", "-1"),
    case("hf_linear-num_training_steps-fraction",
         lambda: P.HFLinear(0.1, 1, 10.5),
         ValueError, "num_training_steps", "10.5"),
    case("hf_linear-base_lr-negative", lambda: P.HFLinear(-0.1, 1, 10),
         ValueError, "base_lr", "-0.1"),
    case("hf_cosine-num_cycles-negative",
         lambda: P.HFCosine(0.1, 1, 10, num_cycles=-0.5),
         ValueError, "num_cycles", "-0.5"),
    case("hf_cosine-num_cycles-none",
         lambda: P.HFCosine(0.1, 1, 10, num_cycles=None),
         TypeError, "num_cycles", "None"),
    case("hf_cosine_with_restarts-num_cycles-string",
         lambda: P.HFCosineWithRestarts(0.1, 1, 10, num_cycles="2"),
         TypeError, "num_cycles", "'2'"),
    case("hf_cosine_with_min_lr-neither",
         lambda: P.HFCosineWithMinLR(0.1, 1, 10),
         ValueError, "min_lr", "min_lr_rate", "None"),
    case("hf_cosine_with_min_lr-both",
         lambda: P.HFCosineWithMinLR(0.1, 1, 10, min_lr=0.01,
                                     min_lr_rate=0.1),
         ValueError, "min_lr", "0.01", "min_lr_rate", "0.1"),
    case("hf_cosine_with_min_lr-min_lr_rate-negative",
         lambda: P.HFCosineWithMinLR(0.1, 1, 10, min_lr_rate=-0.1),
         ValueError, "min_lr_rate", "-0.1"),
    case("hf_cosine_warmup_with_min_lr-warmup_lr_rate-negative",
         lambda: P.HFCosineWarmupWithMinLR(0.1, 2, 10, min_lr=0.0,
                                           warmup_lr_rate=-1.0),
         ValueError, "warmup_lr_rate", "-1.0"),
    case("hf_polynomial-lr_end-not-below-base_lr",
         lambda: P.HFPolynomial(0.1, 1, 10, lr_end=0.1),
         ValueError, "lr_end", "0.1", "0.1"),
    case("hf_polynomial-training-equals-warmup",
         lambda: P.HFPolynomial(0.1, 5, 5),
         ValueError, "num_training_steps", "num_warmup_steps", "5"),
    case("hf_polynomial-power-negative",
         lambda: P.HFPolynomial(0.1, 1, 10, power=-1.0),
         ValueError, "power", "-1.0"),
    case("hf_inverse_sqrt-timescale-zero",
         lambda: P.HFInverseSqrt(0.1, 4, timescale=0),
         ValueError, "timescale", "0"),
    case("hf_inverse_sqrt-timescale-fraction",
         lambda: P.HFInverseSqrt(0.1, 4, timescale=2.5),
         ValueError, "timescale", "2.5"),
    case("hf_warmup_stable_decay-neither-length",
         lambda: P.HFWarmupStableDecay(0.1, 2, 4),
         ValueError, "num_training_steps", "num_stable_steps", "None"),
    case("hf_warmup_stable_decay-both-lengths",
         lambda: P.HFWarmupStableDecay(0.1, 2, 4, num_training_steps=10,
                                       num_stable_steps=3),
         ValueError, "num_training_steps", "10", "num_stable_steps", "3"),
    case("hf_warmup_stable_decay-warmup_type",
         lambda: P.HFWarmupStableDecay(0.1, 2, 4, num_stable_steps=3,
                                       warmup_type="exp"),
         ValueError, "warmup_type", "'exp'"),
    case("hf_warmup_stable_decay-decay_type",
         lambda: P.HFWarmupStableDecay(0.1, 2, 4, num_stable_steps=3,
                                       decay_type="Cosine"),
         ValueError, "decay_type", "'Cosine'"),
    case("hf_warmup_stable_decay-min_lr_ratio-negative",
         lambda: P.HFWarmupStableDecay(0.1, 2, 4, num_stable_steps=3,
                                       min_lr_ratio=-0.5),
         ValueError, "min_lr_ratio", "-0.5"),
    case("hf_warmup_stable_decay-num_decay_steps-negative",
         lambda: P.HFWarmupStableDecay(0.1, 2, -4, num_stable_steps=3),
         ValueError, "num_decay_steps", "-4"),
]


@pytest.mark.parametrize("make, exc, fragments", HF)
def test_bad_hf_argument(make, exc, fragments):
    _check(make, exc, fragments)
