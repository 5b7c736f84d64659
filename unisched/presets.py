"""Named schedules: the d2l learning-rate chapter's experiments as specs.

The chapter trains for 30 epochs; its schedules count epochs in the
PyTorch/TensorFlow tabs and updates in the MXNet tab.  Here each is one
spec, to be used per epoch (``unit='epoch'`` / :func:`unisched.epochwise`)
or per update, the same way in every framework.
"""
from __future__ import annotations

from .base import Schedule
from .spec import parse

#: the chapter's policies, in the order the chapter introduces them
D2L_CHAPTER: dict[str, str] = {
    "constant": "constant(base_lr=0.3)",
    "square_root": "square_root(base_lr=0.3)",
    "factor": "factor(step=1, factor=0.9, stop_factor_lr=0.01, "
              "base_lr=2.0)",
    "multi_factor": "multi_factor(step=[15, 30], factor=0.5, base_lr=0.5)",
    "cosine": "cosine(max_update=20, base_lr=0.5, final_lr=0.01)",
    "cosine_warmup": "cosine(max_update=20, base_lr=0.5, final_lr=0.01, "
                     "warmup_steps=5)",
}


def d2l_chapter() -> dict[str, Schedule]:
    """The chapter's schedules, built: ``{name: schedule}``."""
    return {name: parse(spec) for name, spec in D2L_CHAPTER.items()}
