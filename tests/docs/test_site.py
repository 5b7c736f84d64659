"""The documentation site, built once and checked in headless Chromium.

The site is built with ``mkdocs build --strict`` into a temporary folder
(the chapter's outputs come from ``out/chapter`` or the cached build-time
run, see ``docs/hooks/site_chapter_run.py``), served on 127.0.0.1 on a
free port and opened in Debian's ``chromium`` through its
``chromedriver`` (Selenium, never a downloaded browser).  Where Chromium
is missing, ``make browser`` installs it (apt); the tests are skipped only
where that cannot be done, and under CI a skip fails (tests/conftest.py).
"""
from __future__ import annotations

import fcntl
import functools
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

import unisched
from unisched.app.chapter import DEFAULT_CHAPTER, LABELS, parse_chapter

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "docs" / "hooks"))
import griffe_docstrings  # noqa: E402  (the hooks under test)
import site_chapter  # noqa: E402
import site_chapter_run  # noqa: E402
import site_plots  # noqa: E402

SCHEDULE_PAGES = sorted(p for p in (REPO / "docs/pages/schedules").glob(
    "*.md") if p.stem != "index")


# ----------------------------------------------------------- the converter

def test_consecutive_cells_form_one_group_with_a_tab_per_framework():
    text = ("# T\n\nProse.\n\n```{.python .input}\n#@tab all\nx = 1\n```"
            "\n\n```{.python .input}\n#@tab mxnet\nm = 1\n```\n\n"
            "```{.python .input}\n#@tab jax\nj = 1\n```\n\nMore.\n")
    items = site_chapter.groups(parse_chapter(text))
    assert [type(i).__name__ for i in items] == ["str", "list", "str"]
    cells = items[1]
    assert [c.tabs for c in cells] == [
        ("mxnet", "pytorch", "tensorflow", "jax"), ("mxnet",), ("jax",)]
    outputs = site_chapter_run.ChapterOutputs(
        REPO, "a test", stdout={("jax", 2): "3\n"})
    assert site_chapter.tab_group(cells, outputs) == (
        '=== "MXNet"\n\n'
        "    ```python\n    x = 1\n    ```\n\n"
        "    ```python\n    m = 1\n    ```\n\n"
        '=== "PyTorch"\n\n    ```python\n    x = 1\n    ```\n\n'
        '=== "TensorFlow"\n\n    ```python\n    x = 1\n    ```\n\n'
        '=== "JAX"\n\n    ```python\n    x = 1\n    ```\n\n'
        "    ```python\n    j = 1\n    ```\n\n"
        "    ```text\n    3\n    ```\n\n")


def test_docstrings_are_read_as_markdown():
    text = ("Uses :class:`~unisched.Schedule`.\n>>> [1]\n[1]\n\n"
            "Example:\n    >>> a\n    ... b\n    2\nafter\n\n"
            "Formula::\n\n    >>> x\n")
    assert griffe_docstrings.markdown_docstring(text) == (
        "Uses `unisched.Schedule`.\n```pycon\n>>> [1]\n[1]\n```\n\n"
        "Example:\n    ```pycon\n    >>> a\n    ... b\n    2\n"
        "    ```\nafter\n\nFormula::\n\n    >>> x\n")


def test_plot_blocks_are_parsed_and_bad_ones_refused():
    page = ("Text.\n\n```unisched-plot\nsteps: 30\nmomentum: true\n"
            "a: cosine(max_update=20, base_lr=0.5)\n```\n")
    [(match, request)] = site_plots.find(page, "p.md")
    assert match.group(0).startswith("```unisched-plot")
    assert request == site_plots.PlotRequest(
        (("a", "cosine(max_update=20, base_lr=0.5)"),), 30, momentum=True)
    with pytest.raises(ValueError, match="p.md: a plot needs 'steps: N'"):
        site_plots.parse_block("a: constant(base_lr=0.1)\n", "p.md")
    with pytest.raises(ValueError, match="log must be true or false"):
        site_plots.parse_block("steps: 3\nlog: yes\na: constant()\n",
                               "p.md")


def test_plateau_plot_observes_the_given_metrics():
    sched = unisched.parse("reduce_on_plateau(schedule=constant(base_lr="
                           "1.0), factor=0.5, patience=0)")
    rates = site_plots._observed_rates(sched, np.arange(8),
                                       (2, (1.0, 2.0, 3.0)))
    # metric i is seen after update 2 * (i + 1) - 1; each worse one cuts
    assert rates.tolist() == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


# --------------------------------------------------------------- fixtures

def _browser_paths() -> tuple[str, str] | None:
    found = shutil.which("chromium"), shutil.which("chromedriver")
    return found if all(found) else None


def _install_browser() -> tuple[str, str]:
    """Chromium and its driver, installed by ``make browser`` if need
    be; skips (with the reason) only where that is impossible."""
    if _browser_paths() is None:
        if shutil.which("apt-get") is None or os.geteuid() != 0:
            pytest.skip("chromium/chromedriver are not installed and "
                        "cannot be here (needs root and apt-get): run "
                        "'make browser' as root")
        # One installer at a time (pytest-xdist workers): apt holds a lock.
        lock_path = Path(tempfile.gettempdir()) / "unisched-browser.lock"
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            done = subprocess.run(["make", "-C", str(REPO), "browser"],
                                  capture_output=True, text=True,
                                  timeout=1200)
        if done.returncode != 0 or _browser_paths() is None:
            pytest.skip(f"'make browser' could not install chromium: "
                        f"{done.stderr[-2000:]}")
    return _browser_paths()


