"""mkdocs hooks: what the site generates at build time.

* ``unisched-plot`` blocks in the pages become PNGs drawn from the
  schedules themselves (:mod:`site_plots`);
* ``chapter.md``: the d2l chapter with a tab per framework, and its
  figures (:mod:`site_chapter`, :mod:`site_chapter_run`);
* ``api/index.md``: the API reference of every name in
  ``unisched.__all__`` (:mod:`site_api`);
* ``<!-- readme: SECTION -->`` in a page becomes that section of the
  README (so the quick start is written once);
* TeX math becomes MathML (:mod:`site_math`), so no math script is
  fetched.

Generated files are written under ``build/docs/`` (never committed) and
added to the site's files; nothing is downloaded.
"""
from __future__ import annotations

import logging
import posixpath
import re
import shutil
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

import site_api
import site_chapter
import site_chapter_run
import site_math
import site_plots

log = logging.getLogger("mkdocs.hooks.unisched")
PLOT_DIR = "plots"
_README = re.compile(r"^<!-- readme: (?P<title>.+?) -->$", re.M)
_state: dict = {}


def _package_mirror(repo: Path, build: Path) -> None:
    """``build/pkg/unisched``: the package as a wheel lays it out, made of
    symlinks (``unisched/`` plus ``backends/`` as ``unisched/backends``).
    mkdocstrings reads the sources there (``paths`` in mkdocs.yml): griffe
    does not follow setuptools' editable mapping of a subpackage."""
    mirror = build / "pkg" / "unisched"
    shutil.rmtree(mirror.parent, ignore_errors=True)
    mirror.mkdir(parents=True)
    for entry in (repo / "unisched").iterdir():
        if entry.name != "__pycache__":
            (mirror / entry.name).symlink_to(entry)
    (mirror / "backends").symlink_to(repo / "backends")


@event_priority(100)  # before mkdocstrings loads anything
def on_config(config: MkDocsConfig) -> MkDocsConfig:
    repo = Path(config.config_file_path).resolve().parent
    _state.update(repo=repo, build=repo / "build" / "docs")
    _package_mirror(repo, _state["build"])
    return config


def _add(files: Files, config: MkDocsConfig, uri: str, path: Path) -> None:
    existing = files.get_file_from_path(uri)
    if existing is not None:
        files.remove(existing)
    files.append(File.generated(config, uri, abs_src_path=str(path)))


def _plots(files: Files, config: MkDocsConfig) -> None:
    """Draw every page's plots (once per distinct request)."""
    plot_dir = _state["build"] / PLOT_DIR
    drawn = set()
    for page in files.documentation_pages():
        for _, request in site_plots.find(page.content_string,
                                          page.src_uri):
            path = plot_dir / request.name
            if request.name not in drawn:
                site_plots.draw(request, path)
                drawn.add(request.name)
                _add(files, config, f"{PLOT_DIR}/{request.name}", path)
    log.info("plots: %d drawn from the schedules", len(drawn))


def on_files(files: Files, config: MkDocsConfig) -> Files:
    _plots(files, config)
    from unisched.app.chapter import DEFAULT_CHAPTER

    outputs = site_chapter_run.outputs(_state["repo"], _state["build"])
    text = site_chapter.page(DEFAULT_CHAPTER.read_text("utf-8"), outputs)
    files.append(File.generated(config, "chapter.md", content=text))
    for uri, path in site_chapter.figure_files(outputs):
        _add(files, config, uri, path)
    files.append(File.generated(config, "api/index.md",
                                content=site_api.page()))
    return files


def readme_section(title: str) -> str:
    """The body of the README's ``## title`` section, its links to the
    site's own pages made relative to the site."""
    text = (_state["repo"] / "README.md").read_text("utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(?P<body>.*?)(?=^## |\Z)",
                      text, re.M | re.S)
    if match is None:
        raise ValueError(f"README.md has no section '## {title}'")
    return match["body"].strip().replace("](docs/pages/", "](")


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig,
                     files: Files) -> str:
    markdown = _README.sub(lambda m: readme_section(m["title"]), markdown)
    found = site_plots.find(markdown, page.file.src_uri)
    for match, request in reversed(found):
        here = posixpath.dirname(page.file.src_uri)
        link = posixpath.relpath(f"{PLOT_DIR}/{request.name}", here or ".")
        image = (f"![{', '.join(label for label, _ in request.curves)}]"
                 f"({link})\n\n{site_plots.caption(request)}")
        markdown = markdown[:match.start()] + image + markdown[match.end():]
    return markdown


def on_page_content(html: str, page: Page, config: MkDocsConfig,
                    files: Files) -> str:
    return site_math.to_mathml(html)
