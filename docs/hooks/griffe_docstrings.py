"""A griffe extension: the project's docstrings, read as Markdown.

The docstrings are written for ``help()`` and doctest: ``>>>`` examples
in the prose and Sphinx roles (``:class:`Schedule```).  Markdown would
read an example's output ``[1.0, 0.5]`` as a link and a ``>>>`` line as
nested quotes, so before mkdocstrings renders a docstring this extension

* puts every doctest block (from its ``>>>`` line to the next blank or
  less indented line) in a ``pycon`` code fence, where it starts at the
  docstring's margin or right under a section title such as
  ``Example:``; other indented examples (after ``::``) are already
  Markdown code blocks;
* turns ``:role:`target``` into the code span ``target``.

Listed under ``extensions`` in mkdocs.yml; the sources are not changed.
"""
from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|func|meth|attr|data|mod|obj|exc|ref):"
                   r"`~?\.?([^`]+)`")


def markdown_docstring(text: str) -> str:
    """``text`` with its doctests fenced and its roles made code spans
    (tests/docs/test_site.py shows an example)."""
    out: list[str] = []
    margin = None  # the open fence's indentation
    previous = ""
    for line in text.split("\n"):
        indent = len(line) - len(line.lstrip())
        if margin is not None and (not line.strip() or indent < margin):
            out.append(" " * margin + "```")
            margin = None
        if margin is None and line.lstrip().startswith(">>>") and (
                indent == 0 or _title(previous, indent)):
            margin = indent
            out.append(" " * margin + "```pycon")
        out.append(line)
        previous = line
    if margin is not None:
        out.append(" " * margin + "```")
    return _ROLE.sub(r"`\1`", "\n".join(out))


def _title(line: str, indent: int) -> bool:
    """Whether ``line`` is a section title (``Example:``) over a block
    indented by ``indent``."""
    stripped = line.strip()
    return (stripped.endswith(":") and not stripped.endswith("::")
            and len(line) - len(line.lstrip()) < indent)


class MarkdownDocstrings(griffe.Extension):
    """Rewrite each docstring once, when griffe has loaded its object."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_docstring(obj.docstring.value)
