"""TeX math as MathML, converted at build time.

``pymdownx.arithmatex`` (generic mode) wraps ``$...$`` in
``<span class="arithmatex">\\(...\\)</span>`` and ``$$...$$`` in
``<div class="arithmatex">\\[...\\]</div>``.  A math script from a CDN
cannot load offline, so :func:`to_mathml` replaces each wrapper with
MathML (``latex2mathml``), which browsers render natively: no script, no
network.
"""
from __future__ import annotations

import html
import re

from latex2mathml.converter import convert

_SPAN = re.compile(r'<(?P<tag>span|div) class="arithmatex">\s*'
                   r'\\(?P<open>[(\[])(?P<tex>.*?)\\[)\]]\s*</(?P=tag)>',
                   re.S)


def _replace(match: re.Match) -> str:
    tex = html.unescape(match.group("tex")).strip()
    block = match.group("open") == "["
    try:
        mathml = convert(tex, display="block" if block else "inline")
    except Exception as err:  # latex2mathml raises many types
        raise ValueError(f"cannot convert the math {tex!r} to MathML: "
                         f"{err}") from err
    return f'<div class="math">{mathml}</div>' if block else mathml


def to_mathml(page_html: str) -> str:
    """``page_html`` with every arithmatex wrapper replaced by MathML."""
    return _SPAN.sub(_replace, page_html)
