"""PyTorch adapter: drive ``torch.optim`` param groups from a schedule.

:class:`LRScheduler` is a real ``torch.optim.lr_scheduler.LRScheduler``
subclass (so PyTorch Lightning, Hugging Face ``Trainer`` and hand-written
loops accept it) that writes ``group['lr'] = multiplier * sched(k)`` in
closed form: nothing is computed from the previous rate, so resuming,
jumping and re-loading are exact.  :func:`from_native` turns PyTorch's own
schedulers into the equal unisched schedule.

Convention (the one unisched fixes everywhere): the k-th optimizer update
(k = 0, 1, ...) uses ``sched(k)``.  In PyTorch terms ``last_epoch == k``
while update k runs, which is what PyTorch's own schedulers do when
``scheduler.step()`` follows ``optimizer.step()``.

Importing this module imports torch; ``unisched`` itself never does.
"""
from __future__ import annotations

import numbers
import warnings
from typing import Any, Mapping, Sequence

import torch
import unisched
from torch.optim import Optimizer
from torch.optim import lr_scheduler as _tl
from unisched import _validate as check
from unisched._cache import BLOCK, StepCache  # noqa: F401 (public)
from unisched.base import Schedule, from_config

#: Tag stored in every state dict; bumped if the layout ever changes.
STATE_FORMAT = "unisched.torch.LRScheduler/1"

UNITS = ("step", "epoch")

MISMATCH_POLICIES = ("error", "adopt", "keep")

# Param-group entries that are bookkeeping, not hyperparameters.
_NOT_HPARAMS = {"lr", "initial_lr", "max_lr", "min_lr", "max_momentum",
                "base_momentum"}


def _as_schedule(name: str, value: Any, numbers_ok: bool = False
                 ) -> Schedule:
    """A schedule from a schedule, a spec string or (if allowed) a
    number (a constant)."""
    if isinstance(value, Schedule):
        return value
    if isinstance(value, str):
        return unisched.parse(value)
    if numbers_ok and isinstance(value, numbers.Real) \
            and not isinstance(value, bool):
        return unisched.ConstantScheduler(value)
    kinds = "a schedule, a spec string or a number" if numbers_ok \
        else "a unisched schedule or a spec string"
    raise TypeError(f"{name} must be {kinds}, got {value!r} "
                    f"({type(value).__name__})")


def _check_optimizer(optimizer: Any) -> Optimizer:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got "
                        f"{type(optimizer).__module__}."
                        f"{type(optimizer).__qualname__}")
    return optimizer


def _available_hparams(optimizer: Optimizer) -> list[str]:
    """The numeric hyperparameters every param group has (``betas`` is
    offered as ``beta1`` / ``beta2``)."""
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
    return sorted(names or ())


def _set(group: dict, key: str, index: int | None, value: float) -> None:
    """``group[key] = value`` (or one entry of the ``betas`` tuple),
    filling tensors in place as PyTorch's schedulers do, so capturable /
    fused optimizers keep their tensor."""
    if index is None:
        old = group[key]
        if type(old) is float:  # the common case, without Tensor's slow
            group[key] = value  # isinstance check
        elif isinstance(old, torch.Tensor):
            old.fill_(value)
        else:
            group[key] = value
        return
    betas = group[key]
    if type(betas[index]) is not float and \
            isinstance(betas[index], torch.Tensor):
        betas[index].fill_(value)
    else:
        group[key] = tuple(value if i == index else b
                           for i, b in enumerate(betas))


