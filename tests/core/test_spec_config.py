"""Specs (``unisched.parse``), configs (``to_config`` / ``from_config`` /
``to_json``) and what ``import unisched`` imports.

A spec is parsed by a small recursive-descent parser: these tests pin the
grammar (positional and keyword arguments, lists, strings, booleans,
class names, nesting, whitespace), the error messages (unknown names and
arguments list the valid ones, syntax errors give a position) and that
nothing in a spec is ever evaluated as Python.
"""
from __future__ import annotations

import builtins
import json
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import unisched as us
from unisched import SpecError, from_config, parse

STEPS = np.arange(40)


def _same_schedule(got, want):
    assert type(got) is type(want)
    assert got == want
    assert np.array_equal(got.values(STEPS), want.values(STEPS))


# -- the issue's examples ----------------------------------------------------

def test_issue_cosine_example():
    got = parse("cosine(max_update=20, base_lr=0.5, final_lr=0.01, "
                "warmup_steps=5)")
    _same_schedule(got, us.CosineScheduler(max_update=20, base_lr=0.5,
                                           final_lr=0.01, warmup_steps=5))
    assert (got(0), got(5), got(20)) == (0.0, 0.5, 0.01)


def test_issue_warmup_factor_example():
    got = parse("warmup(factor(step=10, factor=0.5, base_lr=1.0), "
                "warmup_steps=3)")
    want = us.warmup(us.FactorScheduler(step=10, factor=0.5, base_lr=1.0),
                     warmup_steps=3)
    _same_schedule(got, want)
    assert [got(k) for k in (0, 3, 13, 14)] == [0.0, 1.0, 1.0, 0.5]


# -- grammar -----------------------------------------------------------------

@pytest.mark.parametrize("spec, want", [
    ("cosine(20, 0.5, 0.01)",
     us.CosineScheduler(20, base_lr=0.5, final_lr=0.01)),
    ("cosine(20, 0.5, final_lr=0.01)",
     us.CosineScheduler(20, base_lr=0.5, final_lr=0.01)),
    ("exponential(1.0, 0.5, 2, True)",
     us.ExponentialScheduler(1.0, 0.5, step=2, staircase=True)),
], ids=["all", "mixed", "bool"])
def test_positional_arguments(spec, want):
    _same_schedule(parse(spec), want)


@pytest.mark.parametrize("spec, want", [
    ("multi_factor(step=[15, 30], factor=0.5, base_lr=0.5)",
     us.MultiFactorScheduler([15, 30], factor=0.5, base_lr=0.5)),
    ("multi_factor([15, 30,], 0.5)", us.MultiFactorScheduler([15, 30], 0.5)),
    ("piecewise_constant([10], [1, 0.5])",
     us.PiecewiseConstantScheduler([10], [1.0, 0.5])),
], ids=["keyword", "trailing-comma", "ints-become-floats"])
def test_lists(spec, want):
    _same_schedule(parse(spec), want)


@pytest.mark.parametrize("spec", [
    "cosine(20, warmup_steps=2, warmup_mode='constant')",
    'cosine(20, warmup_steps=2, warmup_mode="constant")',
    "cosine(20, warmup_steps=2, warmup_mode=constant)",
], ids=["single-quoted", "double-quoted", "bare"])
def test_strings(spec):
    _same_schedule(parse(spec), us.CosineScheduler(
        20, warmup_steps=2, warmup_mode="constant"))


def test_true_false_none():
    got = parse("cyclic(0.1, 1.0, 4, step_size_down=None)")
    assert got.step_size_down is None
    _same_schedule(got, us.CyclicScheduler(0.1, 1.0, 4))
    _same_schedule(parse("exponential(1.0, 0.5, staircase=False)"),
                   us.ExponentialScheduler(1.0, 0.5))
    _same_schedule(parse("one_cycle(1.0, 20, three_phase=True)"),
                   us.OneCycleScheduler(1.0, 20, three_phase=True))


@pytest.mark.parametrize("spec, want", [
    ("CosineScheduler(max_update=20, base_lr=0.5)",
     us.CosineScheduler(20, base_lr=0.5)),
    ("Warmup(CosineScheduler(20), warmup_steps=3)",
     us.warmup(us.CosineScheduler(20), 3)),
    ("ReduceOnPlateau(ConstantScheduler(0.1), factor=0.5)",
     us.ReduceOnPlateau(0.1, factor=0.5)),
    ("CyclicMomentum(cyclic(0.1, 1.0, 4))",
     us.CyclicScheduler(0.1, 1.0, 4).momentum),
], ids=["class", "nested-classes", "plateau", "momentum"])
def test_class_names(spec, want):
    _same_schedule(parse(spec), want)


