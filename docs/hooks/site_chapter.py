"""The d2l chapter as one page with a tab per framework.

The chapter (``unisched/app/lr_scheduling.md``) is parsed with
:func:`unisched.app.chapter.parse_chapter`, the parser that runs it.  As
in the d2l book, the code cells between two pieces of prose form one tab
group with a tab per framework (MXNet, PyTorch, TensorFlow, JAX); a tab
holds the cells that framework runs (``#@tab all`` cells appear in every
tab), each followed by its printed output and figures.  Tabs with the
same label are linked across the site (Material's ``content.tabs.link``):
choosing JAX in one group shows JAX everywhere, and the choice persists
from page to page.
"""
from __future__ import annotations

import posixpath
import textwrap
from pathlib import Path

from unisched.app.chapter import FRAMEWORKS, LABELS, Cell, parse_chapter
from unisched.app.report import _prose

from site_chapter_run import ChapterOutputs

#: Where the chapter's figures are published in the site.
FIGURE_DIR = "chapter/figures"


def groups(segments: list) -> list:
    """Prose strings and tab groups (lists of consecutive cells, with only
    blank prose between them), in order."""
    out: list = []
    for segment in segments:
        if isinstance(segment, Cell):
            if out and isinstance(out[-1], list):
                out[-1].append(segment)
            else:
                out.append([segment])
        elif segment.strip() or not (out and isinstance(out[-1], list)):
            out.append(segment)
    return out


def _indent(text: str) -> str:
    return textwrap.indent(text, "    ", lambda line: line.strip() != "")


def _cell(cell: Cell, fw: str, outputs: ChapterOutputs) -> str:
    parts = [f"```python\n{cell.code.rstrip()}\n```\n\n"]
    printed = outputs.stdout.get((fw, cell.index), "").rstrip()
    if printed:
        parts.append(f"```text\n{printed}\n```\n\n")
    for j, path in enumerate(outputs.figures.get((fw, cell.index), [])):
        parts.append(f"![{LABELS[fw]}, cell {cell.index}, figure {j + 1}]"
                     f"({FIGURE_DIR}/{path.name})\n\n")
    return "".join(parts)


def tab_group(cells: list[Cell], outputs: ChapterOutputs) -> str:
    """Markdown (``pymdownx.tabbed``) of one group: a tab per framework."""
    parts = []
    for fw in FRAMEWORKS:
        body = "".join(_cell(c, fw, outputs) for c in cells if fw in c.tabs)
        body = body or f"*No {LABELS[fw]} code in this part.*\n\n"
        parts.append(f'=== "{LABELS[fw]}"\n\n{_indent(body)}')
    return "".join(parts)


def _across(outputs: ChapterOutputs) -> str:
    """The report's comparison section, its figure links moved."""
    return outputs.across.replace("](figures/", f"]({FIGURE_DIR}/")


def page(text: str, outputs: ChapterOutputs) -> str:
    """The chapter page's Markdown."""
    parts, titled = [], False
    note = (f"!!! note \"About this page\"\n    The chapter "
            f"`unisched/app/lr_scheduling.md`, rendered with a tab per "
            f"framework.  Choosing a framework in one tab group switches "
            f"every code block on the page, and the choice is kept on "
            f"the other pages.  The outputs and figures come from "
            f"{outputs.source}.\n\n")
    for item in groups(parse_chapter(text)):
        if isinstance(item, list):
            parts.append(tab_group(item, outputs))
            continue
        prose = _prose(item)
        if not titled and prose.lstrip().startswith("# "):
            head, _, rest = prose.lstrip().partition("\n")
            prose = f"{head}\n\n{note}{rest}"
            titled = True
        parts.append(prose if prose.endswith("\n\n") else prose + "\n")
    if outputs.across:
        parts.append(_across(outputs))
    return "".join(parts)


def figure_files(outputs: ChapterOutputs) -> list[tuple[str, Path]]:
    """``(site path, file)`` of every figure the page may link."""
    return [(posixpath.join(FIGURE_DIR, p.name), p)
            for p in outputs.all_figures]
