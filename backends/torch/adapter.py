"""PyTorch adapter: :func:`bind` implements the adapter contract
(``backends/_contract.py``) with :class:`LRScheduler`, a real
``torch.optim.lr_scheduler.LRScheduler`` that writes the rates in closed
form, so resuming, jumping and re-loading are exact.  Update k
(k = 0, 1, ...) uses ``sched(k)``: PyTorch's ``last_epoch == k`` while it
runs, ``scheduler.step()`` following ``optimizer.step()``.

Trainers that step the scheduler themselves take it as it is:

- Lightning: ``return [opt], adapter.lightning_schedulers(monitor=...)``
  from ``configure_optimizers`` (``interval='step'``; a ReduceOnPlateau
  fed the logged ``monitor`` once per epoch through ``step(metric)``).
- Hugging Face: ``Trainer(optimizers=(opt, adapter))``.

Both step it once per optimizer update (so gradient accumulation counts
updates) and save and load its ``state_dict`` in their checkpoints."""
from __future__ import annotations

import numbers
import warnings
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor
from torch.optim import Optimizer
from torch.optim import lr_scheduler as _tl

from unisched import _validate as check
from unisched._cache import BLOCK, StepCache  # noqa: F401 (public)
from unisched.base import Schedule

from .. import _contract as contract
from .groups import read, spellings, where, write

#: Tag stored in every state dict; bumped when the layout changes.
STATE_FORMAT = "unisched.torch.LRScheduler/2"

# Where the adapter keeps its reference on the optimizer (a weakref).
_ATTR = "_unisched_adapter"


def _check_optimizer(obj: Any) -> None:
    if not isinstance(obj, Optimizer):
        raise TypeError(f"bind needs a torch.optim.Optimizer as target, "
                        f"got {type(obj).__module__}."
                        f"{type(obj).__qualname__}")


