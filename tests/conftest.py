"""Shared test set-up.

- ``tests/`` is importable (``catalog``, the one registry of every schedule
  with reference parameters).
- Hypothesis profiles: ``ci`` (the same examples every run, so a red CI
  run can be reproduced and a green one means the same thing twice) when
  the environment variable ``CI`` is set, ``dev`` (fresh random examples
  every run, to explore) otherwise.  ``HYPOTHESIS_PROFILE`` overrides.
- Under ``CI`` a skipped test is an error unless :data:`ALLOWED_SKIPS`
  lists it with a reason: on the CI machine every framework is installed,
  so a skip there means a test silently stopped running.
"""
from __future__ import annotations

import os
import sys

import pytest
from hypothesis import settings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# --doctest-modules would import each conftest.py again under the one
# top-level name ``conftest``, and the second one clashes with the first.
collect_ignore = ["conftest.py", os.path.join("backends", "conftest.py")]

# Test node id (as pytest prints it, with or without its [parameters]) ->
# why it may be skipped on CI.  Keep it empty unless a skip is intended.
ALLOWED_SKIPS: dict[str, str] = {}


def running_on_ci() -> bool:
    """Whether ``CI`` is set to something other than empty/0/false/no."""
    return os.environ.get("CI", "").strip().lower() not in (
        "", "0", "false", "no")


# ci: 20 fixed examples per test (each example is a whole random parameter
# set from tests/catalog.py); print_blob shows how to replay a failure.
settings.register_profile("ci", derandomize=True, max_examples=20,
                          deadline=None, print_blob=True, database=None)
settings.register_profile("dev", max_examples=8, deadline=None)
settings.load_profile(os.environ.get(
    "HYPOTHESIS_PROFILE", "ci" if running_on_ci() else "dev"))


def _allowed(nodeid: str) -> bool:
    return nodeid in ALLOWED_SKIPS or nodeid.split("[")[0] in ALLOWED_SKIPS


def _unlisted_skip(report) -> str | None:
    """Why ``report`` is a skip CI must refuse (None if it is not one)."""
    if not (report.skipped and running_on_ci()) \
            or hasattr(report, "wasxfail") or _allowed(report.nodeid):
        return None
    reason = report.longrepr
    if isinstance(reason, tuple):  # (path, line, "Skipped: why")
        reason = f"{reason[2]} ({reason[0]}:{reason[1]})"
    return (f"{report.nodeid} was skipped with CI set: {reason}\n"
            f"On CI every test must run; fix the cause or list it in "
            f"ALLOWED_SKIPS (tests/conftest.py) with a reason.")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # The skip becomes a failure of that test, with the reason shown.
    outcome = yield
    report = outcome.get_result()
    why = _unlisted_skip(report)
    if why:
        report.outcome, report.longrepr = "failed", why


# Collection-level skips (pytest.importorskip or skip(allow_module_level=
# True) in a module): failing the collection report would abort the whole
# run, so they are counted here and fail it at the end instead.
_REFUSED_COLLECTION_SKIPS: list[str] = []


def pytest_collectreport(report) -> None:
    why = _unlisted_skip(report)
    if why:
        _REFUSED_COLLECTION_SKIPS.append(why)


def pytest_terminal_summary(terminalreporter) -> None:
    if _REFUSED_COLLECTION_SKIPS:
        terminalreporter.section("skipped files refused on CI", red=True)
        for why in _REFUSED_COLLECTION_SKIPS:
            terminalreporter.line(why)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session) -> None:
    if _REFUSED_COLLECTION_SKIPS and session.exitstatus in (
            pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
