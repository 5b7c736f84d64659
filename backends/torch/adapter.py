"""PyTorch adapter: drive ``torch.optim`` param groups from a schedule.

:func:`bind` implements the adapter contract (``backends/_contract.py``:
the options, attributes, checkpoints and errors every backend shares).
:class:`LRScheduler` is a real ``torch.optim.lr_scheduler.LRScheduler``
subclass (so Lightning, Hugging Face ``Trainer`` and hand-written loops
accept it) that writes ``group['lr'] = multiplier * sched(k)`` in closed
form: nothing is computed from the previous rate, so resuming, jumping and
re-loading are exact.

The k-th optimizer update (k = 0, 1, ...) uses ``sched(k)``: PyTorch's
``last_epoch == k`` while update k runs, as with PyTorch's own schedulers
when ``scheduler.step()`` follows ``optimizer.step()``.
"""
from __future__ import annotations

import numbers
import warnings
import weakref
from typing import Any, Mapping, Sequence

import torch
from torch.optim import Optimizer
from torch.optim import lr_scheduler as _tl
from unisched import _validate as check
from unisched._cache import BLOCK, StepCache  # noqa: F401 (public)
from unisched.base import Schedule

from .. import _contract as contract

#: Tag stored in every state dict; bumped when the layout changes.
STATE_FORMAT = "unisched.torch.LRScheduler/2"

# Param-group entries that are bookkeeping, not hyperparameters.
_NOT_HPARAMS = {"lr", "initial_lr", "max_lr", "min_lr", "max_momentum",
                "base_momentum", "params", "param_names"}
# Where the adapter keeps its reference on the optimizer (a weakref).
_ATTR = "_unisched_adapter"


def _spellings(optimizer: Optimizer) -> dict[str, str]:
    """Canonical name -> name, for every numeric hyperparameter all param
    groups have (``betas`` is offered as ``beta1`` / ``beta2``)."""
    names = None
    for group in optimizer.param_groups:
        here = set()
        for key, value in group.items():
            if key in _NOT_HPARAMS or isinstance(value, bool):
                continue
            if key == "betas":
                here.update(("beta1", "beta2"))
            elif isinstance(value, (numbers.Real, torch.Tensor)):
                here.add(key)
        names = here if names is None else names & here
    return {name: name for name in sorted(names or ())}


def _where(name: str) -> tuple[str, int | None]:
    """The param-group key (and ``betas`` index) of a canonical name."""
    if name in ("beta1", "beta2"):
        return "betas", int(name[-1]) - 1
    return name, None


def _get(group: dict, key: str, index: int | None) -> Any:
    value = group[key] if index is None else group[key][index]
    return float(value) if isinstance(value, torch.Tensor) else value


def _snapshot(group: dict) -> dict[str, Any]:
    """A group's hyperparameters as plain values: a tensor ``lr`` is
    filled in place later, so its value is copied, not the tensor."""
    out = {}
    for key, value in group.items():
        if key == "betas":
            out[key] = tuple(_get(group, key, i) for i in range(len(value)))
        elif key not in ("params", "param_names"):
            out[key] = _get(group, key, None)
    return out


def _set(group: dict, key: str, index: int | None, value: float) -> None:
    """``group[key] = value`` (or one entry of ``betas``), filling tensors
    in place as PyTorch's schedulers do, so capturable / fused optimizers
    keep their tensor."""
    if index is None:
        old = group[key]
        if type(old) is not float and isinstance(old, torch.Tensor):
            old.fill_(value)
        else:
            group[key] = value
        return
    betas = group[key]
    if isinstance(betas[index], torch.Tensor):
        betas[index].fill_(value)
    else:
        group[key] = tuple(value if i == index else b
                           for i, b in enumerate(betas))


