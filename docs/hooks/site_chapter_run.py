"""Where the chapter page's outputs come from.

1. The latest ``unisched chapter`` output (its ``--out`` folder, by
   default ``out/chapter``; ``make docs CHAPTER_OUT=DIR`` or the
   environment variable ``UNISCHED_CHAPTER_OUT`` names another), if it
   has a ``report.md`` newer than the chapter: its ``figures/`` (named
   ``<framework>-cell<NN>-<j>.png`` by :func:`unisched.app.chapter.execute`)
   and the report's "Across Frameworks" section.
2. Otherwise a run made at build time on the embedded digits data with
   :data:`SETTINGS` (one epoch, 1024 images) in every installed framework,
   in a subprocess (``python site_chapter_run.py OUT``), cached under
   ``build/docs/chapter`` with a key over the chapter, the settings, the
   frameworks and the source of ``unisched`` and its backends: it runs
   again only when one of them changes.  This run also keeps every cell's
   printed output (``outputs.json``), which a report does not hold apart.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("mkdocs.hooks.chapter")

#: The build-time run: small, on the data that ships with scikit-learn
#: (4 full batches: a smaller last one costs JAX a second compilation of
#: each training's step).
SETTINGS = {"data": "digits", "epochs": 1, "limit": 1024, "num_it": 24}
# XLA's CPU compiler without its costly optimizations: each JAX training
# of the chapter compiles its own step, and on these tiny runs compiling
# is most of the time (measured: half the CPU time per training).
FAST_XLA = ("--xla_backend_optimization_level=0 "
            "--xla_llvm_disable_expensive_passes=true")
_FIGURE = re.compile(r"^(?P<fw>[a-z]+)-cell(?P<index>\d+)-(?P<j>\d+)\.png$")
_ACROSS = "\n## Across Frameworks\n"


@dataclass
class ChapterOutputs:
    """A chapter run's products, indexed for the page."""

    root: Path
    source: str
    figures: dict[tuple[str, int], list[Path]] = field(default_factory=dict)
    stdout: dict[tuple[str, int], str] = field(default_factory=dict)
    across: str = ""

    @property
    def all_figures(self) -> list[Path]:
        """Every PNG under ``root/figures``."""
        return sorted((self.root / "figures").glob("*.png"))


def load(root: Path, source: str) -> ChapterOutputs:
    """Index the figures, the printed outputs (if kept) and the report's
    comparison section of a chapter output folder."""
    out = ChapterOutputs(root, source)
    for path in out.all_figures:
        match = _FIGURE.match(path.name)
        if match is not None:
            key = (match["fw"], int(match["index"]))
            out.figures.setdefault(key, []).append(path)
    for paths in out.figures.values():
        paths.sort(key=lambda p: int(_FIGURE.match(p.name)["j"]))
    kept = root / "outputs.json"
    if kept.is_file():
        for fw, cells in json.loads(kept.read_text("utf-8")).items():
            for index, text in cells.items():
                out.stdout[(fw, int(index))] = text
    report = (root / "report.md").read_text("utf-8")
    if _ACROSS in report:
        out.across = report[report.index(_ACROSS):]
    return out


def _digest(paths: list[Path], base: Path) -> str:
    sha = hashlib.sha256()
    for path in paths:
        sha.update(path.relative_to(base).as_posix().encode())
        sha.update(path.read_bytes())
    return sha.hexdigest()


def cache_key(repo: Path, chapter: Path, frameworks: list[str]) -> dict:
    """What the build-time run depends on."""
    sources = sorted(p for d in ("unisched", "backends")
                     for p in (repo / d).rglob("*.py"))
    return {"chapter": _digest([chapter], chapter.parent),
            "settings": SETTINGS, "frameworks": frameworks,
            "sources": _digest(sources, repo)}


def latest_report(repo: Path, chapter: Path) -> Path | None:
    """The ``unisched chapter`` output folder to use, or None."""
    named = os.environ.get("UNISCHED_CHAPTER_OUT", "out/chapter")
    folder = (repo / named).resolve()
    report = folder / "report.md"
    if not report.is_file():
        return None
    if report.stat().st_mtime < chapter.stat().st_mtime:
        log.info("chapter: %s is older than the chapter; running it "
                 "instead", report)
        return None
    return folder


def outputs(repo: Path, build: Path) -> ChapterOutputs:
    """The outputs to show (see the module docstring)."""
    from unisched.app.chapter import DEFAULT_CHAPTER, check_frameworks

    folder = latest_report(repo, DEFAULT_CHAPTER)
    if folder is not None:
        return load(folder, f"the latest `unisched chapter` output "
                            f"(`{os.path.relpath(folder, repo)}`)")
    frameworks = check_frameworks(None)
    cached = build / "chapter"
    key = cache_key(repo, DEFAULT_CHAPTER, frameworks)
    key_file = cached / "key.json"
    if not (key_file.is_file()
            and json.loads(key_file.read_text("utf-8")) == key):
        log.info("chapter: running it at build time (%s) in %s",
                 ", ".join(frameworks), cached)
        env = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} "
                                         f"{FAST_XLA}".strip())
        subprocess.run([sys.executable, __file__, str(cached)], check=True,
                       cwd=repo, env=env)
        key_file.write_text(json.dumps(key), encoding="utf-8")
    settings = ", ".join(f"{k}={v}" for k, v in SETTINGS.items())
    return load(cached, f"a run made while building this site "
                        f"({settings}; {', '.join(frameworks)})")


def run(out_dir: str) -> None:
    """Run the chapter into ``out_dir`` as a consistent set: figures,
    ``report.md`` and ``outputs.json`` (each cell's printed output)."""
    from unisched._io import output_set, write_text
    from unisched.app.report import (
        comparison_figures,
        run_chapter,
        write_report,
    )

    with output_set(out_dir) as stage:
        chapter = run_chapter(stage, SETTINGS["data"], SETTINGS["epochs"],
                              limit=SETTINGS["limit"],
                              num_it=SETTINGS["num_it"])
        write_report(chapter, comparison_figures(chapter, stage), stage)
        printed = {fw: {str(o.cell.index): o.stdout for o in r.outputs}
                   for fw, r in chapter.runs.items()}
        write_text(Path(stage) / "outputs.json", json.dumps(printed) + "\n")


if __name__ == "__main__":
    run(sys.argv[1])
