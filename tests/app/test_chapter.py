"""Tests for the learning-rate chapter (``examples/lr_scheduling.md``) and
its runner (``unisched.app.chapter``).

The chapter itself is run in full, every code cell, once per framework,
in a reduced setting (digits, 1024 images = 4 updates per epoch, one
epoch, a 24-update finder), so that it never rots; the checks are on the
values the runs recorded.  The parser and the report are tested on small
literal chapters.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import unisched
from unisched.app import chapter as ch
from unisched.app import report as rp
from unisched.presets import D2L_CHAPTER
from unisched.tools import lr_finder_schedule, one_cycle

CHAPTER = ch.DEFAULT_CHAPTER
# 1024 images: 4 updates of 256 per epoch (the fewest for which PyTorch's
# one-cycle preset has no empty phase), all full: a smaller last batch
# would make JAX compile each training's step a second time (the JAX run
# took 45 s with 800 images, 27 s with 1024).  24 finder updates leave
# the 16 points fastai's 'slide' rule needs after its skips (24 - 2 - 5).
SMALL = {"DATA": "digits", "NUM_EPOCHS": 1, "LIMIT": 1024, "NUM_IT": 24}
UPDATES = 4
POLICIES = ["constant", "square_root", "factor", "multi_factor", "cosine",
            "cosine_warmup", "one_cycle_fastai", "one_cycle_torch"]
# One epoch with unit='epoch': every update uses the schedule's value at
# epoch 0 (the factor preset scaled to start at 0.3; the warmup at 0).
FIRST_EPOCH_LR = {"constant": 0.3, "square_root": 0.3, "factor": 0.3,
                  "multi_factor": 0.5, "cosine": 0.5, "cosine_warmup": 0.0}
EPOCH_LINE = re.compile(r"^epoch 1: train loss \d+\.\d{3}, train acc "
                        r"[01]\.\d{3}, test acc [01]\.\d{3}$")


def cell(tab: str | None, code: str, info: str = "{.python .input}"
         ) -> str:
    head = f"#@tab {tab}\n" if tab is not None else ""
    return f"```{info}\n{head}{code}\n```\n"


# ------------------------------------------------------ extract_code_blocks

TABS_TEXT = (
    "# Title\n:label:`sec_x`\n\nSome prose.\n\n"
    + cell("all", "a = 1")                      # line 6
    + cell("pytorch, tensorflow", "b = 2")      # line 10
    + cell("tensorflow", "c = 3\nc += 1")       # line 14
    + cell(None, "d = 4")                       # line 19: d2l's mxnet
    + "```python\nnot_a_cell = 1\n```\n"
    + cell(None, '[{"data": 1}]', "{.json .output n=None}")
    + cell("mxnet,pytorch", "e = 5", "{.python .input  n=3}")
    + "~~~~\n```{.python .input}\ninside another fence\n```\n~~~~\n"
)


def test_extract_code_blocks_per_framework():
    assert ch.extract_code_blocks(TABS_TEXT, "mxnet") == [
        "a = 1\n", "d = 4\n", "e = 5\n"]
    assert ch.extract_code_blocks(TABS_TEXT, "pytorch") == [
        "a = 1\n", "b = 2\n", "e = 5\n"]
    assert ch.extract_code_blocks(TABS_TEXT, "tensorflow") == [
        "a = 1\n", "b = 2\n", "c = 3\nc += 1\n"]


def test_extract_code_blocks_accepts_aliases():
    assert ch.extract_code_blocks(TABS_TEXT, "torch") == \
        ch.extract_code_blocks(TABS_TEXT, "pytorch")
    assert ch.extract_code_blocks(TABS_TEXT, "keras") == \
        ch.extract_code_blocks(TABS_TEXT, "tensorflow")


def test_parse_chapter_records_tabs_and_lines():
    cells = [s for s in ch.parse_chapter(TABS_TEXT)
             if isinstance(s, ch.Cell)]
    assert [(c.index, c.line, c.code_line, c.tabs) for c in cells] == [
        (0, 6, 8, ch.FRAMEWORKS),
        (1, 10, 12, ("pytorch", "tensorflow")),
        (2, 14, 16, ("tensorflow",)),
        (3, 19, 20, ("mxnet",)),
        (4, 28, 30, ("mxnet", "pytorch")),
    ]
    prose = "".join(s for s in ch.parse_chapter(TABS_TEXT)
                    if isinstance(s, str))
    assert "not_a_cell = 1" in prose and '"data": 1' in prose
    assert "inside another fence" in prose


@pytest.mark.parametrize("tab, message", [
    ("julia", r"line 2: unknown framework\(s\) \['julia'\]"),
    ("all, pytorch", r"line 2: '#@tab all' cannot be combined"),
    ("", r"line 2: '#@tab' names no framework"),
])
def test_bad_tab_line_names_the_line(tab, message):
    text = "```{.python .input}\n#@tab " + tab + "\nx = 1\n```\n"
    with pytest.raises(ValueError, match=message):
        ch.extract_code_blocks(text, "pytorch")


def test_unclosed_fence_names_the_line():
    with pytest.raises(ValueError, match="line 3: the code fence"):
        ch.parse_chapter("prose\n\n```{.python .input}\n#@tab all\nx = 1\n")


def test_bad_framework_argument():
    with pytest.raises(ValueError, match="unknown framework 'julia'"):
        ch.extract_code_blocks(TABS_TEXT, "julia")
    with pytest.raises(TypeError, match="framework must be a string"):
        ch.extract_code_blocks(TABS_TEXT, None)


def test_check_frameworks_normalizes_and_validates():
    names = [fw for fw in ("pytorch", "tensorflow") if ch.installed(fw)]
    if len(names) < 2:
        pytest.skip("needs torch and tensorflow installed")
    assert ch.check_frameworks("torch, keras,pytorch") == names
    with pytest.raises(ValueError, match="unknown framework 'julia'"):
        ch.check_frameworks(["julia"])
    with pytest.raises(ValueError, match="at least one"):
        ch.check_frameworks([])


# --------------------------------------------------------------- execute

def test_settings_override_the_chapter_defaults():
    text = (cell("all", "DATA = 'fashion-mnist'\nLIMIT = None")
            + cell("all", "print(DATA, LIMIT)"))
    run = ch.execute(text, "pytorch", {"DATA": "digits", "LIMIT": 9})
    assert run.outputs[1].stdout == "digits 9\n"
    assert ch.execute(text, "pytorch").outputs[1].stdout == \
        "fashion-mnist None\n"


def test_cells_share_a_fresh_namespace_per_framework():
    text = cell("all", "n = globals().get('n', 0) + 1\nprint(n)")
    assert ch.execute(text, "mxnet").outputs[0].stdout == "1\n"
    assert ch.execute(text, "mxnet").outputs[0].stdout == "1\n"


def test_last_expression_is_shown_like_a_notebook():
    text = (cell("all", "%matplotlib inline\nx = 41\nx + 1")
            + cell("all", "x;")
            + cell("all", "import matplotlib.pyplot as plt\n"
                          "plt.plot([1, 2])"))
    outs = ch.execute(text, "pytorch").outputs
    assert [o.stdout for o in outs] == ["42\n", "", ""]


def test_figures_are_saved_per_cell_and_closed(tmp_path):
    import matplotlib.pyplot as plt
    text = (cell("all", "import matplotlib.pyplot as plt\n"
                        "plt.figure(); plt.plot([0, 1])\n"
                        "plt.figure(); plt.plot([1, 0])")
            + cell("pytorch", "print('no figure')"))
    run = ch.execute(text, "pytorch", figure_dir=tmp_path)
    assert [p.name for p in run.outputs[0].figures] == [
        "pytorch-cell00-0.png", "pytorch-cell00-1.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in
               run.outputs[0].figures)
    assert run.outputs[1].figures == []
    assert plt.get_fignums() == []


def test_a_failing_cell_names_framework_and_chapter_line():
    text = ("prose\n\n" + cell("all", "x = 1")
            + cell("tensorflow", "y = 2\nz = 1 / 0\n"))
    with pytest.raises(ch.ChapterError) as info:
        ch.execute(text, "tensorflow", chapter_name="demo.md")
    err = info.value
    assert err.framework == "tensorflow" and err.markdown_line == 10
    assert text.splitlines()[err.markdown_line - 1] == "z = 1 / 0"
    assert str(err).startswith("demo.md, line 10 (tensorflow cell 1")
    assert isinstance(err.__cause__, ZeroDivisionError)


# ---------------------------------------------------------- the chapter

def test_chapter_structure():
    text = CHAPTER.read_text(encoding="utf-8")
    lines = text.splitlines()
    opened = [i for i, line in enumerate(lines)
              if line.startswith("```{.python .input")]
    assert len(opened) > 30
    # Every cell says which frameworks run it (no d2l mxnet default).
    assert all(lines[i + 1].startswith("#@tab ") for i in opened)
    cells = [s for s in ch.parse_chapter(text) if isinstance(s, ch.Cell)]
    # The settings cell comes first, with the chapter's own defaults.
    first = cells[0]
    assert first.is_all
    namespace: dict = {}
    exec(first.code, namespace)
    assert {k: namespace[k] for k in ch.SETTINGS} == {
        "DATA": "fashion-mnist", "NUM_EPOCHS": 30, "LIMIT": None,
        "NUM_IT": 100}
    # Each preset is defined once, in a cell every framework runs.
    for name in ("square_root", "factor", "multi_factor", "cosine",
                 "cosine_warmup"):
        defining = [c for c in cells if f"D2L_CHAPTER['{name}']" in c.code]
        assert len(defining) == 1 and defining[0].is_all, name
    # ... and every policy is trained in every framework.
    for fw in ch.FRAMEWORKS:
        code = "".join(ch.extract_code_blocks(text, fw))
        for name in POLICIES:
            assert f"report('{name}'" in code, (fw, name)


@pytest.mark.parametrize("framework", ch.FRAMEWORKS)
def test_every_cell_of_the_chapter_runs(framework):
    if not ch.installed(framework):
        pytest.skip(f"{framework} is not installed")
    text = CHAPTER.read_text(encoding="utf-8")
    run = ch.execute(text, framework, SMALL, chapter_name=CHAPTER.name)
    assert len(run.outputs) == len(ch.extract_code_blocks(text, framework))
    ns = run.namespace
    assert ns["data"].name == "digits" and len(ns["data"].y_train) == 1024
    assert ns["steps_per_epoch"] == UPDATES

    # The schedules are the presets.
    for name in FIRST_EPOCH_LR:
        if name in D2L_CHAPTER and name != "constant":
            assert ns[name] == unisched.parse(D2L_CHAPTER[name])

    results = run.results
    assert list(results) == POLICIES
    steps = np.arange(UPDATES)
    for rec in results.values():
        assert len(rec.epochs) == 1 and list(rec.steps) == list(steps)
    for name, lr in FIRST_EPOCH_LR.items():
        np.testing.assert_allclose(results[name].lrs, [lr] * UPDATES,
                                   rtol=1e-6, atol=1e-9, err_msg=name)
    for preset in ("fastai", "torch"):
        rec, sched = results[f"one_cycle_{preset}"], one_cycle(0.1, UPDATES,
                                                                preset)
        np.testing.assert_allclose(rec.lrs, sched.values(steps), rtol=1e-6)
        np.testing.assert_allclose(rec.momentums,
                                   sched.momentum.values(steps), rtol=1e-6)

    # Each framework's own cosine scheduler: MXNet counts from 1.
    native, cosine = ns["native_run"], ns["cosine"]
    k = native.steps
    assert len(k) == UPDATES
    shift = 1 if framework == "mxnet" else 0
    np.testing.assert_allclose(native.lrs, cosine.values(k + shift),
                               rtol=1e-6)
    assert np.abs(native.lrs - cosine.values(k + 1 - shift)).min() > 1e-3

    finder = ns["finder"]
    n = finder.lrs.size
    assert 17 <= n <= SMALL["NUM_IT"]
    np.testing.assert_allclose(
        finder.lrs, lr_finder_schedule(1e-7, 10.0, 24).values(np.arange(n)))
    assert list(finder.suggestions) == ["minimum", "steep", "valley",
                                        "slide"]
    assert all(1e-7 <= s.lr <= 10.0 for s in finder.suggestions.values())

    # Every training cell printed the chapter's line per epoch.
    trained = [o for o in run.outputs if "report(" in o.cell.code
               and "def report" not in o.cell.code]
    assert len(trained) == 7
    lines = [line for o in trained for line in o.stdout.splitlines()]
    assert len(lines) == len(POLICIES)
    assert all(EPOCH_LINE.match(line) for line in lines), lines
    table = run.outputs[-1].stdout.splitlines()
    assert table[0].split() == ["policy", "train", "loss", "train", "acc",
                                "test", "acc"]
    assert [row.split()[0] for row in table[1:]] == POLICIES


# ---------------------------------------------------------------- report

TINY = (
    "# Tiny Chapter\n:label:`sec_tiny`\n\n"
    "See :cite:`Smith.2017` and :citet:`Loshchilov.Hutter.2016`.\n\n"
    + cell("all", "import matplotlib.pyplot as plt\n"
                  "from unisched.tools import Recorder\n"
                  "plt.plot([0, 1], [1, 0])")
    + "Per framework:\n\n"
    + cell("pytorch", "print('only in torch')")
    + cell("tensorflow", "print('only in keras')")
    + cell("all", "rec = Recorder()\n"
                  "for k in range(4):\n"
                  "    rec.record_update(k, 0.1 / (k + 1), None, 2 - k)\n"
                  "rec.record_epoch(1, train_loss=1.5, train_acc=0.5,\n"
                  "                 test_acc=0.4)\n"
                  "results = {'constant': rec}\n"
                  "print(DATA, NUM_EPOCHS)")
    + cell("mxnet", "print('only in mxnet')")
)


def test_render_chapter_writes_a_report_with_its_figures(tmp_path):
    chosen = [fw for fw in ("pytorch", "tensorflow") if ch.installed(fw)]
    if not chosen:
        pytest.skip("needs torch or tensorflow installed")
    source = tmp_path / "tiny.md"
    source.write_text(TINY, encoding="utf-8")
    out = tmp_path / "out"
    path = rp.render_chapter(out, data="digits", epochs=3,
                             frameworks=chosen, chapter=source, log=None)
    assert path == out / "report.md"
    report = path.read_text(encoding="utf-8")
    assert report.startswith("# Tiny Chapter\n")
    assert ":label:" not in report
    assert "See (Smith, 2017) and Loshchilov and Hutter (2016)." in report
    assert "DATA='digits', NUM_EPOCHS=3" in report

    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert links
    for link in links:
        png = out / link
        assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG", link
    # The plot cell draws the same figure in every framework: shown once.
    cell_plots = [link for link in links if "-cell00-" in link]
    assert len(cell_plots) == 1
    assert "figures/schedules.png" in links
    assert "figures/policy-constant.png" in links
    assert report.count("digits 3") == 1
    for fw, line in (("pytorch", "only in torch"),
                     ("tensorflow", "only in keras")):
        assert report.count(line) == (2 if fw in chosen else 1)
    # The mxnet cell was not run: its code is shown, no output.
    assert "*MXNet (not run here)*" in report
    assert report.count("only in mxnet") == 1
    assert "| constant |" in report
    # Atomic writes leave no temporary files behind.
    leftovers = [p.name for p in out.rglob("*") if p.name.startswith(".")]
    assert leftovers == []