def test_nested_join_of_a_list_of_schedules():
    got = parse("join([constant(1.0), warmup(cosine(10, base_lr=0.5), 2),"
                " scale(constant(0.5), 0.2)], boundaries=[3, 15])")
    want = us.join([us.ConstantScheduler(1.0),
                    us.warmup(us.CosineScheduler(10, base_lr=0.5), 2),
                    us.scale(us.ConstantScheduler(0.5), 0.2)], [3, 15])
    _same_schedule(got, want)
    assert [got(k) for k in (2, 3, 5, 15, 100)] == [1.0, 0.0, 0.5, 0.1,
                                                   0.1]


def test_whitespace_is_ignored():
    got = parse("  cosine (\n\tmax_update = 20 ,\n  base_lr=0.5 , )  ")
    _same_schedule(got, us.CosineScheduler(20, base_lr=0.5))


@pytest.mark.parametrize("text, value", [
    ("1e-3", 1e-3), ("1E-3", 1e-3), (".5", 0.5), ("5.", 5.0), ("+2", 2.0),
    ("2", 2.0), ("0.25e+1", 2.5),
])
def test_numbers(text, value):
    assert parse(f"constant({text})").base_lr == value


def test_a_schedule_passes_through_parse():
    sched = us.CosineScheduler(20)
    assert parse(sched) is sched


def test_spec_strings_of_combinators_are_literal():
    sched = us.warmup(us.CosineScheduler(20, 0.5, 0.01), 3)
    assert sched.to_spec() == ("warmup(schedule=cosine(max_update=20, "
                               "base_lr=0.5, final_lr=0.01), "
                               "warmup_steps=3)")
    assert str(sched) == sched.to_spec()
    assert parse(sched.to_spec()) == sched


# -- spec errors -------------------------------------------------------------

def test_unknown_name_lists_the_valid_names():
    with pytest.raises(SpecError, match="unknown schedule 'cosin' at "
                       "position 0") as info:
        parse("cosin(max_update=20)")
    listed = str(info.value).split("valid names: ")[1].split(", ")
    assert listed == sorted(us.registered())


def test_unknown_name_inside_a_call_gives_its_position():
    with pytest.raises(SpecError, match="unknown schedule 'cosin' at "
                       "position 7"):
        parse("warmup(cosin(20), 3)")


def test_unknown_argument_lists_the_valid_arguments():
    with pytest.raises(ValueError, match=r"cosine\(\) got unknown "
                       r"argument\(s\) lr; valid arguments: max_update, "
                       r"base_lr, final_lr, warmup_steps, warmup_begin_lr, "
                       r"warmup_mode, cycles, restarts, periodic$"):
        parse("cosine(max_update=20, lr=0.5)")


@pytest.mark.parametrize("spec, message", [
    ("cosine(max_update=20", "expected ',' at position 20, got end of spec"),
    ("cosine(max_update 20)", "expected ',' at position 18, got '20'"),
    ("cosine(max_update=)", "expected value at position 18, got ')'"),
    ("cosine(max_update=20;)", "unexpected character ';' at position 20"),
    ("cosine", "expected '(' at position 6, got end of spec"),
    ("", "expected name at position 0, got end of spec"),
    ("(1)", "expected name at position 0, got '('"),
    ("constant('0.1)", "unexpected character \"'\" at position 9"),
    ("multi_factor(step=[1, 2", "expected ',' at position 23"),
    ("cosine(base_lr=0.5, 20)",
     "positional argument after keyword arguments at position 20"),
], ids=["unclosed", "missing-equals", "missing-value", "bad-character",
        "no-parens", "empty", "no-name", "unclosed-string", "unclosed-list",
        "positional-after-keyword"])
def test_syntax_errors_give_the_position(spec, message):
    with pytest.raises(SpecError) as info:
        parse(spec)
    assert message in str(info.value)
    assert repr(spec) in str(info.value)


@pytest.mark.parametrize("spec, position, got", [
    ("cosine(max_update=20))", 21, "')'"),
    ("cosine(max_update=20) cosine(10)", 22, "'cosine'"),
    ("cosine(20) 5", 11, "'5'"),
], ids=["paren", "second-spec", "number"])
def test_trailing_garbage(spec, position, got):
    with pytest.raises(SpecError, match=re.escape(
            f"expected end at position {position}, got {got}")):
        parse(spec)


def test_duplicate_keyword_argument():
    with pytest.raises(SpecError, match="argument 'max_update' given "
                       "twice"):
        parse("cosine(max_update=20, max_update=30)")


