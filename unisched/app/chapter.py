r"""Run the d2l learning-rate chapter and render it as one report.

The chapter (``examples/lr_scheduling.md``) is Markdown in d2l's style.
A code cell is a fence opened by ```` ```{.python .input} ```` whose first
line says which frameworks run it::

    #@tab all                     every framework
    #@tab pytorch, tensorflow     the frameworks listed
    (no tab line)                 mxnet only, as in d2l

Other fences (```` ```python ````, d2l's ```` ```{.json .output} ````)
are part of the prose.  :func:`extract_code_blocks` gives the code one
framework runs; :func:`execute` runs it cell by cell in a fresh namespace,
with matplotlib's Agg backend, saving every figure a cell leaves open as a
PNG; :func:`render_chapter` runs each framework and writes one Markdown
report: the prose, every cell's code with its printed output and figures,
and figures comparing the frameworks policy by policy.  ``unisched
chapter`` and ``examples/run_chapter.py`` are front ends to it.

Settings: the chapter's first cell sets ``DATA``, ``NUM_EPOCHS``,
``LIMIT`` and ``NUM_IT``.  A runner overrides them by passing
``settings``, which are written into the namespace before every cell, so
they win over the chapter's own defaults from that cell on.

The only code executed is the chapter's own cells (a file of this
project), as a notebook runner would.
"""
from __future__ import annotations

import ast
import builtins
import contextlib
import importlib.util
import io
import linecache
import os
import re
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..tools import Recorder

__all__ = [
    "FRAMEWORKS", "SETTINGS", "DEFAULT_CHAPTER", "Cell", "CellOutput",
    "FrameworkRun", "ChapterError", "parse_chapter", "extract_code_blocks",
    "installed", "check_frameworks", "execute",
]

#: The d2l tab names, in d2l's tab order.
FRAMEWORKS = ("mxnet", "pytorch", "tensorflow", "jax")
#: Other names accepted for a framework argument (not in tab lines).
ALIASES = {"torch": "pytorch", "keras": "tensorflow", "tf": "tensorflow"}
LABELS = {"mxnet": "MXNet", "pytorch": "PyTorch",
          "tensorflow": "TensorFlow", "jax": "JAX"}
# Modules that must be importable for a framework's cells to run.
_REQUIRES = {"mxnet": ("mxnet",), "pytorch": ("torch",),
             "tensorflow": ("tensorflow", "keras"),
             "jax": ("jax", "optax", "flax")}
#: The names a runner may set (see the module docstring).
SETTINGS = ("DATA", "NUM_EPOCHS", "LIMIT", "NUM_IT")
#: The chapter in a source checkout (``examples/`` is not installed).
DEFAULT_CHAPTER = Path(__file__).resolve().parent / "lr_scheduling.md"

_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_INPUT = re.compile(r"^\{\s*\.python\s+\.input\b[^}]*\}$")
_TAB = re.compile(r"^#\s*@tab\b(?P<names>.*)$")
_CITE = re.compile(r":(?P<kind>citet?):`(?P<keys>[^`]+)`")
_LABEL = re.compile(r"^:label:`[^`]*`\s*$")
_NUMREF = re.compile(r":(?:num|eq)ref:`([^`]+)`")


# ------------------------------------------------------------- parsing

@dataclass(frozen=True)
class Cell:
    """One code cell of the chapter.

    Attributes:
        index: position among the chapter's code cells (from 0).
        line: line of the opening fence in the Markdown (from 1).
        code_line: Markdown line of the first line of ``code``.
        tabs: frameworks that run it, in :data:`FRAMEWORKS` order.
        code: the source, without the tab line.
    """

    index: int
    line: int
    code_line: int
    tabs: tuple[str, ...]
    code: str

    @property
    def is_all(self) -> bool:
        """Whether every framework runs this cell."""
        return self.tabs == FRAMEWORKS


def _framework(name: Any, argument: str = "framework") -> str:
    if not isinstance(name, str):
        raise TypeError(f"{argument} must be a string, got {name!r}")
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in FRAMEWORKS:
        raise ValueError(f"{argument}: unknown framework {name!r}; valid: "
                         f"{', '.join(FRAMEWORKS)} (or "
                         f"{', '.join(ALIASES)})")
    return key


