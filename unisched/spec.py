"""Schedule specs: ``"cosine(max_update=20, base_lr=0.5)"`` -> schedule.

A small recursive-descent parser (nothing is ever evaluated as code)::

    spec  := call
    call  := NAME '(' [arg (',' arg)* [',']] ')'
    arg   := NAME '=' value | value
    value := call | NUMBER | STRING | '[' [value (',' value)*] ']'
           | True | False | None | NAME        (a bare NAME is a string)

``NAME`` in a call is a registered schedule name (``cosine``,
``warmup``, ...) or its class name (``CosineScheduler``).
"""
from __future__ import annotations

import re
from typing import Any

from .base import MAX_DEPTH, Schedule, build, registered

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z_0-9-]*)
  | (?P<string>'[^'\\]*'|"[^"\\]*")
  | (?P<punct>[()\[\],=])
""", re.VERBOSE)


#: the longest number a spec may write (a float needs no more than ~25)
MAX_NUMBER = 40
_CONTEXT = 30


class SpecError(ValueError):
    """A schedule spec that does not parse."""


def excerpt(text: str, pos: int) -> str:
    """The part of ``text`` around ``pos`` that an error quotes (a long
    spec is not echoed whole)."""
    start, end = max(pos - _CONTEXT, 0), pos + _CONTEXT
    head = "..." if start > 0 else ""
    tail = "..." if end < len(text) else ""
    return f"{head}{text[start:end]}{tail}"


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise SpecError(f"unexpected character {text[pos]!r} at "
                            f"position {pos} in spec "
                            f"{excerpt(text, pos)!r}")
        kind = m.lastgroup
        assert kind is not None  # every alternative of _TOKEN is named
        if kind == "number" and m.end() - pos > MAX_NUMBER:
            raise SpecError(f"number of {m.end() - pos} characters at "
                            f"position {pos} (at most {MAX_NUMBER}) in spec "
                            f"{excerpt(text, pos)!r}")
        if kind != "space":
            tokens.append((kind, m.group(), pos))
        pos = m.end()
    tokens.append(("end", "", len(text)))
    return tokens


def _class_names() -> dict[str, str]:
    names = {}
    for name, cls in registered().items():
        names[name] = name
        names[cls.__name__] = name
    return names


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0
        self.names = _class_names()

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def take(self, value: str | None = None, kind: str | None = None
             ) -> tuple[str, str, int]:
        tok = self.tokens[self.i]
        if (value is not None and tok[1] != value) or \
                (kind is not None and tok[0] != kind):
            want = repr(value) if value is not None else kind
            got = repr(tok[1]) if tok[0] != "end" else "end of spec"
            raise SpecError(f"expected {want} at position {tok[2]}, got "
                            f"{got} in spec {self.where(tok[2])!r}")
        self.i += 1
        return tok

    def where(self, pos: int) -> str:
        return excerpt(self.text, pos)

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            pos = self.peek()[2]
            raise SpecError(f"spec nested deeper than {MAX_DEPTH} calls "
                            f"or lists at position {pos} in spec "
                            f"{self.where(pos)!r}")

    def call(self) -> Schedule:
        self.enter()
        _, name, pos = self.take(kind="name")
        if name not in self.names:
            valid = ", ".join(sorted(registered()))
            raise SpecError(f"unknown schedule {name[:40]!r} at position "
                            f"{pos} in spec {self.where(pos)!r}; valid names: "
                            f"{valid}")
        self.take("(")
        args, kwargs = [], {}
        while self.peek()[1] != ")":
            kind, word, here = self.peek()
            if kind == "name" and self.tokens[self.i + 1][1] == "=":
                self.i += 2
                if word in kwargs:
                    raise SpecError(f"argument {word!r} given twice at "
                                    f"position {here} in spec "
                                    f"{self.where(here)!r}")
                kwargs[word] = self.value()
            elif kwargs:
                raise SpecError(f"positional argument after keyword "
                                f"arguments at position {here} in spec "
                                f"{self.where(here)!r}")
            else:
                args.append(self.value())
            if self.peek()[1] != ")":
                self.take(",")
        self.take(")")
        self.depth -= 1
        return build(self.names[name], tuple(args), kwargs)

    def value(self) -> Any:
        kind, word, _ = self.peek()
        if kind == "number":
            self.i += 1
            is_int = re.fullmatch(r"[-+]?\d+", word) is not None
            return int(word) if is_int else float(word)
        if kind == "string":
            self.i += 1
            return word[1:-1]
        if word == "[":
            self.enter()
            self.i += 1
            items = []
            while self.peek()[1] != "]":
                items.append(self.value())
                if self.peek()[1] != "]":
                    self.take(",")
            self.take("]")
            self.depth -= 1
            return items
        if kind == "name":
            if self.tokens[self.i + 1][1] == "(":
                return self.call()
            self.i += 1
            return {"True": True, "False": False,
                    "None": None}.get(word, word)
        self.take(kind="value")  # raises with the position


def parse(spec: str) -> Schedule:
    """Build a schedule from a spec string.

    >>> parse("warmup(factor(step=10, factor=0.5, base_lr=1.0),"
    ...       " warmup_steps=3)")(1)
    0.3333333333333333
    """
    if isinstance(spec, Schedule):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"spec must be a string, got {spec!r}")
    parser = _Parser(spec)
    sched = parser.call()
    parser.take(kind="end")
    return sched
