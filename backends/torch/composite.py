"""PyTorch's composite schedulers (``SequentialLR``, ``ChainedScheduler``)
converted from their children.

:data:`COMPOSITE` maps each supported composite type to a converter
``(obj, convert) -> Schedule``, where ``convert(child)`` converts one
child scheduler (``native.from_native``'s own dispatch, carrying its
``horizon``: a ``CosineAnnealingLR`` child rises again past ``T_max``).

What PyTorch 2.13 applies, read from its source and checked step by step
against it (``tests/backends/test_torch_composite.py``):

* ``SequentialLR(opt, schedulers, milestones)`` resets every group's rate
  to ``initial_lr`` and takes the first child's initial step; at update
  ``milestones[i]`` it restarts ``schedulers[i + 1]`` from its closed
  form at step 0 (``_update_lr(0)``), then steps it.  So the rate is
  ``join(children, milestones)``: each later child sees
  ``step - milestone``.
* ``ChainedScheduler(schedulers)`` steps every child on the same rate:
  multiplicative children (each ``lr * f(k) / f(k - 1)``) compose into
  ``initial_lr * f_1(k) * f_2(k) * ...``, a :class:`unisched.Multiply`
  of each child's schedule divided by its base rate.
* The first child's chained form runs from ``initial_lr`` as it is when
  the ``SequentialLR`` is built, which a later-built ``OneCycleLR``
  rewrites (``max_lr / div_factor``): the piece is rescaled to it.
* A composite built as the *first* child of a ``SequentialLR`` is stepped
  by the outer constructor once more than its children were undone: a
  nested ``SequentialLR`` runs one update ahead of its own milestones
  (two when nested twice), and the scheduler running at update 0 takes
  an ordinary (not initial) step 0 — ``ExponentialLR`` applies ``gamma``
  and ``PolynomialLR`` its step-0 ratio once more; ``CosineAnnealingLR``
  there is refused.  A composite anywhere else in a ``SequentialLR``
  makes PyTorch raise ``NotImplementedError`` at its milestone, so it is
  refused.

Every refusal raises ``ValueError`` / ``TypeError`` naming the composite,
the child's index and class, and the reason.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable
from itertools import pairwise
from typing import Any

from torch.optim import lr_scheduler as _tl

import unisched
from unisched.base import Schedule

Converter = Callable[[Any, Callable[[Any], Schedule]], Schedule]
Convert = Callable[[Any], Schedule]

# Children whose chained step multiplies the current rate by the ratio of
# their closed forms, f(k) / f(k - 1): these compose by multiplication.
_MULTIPLICATIVE = (_tl.ConstantLR, _tl.LinearLR, _tl.ExponentialLR,
                   _tl.StepLR, _tl.MultiStepLR, _tl.PolynomialLR)

_NOT_CHAINABLE = {
    _tl.CosineAnnealingLR: "its chained step is recursive, (1 + cos(pi k "
                           "/ T_max)) / (1 + cos(pi (k - 1) / T_max)) * "
                           "(lr - eta_min) + eta_min, with an additive "
                           "restart past T_max: the chain's rate has no "
                           "closed form",
    _tl.SequentialLR: "it restarts its children from their own closed "
                      "forms at its milestones, discarding the factors of "
                      "the schedulers before it",
}
_ABSOLUTE = "it sets the rate outright at every step, discarding the " \
            "factors of the schedulers before it, so the chain's rate " \
            "depends on the order of steps, not a product"


def _where(owner: Any, index: int, child: Any) -> str:
    return (f"{type(owner).__name__}: schedulers[{index}] "
            f"({type(child).__name__})")


def _stepped(owner: Any, index: int, child: Any, piece: Schedule
             ) -> Schedule:
    """``piece`` for a plain child whose step 0 was an ordinary
    ``step()`` (not the initial one): the chained forms that skip only
    their initial step apply their step-0 ratio once."""
    kind = type(child)
    if kind is _tl.CosineAnnealingLR:
        raise ValueError(
            f"{_where(owner, index, child)}: PyTorch gives it an ordinary "
            f"(not initial) step 0 here, which multiplies the rate by "
            f"2 / (1 + cos(pi / T_max)) and keeps that error until "
            f"T_max; make it a top-level SequentialLR's child instead")
    if kind is _tl.ExponentialLR:
        return unisched.scale(piece, float(child.gamma))
    if kind is _tl.PolynomialLR:
        # PyTorch's ratio at last_epoch 0, as it computes it
        total = child.total_iters
        ratio = ((1.0 - 0 / total) / (1.0 - (0 - 1) / total)) ** child.power
        return unisched.scale(piece, float(ratio))
    return piece


def _rebased(owner: Any, index: int, child: Any, piece: Schedule,
             start: float) -> Schedule:
    """``piece`` for a first child whose chained form runs from the rate
    ``start`` (``initial_lr`` when the SequentialLR was built; a later
    ``OneCycleLR`` rewrites it) instead of its own base rate."""
    kind = type(child)
    if kind not in (*_MULTIPLICATIVE, _tl.CosineAnnealingLR):
        return piece  # closed forms: the rate they start from is unused
    base = _base(child)
    if start == base:
        return piece
    if kind is _tl.CosineAnnealingLR:
        # the falling half runs from start; PyTorch's additive step at
        # T_max + 1 puts the rate back on base's curve
        t_max = int(child.T_max)
        head = _guard(owner, index, child, lambda: unisched.CosineScheduler(
            t_max, base_lr=start, final_lr=float(child.eta_min)))
        return unisched.join([head, unisched.shift(piece, t_max + 1)],
                             [t_max + 1])
    if base == 0:
        raise ValueError(f"{_where(owner, index, child)}: its base_lrs are "
                         f"0 but PyTorch runs it from initial_lr {start}")
    return unisched.scale(piece, start / base)


def _guard(owner: Any, index: int, child: Any, build: Callable[[], Any]
           ) -> Schedule:
    try:
        return build()
    except (TypeError, ValueError) as err:
        raise type(err)(f"{_where(owner, index, child)} cannot be "
                        f"converted: {err}") from err


def _base(child: Any) -> float:
    # convert(child) has already checked that its groups share one rate
    return float(child.base_lrs[0])


def _initial_lr(obj: Any) -> float:
    from .native import _one  # native imports this module
    return _one(obj, "initial_lr",
                [g["initial_lr"] for g in obj.optimizer.param_groups])


def _milestones(obj: Any, lead: int) -> list[int]:
    ms = list(obj._milestones)
    for i, m in enumerate(ms):
        if isinstance(m, bool) or not isinstance(m, (int, float)) or \
                not math.isfinite(m) or m != int(m):
            raise ValueError(f"SequentialLR: milestones[{i}] must be an "
                             f"integer to convert, got {m!r}")
    ms = [int(m) for m in ms]
    if any(b < a for a, b in pairwise(ms)):
        raise ValueError(f"SequentialLR: milestones must be sorted (PyTorch "
                         f"bisects them), got {ms}")
    if ms and ms[0] <= lead:
        where = "" if lead == 0 else (
            f" (this SequentialLR is nested as a first child and runs "
            f"{lead} update(s) ahead of its milestones)")
        raise ValueError(f"SequentialLR: milestones[0] must be > {lead} "
                         f"so that schedulers[0] runs at all, got "
                         f"{ms}{where}")
    return ms


def _sequential(obj: Any, convert: Convert, lead: int = 0,
                start: float | None = None) -> Schedule:
    """``obj`` at update ``k`` has ``last_epoch == k + lead``: 0 at the
    top level, one more for each ``SequentialLR`` whose first child it
    is.  ``start``: the rate the first child runs from (the top level's
    ``initial_lr``)."""
    ms = _milestones(obj, lead)
    if start is None:
        start = _initial_lr(obj)
    pieces, boundaries = [], []
    for i, child in enumerate(obj._schedulers):
        if 0 < i < len(ms) and ms[i] == ms[i - 1]:
            continue  # an empty interval: PyTorch never runs this child
        if i == 0:
            pieces.append(_first(obj, child, convert, lead, start))
            continue
        if isinstance(child, (_tl.SequentialLR, _tl.ChainedScheduler)):
            raise ValueError(
                f"{_where(obj, i, child)}: PyTorch restarts it at milestone "
                f"{ms[i - 1]} with _update_lr(0), which a composite "
                f"scheduler does not implement (NotImplementedError); only "
                f"schedulers[0] may be a composite")
        # restarted from its closed form: its own base rate
        pieces.append(_guard(obj, i, child, functools.partial(convert, child)))
        boundaries.append(ms[i - 1] - lead)
    if len(pieces) == 1:
        return pieces[0]
    return unisched.join(pieces, boundaries)


def _first(obj: Any, child: Any, convert: Convert, lead: int,
           start: float) -> Schedule:
    """The child running at update 0: given its initial step at the top
    level, an ordinary step 0 inside a nested first child."""
    if isinstance(child, _tl.SequentialLR):
        return _sequential(child, convert, lead + 1, start)
    if isinstance(child, _tl.ChainedScheduler):
        return _chained(child, convert, start)
    piece = _guard(obj, 0, child, lambda: convert(child))
    if lead > 0:
        piece = _stepped(obj, 0, child, piece)
    return _rebased(obj, 0, child, piece, start)


def _leaves(obj: Any, convert: Convert) -> list[tuple[Any, int, Any]]:
    """(owner, index, child) of every scheduler a chain steps, nested
    chains flattened (they step their children in order, nothing else)."""
    out = []
    for i, child in enumerate(obj._schedulers):
        if isinstance(child, _tl.ChainedScheduler):
            out.extend(_leaves(child, convert))
            continue
        kind = type(child)
        if kind not in _MULTIPLICATIVE:
            if kind not in _NOT_CHAINABLE:
                # what from_native refuses on its own, it says why
                _guard(obj, i, child, functools.partial(convert, child))
            names = ", ".join(k.__name__ for k in _MULTIPLICATIVE)
            raise ValueError(f"{_where(obj, i, child)} cannot be chained "
                             f"in closed form: "
                             f"{_NOT_CHAINABLE.get(kind, _ABSOLUTE)}; "
                             f"chainable: {names}")
        out.append((obj, i, child))
    return out


def _chained(obj: Any, convert: Convert, start: float | None = None
             ) -> Schedule:
    """``rate0 * f_1(k) * f_2(k) * ...``, where ``f_i`` is child ``i``'s
    schedule over its base rate and ``rate0`` the rate before the first
    child was built.  ``start``: the chain is a nested first child, its
    children take an ordinary step 0 from the rate ``start``."""
    leaves = _leaves(obj, convert)
    pieces = []
    for owner, i, child in leaves:
        piece = _guard(owner, i, child, functools.partial(convert, child))
        if start is not None:
            piece = _stepped(owner, i, child, piece)
        pieces.append(piece)
    owner, i, child = leaves[0]
    out = pieces[0] if start is None else \
        _rebased(owner, i, child, pieces[0], start)
    for (_, _, child), piece in zip(leaves[1:], pieces[1:], strict=True):
        base = _base(child)
        if base == 0:  # initial_lr 0: PyTorch multiplies 0 forever
            return unisched.ConstantScheduler(0.0)
        out = unisched.multiply(out, unisched.scale(piece, 1.0 / base))
    if start is None:
        _check_start(obj, leaves, out)
    return out


def _check_start(obj: Any, leaves: list, sched: Schedule) -> None:
    """A chain multiplies whatever rate the optimizer had when its first
    child was built; the conversion assumes that was ``initial_lr``.
    Where the children agree on their position, the rate they applied
    must be the converted one."""
    epochs = {child.last_epoch for _, _, child in leaves}
    if len(epochs) != 1 or min(epochs) < 0:
        return
    step = epochs.pop()
    want = sched(step)
    for g, group in enumerate(obj.optimizer.param_groups):
        got = float(group["lr"])
        if not math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-300):
            raise ValueError(
                f"ChainedScheduler: param group {g} has lr {got!r} at step "
                f"{step}, where a chain started from initial_lr "
                f"{float(group['initial_lr'])!r} gives {want!r}: the "
                f"optimizer's rate when the first child was built was not "
                f"its initial_lr (another scheduler was built on it "
                f"before?), so PyTorch's chain runs from another rate")


COMPOSITE: dict[type, Converter] = {
    _tl.SequentialLR: _sequential,
    _tl.ChainedScheduler: _chained,
}