def test_argument_given_by_position_and_keyword():
    with pytest.raises(ValueError, match=r"cosine\(\) got argument "
                       r"'max_update' twice"):
        parse("cosine(20, max_update=30)")


def test_too_many_positional_arguments():
    with pytest.raises(ValueError, match=r"constant\(\) takes at most 1 "
                       r"positional arguments \(base_lr\), got 2"):
        parse("constant(1, 2)")


def test_missing_required_argument():
    with pytest.raises(ValueError, match="missing a required argument: "
                       "'max_update'; valid arguments: max_update"):
        parse("cosine(base_lr=0.5)")


def test_bad_values_fail_like_the_constructor():
    with pytest.raises(ValueError, match="max_update must be > 0, got -1"):
        parse("cosine(max_update=-1)")
    with pytest.raises(ValueError, match="step must not be empty, got"):
        parse("multi_factor(step=[])")
    with pytest.raises(TypeError, match="schedule must be a unisched "
                       "schedule, got 'constant'"):
        parse("warmup(constant, 3)")


@pytest.mark.parametrize("spec", [5, None, b"cosine(20)", ["cosine(20)"]])
def test_spec_must_be_a_string(spec):
    with pytest.raises(TypeError, match=re.escape(
            f"spec must be a string, got {spec!r}")):
        parse(spec)


def test_spec_error_is_a_value_error():
    assert issubclass(SpecError, ValueError)


def test_deeply_nested_spec_is_a_spec_error():
    with pytest.raises(SpecError, match="position"):
        parse("warmup(" * 5000)


# -- nothing is evaluated ----------------------------------------------------

@pytest.mark.parametrize("spec", [
    "__import__('os').system('touch {marker}')",
    "cosine(max_update=__import__('os').system('touch {marker}'))",
    "constant(base_lr=open('{marker}', 'w'))",
    "constant(0.1).__class__",
    "constant(base_lr=1+1)",
    "constant(base_lr=(0.1))",
    "exec('open(\"{marker}\", \"w\")')",
], ids=["import", "import-in-argument", "open", "attribute", "arithmetic",
        "parentheses", "exec"])
def test_nothing_is_evaluated(spec, tmp_path):
    marker = tmp_path / "evaluated"
    with pytest.raises((SpecError, ValueError, TypeError)):
        parse(spec.format(marker=marker))
    assert not marker.exists()


