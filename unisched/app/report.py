"""The d2l chapter's run over every framework, its comparison figures
and the Markdown report (``unisched chapter``)."""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import _validate as check
from .._io import write_text
from ..tools import Recorder
from .chapter import (
    _CITE,
    _LABEL,
    _NUMREF,
    DEFAULT_CHAPTER,
    LABELS,
    Cell,
    CellOutput,
    FrameworkRun,
    _pyplot,
    check_frameworks,
    execute,
    parse_chapter,
)

__all__ = [
    "ChapterRun", "run_chapter", "comparison_figures", "summary_table",
    "write_summary", "write_results", "write_report", "render_chapter",
]
from .data import DATASET_NAMES

# ------------------------------------------------------------- the chapter

@dataclass
class ChapterRun:
    """Every selected framework's run of one chapter."""

    chapter: Path
    segments: list[str | Cell]
    runs: dict[str, FrameworkRun]
    settings: dict[str, Any]
    out_dir: Path

    @property
    def policies(self) -> list[str]:
        """Every ``results`` key, in the order the chapter made them."""
        names: list[str] = []
        for run in self.runs.values():
            names.extend(n for n in run.results if n not in names)
        return names


def _settings(data: str, epochs: int | None, limit: int | None,
              num_it: int | None) -> dict[str, Any]:
    if not isinstance(data, str) or data.strip().lower().replace(
            "_", "-") not in DATASET_NAMES:
        raise ValueError(f"data must be one of {', '.join(DATASET_NAMES)}, "
                         f"got {data!r}")
    settings: dict[str, Any] = {"DATA": data}
    if epochs is not None:
        settings["NUM_EPOCHS"] = check.integer("epochs", epochs, 1)
    if limit is not None:
        settings["LIMIT"] = check.integer("limit", limit, 1)
    if num_it is not None:
        settings["NUM_IT"] = check.integer("num_it", num_it, 6)
    return settings


def run_chapter(out_dir: str | os.PathLike, data: str = "digits",
                epochs: int | None = None,
                frameworks: Sequence[str] | str | None = None, *,
                limit: int | None = None, num_it: int | None = None,
                chapter: str | os.PathLike | None = None,
                log: Callable[[str], Any] | None = print) -> ChapterRun:
    """Run the chapter in each framework, saving the cells' figures under
    ``out_dir/figures``.

    Args:
        out_dir: output directory (created).
        data: ``'digits'`` (offline) or ``'fashion-mnist'``.
        epochs: ``NUM_EPOCHS`` (None: the chapter's 30).
        frameworks: d2l names or aliases (None: every installed one).
        limit: ``LIMIT``, images per split (None: the chapter's, all).
        num_it: ``NUM_IT``, updates of the finder (None: the chapter's).
        chapter: the Markdown file (default :data:`DEFAULT_CHAPTER`).
        log: progress lines (None: quiet).
    """
    settings = _settings(data, epochs, limit, num_it)
    chosen = check_frameworks(frameworks)
    path = Path(chapter) if chapter is not None else DEFAULT_CHAPTER
    if not path.is_file():
        raise FileNotFoundError(
            f"chapter {str(path)!r} not found; it ships in the source tree "
            f"(examples/lr_scheduling.md): pass chapter=PATH")
    text = path.read_text(encoding="utf-8")
    segments = parse_chapter(text)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = {}
    for fw in chosen:
        if log is not None:
            log(f"== {LABELS[fw]}")
        runs[fw] = execute(text, fw, settings, out / "figures",
                           chapter_name=path.name, log=log)
    return ChapterRun(path, segments, runs, settings, out)


# ---------------------------------------------------------- comparisons

def _steps_per_epoch(rec: Recorder) -> float:
    epochs = len(rec.epochs)
    return len(rec) / epochs if epochs else 1.0