def _tabs(names: str, line: int) -> tuple[str, ...]:
    """The frameworks of a ``#@tab`` line (d2l names only)."""
    given = [n for n in re.split(r"[,\s]+", names.strip()) if n]
    if not given:
        raise ValueError(f"line {line}: '#@tab' names no framework; write "
                         f"'#@tab all' or some of {', '.join(FRAMEWORKS)}")
    if "all" in given:
        if len(given) > 1:
            raise ValueError(f"line {line}: '#@tab all' cannot be combined "
                             f"with other names, got {given}")
        return FRAMEWORKS
    unknown = [n for n in given if n not in FRAMEWORKS]
    if unknown:
        raise ValueError(f"line {line}: unknown framework(s) {unknown} in "
                         f"the tab line; valid: all, "
                         f"{', '.join(FRAMEWORKS)}")
    return tuple(fw for fw in FRAMEWORKS if fw in given)


def parse_chapter(markdown_text: str) -> list[str | Cell]:
    """Split d2l-style Markdown into prose (``str``) and :class:`Cell`
    segments, in order.  Only ```` ```{.python .input ...} ```` fences are
    code cells; a fence closes at a line of at least as many of the same
    characters.

    Raises:
        ValueError: a fence that never closes, or a bad tab line (the
            message gives the Markdown line).
    """
    if not isinstance(markdown_text, str):
        raise TypeError(f"markdown_text must be a string, got "
                        f"{type(markdown_text).__name__}")
    lines = markdown_text.splitlines(keepends=True)
    segments: list[str | Cell] = []
    prose: list[str] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i].rstrip("\r\n"))
        if match is None:
            prose.append(lines[i])
            i += 1
            continue
        fence = match.group("fence")
        closing = re.compile(rf"^{re.escape(fence[0])}{{{len(fence)},}}"
                             rf"\s*$")
        end = next((j for j in range(i + 1, len(lines))
                    if closing.match(lines[j].rstrip("\r\n"))), None)
        if end is None:
            raise ValueError(f"line {i + 1}: the code fence opened here is "
                             f"never closed")
        if not _INPUT.match(match.group("info").strip()):
            prose.extend(lines[i:end + 1])
            i = end + 1
            continue
        if prose:
            segments.append("".join(prose))
            prose = []
        body = [line.rstrip("\r\n") for line in lines[i + 1:end]]
        tab = _TAB.match(body[0].strip()) if body else None
        if tab is not None:
            tabs, code, first = _tabs(tab.group("names"), i + 2), body[1:], \
                i + 3
        else:
            tabs, code, first = ("mxnet",), body, i + 2
        n_cells = sum(isinstance(s, Cell) for s in segments)
        segments.append(Cell(index=n_cells, line=i + 1, code_line=first,
                             tabs=tabs, code="\n".join(code).strip("\n")
                             + "\n"))
        i = end + 1
    if prose:
        segments.append("".join(prose))
    return segments


def _cells(markdown_text: str) -> list[Cell]:
    return [s for s in parse_chapter(markdown_text) if isinstance(s, Cell)]


def extract_code_blocks(markdown_text: str, framework: str) -> list[str]:
    r"""The code of every cell ``framework`` runs, in order, without the
    tab lines: ``#@tab all`` cells, cells whose tab line lists
    ``framework``, and (for ``'mxnet'``) cells without a tab line.

    Args:
        markdown_text: the chapter's Markdown.
        framework: ``'mxnet'``, ``'pytorch'`` or ``'tensorflow'``
            (``'torch'``, ``'keras'`` and ``'tf'`` are accepted too).

    >>> cell = "```{.python .input}\n%s\n```\n"
    >>> text = (cell % "#@tab all\nx = 1" + "Some prose.\n"
    ...         + cell % "#@tab pytorch, tensorflow\ny = x + 1"
    ...         + cell % "z = 3")
    >>> extract_code_blocks(text, "pytorch")
    ['x = 1\n', 'y = x + 1\n']
    >>> extract_code_blocks(text, "mxnet")
    ['x = 1\n', 'z = 3\n']
    """
    fw = _framework(framework)
    return [c.code for c in _cells(markdown_text) if fw in c.tabs]


# ------------------------------------------------------------ frameworks

def installed(framework: str) -> bool:
    """Whether ``framework``'s packages are importable (without importing
    them)."""
    fw = _framework(framework)
    return all(importlib.util.find_spec(m) is not None
               for m in _REQUIRES[fw])


