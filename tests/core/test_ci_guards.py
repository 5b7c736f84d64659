"""The suite's own guards in tests/conftest.py, run on tiny test files in
a fresh pytest process: under CI an unlisted skip fails the run, and
hypothesis draws the same examples every run."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"
EMPTY = "ALLOWED_SKIPS: dict[str, str] = {}"

FILES = {
    "test_one.py": """
import pytest

def test_runs():
    pass

def test_skipped():
    pytest.skip("no reason at all")

@pytest.mark.skipif(True, reason="marked")
def test_marked():
    pass

@pytest.mark.xfail(reason="known", strict=True)
def test_xfail():
    assert False
""",
    "test_gone.py": """
import pytest
pytest.importorskip("no_such_module_anywhere")

def test_never():
    pass
""",
}


def run_pytest(tmp_path: Path, ci: str | None, files: dict[str, str],
               allowed: str = "", *args: str) -> subprocess.CompletedProcess:
    conftest = CONFTEST.read_text()
    assert EMPTY in conftest  # the dict starts empty
    (tmp_path / "conftest.py").write_text(
        conftest.replace(EMPTY, f"ALLOWED_SKIPS = {{{allowed}}}"))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    env = {k: v for k, v in os.environ.items()
           if k not in ("CI", "HYPOTHESIS_PROFILE", "PYTEST_ADDOPTS")}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rfEs", "-p",
         "no:cacheprovider", *args, str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_skips_pass_without_ci(tmp_path):
    run = run_pytest(tmp_path, None, FILES)
    assert run.returncode == 0, run.stdout
    assert "1 passed, 3 skipped, 1 xfailed" in run.stdout


@pytest.mark.parametrize("ci", ["false", ""])
def test_ci_switched_off(tmp_path, ci):
    assert run_pytest(tmp_path, ci, FILES).returncode == 0


def test_unlisted_skips_fail_under_ci(tmp_path):
    run = run_pytest(tmp_path, "true", FILES)
    assert run.returncode == 1, run.stdout
    out = run.stdout
    # both test skips fail; the module skip stays a skip (failing its
    # collection would abort the run) but fails the run; the xfail stays
    # (a skipif mark skips in set-up, so that one shows as an error)
    assert "1 failed, 1 passed, 1 skipped, 1 xfailed, 1 error" in out
    assert "test_one.py::test_skipped was skipped with CI set" in out
    assert "no reason at all" in out and "marked" in out
    assert "test_gone.py was skipped with CI set" in out
    assert "ALLOWED_SKIPS (tests/conftest.py)" in out


def test_listed_skips_stay_skips_under_ci(tmp_path):
    allowed = ('"test_one.py::test_skipped": "r1", '
               '"test_one.py::test_marked": "r2", "test_gone.py": "r3"')
    run = run_pytest(tmp_path, "true", FILES, allowed)
    assert run.returncode == 0, run.stdout
    assert "1 passed, 3 skipped, 1 xfailed" in run.stdout


def test_listing_one_skip_leaves_the_others_refused(tmp_path):
    run = run_pytest(tmp_path, "1", FILES, '"test_one.py::test_marked": "r"')
    assert run.returncode == 1
    assert "1 failed, 1 passed, 2 skipped, 1 xfailed" in run.stdout
    assert "skipped files refused on CI" in run.stdout


def test_module_skip_alone_fails_under_ci(tmp_path):
    run = run_pytest(tmp_path, "true", {"test_gone.py": FILES["test_gone.py"]})
    assert run.returncode == 1, run.stdout
    assert "test_gone.py was skipped with CI set" in run.stdout


DRAWS = """
from hypothesis import given, settings, strategies as st

@settings(max_examples=5)  # a test's own settings keep the profile's seed
@given(st.integers(0, 2**62))
def test_draw(x):
    print("DRAW", x)
"""


def _draws(tmp_path: Path, ci: str | None) -> list[str]:
    run = run_pytest(tmp_path, ci, {"test_draws.py": DRAWS}, "", "-s")
    assert run.returncode == 0, run.stdout
    return [line for line in run.stdout.splitlines() if "DRAW" in line]


def test_hypothesis_ci_profile_is_deterministic(tmp_path):
    first, second = _draws(tmp_path, "true"), _draws(tmp_path, "true")
    assert first == second and len(set(first)) > 1
    # dev draws fresh examples: two runs agree with odds ~ 2**-62 per draw
    assert _draws(tmp_path, None) != _draws(tmp_path, None)


def test_no_test_file_overrides_the_profiles():
    # A test's settings(derandomize=..., database=...) would make CI draw
    # fresh examples again; only tests/conftest.py chooses them.
    tests = CONFTEST.parent
    offenders = [str(path.relative_to(tests))
                 for path in sorted(tests.rglob("*.py"))
                 if path != CONFTEST and any(
                     word in path.read_text()
                     for word in ("derandomize", "load_profile",
                                  "database="))
                 and path.name != "test_ci_guards.py"]
    assert offenders == []