def comparison_figures(run: ChapterRun, out_dir: str | os.PathLike
                       ) -> list[tuple[str, Path]]:
    """Figures across frameworks, from each framework's ``results``:

    * ``schedules.png``: the learning rate of every update of every
      policy, as the optimizer applied it (first framework), against
      epochs;
    * ``policy-<name>.png``: per policy, four panels (rate per update,
      training loss, training accuracy and test accuracy per epoch), one
      line per framework.

    Returns ``[(title, path)]``.
    """
    plt = _pyplot()
    from ..plot import save_figure
    figure_dir = Path(out_dir) / "figures"
    made: list[tuple[str, Path]] = []
    policies = run.policies
    if not policies:
        return made
    first = {p: next(r.results[p] for r in run.runs.values()
                     if p in r.results) for p in policies}
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, rec in first.items():
        ax.plot(rec.steps / _steps_per_epoch(rec), rec.lrs, label=name)
    ax.set(xlabel="epoch", ylabel="learning rate (applied)", yscale="log",
           title="learning rate of every update")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", ncol=2)
    path = figure_dir / "schedules.png"
    save_figure(fig, str(path))
    plt.close(fig)
    made.append(("Learning rate of every update, per policy", path))

    styles = {"mxnet": "-", "pytorch": "--", "tensorflow": ":",
              "jax": "-."}
    for name in policies:
        fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
        for fw, fw_run in run.runs.items():
            got = fw_run.results.get(name)
            if got is None:
                continue
            style, label = styles[fw], LABELS[fw]
            axes[0].plot(got.steps / _steps_per_epoch(got), got.lrs, style,
                         label=label)
            epochs = got.epoch_column("epoch")
            for ax, key in zip(axes[1:], ("train_loss", "train_acc",
                                          "test_acc"), strict=True):
                ax.plot(epochs, got.epoch_column(key), style, marker="o",
                        markersize=3, label=label)
        for ax, ylabel in zip(axes, ("learning rate", "train loss",
                                     "train acc", "test acc"), strict=True):
            ax.set(xlabel="epoch", ylabel=ylabel)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize="small")
        fig.suptitle(name)
        path = figure_dir / f"policy-{name}.png"
        save_figure(fig, str(path))
        plt.close(fig)
        shown = ", ".join(LABELS[fw] for fw in run.runs)
        made.append((f"{name}: {shown}", path))
    return made