def check_frameworks(frameworks: Sequence[str] | str | None
                     ) -> list[str]:
    """Validate and de-duplicate framework names (a list or
    ``'pytorch,keras'``; aliases become d2l names).  None: every installed
    framework, in :data:`FRAMEWORKS` order.

    Raises:
        ValueError: an unknown name, an empty choice, a framework that is
            not installed, or (for None) none installed.
    """
    if frameworks is None:
        chosen = [fw for fw in FRAMEWORKS if installed(fw)]
        if not chosen:
            raise ValueError(f"none of {', '.join(FRAMEWORKS)} is "
                             f"installed; pip install 'unisched[all]'")
        return chosen
    if isinstance(frameworks, str):
        frameworks = [f for f in re.split(r"[,\s]+", frameworks) if f]
    chosen = []
    for name in frameworks:
        fw = _framework(name, "frameworks")
        if fw not in chosen:
            chosen.append(fw)
    if not chosen:
        raise ValueError(f"frameworks must name at least one of "
                         f"{', '.join(FRAMEWORKS)}, got {frameworks!r}")
    missing = [fw for fw in chosen if not installed(fw)]
    if missing:
        needs = [m for fw in missing for m in _REQUIRES[fw]]
        raise ValueError(f"frameworks: {', '.join(missing)} not installed "
                         f"(needs {', '.join(needs)}); pip install "
                         f"'unisched[all]'")
    return chosen


# ------------------------------------------------------------- execution

@dataclass
class CellOutput:
    """What one cell did in one framework: printed text (stdout, and the
    value of a final expression as a notebook shows it), the PNGs of its
    figures and its wall time in seconds."""

    cell: Cell
    framework: str
    stdout: str
    figures: list[Path] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class FrameworkRun:
    """The chapter's cells run in one framework."""

    framework: str
    outputs: list[CellOutput]
    namespace: dict[str, Any]
    seconds: float

    @property
    def results(self) -> dict[str, Recorder]:
        """The chapter's ``results``: policy name -> Recorder."""
        found = self.namespace.get("results", {})
        return {k: v for k, v in found.items() if isinstance(v, Recorder)} \
            if isinstance(found, dict) else {}


class ChapterError(RuntimeError):
    """A chapter cell raised.  Attributes: ``framework``, ``cell`` (the
    :class:`Cell`), ``markdown_line`` (the failing line in the chapter,
    best effort), ``stdout`` / ``stderr`` (what the cell printed)."""

    def __init__(self, message: str, framework: str, cell: Cell,
                 markdown_line: int, stdout: str, stderr: str) -> None:
        super().__init__(message)
        self.framework = framework
        self.cell = cell
        self.markdown_line = markdown_line
        self.stdout = stdout
        self.stderr = stderr


