"""Named schedules: the d2l learning-rate chapter's experiments as specs,
and Hugging Face's schedule functions by their names.

The chapter trains for 30 epochs; its schedules count epochs in the
PyTorch/TensorFlow tabs and updates in the MXNet tab.  Here each is one
spec, to be used per epoch (``unit='epoch'`` / :func:`unisched.epochwise`)
or per update, the same way in every framework.

Hugging Face ``transformers`` names its schedules in ``get_scheduler``
(``TrainingArguments.lr_scheduler_type``).  Each is a spec name here,
``hf_`` + that name, taking the schedule function's own arguments and the
optimizer's rate as ``base_lr``; the schedule gives the rate
``transformers`` 5.24's ``LambdaLR`` gives at every update, past
``num_training_steps`` included::

    unisched.parse("hf_cosine(base_lr=3e-4, num_warmup_steps=100, "
                   "num_training_steps=1000)")

=============================  ===========================================
``get_scheduler`` name         unisched
=============================  ===========================================
``linear``                     ``hf_linear``
``cosine``                     ``hf_cosine``
``cosine_with_restarts``       ``hf_cosine_with_restarts``
``polynomial``                 ``hf_polynomial``
``constant``                   ``constant`` (the rate, unchanged)
``constant_with_warmup``       ``hf_constant_with_warmup``
``inverse_sqrt``               ``hf_inverse_sqrt``
``reduce_lr_on_plateau``       ``reduce_on_plateau`` (PyTorch's defaults)
``cosine_with_min_lr``         ``hf_cosine_with_min_lr``
``cosine_warmup_with_min_lr``  ``hf_cosine_warmup_with_min_lr``
``warmup_stable_decay``        ``hf_warmup_stable_decay``
``greedy``                     none: it raises the rate on a metric
=============================  ===========================================

Each named schedule is its expansion into unisched's own schedules
(``sched.expanded``: a cosine with ``periodic=True``, a warmup, a join...)
under a name that keeps Hugging Face's arguments in specs and configs.
"""
from __future__ import annotations

from .base import Schedule
from .hf import (  # noqa: F401  (re-exported; registers hf_* names)
    HFConstantWithWarmup,
    HFCosine,
    HFCosineWarmupWithMinLR,
    HFCosineWithMinLR,
    HFCosineWithRestarts,
    HFInverseSqrt,
    HFLinear,
    HFPolynomial,
    HFWarmupStableDecay,
)
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