def _metric(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def summary_table(run: ChapterRun) -> str:
    """Markdown table of the last epoch of every run: policy, framework,
    train loss, train accuracy, test accuracy, seconds per epoch."""
    lines = ["| policy | framework | train loss | train acc | test acc "
             "| s/epoch |", "|---|---|---|---|---|---|"]
    for name in run.policies:
        for fw, fw_run in run.runs.items():
            rec = fw_run.results.get(name)
            if rec is None or not rec.epochs:
                continue
            last = rec.epochs[-1]
            times = rec.epoch_column("time")
            secs = f"{np.nanmean(times):.1f}" if np.isfinite(times).any() \
                else "-"
            lines.append(f"| {name} | {LABELS[fw]} | "
                         f"{_metric(last['train_loss'])} | "
                         f"{_metric(last['train_acc'])} | "
                         f"{_metric(last['test_acc'])} | {secs} |")
    return "\n".join(lines)


def write_summary(run: ChapterRun, out_dir: str | os.PathLike) -> Path:
    """``summary.md``, atomically: :func:`summary_table` with a title."""
    path = Path(out_dir) / "summary.md"
    write_text(path, f"# Learning-rate chapter: the last epoch of "
                             f"every run\n\n{summary_table(run)}\n")
    return path


def write_results(run: ChapterRun, out_dir: str | os.PathLike) -> Path:
    """``results.json``, atomically: the settings and, per framework and
    policy, the recorder (:meth:`Recorder.to_dict`)."""
    path = Path(out_dir) / "results.json"
    payload = {"settings": run.settings,
               "runs": {fw: {name: rec.to_dict()
                             for name, rec in r.results.items()}
                        for fw, r in run.runs.items()}}
    write_text(path, json.dumps(payload, allow_nan=False) + "\n")
    return path


# ---------------------------------------------------------------- report

def _cite(match: re.Match) -> str:
    """d2l's ``:cite:`Loshchilov.Hutter.2016``` as readable text."""
    texts = []
    for key in match.group("keys").split(","):
        parts = key.strip().split(".")
        year = parts.pop() if parts and parts[-1].isdigit() else ""
        if "ea" in parts:
            who = f"{parts[0]} et al."
        elif len(parts) > 1:
            who = ", ".join(parts[:-1]) + f" and {parts[-1]}"
        else:
            who = parts[0] if parts else key
        texts.append((who, year))
    if match.group("kind") == "citet":
        return "; ".join(f"{w} ({y})" if y else w for w, y in texts)
    return "(" + "; ".join(f"{w}, {y}" if y else w for w, y in texts) + ")"


def _prose(text: str) -> str:
    """d2l markup -> plain Markdown."""
    text = "".join(line for line in text.splitlines(keepends=True)
                   if not _LABEL.match(line))
    text = _CITE.sub(_cite, text)
    return _NUMREF.sub(r"\1", text)


def _signature(output: CellOutput) -> tuple:
    """Outputs with equal signatures are shown once."""
    digests = tuple(hashlib.sha256(p.read_bytes()).hexdigest()
                    for p in output.figures)
    return output.stdout, digests


def _output_markdown(output: CellOutput, out_dir: Path, label: str
                     ) -> list[str]:
    parts = []
    if output.stdout.strip():
        parts.append(f"```text\n{output.stdout.rstrip()}\n```\n\n")
    for j, path in enumerate(output.figures):
        rel = Path(os.path.relpath(path, out_dir)).as_posix()
        parts.append(f"![{label}, figure {j + 1}]({rel})\n\n")
    return parts


def _cell_markdown(cell: Cell, run: ChapterRun, out_dir: Path
                   ) -> list[str]:
    outputs = {fw: next((o for o in r.outputs if o.cell.index == cell.index),
                        None) for fw, r in run.runs.items()}
    ran = {fw: o for fw, o in outputs.items() if o is not None}
    code = f"```python\n{cell.code.rstrip()}\n```\n\n"
    names = ", ".join(LABELS[fw] for fw in cell.tabs)
    if not ran:
        return [f"*{names} (not run here)*\n\n", code]
    parts = []
    if cell.is_all or len(cell.tabs) > 1:
        parts += [f"*{'All frameworks' if cell.is_all else names}*\n\n",
                  code]
        groups: dict[tuple, list[str]] = {}
        for fw, output in ran.items():
            groups.setdefault(_signature(output), []).append(fw)
        for fws in groups.values():
            body = _output_markdown(ran[fws[0]], out_dir,
                                    ", ".join(LABELS[f] for f in fws))
            if body and len(ran) > 1:
                parts.append(f"Output ({', '.join(LABELS[f] for f in fws)})"
                             f":\n\n")
            parts += body
        return parts
    for fw, output in ran.items():
        parts += [f"**{LABELS[fw]}**\n\n", code]
        parts += _output_markdown(output, out_dir, LABELS[fw])
    return parts


def write_report(run: ChapterRun, figures: Sequence[tuple[str, Path]],
                 out_dir: str | os.PathLike,
                 filename: str = "report.md") -> Path:
    """Write the report (Markdown with relative links to the PNGs) to
    ``out_dir/filename``, atomically.

    It is the chapter with d2l markup made plain: each cell's code, then
    its output (``#@tab all`` outputs identical in every framework are
    shown once), then a table of the final metrics and the
    ``figures`` from :func:`comparison_figures`.
    """
    out = Path(out_dir)
    settings = ", ".join(f"{k}={v!r}" for k, v in run.settings.items())
    timing = ", ".join(f"{LABELS[fw]} {r.seconds:.0f} s"
                       for fw, r in run.runs.items())
    header = (f"> Rendered by unisched from `{run.chapter.name}` with "
              f"{settings}; frameworks run: {timing}.  Cells tagged "
              f"`#@tab all` ran in every framework; their outputs are "
              f"shown once where the frameworks agree.\n\n")
    parts: list[str] = []
    placed = False
    for segment in run.segments:
        if isinstance(segment, Cell):
            parts += _cell_markdown(segment, run, out)
            continue
        text = _prose(segment)
        if not placed:
            title = re.search(r"^# .*\n", text, flags=re.M)
            if title is not None:
                text = text[:title.end()] + "\n" + header + \
                    text[title.end():]
            else:
                text = header + text
            placed = True
        parts.append(text)
    if run.policies:
        parts.append("\n## Across Frameworks\n\nThe last epoch of every "
                     "run:\n\n" + summary_table(run) + "\n\n")
        for caption, path in figures:
            rel = Path(os.path.relpath(path, out)).as_posix()
            parts.append(f"**{caption}**\n\n![{caption}]({rel})\n\n")
    path = out / filename
    write_text(path, "".join(parts))
    return path


def render_chapter(out_dir: str | os.PathLike, *args: Any,
                   **options: Any) -> Path:
    """Run the chapter in each framework and write ONE report,
    ``out_dir/report.md`` (Markdown; its PNGs in ``out_dir/figures``).

    Arguments as for :func:`run_chapter`; ``epochs=None`` keeps the
    chapter's 30 epochs (on ``'digits'`` a few minutes per framework).
    Returns the report's path.

    Example (trains, so not run as a doctest)::

        render_chapter("out/chapter", epochs=2, limit=512,
                       frameworks="pytorch")
        # PosixPath('out/chapter/report.md')
    """
    run = run_chapter(out_dir, *args, **options)
    figures = comparison_figures(run, out_dir)
    return write_report(run, figures, out_dir)