def _pyplot():
    """pyplot on the Agg backend: cells must never open a window or block
    in ``plt.show()``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _displayable(value: Any) -> bool:
    """Whether a notebook would show ``value``: not None, not a
    matplotlib object (axes, lines, ... are drawn as figures)."""
    if value is None:
        return False
    items = value if isinstance(value, (list, tuple)) else [value]
    if isinstance(value, np.ndarray) and value.dtype == object:
        items = list(value.ravel())
    return not any(type(v).__module__.startswith("matplotlib")
                   for v in items)


def _strip_magics(code: str) -> str:
    # IPython magics (d2l writes '%matplotlib inline') are not Python; the
    # runner already draws off screen.
    return "".join("\n" if line.lstrip().startswith("%") else line
                   for line in code.splitlines(keepends=True))


def _failing_line(exc: BaseException, filename: str, cell: Cell) -> int:
    """The chapter line of the deepest frame inside the cell."""
    line = cell.code_line
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == filename and frame.lineno:
            line = cell.code_line + frame.lineno - 1
    if isinstance(exc, SyntaxError) and exc.filename == filename \
            and exc.lineno:
        line = cell.code_line + exc.lineno - 1
    return line


def _run_cell(cell: Cell, framework: str, namespace: dict,
              chapter_name: str) -> tuple[str, str]:
    """Execute one cell; a final expression is printed as a notebook
    shows it (unless the cell ends with ';').  Returns (stdout, stderr)."""
    source = _strip_magics(cell.code)
    filename = f"<{chapter_name}: {framework} cell {cell.index}>"
    # Tracebacks then show the chapter's source lines.
    linecache.cache[filename] = (len(source), None,
                                 source.splitlines(keepends=True), filename)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(err):
            tree = ast.parse(source, filename)
            last = None
            final = tree.body[-1] if tree.body else None
            if isinstance(final, ast.Expr) \
                    and not source.rstrip().endswith(";"):
                tree.body.pop()
                last = ast.Expression(final.value)
            exec(compile(tree, filename, "exec"), namespace)
            if last is not None:
                value = eval(compile(last, filename, "eval"), namespace)
                if _displayable(value):
                    print(repr(value))
    except Exception as exc:
        line = _failing_line(exc, filename, cell)
        tail = "".join(err.getvalue().splitlines(keepends=True)[-20:])
        raise ChapterError(
            f"{chapter_name}, line {line} ({framework} cell {cell.index}, "
            f"tabs {', '.join(cell.tabs)}): {type(exc).__name__}: {exc}"
            + (f"\n--- stderr (last lines) ---\n{tail}" if tail else ""),
            framework, cell, line, out.getvalue(), err.getvalue()) from exc
    return out.getvalue(), err.getvalue()


def _save_new_figures(plt, known: set, figure_dir: Path | None,
                      stem: str) -> list[Path]:
    """Save (if ``figure_dir``) and close every figure not in ``known``."""
    from ..plot import save_figure
    paths = []
    for j, num in enumerate(n for n in plt.get_fignums() if n not in known):
        fig = plt.figure(num)
        if figure_dir is not None:
            path = figure_dir / f"{stem}-{j}.png"
            save_figure(fig, str(path))
            paths.append(path)
        plt.close(fig)
    return paths


def _check_settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    if settings is None:
        return {}
    if not isinstance(settings, Mapping):
        raise TypeError(f"settings must be a dict, got {settings!r}")
    for key in settings:
        if not isinstance(key, str) or not key.isidentifier():
            raise ValueError(f"settings: {key!r} is not a Python name")
    return dict(settings)


def execute(markdown_text: str, framework: str,
            settings: Mapping[str, Any] | None = None,
            figure_dir: str | os.PathLike | None = None, *,
            chapter_name: str = "chapter",
            log: Callable[[str], Any] | None = None) -> FrameworkRun:
    """Run every cell of ``framework`` (see :func:`extract_code_blocks`)
    in order, in one fresh namespace.

    Args:
        markdown_text: the chapter's Markdown.
        framework: ``'mxnet'``, ``'pytorch'`` or ``'tensorflow'``.
        settings: names written into the namespace before every cell
            (``DATA``, ``NUM_EPOCHS``, ``LIMIT``, ``NUM_IT``), so that
            they override the chapter's defaults.
        figure_dir: where each figure a cell leaves open is saved, as
            ``<framework>-cell<NN>-<j>.png``; None: figures are closed
            unsaved.
        chapter_name: how error messages name the chapter.
        log: called with one progress line per cell (None: quiet).

    Returns:
        A :class:`FrameworkRun` with each cell's output and the final
        namespace.

    Raises:
        ChapterError: a cell raised (message: chapter line, framework).
    """
    fw = _framework(framework)
    settings = _check_settings(settings)
    figures = None if figure_dir is None else Path(figure_dir)
    if figures is not None:
        figures.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    known = set(plt.get_fignums())  # the caller's figures stay untouched
    namespace: dict[str, Any] = {"__name__": "__chapter__",
                                 "__builtins__": builtins}
    cells = [c for c in _cells(markdown_text) if fw in c.tabs]
    outputs = []
    start = time.perf_counter()
    for n, cell in enumerate(cells, 1):
        namespace.update(settings)
        began = time.perf_counter()
        try:
            stdout, _ = _run_cell(cell, fw, namespace, chapter_name)
        finally:
            saved = _save_new_figures(plt, known, figures,
                                      f"{fw}-cell{cell.index:02d}")
        seconds = time.perf_counter() - began
        outputs.append(CellOutput(cell, fw, stdout, saved, seconds))
        if log is not None:
            log(f"{fw}: cell {n}/{len(cells)} (line {cell.line}) "
                f"{seconds:.1f} s")
    namespace.update(settings)
    return FrameworkRun(fw, outputs, namespace, time.perf_counter() - start)