class LRScheduler(_tl.LRScheduler):
    """Set each param group's ``lr`` (and other hyperparameters) from
    unisched schedules, in closed form.

    While update ``k`` runs (``k`` = ``last_epoch`` = ``updates_done``),
    param group ``i`` holds::

        lr_i = multipliers[i] * sched(j)     j = k, or k // steps_per_epoch
        h    = hparams[h](j)                 every other hyperparameter h

    Construction sets ``k = 0`` (the groups hold ``sched(0)`` at once);
    each ``step()`` advances ``k`` by one.  The call order is PyTorch's::

        sch = bind("cosine(max_update=1000, base_lr=0.1)", opt)
        for batch in data:
            loss(model, batch).backward()
            opt.step()        # update k uses sched(k)
            opt.zero_grad()
            sch.step()        # now the groups hold sched(k + 1)

    Calling ``sch.step()`` before the first ``opt.step()`` skips
    ``sched(0)``; it is warned about with PyTorch's ``UserWarning`` (not
    an error: AMP's ``GradScaler`` legitimately skips ``opt.step()``).

    The options are the contract's (``backends/_contract.py``); here:
    ``unit='epoch'`` without ``steps_per_epoch`` means ``step()`` is called
    once per epoch (PyTorch's per-epoch style) and epoch ``e`` uses
    ``sched(e)``; with it, ``step()`` follows every update.  ``hparams``
    takes ``momentum``, ``beta1`` / ``beta2`` (Adam's ``betas``),
    ``weight_decay`` and any other numeric group entry (``eps``,
    ``dampening``, ...).  ``last_epoch`` (PyTorch's meaning, ``n - 1``
    starts at update ``n``) is kept for PyTorch code; prefer
    ``load_state_dict``.  SGD built with ``momentum=0`` can be driven: it
    creates its buffer at the first update with momentum != 0.

    Rates come from ``sched.values`` over aligned blocks of :data:`BLOCK`
    updates (the same formula, vectorized), so ``step()`` is a list
    look-up and a few dict stores.

    Example:
        >>> import torch, unisched
        >>> w = torch.nn.Parameter(torch.zeros(1))
        >>> opt = torch.optim.SGD([w], lr=1.0)
        >>> sch = LRScheduler(opt, unisched.ExponentialScheduler(1.0, 0.5))
        >>> lrs = []
        >>> for _ in range(3):
        ...     lrs.append(opt.param_groups[0]["lr"])
        ...     opt.step()
        ...     sch.step()
        >>> lrs, sch.updates_done
        ([1.0, 0.5, 0.25], 3)
        >>> sch.unbind(); opt.param_groups[0]["lr"]
        1.0
    """

    def __init__(self, optimizer: Optimizer, sched: Schedule | str | float,
                 *, unit: str = "step", steps_per_epoch: int | None = None,
                 multipliers: Any = None,
                 hparams: Mapping[str, Any] | None = None,
                 momentum: Any = "auto", on_mismatch: str = "error",
                 last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, "
                            f"got {type(optimizer).__module__}."
                            f"{type(optimizer).__qualname__}")
        sched = contract.as_schedule("sched", sched)
        unit, spe = contract.check_unit(unit, steps_per_epoch,
                                        spe_required=False)
        self.on_mismatch = check.choice("on_mismatch", on_mismatch,
                                        contract.MISMATCH_POLICIES)
        self._spellings = _spellings(optimizer)
        planned = contract.plan_hparams(sched, hparams, momentum,
                                        self._spellings,
                                        type(optimizer).__name__)
        binding = contract.Binding(sched, planned, contract.
                                   check_multipliers(multipliers), unit, spe)
        if isinstance(last_epoch, bool) or not isinstance(
                last_epoch, numbers.Integral) or last_epoch < -1:
            raise ValueError(f"last_epoch must be an integer >= -1, got "
                             f"{last_epoch!r}")
        self.optimizer = optimizer  # what _factors needs; set again below
        factors = self._factors(binding.multipliers)
        # Every check passed: take the optimizer over.
        previous = getattr(optimizer, _ATTR, lambda: None)()
        if previous is not None and previous.bound:
            previous.unbind()
        self._own = [_snapshot(g) for g in optimizer.param_groups]
        self._had_initial = ["initial_lr" in g
                             for g in optimizer.param_groups]
        self._driven: set[tuple[str, int | None]] = set()
        self._kept = None
        if binding.multipliers is None:
            self._kept = contract.kept_ratios(
                [_get(g, "lr", None) for g in optimizer.param_groups])
            factors = self._kept
        self._init_last_epoch = int(last_epoch)
        self._use(binding, factors)
        self.bound = True
        setattr(optimizer, _ATTR, weakref.ref(self))
        # The base class records initial_lr, patches optimizer.step to
        # detect the call order and calls _initial_step().
        super().__init__(optimizer)

    # -- what it drives ---------------------------------------------------
    def _factors(self, multipliers: Any) -> list[float] | None:
        """One rate factor per param group (checks names and counts)."""
        groups = self.optimizer.param_groups
        if isinstance(multipliers, Mapping):
            if any("param_names" not in g for g in groups):
                raise TypeError(
                    "multipliers as a dict pattern -> factor needs the "
                    "parameter names, which this optimizer's param groups "
                    "do not keep; build it from model.named_parameters() "
                    "(groups then hold 'param_names'), or give multipliers "
                    "as a list, one factor per group")
            return contract.resolve_multipliers(
                multipliers, [list(g["param_names"]) for g in groups])
        return contract.resolve_multipliers(multipliers,
                                            [()] * len(groups))

    def _use(self, binding: contract.Binding, factors: Any) -> None:
        """Drive ``binding`` with per-group ``factors``; precompute what
        step() writes, so the per-update work is look-ups and stores."""
        self._binding = binding
        self._factors_now = factors
        self._plan = [_where(name) for name in binding.hparams]
        self._driven.update(self._plan)
        self._cache = StepCache([binding.schedule,
                                 *binding.hparams.values()])
        self._spe = binding.steps_per_epoch

    schedule = property(lambda self: self._binding.schedule)
    hparams = property(lambda self: dict(self._binding.hparams))
    multipliers = property(lambda self: self._binding.multipliers)
    unit = property(lambda self: self._binding.unit)
    steps_per_epoch = property(lambda self: self._binding.steps_per_epoch)
    updates_done = property(lambda self: self.last_epoch,
                            doc="The position: updates (or, stepped per "
                                "epoch, epochs) done.")

    def _initial_step(self) -> None:
        self._step_count = 0
        self.last_epoch = self._init_last_epoch
        self.step()

    # -- evaluation -------------------------------------------------------
    def get_lr(self) -> list[float]:
        """The rates for the current position: ``multipliers[i] *
        sched(j)``; pure, safe to call at any time."""
        k = self.last_epoch
        lr = self._cache.at(k // self._spe if self._spe else k)[0]
        factors = self._factors_now
        if factors is None:
            return [lr] * len(self.optimizer.param_groups)
        return [f * lr for f in factors]

    _get_closed_form_lr = get_lr

    def _apply(self) -> None:
        k = self.last_epoch
        if self._spe:
            k //= self._spe
        groups = self.optimizer.param_groups
        factors = self._factors_now
        if factors is not None and len(factors) != len(groups):
            raise ValueError(f"the optimizer now has {len(groups)} param "
                             f"groups but multipliers has {len(factors)} "
                             f"entries")
        lr, *hps = self._cache.at(k)
        last = [lr] * len(groups) if factors is None \
            else [f * lr for f in factors]
        for group, value in zip(groups, last):
            if type(group["lr"]) is float:  # inlined _set: the hot path
                group["lr"] = value
            else:
                _set(group, "lr", None, value)
        self._last_lr = last
        for (key, index), value in zip(self._plan, hps):
            for group in groups:
                _set(group, key, index, value)

    def step(self, epoch: int | None = None) -> None:
        """Advance to the next update (or epoch) and write its rate and
        hyperparameters into the param groups; call it after
        ``optimizer.step()``.  ``epoch`` (an integer) jumps to that
        position instead, exactly.  A metric belongs in :meth:`observe`."""
        if not self.bound:
            raise RuntimeError("this LRScheduler was unbound; bind the "
                               "schedule again to drive the optimizer")
        if epoch is not None:
            if isinstance(epoch, bool) or \
                    not isinstance(epoch, numbers.Integral):
                raise TypeError(
                    f"step() takes an integer position (or nothing), got "
                    f"{epoch!r} ({type(epoch).__name__}); to feed a metric "
                    f"to a ReduceOnPlateau schedule call observe(metric)")
            if epoch < 0:
                raise ValueError(f"epoch must be >= 0, got {epoch!r}")
        if self._step_count == 1 and epoch is None:
            # An explicit position cannot skip sched(0) by accident.
            self._warn_call_order()
        self._step_count += 1
        self.last_epoch = self.last_epoch + 1 if epoch is None \
            else int(epoch)
        self._apply()

    def _warn_call_order(self) -> None:
        """PyTorch's check, made on the first step() after construction:
        the optimizer must have stepped before the scheduler."""
        if not hasattr(self.optimizer.step, "_wrapped_by_lr_sched"):
            warnings.warn(
                "optimizer.step() was replaced after the scheduler was "
                "built, so the call order cannot be checked; call "
                "optimizer.step() before scheduler.step()", UserWarning,
                stacklevel=3)
        elif not getattr(self.optimizer, "_opt_called", False):
            warnings.warn(
                "Detected call of `lr_scheduler.step()` before "
                "`optimizer.step()`: call optimizer.step() first, or "
                "update k uses sched(k + 1) and sched(0) is skipped "
                "(harmless only if the optimizer skipped this update on "
                "purpose, as GradScaler does on overflow)", UserWarning,
                stacklevel=3)

    def observe(self, metric: Any) -> bool:
        """Feed a metric to the ``ReduceOnPlateau`` schedule and re-apply
        the rate for the current position at once; True if it was cut."""
        plateau = contract.plateau(self.schedule, "this LRScheduler")
        value = contract.metric_value(metric)
        k = self.last_epoch
        cut = plateau.observe(value, step=k // self._spe if self._spe
                              else k)
        if self.bound:
            self._apply()
        return cut

    # -- checkpoints ------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain data (``torch.load(weights_only=True)`` reads it; no code
        is pickled): the contract's checkpoint, tagged
        :data:`STATE_FORMAT`."""
        return contract.state_dict(STATE_FORMAT, self._binding,
                                   self.last_epoch)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict` output: validate all of it,
        settle a different schedule as ``on_mismatch`` says, then write
        the rate and hyperparameters of the restored position into the
        param groups (a fresh optimizer whose own state was not loaded
        gets them too)."""
        ckpt = contract.check_state(state_dict, STATE_FORMAT)
        binding = contract.reconcile(self._binding, ckpt, self.on_mismatch)
        factors = self._factors_now
        if binding is not self._binding:
            unknown = sorted(set(binding.hparams) - set(self._spellings))
            if unknown:
                raise ValueError(
                    f"the checkpoint drives {unknown}, which "
                    f"{type(self.optimizer).__name__} does not have; it "
                    f"has {sorted(self._spellings)}")
            factors = self._factors(binding.multipliers)
            if binding.multipliers is None:
                factors = self._kept
        contract.restore_plateau(binding, ckpt)
        if binding is not self._binding:
            self._use(binding, factors)
        self.last_epoch = ckpt.updates_done
        if self.bound:
            self._apply()

    # -- detaching --------------------------------------------------------
    def unbind(self) -> None:
        """Give every group back its own ``lr`` and every hyperparameter
        this adapter drove (as they were at bind) and detach: a later
        ``step()`` raises ``RuntimeError``."""
        if not self.bound:
            return
        self.bound = False
        for group, own, had in zip(self.optimizer.param_groups, self._own,
                                   self._had_initial):
            for key, index in {("lr", None), *self._driven}:
                _set(group, key, index, _get(own, key, index))
            if not had:
                group.pop("initial_lr", None)
        ref = getattr(self.optimizer, _ATTR, None)
        if ref is not None and ref() is self:
            delattr(self.optimizer, _ATTR)

    def __repr__(self) -> str:
        extra = ""
        if self.multipliers is not None:
            extra += f", multipliers={self.multipliers!r}"
        elif self._kept is not None:
            extra += (f", multipliers={self._kept!r} (kept from the "
                      f"optimizer's groups)")
        if self.hparams:
            extra += ", hparams={" + ", ".join(
                f"{k!r}: {v.to_spec()!r}"
                for k, v in self.hparams.items()) + "}"
        if self.unit != "step":
            extra += (f", unit={self.unit!r}, steps_per_epoch="
                      f"{self.steps_per_epoch!r}")
        state = "" if self.bound else ", unbound"
        return (f"LRScheduler({type(self.optimizer).__name__}, "
                f"{self.schedule.to_spec()!r}{extra}, updates_done="
                f"{self.last_epoch}{state})")


