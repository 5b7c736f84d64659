"""The API reference of ``unisched``, generated from ``unisched.__all__``.

Each public name gets a mkdocstrings entry (``::: unisched.NAME``, whose
HTML anchor is ``unisched.NAME``), grouped by the module that defines it,
so a name added to ``__all__`` appears on the site without editing a page.
"""
from __future__ import annotations

import importlib

# Section titles for the defining modules, in page order.
SECTIONS = {
    "unisched.base": "The schedule base class and configurations",
    "unisched.spec": "Spec strings",
    "unisched.schedules": "Schedules",
    "unisched.cyclic": "Cyclic schedules",
    "unisched.plateau": "Reduce on plateau",
    "unisched.combinators": "Combinators",
    "unisched": "Binding to a framework",
}


def public_names(package: str = "unisched") -> list[str]:
    """``package.__all__``, which must exist and list only defined names."""
    module = importlib.import_module(package)
    names = getattr(module, "__all__", None)
    if not names:
        raise ValueError(f"{package}.__all__ is missing or empty")
    missing = [n for n in names if not hasattr(module, n)]
    if missing:
        raise ValueError(f"{package}.__all__ lists undefined names "
                         f"{missing}")
    return list(names)


def grouped(package: str = "unisched") -> dict[str, list[str]]:
    """``{defining module: [names]}``, modules in :data:`SECTIONS` order
    (others after them, alphabetically), names in ``__all__`` order."""
    module = importlib.import_module(package)
    groups: dict[str, list[str]] = {}
    for name in public_names(package):
        owner = getattr(getattr(module, name), "__module__", package)
        groups.setdefault(owner, []).append(name)
    order = list(SECTIONS) + sorted(set(groups) - set(SECTIONS))
    return {m: groups[m] for m in order if m in groups}


def page(package: str = "unisched") -> str:
    """The Markdown of the reference page."""
    groups = grouped(package)
    count = sum(len(v) for v in groups.values())
    parts = [f"# API reference: `{package}`\n\n"
             f"Every name in `{package}.__all__` ({count} names), grouped "
             f"by the module that defines it.  This page is generated at "
             f"build time from `{package}.__all__` and the docstrings.  "
             f"The framework backends and the tools have their own "
             f"pages.\n\n"]
    for owner, names in groups.items():
        title = SECTIONS.get(owner, f"`{owner}`")
        listing = ", ".join(f"[`{n}`][{package}.{n}]" for n in names)
        parts.append(f"## {title}\n\n*Defined in `{owner}`:* {listing}\n\n")
        parts += [f"::: {package}.{name}\n    options:\n"
                  f"      heading_level: 3\n\n" for name in names]
    return "".join(parts)