class LRScheduler(contract.Attributes, _tl.LRScheduler):
    """The param groups' ``lr`` (and other hyperparameters) from unisched
    schedules, in closed form.  While update ``k`` runs (``k`` =
    ``last_epoch`` = ``updates_done``), param group ``i`` holds::

        lr_i = multipliers[i] * sched(j)     j = k, or k // steps_per_epoch
        h    = hparams[h](j)                 every other hyperparameter h

    Construction sets ``k = 0`` (``sched(0)`` at once); ``step()``, called
    after ``opt.step()``, advances it by one.  Calling it before the first
    ``opt.step()`` skips ``sched(0)``: PyTorch's ``UserWarning`` says so
    (not an error: AMP's ``GradScaler`` skips ``opt.step()`` on purpose).

    Options: see :func:`bind`; ``last_epoch`` has PyTorch's meaning
    (``n - 1`` starts at update ``n``; prefer ``load_state_dict``).
    Values come from ``sched.values`` over aligned blocks of
    :data:`BLOCK` updates, so ``step()`` is look-ups and dict stores.

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
        _check_optimizer(optimizer)
        sched = contract.as_schedule("sched", sched)
        unit, spe = contract.check_unit(unit, steps_per_epoch,
                                        spe_required=False)
        self.on_mismatch = check.choice("on_mismatch", on_mismatch,
                                        contract.MISMATCH_POLICIES)
        self._spellings = spellings(optimizer)
        planned = contract.plan_hparams(sched, hparams, momentum,
                                        self._spellings,
                                        type(optimizer).__name__)
        binding = contract.Binding(sched, planned, contract.
                                   check_multipliers(multipliers), unit, spe)
        last_epoch = check.integer("last_epoch", last_epoch, -1)
        self.optimizer, self._kept = optimizer, None  # for _factors
        factors = self._factors(binding.multipliers)
        # Every check passed: take the optimizer over.
        previous = getattr(optimizer, _ATTR, lambda: None)()
        if previous is not None and previous.bound:
            previous.unbind()
        self._own = [{(k, i): read(g, k, i) for k, i in [
            ("lr", None), *map(where, self._spellings)]}
            for g in optimizer.param_groups]
        self._had_initial = ["initial_lr" in g
                             for g in optimizer.param_groups]
        self._driven: set[tuple[str, int | None]] = set()
        if binding.multipliers is None:
            factors = self._kept = contract.kept_ratios(
                [read(g, "lr", None) for g in optimizer.param_groups])
        self._init_last_epoch = last_epoch
        self._use(binding, factors)
        self.bound = True
        setattr(optimizer, _ATTR, weakref.ref(self))
        # The base class records initial_lr, patches optimizer.step to
        # detect the call order and calls _initial_step().
        super().__init__(optimizer)

    def _factors(self, multipliers: Any) -> list[float] | None:
        """One rate factor per param group (checks names and counts);
        without multipliers, the ratios kept from the groups."""
        groups = self.optimizer.param_groups
        if multipliers is None:
            return self._kept
        if isinstance(multipliers, Mapping):
            if any("param_names" not in g for g in groups):
                raise TypeError(
                    "multipliers as a dict pattern -> factor needs "
                    "parameter names, which this optimizer's groups do not "
                    "keep: build it from model.named_parameters() (its "
                    "groups then hold 'param_names'), or give a list")
            return contract.resolve_multipliers(
                multipliers, [list(g["param_names"]) for g in groups])
        return contract.resolve_multipliers(multipliers, [()] * len(groups))

    def _use(self, binding: contract.Binding, factors: Any) -> None:
        """Drive ``binding`` with per-group ``factors``; precompute what
        step() writes, so the per-update work is look-ups and stores."""
        self._binding = binding
        self._factors_now = factors
        self._plan = [where(name) for name in binding.hparams]
        self._driven.update(self._plan)
        self._cache = StepCache([binding.schedule,
                                 *binding.hparams.values()])

    updates_done = property(lambda self: self.last_epoch,
                            doc="The position: updates (or, stepped per "
                                "epoch, epochs) done.")

    def _initial_step(self) -> None:
        self._step_count = 0
        self.last_epoch = self._init_last_epoch
        self.step()

    def get_lr(self) -> list[float | Tensor]:  # torch's type; floats
        """The rates for the current position: ``multipliers[i] *
        sched(j)``; pure, safe to call at any time."""
        return list(self._values()[0])

    _get_closed_form_lr = get_lr

    def _values(self) -> tuple[list[float], list[float]]:
        """The groups' rates and the hyperparameters, at the position."""
        lr, *hps = self._cache.at(self._binding.index(self.last_epoch))
        factors = self._factors_now
        count = len(self.optimizer.param_groups)
        if factors is None:
            return [lr] * count, hps
        if len(factors) != count:
            raise ValueError(f"the optimizer now has {count} param groups "
                             f"but multipliers has {len(factors)} entries")
        return [f * lr for f in factors], hps

    def _apply(self) -> None:
        last, hps = self._values()
        groups = self.optimizer.param_groups
        for group, value in zip(groups, last, strict=True):
            if type(group["lr"]) is float:  # inlined _set: the hot path
                group["lr"] = value
            else:
                write(group, "lr", None, value)
        self._last_lr = list(last)  # torch's type: list[float | Tensor]
        for (key, index), value in zip(self._plan, hps, strict=True):
            for group in groups:
                write(group, key, index, value)

    def step(self, epoch: Any = None) -> None:
        """Advance to the next update (or epoch) and write its rate and
        hyperparameters into the param groups; call it after
        ``optimizer.step()``.  An integer ``epoch`` jumps to that position
        instead, exactly.  Any other number (a float, a tensor) is a
        metric, as for PyTorch's ``ReduceLROnPlateau.step(metrics)``:
        :meth:`observe` it, without advancing (how Lightning feeds a
        monitored metric, see :meth:`lightning_schedulers`)."""
        if not self.bound:
            raise RuntimeError("this LRScheduler was unbound; bind the "
                               "schedule again to drive the optimizer")
        if epoch is not None:
            if isinstance(epoch, bool) or \
                    not isinstance(epoch, numbers.Integral):
                self.observe(epoch)  # TypeError unless ReduceOnPlateau
                return
            if epoch < 0:
                raise ValueError(f"epoch must be >= 0, got {epoch!r}")
        if self._step_count == 1 and epoch is None:
            # An explicit position cannot skip sched(0) by accident.
            self._warn_call_order()
        self._step_count += 1
        self.last_epoch = self.last_epoch + 1 if epoch is None else int(epoch)
        self._apply()

    def _warn_call_order(self) -> None:
        """PyTorch's check, made on the first step() after construction:
        the optimizer must have stepped before the scheduler."""
        if not hasattr(self.optimizer.step, "_wrapped_by_lr_sched"):
            why = ("optimizer.step() was replaced after the scheduler was "
                   "built, so the call order cannot be checked")
        elif not getattr(self.optimizer, "_opt_called", False):
            why = ("Detected call of `lr_scheduler.step()` before "
                   "`optimizer.step()`: update k uses sched(k + 1) and "
                   "sched(0) is skipped (harmless only if the optimizer "
                   "skipped this update on purpose, as GradScaler does)")
        else:
            return
        warnings.warn(f"{why}; call optimizer.step() first", UserWarning,
                      stacklevel=3)

    def observe(self, metric: Any) -> bool:
        """Feed a metric to the ``ReduceOnPlateau`` schedule and re-apply
        the rate for the current position at once; True if it was cut."""
        plateau = contract.plateau(self.schedule, "this LRScheduler")
        value = contract.metric_value(metric)
        cut = plateau.observe(value, step=self._binding.index(self.last_epoch))
        if self.bound:
            self._apply()
        return cut

    def lightning_schedulers(self, monitor: str | None = None, *,
                             strict: bool = True) -> list[dict[str, Any]]:
        """The scheduler configs for Lightning's ``configure_optimizers``
        (``return [opt], adapter.lightning_schedulers(...)``): this
        adapter stepped after every optimizer update (``interval='step'``;
        with ``accumulate_grad_batches`` that is once per update, not per
        batch) and, with ``monitor``, the same adapter fed the logged
        metric ``monitor`` once per epoch, after validation
        (``reduce_on_plateau``: Lightning calls ``step(metric)``).
        ``strict``: Lightning's (a missing metric raises)."""
        configs = [{"scheduler": self, "interval": "step"}]
        if monitor is not None:
            if not isinstance(monitor, str) or not monitor:
                raise TypeError(f"monitor must be the name of a logged "
                                f"metric (str), got {monitor!r}")
            contract.plateau(self.schedule, "this LRScheduler")
            configs.append({"scheduler": self, "interval": "epoch",
                            "monitor": monitor, "reduce_on_plateau": True,
                            "strict": check.boolean("strict", strict)})
        return configs

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
            contract.plan_hparams(binding.schedule, binding.hparams, False,
                                  self._spellings,
                                  type(self.optimizer).__name__)
            factors = self._factors(binding.multipliers)
        contract.restore_plateau(binding, ckpt)
        if binding is not self._binding:
            self._use(binding, factors)
        self.last_epoch = ckpt.updates_done
        if self.bound:
            self._apply()

    def unbind(self) -> None:
        """Give every group back its own ``lr`` and every hyperparameter
        this adapter drove (as they were at bind) and detach: a later
        ``step()`` raises ``RuntimeError``."""
        if not self.bound:
            return
        self.bound = False
        for group, own, had in zip(self.optimizer.param_groups, self._own,
                                   self._had_initial, strict=True):
            for key, index in {("lr", None), *self._driven}:
                write(group, key, index, own[key, index])
            if not had:
                group.pop("initial_lr", None)
        ref = getattr(self.optimizer, _ATTR, None)
        if ref is not None and ref() is self:
            delattr(self.optimizer, _ATTR)

    def __repr__(self) -> str:
        what = self._binding.describe()
        if self._kept is not None:
            what += (f", multipliers={self._kept!r} (kept from the "
                     f"optimizer's groups)")
        return (f"LRScheduler({type(self.optimizer).__name__}, {what}, "
                f"updates_done={self.last_epoch}"
                f"{'' if self.bound else ', unbound'})")


