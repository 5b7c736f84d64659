"""Adapter contract, the framework's own side: its checkpoint mechanism
(``harness.save`` / ``harness.restore``, resumed in a new process) and
``from_native``, in every backend."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import unisched as us

from harness import Applied, assert_applied, values

HERE = os.path.dirname(os.path.abspath(__file__))
K, M = 10, 10  # updates before the checkpoint, and after it
ONE_CYCLE = us.OneCycleScheduler(0.1, 30)
PLATEAU_INNER = us.OneCycleScheduler(0.1, 30, pct_start=0.2)
COSINE = us.CosineScheduler(max_update=30, base_lr=0.1, final_lr=0.01)
MULTI_FACTOR = us.MultiFactorScheduler(step=[8, 12], factor=0.5,
                                       base_lr=0.3)


# -- resumed in a new process ------------------------------------------------

def _one_cycle(harness, target):
    adapter = harness.bind(ONE_CYCLE, target)
    harness.step(target, K)
    return adapter


def _plateau(harness, target):
    """A ReduceOnPlateau over a one-cycle, cut once before the
    checkpoint: rate 0.5 * one-cycle, momentum the one-cycle's."""
    adapter = harness.bind(us.ReduceOnPlateau(PLATEAU_INNER, patience=0,
                                              factor=0.5), target)
    harness.step(target, 4)
    adapter.observe(1.0)
    assert adapter.observe(2.0)
    harness.step(target, K - 4)
    return adapter


SCENARIOS = {"one_cycle": _one_cycle, "plateau": _plateau}
_RESUMED: dict[str, dict] = {}  # harness class -> scenario -> runs


def _resumed(harness, tmp_path_factory) -> dict:
    """Per scenario ``(uninterrupted, resumed)``: the updates after the
    checkpoint as the saving process ran them on, and as a new process
    restoring the checkpoint ran them.  One new process per harness for
    every scenario (importing a framework costs seconds)."""
    cls = type(harness)
    key = f"{cls.__module__}.{cls.__name__}"
    if key not in _RESUMED:
        jobs, uninterrupted = [], {}
        for name, run in SCENARIOS.items():
            directory = str(tmp_path_factory.mktemp(f"{harness.name}-{name}"))
            target = harness.make(momentum=0.9)
            harness.save(target, run(harness, target), directory)
            uninterrupted[name] = harness.step(target, M)
            jobs.append({"dir": directory, "updates": M, "bind_options": {
                "on_mismatch": "checkpoint"}})
        spec = {"module": cls.__module__, "cls": cls.__name__, "jobs": jobs}
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [HERE, os.path.dirname(HERE), os.environ.get("PYTHONPATH", "")]))
        proc = subprocess.run(
            [sys.executable, os.path.join(HERE, "contract_resume.py"),
             json.dumps(spec)], capture_output=True, text=True, cwd=HERE,
            env=env, timeout=240)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results = json.loads(proc.stdout.strip().splitlines()[-1])
        _RESUMED[key] = {name: (uninterrupted[name], result)
                         for name, result in zip(SCENARIOS, results,
                                                 strict=True)}
    return _RESUMED[key]


def _check_resumed(harness, runs, rates, momenta):
    uninterrupted, resumed = runs
    assert "error" not in resumed, resumed
    assert resumed["updates_done"] == K + M
    assert_applied(uninterrupted, rates, momenta, rtol=harness.rtol,
                   first=K)
    assert_applied([Applied(r, m) for r, m in zip(
                        resumed["rates"], resumed["momentum"], strict=True)],
                   [a.rates for a in uninterrupted],
                   [a.momentum for a in uninterrupted], rtol=harness.rtol,
                   first=K)


def test_native_checkpoint_resumes_a_one_cycle_in_a_new_process(
        harness, tmp_path_factory):
    runs = _resumed(harness, tmp_path_factory)["one_cycle"]
    _check_resumed(harness, runs, values(ONE_CYCLE, K, K + M),
                   values(ONE_CYCLE.momentum, K, K + M))


def test_native_checkpoint_resumes_a_cut_plateau_in_a_new_process(
        harness, tmp_path_factory):
    runs = _resumed(harness, tmp_path_factory)["plateau"]
    _check_resumed(harness, runs,
                   [0.5 * r for r in values(PLATEAU_INNER, K, K + M)],
                   values(PLATEAU_INNER.momentum, K, K + M))


# -- a native checkpoint of another schedule ---------------------------------

def _saved_cosine(harness, directory):
    target = harness.make()
    adapter = harness.bind(COSINE, target)
    harness.step(target, K)
    harness.save(target, adapter, str(directory))
    return str(directory)


def test_native_restore_into_another_schedule_is_an_error_showing_both(
        harness, tmp_path):
    directory = _saved_cosine(harness, tmp_path)
    with pytest.raises(ValueError) as err:
        harness.restore(directory, sched=MULTI_FACTOR.to_spec())
    assert COSINE.to_spec() in str(err.value)
    assert MULTI_FACTOR.to_spec() in str(err.value)


@pytest.mark.parametrize("policy", ["checkpoint", "bound"])
def test_native_restore_mismatch_policy_continues_from_k(harness, tmp_path,
                                                         policy):
    directory = _saved_cosine(harness, tmp_path)
    target, adapter = harness.restore(directory,
                                      sched=MULTI_FACTOR.to_spec(),
                                      on_mismatch=policy)
    want = COSINE if policy == "checkpoint" else MULTI_FACTOR
    assert (adapter.schedule, adapter.updates_done) == (want, K)
    assert_applied(harness.step(target, 8), values(want, K, K + 8),
                   rtol=harness.rtol, first=K)


# -- from_native --------------------------------------------------------------

def test_from_native_applies_the_native_rates_and_momenta(harness):
    cases = harness.natives()
    assert len(cases) >= 2, "give natives with and without momentum cycle"
    failures = []
    for case, make, native_rates in cases:
        want = native_rates(25)
        sched = harness.module.from_native(make(harness.make(momentum=0.9)))
        target = harness.make(momentum=0.9)
        harness.bind(sched, target)
        try:
            assert_applied(harness.step(target, 25), [r for r, _ in want],
                           [m for _, m in want], rtol=harness.rtol)
        except AssertionError as err:
            failures.append(f"{case}: {sched.to_spec()}: {err}")
    assert not failures, "\n".join(failures)


def test_from_native_refuses_what_it_cannot_convert_naming_the_class(
        harness):
    cases = harness.not_convertible()
    assert {kind for _, _, kind in cases} == {TypeError, ValueError}
    failures = []
    for case, native, kind in cases:
        try:
            harness.module.from_native(native)
            failures.append(f"{case}: converted, expected {kind.__name__}")
        except (TypeError, ValueError) as err:
            name = type(native).__name__
            if type(err) is not kind or name not in str(err):
                failures.append(f"{case}: {type(err).__name__}: {err} "
                                f"(expected {kind.__name__} naming {name})")
    assert not failures, "\n".join(failures)