class LRScheduler(_tl.LRScheduler):
    """Set each param group's ``lr`` from a unisched schedule, in closed
    form.

    After update ``k`` (``k = 0, 1, ...`` optimizer updates done so far),
    param group ``i`` holds::

        lr_i(k) = multipliers[i] * sched(k)
        h(k)    = hparams[h](k)         for every other hyperparameter h

    ``k`` is PyTorch's ``last_epoch``.  Construction sets ``k = 0`` (the
    groups hold ``sched(0)`` right away); each ``scheduler.step()``
    advances ``k`` by one.  The call order is PyTorch's documented one::

        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        sch = LRScheduler(opt, "cosine(max_update=1000, base_lr=0.1)")
        for batch in data:
            loss(model, batch).backward()
            opt.step()        # update k uses sched(k)
            opt.zero_grad()
            sch.step()        # now the groups hold sched(k + 1)

    Calling ``sch.step()`` before the first ``opt.step()`` skips
    ``sched(0)`` and shifts every later update by one; this is detected
    on the first call and warned about with PyTorch's own ``UserWarning``
    (it cannot be an error: AMP's ``GradScaler`` legitimately skips
    ``opt.step()`` on overflow while the schedule goes on).

    Args:
        optimizer: the ``torch.optim.Optimizer`` to drive.
        sched: a unisched schedule or a spec string (``unisched.parse``).
        unit: ``'step'`` (default): ``step()`` is called once per optimizer
            update and ``sched`` counts updates.  ``'epoch'``: ``step()``
            is called once per epoch and epoch ``e`` uses ``sched(e)`` (the
            d2l chapter's PyTorch style); update ``k`` then uses
            ``epochwise(sched, steps_per_epoch)(k)``.  The arithmetic is
            the same; the unit is recorded so that a checkpoint cannot be
            resumed with the other meaning of the counter.
        multipliers: one factor per param group (discriminative learning
            rates); group ``i`` gets ``multipliers[i] * sched(k)``.
            Default: 1 for every group.  Applies to ``lr`` only.
        hparams: schedules (or spec strings, or numbers) for other
            hyperparameters, by name: any numeric entry of the param
            groups (``'momentum'``, ``'weight_decay'``, ``'eps'``, ...)
            and ``'beta1'`` / ``'beta2'`` for the entries of Adam's
            ``betas``.  The same value goes to every group.
            Default (``None``): if ``sched.momentum`` is not None and
            ``cycle_momentum`` is true, drive ``beta1`` (optimizers with
            ``betas``) or ``momentum`` with it, as PyTorch's ``CyclicLR``
            and ``OneCycleLR`` do; ``hparams={}`` drives nothing else.
        cycle_momentum: see ``hparams``; consulted only when ``hparams`` is
            None.  An optimizer without ``momentum`` or ``betas`` (say
            Adagrad) with a momentum-cycling schedule raises unless this is
            False, as in PyTorch.
        last_epoch: PyTorch's meaning: the index of the last update seen;
            ``-1`` (default) starts at ``sched(0)``; ``n - 1`` starts at
            ``sched(n)``.  Prefer ``load_state_dict`` to resume.
        on_mismatch: what ``load_state_dict`` does with a checkpoint made
            with a different schedule, hparams or multipliers:
            ``'error'`` (default, a ``ValueError`` showing both),
            ``'adopt'`` (continue the checkpoint's schedule) or ``'keep'``
            (keep this scheduler's schedule, take only the position and,
            if both are ``ReduceOnPlateau``, the plateau state).

    SGD's ``momentum`` can be driven even if the optimizer was built with
    ``momentum=0``: SGD creates its momentum buffer on the first update
    with a non-zero momentum (only ``nesterov=True`` needs momentum > 0 at
    construction).

    ``ReduceOnPlateau`` schedules are fed through :meth:`observe`, which
    also re-applies the rate at once (calling ``sched.observe`` directly
    takes effect from the next ``step()``).

    Construction overwrites the groups' ``lr`` (the optimizer's own ``lr``
    argument is not used).  Rates are evaluated with ``sched.values`` over
    aligned blocks of :data:`BLOCK` updates (the same formula, vectorized;
    equal to ``sched(k)`` up to rounding), so ``step()`` itself is a list
    look-up and a few dict stores; a ``ReduceOnPlateau`` schedule is
    evaluated at every step, since observations change it.

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
        >>> lrs
        [1.0, 0.5, 0.25]
    """

    def __init__(self, optimizer: Optimizer, sched: Schedule | str, *,
                 unit: str = "step",
                 multipliers: Sequence[float] | None = None,
                 hparams: Mapping[str, Any] | None = None,
                 cycle_momentum: bool = True, last_epoch: int = -1,
                 on_mismatch: str = "error") -> None:
        _check_optimizer(optimizer)
        self.schedule = _as_schedule("sched", sched)
        self.unit = check.choice("unit", unit, UNITS)
        self.on_mismatch = check.choice("on_mismatch", on_mismatch,
                                        MISMATCH_POLICIES)
        self.multipliers = self._check_multipliers(optimizer, multipliers)
        cycle_momentum = check.boolean("cycle_momentum", cycle_momentum)
        if hparams is None:
            hparams = self._default_hparams(optimizer, cycle_momentum)
        self.hparams = self._check_hparams(optimizer, hparams)
        if isinstance(last_epoch, bool) or \
                not isinstance(last_epoch, numbers.Integral) or \
                last_epoch < -1:
            raise ValueError(f"last_epoch must be an integer >= -1, "
                             f"got {last_epoch!r}")
        self._init_last_epoch = int(last_epoch)
        self._build_plan()
        # The base class records initial_lr, patches optimizer.step to
        # detect the call order and calls _initial_step().
        super().__init__(optimizer)

    # -- construction helpers ---------------------------------------------
    @staticmethod
    def _check_multipliers(optimizer: Optimizer,
                           multipliers: Sequence[float] | None
                           ) -> list[float] | None:
        if multipliers is None:
            return None
        values = check.rates("multipliers", multipliers)
        groups = len(optimizer.param_groups)
        if len(values) != groups:
            raise ValueError(f"multipliers has {len(values)} entries but "
                             f"the optimizer has {groups} param groups; "
                             f"give one multiplier per group")
        return values

    def _default_hparams(self, optimizer: Optimizer,
                         cycle_momentum: bool) -> dict[str, Schedule]:
        if not cycle_momentum:
            return {}
        try:
            mom = self.schedule.momentum
        except ValueError as err:
            raise ValueError(f"{err} (or pass cycle_momentum=False to "
                             f"leave momentum alone)") from None
        if mom is None:
            return {}
        # PyTorch's CyclicLR / OneCycleLR rule: betas win over momentum.
        if "betas" in optimizer.defaults:
            return {"beta1": mom}
        if "momentum" in optimizer.defaults:
            return {"momentum": mom}
        raise ValueError(f"the schedule cycles momentum but "
                         f"{type(optimizer).__name__} has neither "
                         f"'momentum' nor 'betas'; pass "
                         f"cycle_momentum=False (or hparams={{}})")

    @staticmethod
    def _check_hparams(optimizer: Optimizer, hparams: Mapping[str, Any]
                       ) -> dict[str, Schedule]:
        if not isinstance(hparams, Mapping):
            raise TypeError(f"hparams must be a dict of name -> schedule, "
                            f"got {hparams!r}")
        available = _available_hparams(optimizer)
        out = {}
        for name, value in hparams.items():
            if name == "lr":
                raise ValueError("hparams must not contain 'lr': the rate "
                                 "is sched (times multipliers)")
            if name not in available:
                raise ValueError(
                    f"hparams names {name!r}, which "
                    f"{type(optimizer).__name__}'s param groups do not "
                    f"have; available: {', '.join(available)}")
            sched = _as_schedule(f"hparams[{name!r}]", value,
                                 numbers_ok=True)
            if sched.stateful:
                raise TypeError(f"hparams[{name!r}] must be a stateless "
                                f"schedule, got {sched!r}")
            out[name] = sched
        return out

    def _build_plan(self) -> None:
        """Precompute what step() writes, so the per-update work is list
        look-ups plus dict stores."""
        plan = []
        for name, sched in self.hparams.items():
            if name in ("beta1", "beta2"):
                plan.append(("betas", int(name[-1]) - 1, sched))
            else:
                plan.append((name, None, sched))
        self._plan = plan
        self._cache = StepCache([self.schedule] + [s for _, _, s in plan])

    def _initial_step(self) -> None:
        self._step_count = 0
        self.last_epoch = self._init_last_epoch
        self.step()

    # -- evaluation -------------------------------------------------------
    def get_lr(self) -> list[float]:
        """The rates for the current ``last_epoch``: ``multipliers[i] *
        sched(last_epoch)``; pure, safe to call at any time."""
        lr = self._cache.at(self.last_epoch)[0]
        if self.multipliers is None:
            return [lr] * len(self.optimizer.param_groups)
        return [m * lr for m in self.multipliers]

    _get_closed_form_lr = get_lr

    def _apply(self) -> None:
        k = self.last_epoch
        groups = self.optimizer.param_groups
        mults = self.multipliers
        if mults is not None and len(mults) != len(groups):
            raise ValueError(f"the optimizer now has {len(groups)} param "
                             f"groups but multipliers has {len(mults)} "
                             f"entries")
        lr, *hps = self._cache.at(k)
        last = [lr] * len(groups) if mults is None \
            else [m * lr for m in mults]
        for group, value in zip(groups, last):
            if type(group["lr"]) is float:  # inlined _set: the hot path
                group["lr"] = value
            else:
                _set(group, "lr", None, value)
        self._last_lr = last
        for (key, index, _), value in zip(self._plan, hps):
            for group in groups:
                _set(group, key, index, value)

    def step(self, epoch: int | None = None) -> None:
        """Advance to the next update (or epoch, with ``unit='epoch'``)
        and write its rate (and hyperparameters) into the param groups.

        Call it after ``optimizer.step()``.  ``epoch`` (an integer) jumps
        to that position instead, exactly, since nothing is recursive.  A
        metric belongs in :meth:`observe`, not here."""
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

    # -- ReduceOnPlateau --------------------------------------------------
    def observe(self, metric: float) -> bool:
        """Feed a metric to a ``ReduceOnPlateau`` schedule (once per
        epoch, say) and re-apply the rate for the current update at once.
        Returns True if the rate was cut."""
        if not self.schedule.stateful:
            raise TypeError(f"observe() needs a ReduceOnPlateau schedule, "
                            f"this scheduler runs {self.schedule!r}")
        if isinstance(metric, torch.Tensor):
            metric = metric.item()
        cut = self.schedule.observe(metric, step=self.last_epoch)
        self._apply()
        return cut

    # -- checkpoints ------------------------------------------------------
    def _identity(self) -> dict[str, Any]:
        return {"schedule": self.schedule.to_config(),
                "hparams": {k: v.to_config()
                            for k, v in self.hparams.items()},
                "multipliers": self.multipliers, "unit": self.unit}

    def state_dict(self) -> dict[str, Any]:
        """The position and the schedule configuration, as plain dicts,
        lists, strings and numbers (JSON-like; ``torch.load`` with
        ``weights_only=True`` reads it; no code is pickled)::

            {'format': STATE_FORMAT, 'schedule': sched.to_config(),
             'schedule_state': ReduceOnPlateau state or None,
             'hparams': {name: config}, 'multipliers': [...] or None,
             'unit': 'step', 'last_epoch': k, '_step_count': n,
             '_last_lr': [...]}
        """
        state = self._identity()
        state.update(
            format=STATE_FORMAT,
            schedule_state=(self.schedule.state_dict()
                            if self.schedule.stateful else None),
            last_epoch=self.last_epoch, _step_count=self._step_count,
            _last_lr=list(self._last_lr))
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict` output and write the rate for
        the restored position into the param groups (so it does not
        matter whether ``optimizer.load_state_dict`` ran before or after).

        A checkpoint made with another schedule, hparams or multipliers is
        handled as ``on_mismatch`` says (default: ``ValueError``); a
        different ``unit`` is always refused (the counter would mean
        something else)."""
        if not isinstance(state_dict, Mapping) or \
                state_dict.get("format") != STATE_FORMAT:
            got = state_dict.get("format") if isinstance(
                state_dict, Mapping) else type(state_dict).__name__
            raise ValueError(f"not a unisched LRScheduler state dict "
                             f"(format {got!r}, expected "
                             f"{STATE_FORMAT!r})")
        if state_dict["unit"] != self.unit:
            raise ValueError(f"the checkpoint counts {state_dict['unit']}s "
                             f"but this scheduler counts {self.unit}s "
                             f"(unit={self.unit!r})")
        mine, theirs = self._identity(), {
            k: state_dict[k] for k in ("schedule", "hparams", "multipliers",
                                       "unit")}
        if mine != theirs:
            if self.on_mismatch == "error":
                diff = [k for k in mine if mine[k] != theirs[k]]
                raise ValueError(
                    f"the checkpoint was made with a different "
                    f"{' and '.join(diff)}: checkpoint "
                    f"{ {k: theirs[k] for k in diff} }, this scheduler "
                    f"{ {k: mine[k] for k in diff} }; build the scheduler "
                    f"as it was, or pass on_mismatch='adopt' (continue the "
                    f"checkpoint's) or 'keep' (keep this one, take only "
                    f"the position)")
            if self.on_mismatch == "adopt":
                self._adopt(theirs)
        sched_state = state_dict.get("schedule_state")
        if sched_state is not None and self.schedule.stateful:
            self.schedule.load_state_dict(sched_state)
        self.last_epoch = check.step(state_dict["last_epoch"], "last_epoch")
        self._step_count = int(state_dict["_step_count"])
        self._apply()

    def _adopt(self, identity: dict[str, Any]) -> None:
        # Validate everything before changing anything.
        sched = from_config(identity["schedule"])
        multipliers = self._check_multipliers(self.optimizer,
                                              identity["multipliers"])
        hparams = self._check_hparams(
            self.optimizer, {k: from_config(v)
                             for k, v in identity["hparams"].items()})
        self.schedule, self.multipliers, self.hparams = \
            sched, multipliers, hparams
        self._build_plan()

    def __repr__(self) -> str:
        extra = ""
        if self.multipliers is not None:
            extra += f", multipliers={self.multipliers!r}"
        if self.hparams:
            extra += ", hparams={" + ", ".join(
                f"{k!r}: {v.to_spec()!r}"
                for k, v in self.hparams.items()) + "}"
        return (f"LRScheduler({type(self.optimizer).__name__}, "
                f"{self.schedule.to_spec()!r}, unit={self.unit!r}"
                f"{extra}, last_epoch={self.last_epoch})")


def bind(sched: Schedule | str, optimizer: Optimizer,
         **options: Any) -> LRScheduler:
    """Drive ``optimizer`` with ``sched``: ``LRScheduler(optimizer, sched,
    **options)``; see :class:`LRScheduler` for the options and the call
    order.

    >>> import torch
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1)
    >>> sch = bind("cosine(max_update=10, base_lr=0.5)", opt)
    >>> opt.param_groups[0]["lr"]
    0.5
    """
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"bind needs a torch.optim.Optimizer as target, "
                        f"got {type(optimizer).__module__}."
                        f"{type(optimizer).__qualname__}")
    return LRScheduler(optimizer, sched, **options)