def bind(sched: Schedule | str | float, optimizer: Optimizer, *,
         unit: str = "step", steps_per_epoch: int | None = None,
         multipliers: Sequence[float] | Mapping[str, float] | None = None,
         hparams: Mapping[str, Any] | None = None, momentum: Any = "auto",
         on_mismatch: str = "error") -> LRScheduler:
    """Drive ``optimizer`` with ``sched``: an :class:`LRScheduler`, whose
    ``step()`` follows ``optimizer.step()``.  The options are the
    contract's (``backends/_contract.py``).  Here ``unit='epoch'`` without
    ``steps_per_epoch`` means ``step()`` once per epoch (epoch ``e`` uses
    ``sched(e)``, PyTorch's style); ``hparams`` takes ``momentum``,
    ``beta1`` / ``beta2`` (``betas``), ``weight_decay`` and any numeric
    group entry (``eps``, ``dampening``...); SGD built with
    ``momentum=0`` can be driven.  Binding an optimizer again unbinds its
    previous adapter (which gives back what it drove) first.

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
    _check_optimizer(optimizer)
    return LRScheduler(optimizer, sched, unit=unit,
                       steps_per_epoch=steps_per_epoch,
                       multipliers=multipliers, hparams=hparams,
                       momentum=momentum, on_mismatch=on_mismatch)