def bind(sched: Schedule | str | float, optimizer: Optimizer, *,
         unit: str = "step", steps_per_epoch: int | None = None,
         multipliers: Sequence[float] | Mapping[str, float] | None = None,
         hparams: Mapping[str, Any] | None = None, momentum: Any = "auto",
         on_mismatch: str = "error") -> LRScheduler:
    """Drive ``optimizer`` with ``sched`` (the adapter contract, see
    ``backends/_contract.py``); returns an :class:`LRScheduler`, whose
    ``step()`` follows ``optimizer.step()``.  Binding an optimizer again
    unbinds its previous adapter first.

    >>> import torch
    >>> w = torch.nn.Parameter(torch.zeros(1))
    >>> opt = torch.optim.SGD([w], lr=1, momentum=0.9)
    >>> sch = bind("one_cycle(max_lr=0.5, max_update=10)", opt)
    >>> round(opt.param_groups[0]["lr"], 9), opt.param_groups[0]["momentum"]
    (0.02, 0.95)
    >>> sch = bind("cosine(max_update=10, base_lr=0.5)", opt)
    >>> opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"]
    (0.5, 0.9)
    """
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"bind needs a torch.optim.Optimizer as target, "
                        f"got {type(optimizer).__module__}."
                        f"{type(optimizer).__qualname__}")
    return LRScheduler(optimizer, sched, unit=unit,
                       steps_per_epoch=steps_per_epoch,
                       multipliers=multipliers, hparams=hparams,
                       momentum=momentum, on_mismatch=on_mismatch)