def test_parse_needs_no_eval(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("parse must not evaluate code")
    for name in ("eval", "exec", "compile", "__import__"):
        monkeypatch.setattr(builtins, name, refuse)
    got = parse("join([warmup(cosine(10), 2, warmup_mode='constant'), "
                "constant(0.1)], [12])")
    monkeypatch.undo()
    assert got == us.join([us.warmup(us.CosineScheduler(10), 2,
                                     warmup_mode="constant"),
                           us.ConstantScheduler(0.1)], [12])


def test_bare_names_are_inert_strings():
    with pytest.raises(ValueError, match="warmup_mode must be one of "
                       r"\['linear', 'constant', 'cosine', '1-sqrt'\], "
                       r"got 'os'"):
        parse("warmup(constant(1.0), 3, warmup_mode=os)")


# -- configs -----------------------------------------------------------------

def test_config_is_the_constructor_arguments():
    sched = us.warmup(us.CosineScheduler(20, 0.5, 0.01), 3)
    assert sched.to_config() == {
        "name": "warmup",
        "schedule": {"name": "cosine", "max_update": 20, "base_lr": 0.5,
                     "final_lr": 0.01, "warmup_steps": 0,
                     "warmup_begin_lr": 0.0, "warmup_mode": "linear",
                     "cycles": 1.0, "restarts": False, "periodic": False},
        "warmup_steps": 3, "warmup_begin_lr": 0.0, "warmup_mode": "linear"}


def test_to_json_and_from_config_of_a_json_string():
    sched = us.join([us.ConstantScheduler(1.0),
                     us.CyclicScheduler(0.1, 1.0, 4, mode="triangular2")],
                    [5])
    text = sched.to_json()
    assert isinstance(text, str)
    assert json.loads(text) == sched.to_config()
    assert json.loads(text)["schedules"][1] == {
        "name": "cyclic", "base_lr": 0.1, "max_lr": 1.0, "step_size_up": 4,
        "step_size_down": None, "mode": "triangular2", "gamma": 1.0,
        "base_momentum": 0.8, "max_momentum": 0.9, "cycle_momentum": True}
    _same_schedule(from_config(text), sched)
    _same_schedule(from_config(json.loads(text)), sched)


def test_from_config_accepts_only_the_arguments_it_needs():
    cfg = {"name": "cosine", "max_update": 20}
    _same_schedule(from_config(cfg), us.CosineScheduler(20))
    assert cfg == {"name": "cosine", "max_update": 20}  # not consumed


@pytest.mark.parametrize("config, exc, message", [
    ([1], TypeError, "config must be a dict, got [1]"),
    ("[1]", TypeError, "config must be a dict, got [1]"),
    (5, TypeError, "config must be a dict, got 5"),
    (None, TypeError, "config must be a dict, got None"),
    ({}, ValueError, "config has no 'name' key: {}"),
    ({"max_update": 20}, ValueError,
     "config has no 'name' key: {'max_update': 20}"),
    ({"name": "nope"}, ValueError,
     "unknown schedule name 'nope'; valid names: constant, cosine,"),
    ({"name": 5}, ValueError, "unknown schedule name 5; valid names:"),
    ({"name": "CosineScheduler", "max_update": 20}, ValueError,
     "unknown schedule name 'CosineScheduler'"),
    ({"name": "cosine", "max_update": 20, "lr": 1}, ValueError,
     "cosine() got unknown argument(s) lr; valid arguments: max_update,"),
    ({"name": "cosine"}, ValueError,
     "missing a required argument: 'max_update'"),
    ({"name": "warmup", "schedule": {"name": "nope"}, "warmup_steps": 3},
     ValueError, "unknown schedule name 'nope'"),
    ({"name": "cosine", "max_update": "20"}, TypeError,
     "max_update must be a real number, got '20'"),
], ids=["list", "json-list", "int", "none", "empty", "no-name",
        "unknown-name", "name-not-a-string", "class-name", "unknown-argument",
        "missing-argument", "nested-unknown-name", "bad-value"])
def test_from_config_errors(config, exc, message):
    with pytest.raises(exc) as info:
        from_config(config)
    assert message in str(info.value)


def test_from_config_bad_json_names_the_config():
    with pytest.raises(ValueError, match="config.*'cosine\\(20\\)'"):
        from_config("cosine(20)")


def test_from_config_bad_json_is_a_value_error():
    with pytest.raises(ValueError):
        from_config("{'name': 'cosine'}")


# -- import cost -------------------------------------------------------------

HEAVY = ("torch", "tensorflow", "keras", "mxnet", "jax", "matplotlib",
         "sklearn", "unisched.backends")


def test_importing_unisched_imports_no_framework():
    # Every module of the package (core, tools, the application), each
    # imported in turn in a fresh interpreter: which heavy modules did each
    # import bring in?  (The time it takes is benchmarks/bench_import.py's
    # business: a timed assertion on a shared machine is noise.)
    code = textwrap.dedent(f"""
        import json, pkgutil, sys
        heavy = {HEAVY!r}
        seen, report = set(), {{}}
        def note(name):
            new = [m for m in heavy if m in sys.modules and m not in seen]
            seen.update(new)
            report[name] = new
        for name in ("unisched", "unisched.tools", "unisched.app"):
            __import__(name)
            note(name)
        import unisched
        for info in pkgutil.walk_packages(unisched.__path__, "unisched."):
            if not info.name.startswith("unisched.backends"):
                __import__(info.name)
                note(info.name)
        print(json.dumps(report))
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True, timeout=120)
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert {"unisched.tools.finder", "unisched.app.data",
            "unisched.app.fashion", "unisched.app.training",
            "unisched.app.compare", "unisched.app.chapter",
            "unisched.app.cli", "unisched.plot"} <= set(report)
    assert {name: new for name, new in report.items() if new} == {}


def test_a_config_with_a_renamed_argument_still_loads():
    # PiecewiseConstantScheduler's ``values`` became ``rates`` (it hid the
    # values() method); configs and specs written before keep loading.
    old = {"name": "piecewise_constant", "boundaries": [2], "values": [1, .5]}
    sched = from_config(old)
    assert sched == us.PiecewiseConstantScheduler([2], [1.0, 0.5])
    assert sched.values([2, 3]).tolist() == [1.0, 0.5]
    assert parse("piecewise_constant([2], values=[1, 0.5])") == sched


def test_cycle_momentum_false_removes_the_momentum_cycle():
    for sched in (us.CyclicScheduler(0.1, 1.0, 4, cycle_momentum=False),
                  us.OneCycleScheduler(1.0, 10, cycle_momentum=False)):
        assert sched.momentum is None
        assert "cycle_momentum=False" in sched.to_spec()
        assert parse(sched.to_spec()) == sched
    assert us.OneCycleScheduler(1.0, 10).momentum(0) == 0.95