def _build(out: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
         str(out)], cwd=REPO, capture_output=True, text=True, timeout=1800,
        env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    assert done.returncode == 0, done.stderr[-5000:]


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The site, built once per test run: under pytest-xdist the first
    worker builds it under a lock in the run's shared temporary folder
    and the others reuse it (pytest-xdist's documented pattern)."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        out = tmp_path_factory.mktemp("site")
        _build(out)
        return out
    shared = tmp_path_factory.getbasetemp().parent
    out = shared / "unisched-site"
    with open(shared / "unisched-site.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not out.is_dir():  # a failed build leaves no folder
            _build(shared / "unisched-site.partial")
            (shared / "unisched-site.partial").rename(out)
    return out


@pytest.fixture(scope="module")
def base_url(site):
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the test output stays clean
        pass


@pytest.fixture(scope="module")
def driver():
    chromium, chromedriver = _install_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(chromedriver),
                               options=options)
    browser.set_page_load_timeout(60)
    yield browser
    browser.quit()


def _open(driver, url: str) -> list[dict]:
    """Load ``url``, wait until every image has settled, and return the
    console's SEVERE entries."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(url)
    WebDriverWait(driver, 30).until(lambda d: d.execute_script(
        "return document.readyState === 'complete' && "
        "Array.from(document.images).every(i => i.complete)"))
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _images(driver) -> list[tuple[str, int]]:
    return [tuple(x) for x in driver.execute_script(
        "return Array.from(document.images).map("
        "i => [i.getAttribute('src'), i.naturalWidth])")]


# ------------------------------------------------------------ the browser

def test_every_page_loads_without_console_errors(site, base_url, driver):
    pages = sorted(p.relative_to(site).as_posix()
                   for p in site.rglob("*.html") if p.name != "404.html")
    assert {"index.html", "chapter.html", "api/index.html",
            "schedules/cosine.html"} <= set(pages)
    errors = {page: _open(driver, base_url + page) for page in pages}
    assert {p: e for p, e in errors.items() if e} == {}
    # MathML, rendered by the browser: no math script to fetch.
    _open(driver, base_url + "schedules/cosine.html")
    assert driver.execute_script(
        "return document.querySelectorAll('math').length") >= 3


def _active_labels(driver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('.tabbed-set')).map("
        "s => s.querySelector('label[for=\"' + "
        "s.querySelector(':scope > input:checked').id + '\"]')"
        ".textContent.trim())")


def _visible_code(driver) -> list[str]:
    """Per tab group, the text of the code blocks its shown tab holds."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('.tabbed-set')).map("
        "s => Array.from(s.querySelectorAll(':scope > .tabbed-content > "
        ".tabbed-block')).filter(b => b.offsetParent !== null).map("
        "b => Array.from(b.querySelectorAll('div.language-python code'))"
        ".map(c => c.textContent).join('\\n'))"
        ".join(''))")


def _assert_shows(driver, groups, framework: str) -> None:
    """Every group shows ``framework``'s tab, holding exactly the cells
    that framework runs (judged by each cell's first line)."""
    assert _active_labels(driver) == [LABELS[framework]] * len(groups)
    for group, code in zip(groups, _visible_code(driver), strict=True):
        for cell in group:
            first_line = cell.code.strip().splitlines()[0]
            assert (first_line in code) == (framework in cell.tabs), (
                framework, cell.line, first_line)


def test_chapter_tabs_switch_every_code_block_and_persist(base_url, driver):
    from selenium.webdriver.common.by import By

    groups = [g for g in site_chapter.groups(parse_chapter(
        DEFAULT_CHAPTER.read_text("utf-8"))) if isinstance(g, list)]
    assert _open(driver, base_url + "chapter.html") == []
    driver.execute_script("localStorage.clear()")
    _open(driver, base_url + "chapter.html")
    assert len(_active_labels(driver)) == len(groups) > 20
    assert set(_active_labels(driver)) == {"MXNet"}  # the first tab

    first = driver.find_elements(By.CSS_SELECTOR, ".tabbed-set")[0]
    first.find_element(By.XPATH, ".//label[normalize-space()='JAX']").click()
    _assert_shows(driver, groups, "jax")

    # Another page with framework tabs opens on JAX, and a choice made
    # there carries back to the chapter.
    _open(driver, base_url + "index.html")
    assert _active_labels(driver) == ["JAX"]
    driver.find_element(By.XPATH, "//label[normalize-space()='PyTorch']"
                        ).click()
    _open(driver, base_url + "chapter.html")
    _assert_shows(driver, groups, "pytorch")


@pytest.mark.parametrize("page", [p.stem for p in SCHEDULE_PAGES])
def test_schedule_plots_are_images_that_load(base_url, driver, page):
    assert _open(driver, f"{base_url}schedules/{page}.html") == []
    plots = [(src, w) for src, w in _images(driver) if "plots/" in src]
    assert plots, f"no plot on schedules/{page}"
    assert all(width > 0 for _, width in plots), plots


def test_chapter_figures_are_images_that_load(base_url, driver):
    _open(driver, base_url + "chapter.html")
    figures = [(s, w) for s, w in _images(driver) if "chapter/figures/" in s]
    # The cells' figures in every framework's tab (hidden tabs load too)
    # and the comparisons across frameworks.
    made = {s.split("/")[-1].split("-cell")[0] for s, _ in figures}
    assert {"mxnet", "pytorch", "tensorflow", "jax"} & made
    assert any("policy-" in s for s, _ in figures)
    assert all(width > 0 for _, width in figures), figures


def test_api_reference_has_an_entry_for_every_public_name(base_url, driver):
    assert _open(driver, base_url + "api/index.html") == []
    found = driver.execute_script(
        "return arguments[0].filter(n => { const e = "
        "document.getElementById('unisched.' + n); return e && "
        "/^H[1-6]$/.test(e.tagName); })", list(unisched.__all__))
    assert sorted(found) == sorted(unisched.__all__)
