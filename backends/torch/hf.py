"""Hugging Face ``transformers`` schedules: the ``LambdaLR`` its schedule
functions return, converted to the equal unisched schedule.

Every ``get_*_schedule*`` function of ``transformers.optimization``
(``get_scheduler``'s names included) returns a ``LambdaLR`` whose
``lr_lambda`` is a ``functools.partial`` of a module-level function with
keyword arguments only (``get_constant_schedule``: the function itself).
The function is identified as an object: it must be the attribute of
``transformers.optimization`` it is named after, so a look-alike from
elsewhere is refused.  Nothing is evaluated; the keywords become the
arguments of the named schedule of :mod:`unisched.presets`, with the
group's initial rate as ``base_lr``.

=========================================  ================================
``lr_lambda`` (``_get_`` ... ``_lambda``)  unisched
=========================================  ================================
``constant``                               ``constant``
``constant_schedule_with_warmup_lr``       ``hf_constant_with_warmup``
``linear_schedule_with_warmup_lr``         ``hf_linear``
``cosine_schedule_with_warmup_lr``         ``hf_cosine``; with
                                           ``min_lr_rate``:
                                           ``hf_cosine_with_min_lr``
``cosine_with_hard_restarts_schedule_``    ``hf_cosine_with_restarts``
``with_warmup_lr``
``polynomial_decay_schedule_with_``        ``hf_polynomial``
``warmup_lr``
``inverse_sqrt_schedule_lr``               ``hf_inverse_sqrt``
``cosine_with_min_lr_schedule_with_``      ``hf_cosine_warmup_with_min_lr``
``warmup_lr_rate``
``wsd_scheduler``                          ``hf_warmup_stable_decay``
=========================================  ================================

``get_reduce_on_plateau_schedule`` returns PyTorch's ``ReduceLROnPlateau``
(use :class:`unisched.ReduceOnPlateau`) and ``get_greedy_schedule`` a
``GreedyLR``, which raises the rate on a metric: neither is a schedule.
"""
from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from unisched import hf as named
from unisched.base import Schedule
from unisched.schedules import ConstantScheduler

MODULE = "transformers.optimization"


def _polynomial(base: float, kw: dict[str, Any]) -> Schedule:
    # lr = base * ((lr_init - lr_end) * x + lr_end) / lr_init, lr_init the
    # optimizer's default rate: relative to base, lr_end scales with it.
    kw = dict(kw)
    lr_init = kw.pop("lr_init")
    if base != lr_init and "lr_end" in kw:
        kw["lr_end"] = base * kw["lr_end"] / lr_init
    return named.HFPolynomial(base, **kw)


def _cosine(base: float, kw: dict[str, Any]) -> Schedule:
    # one function serves get_cosine_schedule_with_warmup (no
    # min_lr_rate) and get_cosine_with_min_lr_schedule_with_warmup
    if "min_lr_rate" in kw:
        return named.HFCosineWithMinLR(base, **kw)
    return named.HFCosine(base, **kw)


def _preset(cls: type) -> Callable[[float, dict[str, Any]], Schedule]:
    return lambda base, kw: cls(base, **kw)


#: the lr_lambda's function name -> (base rate, keywords) -> schedule
CONVERTERS: dict[str, Callable[[float, dict[str, Any]], Schedule]] = {
    "_get_constant_lambda": lambda base, kw: ConstantScheduler(base, **kw),
    "_get_constant_schedule_with_warmup_lr_lambda":
        _preset(named.HFConstantWithWarmup),
    "_get_linear_schedule_with_warmup_lr_lambda": _preset(named.HFLinear),
    "_get_cosine_schedule_with_warmup_lr_lambda": _cosine,
    "_get_cosine_with_hard_restarts_schedule_with_warmup_lr_lambda":
        _preset(named.HFCosineWithRestarts),
    "_get_polynomial_decay_schedule_with_warmup_lr_lambda": _polynomial,
    "_get_inverse_sqrt_schedule_lr_lambda": _preset(named.HFInverseSqrt),
    "_get_cosine_with_min_lr_schedule_with_warmup_lr_rate_lambda":
        _preset(named.HFCosineWarmupWithMinLR),
    "_get_wsd_scheduler_lambda": _preset(named.HFWarmupStableDecay),
}


def _describe(lr_lambda: Any) -> str:
    func = getattr(lr_lambda, "func", lr_lambda)
    name = f"{getattr(func, '__module__', '?')}." \
           f"{getattr(func, '__qualname__', type(func).__name__)}"
    if isinstance(lr_lambda, functools.partial):
        return f"functools.partial({name}, {lr_lambda.keywords})"
    return name


def _identify(lr_lambda: Any) -> tuple[str, dict[str, Any]]:
    """(function name, keywords) of a transformers schedule lambda;
    ``ValueError`` naming anything else."""
    func, args, keywords = lr_lambda, (), {}
    if isinstance(lr_lambda, functools.partial):
        func, args = lr_lambda.func, lr_lambda.args
        keywords = dict(lr_lambda.keywords)
    name = getattr(func, "__name__", "")
    module = sys.modules.get(MODULE)
    known = (name in CONVERTERS and module is not None
             and getattr(module, name, None) is func)
    if not known:
        raise ValueError(
            f"LambdaLR: lr_lambda {_describe(lr_lambda)} is code-defined, "
            f"not one of {MODULE}'s schedule functions "
            f"({', '.join(CONVERTERS)}); its rate cannot be read without "
            f"running it: write it as a unisched schedule")
    if args:
        raise ValueError(f"LambdaLR: lr_lambda {_describe(lr_lambda)} has "
                         f"positional arguments {args!r}; transformers "
                         f"passes keywords only")
    return name, keywords


def lambda_lr(obj: Any) -> Schedule:
    """The unisched schedule of a ``LambdaLR`` made by a ``transformers``
    schedule function: the named schedule of :mod:`unisched.presets`
    (``hf_cosine``, ...), whose rate at update ``k`` is the
    ``LambdaLR``'s, ``base_lr * lr_lambda(k)``, also past
    ``num_training_steps``.  Every group must share the lambda and the
    base rate (else ``ValueError``: bind one schedule with
    ``multipliers``)."""
    from .native import _one  # native imports this module lazily
    found = [_identify(lam) for lam in obj.lr_lambdas]
    if any(f != found[0] for f in found):
        shown = [_describe(lam) for lam in obj.lr_lambdas]
        raise ValueError(f"LambdaLR: the param groups have different "
                         f"lr_lambdas {shown}; from_native returns one "
                         f"schedule")
    name, keywords = found[0]
    base = _one(obj, "base_lrs", obj.base_lrs)
    try:
        return CONVERTERS[name](base, keywords)
    except (TypeError, ValueError) as err:
        raise ValueError(f"LambdaLR: lr_lambda "
                         f"{_describe(obj.lr_lambdas[0])} cannot be "
                         f"converted: {err}") from None
