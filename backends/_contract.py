"""The adapter contract: one way to bind a schedule, in every framework.

Every backend (``unisched.backends.<framework>``) implements it with the
same names, argument meanings, defaults and errors; the code they share is
here.  ``tests/backends/`` checks every point below once, against every
backend, with real optimizers.

``bind(sched, target, *, unit='step', steps_per_epoch=None,
multipliers=None, hparams=None, momentum='auto', on_mismatch='error')``
returns the backend's adapter.

``sched``
    a :class:`unisched.Schedule`, a spec string (:func:`unisched.parse`)
    or a number (a constant rate).
``target``
    the framework's optimizer (or what owns it: a compiled Keras model, a
    Gluon Trainer).
``unit``
    ``'step'``: update ``k`` (``k = 0, 1, ...``) uses ``sched(k)``.
    ``'epoch'``: ``sched`` counts epochs; update ``k`` uses
    ``sched(k // steps_per_epoch)``.  ``steps_per_epoch`` is required
    where the framework counts updates (Keras, MXNet, JAX).  PyTorch's
    scheduler is advanced by the user: without ``steps_per_epoch`` its
    ``step()`` is called once per epoch (PyTorch's own per-epoch style).
``multipliers``
    per-parameter rate factors, in one of two forms:
    a sequence, one factor per parameter group of the optimizer (where the
    framework has groups, e.g. PyTorch's ``param_groups``); or a mapping
    ``{pattern: factor}``, where ``pattern`` must match a whole parameter
    name (``re.fullmatch``) and parameters no pattern matches keep 1.
    Without ``multipliers``, groups that start at different rates keep
    their ratios (as PyTorch's schedulers do), relative to the first
    group, and the adapter's ``repr`` says so.
``hparams``
    other hyperparameters by name, each a schedule, spec or number:
    ``momentum``, ``beta1``, ``beta2`` and ``weight_decay`` in every
    framework, plus the framework's own spelling (``betas``' entries,
    ``beta_1``, ``wd``...).  They use the same ``unit``.
``momentum``
    ``'auto'`` drives the optimizer's momentum (Adam's ``beta1`` where it
    has one, else SGD's ``momentum``) with ``sched.momentum`` when the
    schedule has a momentum cycle (cyclic, one-cycle); ``False`` never
    touches momentum; a schedule (spec, number) drives it with that.
``on_mismatch``
    what loading a checkpoint made with another schedule, hparams,
    multipliers or unit does: ``'error'`` (a ``ValueError`` showing both
    specs), ``'checkpoint'`` (continue the checkpoint's) or ``'bound'``
    (keep the bound one, take only the position and, if both are
    ``ReduceOnPlateau``, its state).

The adapter has, in every backend:

``.schedule``, ``.hparams`` (canonical name -> schedule), ``.multipliers``,
``.unit``, ``.steps_per_epoch``, ``.on_mismatch``
    what it drives, as bound (or as loaded).
``.updates_done``
    the position: the number of optimizer updates done since the bind (or
    restored from a checkpoint), so the next update uses
    ``sched(updates_done)``; a schedule bound to an optimizer that has
    already run starts at ``sched(0)``, as a PyTorch scheduler built then
    does.  With ``unit='epoch'`` and PyTorch stepped once per epoch it
    counts epochs.
``.observe(metric)``
    feeds a :class:`unisched.ReduceOnPlateau` schedule and re-applies the
    rate at once; returns True if the rate was cut.  A clear ``TypeError``
    where the schedule has none.
``.state_dict()`` / ``.load_state_dict(state)``
    plain data (dicts, lists, strings, numbers).  Loading validates the
    whole checkpoint (types, finite values, plateau state) before anything
    changes: a bad one leaves the adapter exactly as it was.
``.unbind()``
    restores the optimizer's own hyperparameters (rate, momentum...) and
    detaches the adapter.  Binding the same optimizer again unbinds the
    previous adapter first, so nothing of it keeps running.

Each framework's own checkpoint mechanism (torch ``state_dict``, Keras
``model.save`` / ``load_model``, MXNet ``save_states`` / ``load_states``)
restores the schedule, every hyperparameter schedule and the position
with no second ``bind``.

``from_native(obj)`` dispatches on exact types: a subclass or an unknown
type gets a ``TypeError`` listing the supported types; a supported type
that cannot be converted gets a ``ValueError`` naming the native object's
attribute and the reason.  The converted schedule carries the native
object's momentum behaviour (``cycle_momentum``), so ``bind(from_native(x),
opt)`` applies the same rate and the same momentum as ``x``.
"""
from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import unisched
from unisched import _validate as check
from unisched.base import Schedule, from_config
from unisched.plateau import ReduceOnPlateau

UNITS = ("step", "epoch")
MISMATCH_POLICIES = ("error", "checkpoint", "bound")
#: the hyperparameter names every backend accepts
COMMON_HPARAMS = ("momentum", "beta1", "beta2", "weight_decay")
#: where a momentum cycle goes, in order of preference (PyTorch's rule for
#: CyclicLR / OneCycleLR: Adam's beta1 wins over momentum)
MOMENTUM_TARGETS = ("beta1", "momentum")

def as_schedule(name: str, value: Any, numbers_ok: bool = True) -> Schedule:
    """A schedule from a schedule, a spec string or (if allowed) a number
    (a constant)."""
    if isinstance(value, Schedule):
        return value
    if isinstance(value, str):
        return unisched.parse(value)
    if numbers_ok and isinstance(value, numbers.Real) \
            and not isinstance(value, bool):
        return unisched.ConstantScheduler(check.rate(name, value))
    kinds = "a schedule, a spec string or a number" if numbers_ok \
        else "a unisched schedule or a spec string"
    raise TypeError(f"{name} must be {kinds}, got {value!r} "
                    f"({type(value).__name__})")


def check_unit(unit: Any, steps_per_epoch: Any, *,
               spe_required: bool = True) -> tuple[str, int | None]:
    """``(unit, steps_per_epoch)`` checked together."""
    unit = check.choice("unit", unit, UNITS)
    if steps_per_epoch is None:
        if unit == "epoch" and spe_required:
            raise ValueError("steps_per_epoch is required with "
                             "unit='epoch', got None")
        return unit, None
    if unit != "epoch":
        raise ValueError(f"steps_per_epoch is only for unit='epoch' "
                         f"(unit={unit!r}), got {steps_per_epoch!r}")
    return unit, check.integer("steps_per_epoch", steps_per_epoch, 1)


def check_multipliers(value: Any) -> Any:
    """``None``, a tuple of factors, or ``{pattern: factor}``; every
    factor finite and >= 0, every pattern a valid regular expression."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        out = {}
        for key, factor in value.items():
            if not isinstance(key, str):
                raise TypeError(f"multipliers keys must be parameter-name "
                                f"patterns (str), got {key!r}")
            try:
                re.compile(key)
            except re.error as err:
                raise ValueError(f"multipliers pattern {key!r} is not a "
                                 f"regular expression: {err}") from None
            out[key] = check.rate(f"multipliers[{key!r}]", factor)
        return out
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"multipliers must be a sequence (one factor per "
                        f"parameter group) or a dict pattern -> factor, got "
                        f"{value!r}")
    return tuple(check.rates("multipliers", value))


def resolve_multipliers(multipliers: Any, groups: Sequence[Sequence[str]]
                        ) -> list[float] | None:
    """One factor per group from checked ``multipliers``.

    ``groups`` lists the parameter names of each group (a framework
    without groups passes one group per parameter).  A pattern must match
    every name of a group or none of them, and must match something."""
    if multipliers is None:
        return None
    if isinstance(multipliers, tuple):
        if len(multipliers) != len(groups):
            raise ValueError(
                f"multipliers has {len(multipliers)} entries but the "
                f"optimizer has {len(groups)} parameter group(s); give one "
                f"per group, or a dict pattern -> factor")
        return list(multipliers)
    out = [1.0] * len(groups)
    every = [n for names in groups for n in names]
    for pattern, factor in multipliers.items():
        hit = False
        for i, names in enumerate(groups):
            matched = [bool(re.fullmatch(pattern, n)) for n in names]
            if any(matched) and not all(matched):
                raise ValueError(
                    f"multipliers pattern {pattern!r} matches part of a "
                    f"parameter group ({names}); one group has one rate")
            if names and all(matched):
                out[i] = factor
                hit = True
        if not hit:
            raise ValueError(f"multipliers pattern {pattern!r} matches no "
                             f"parameter; parameters: {every}")
    return out


def kept_ratios(rates: Sequence[float]) -> list[float] | None:
    """The optimizer's own per-group rates as factors relative to the
    first group (None when they are all equal)."""
    rates = [float(r) for r in rates]
    if all(r == rates[0] for r in rates):
        return None
    if rates[0] == 0:
        raise ValueError(f"the optimizer's groups start at rates {rates}; "
                         f"their ratios to the first group are undefined, "
                         f"pass multipliers")
    return [r / rates[0] for r in rates]


def plan_hparams(sched: Schedule, hparams: Any, momentum: Any,
                 spellings: Mapping[str, str], optimizer: str
                 ) -> dict[str, Schedule]:
    """Canonical name -> schedule for every hyperparameter to drive.

    ``spellings`` maps each canonical name the optimizer has to its own
    spelling (``{'beta1': 'beta_1', ...}``); either is accepted in
    ``hparams``.  ``optimizer`` names it in errors."""
    if hparams is not None and not isinstance(hparams, Mapping):
        raise TypeError(f"hparams must be a dict name -> schedule, got "
                        f"{hparams!r}")
    own = {native: canon for canon, native in spellings.items()}
    out: dict[str, Schedule] = {}
    for key, value in (hparams or {}).items():
        if key in ("lr", "learning_rate"):
            raise ValueError(f"hparams must not contain {key!r}: the rate "
                             f"is sched (times multipliers)")
        canon = key if key in spellings else own.get(key)
        if canon is None:
            have = sorted(set(spellings) | set(own))
            raise ValueError(f"hparams names {key!r}, which {optimizer} "
                             f"does not have; it has {have}")
        if canon in out:
            raise ValueError(f"hparams names {canon!r} twice ({key!r})")
        sched_h = as_schedule(f"hparams[{key!r}]", value)
        if sched_h.stateful:
            raise TypeError(f"hparams[{key!r}] must be a stateless "
                            f"schedule, got {sched_h!r}")
        out[canon] = sched_h
    cycle = _momentum_schedule(sched, momentum)
    if cycle is not None:
        target = next((n for n in MOMENTUM_TARGETS if n in spellings), None)
        if target is None:
            raise ValueError(
                f"the schedule drives momentum ({cycle.to_spec()}) but "
                f"{optimizer} has neither momentum nor beta1; pass "
                f"momentum=False to leave momentum alone")
        if target in out:
            raise ValueError(f"momentum and hparams[{target!r}] both drive "
                             f"{target}; give one of them")
        out[target] = cycle
    return out


def check_spelled(hparams: Mapping[str, Any], spellings: Mapping[str, str],
                  optimizer: str) -> None:
    """Refuse hyperparameters (canonical names, e.g. from a checkpoint)
    that this optimizer does not have."""
    missing = sorted(set(hparams) - set(spellings))
    if missing:
        raise ValueError(f"hparams {missing}: {optimizer} has no such "
                         f"hyperparameter; it has {sorted(spellings)}")


def convert_exact(obj: Any,
                  converters: Mapping[type, Callable[[Any], Schedule]],
                  describe: Callable[[Any], str] | None = None
                  ) -> Schedule:
    """``from_native``'s dispatch: ``converters[type(obj)](obj)`` on the
    exact type (a subclass may compute anything: ``TypeError`` listing the
    supported types); a converter's ``TypeError``/``ValueError`` becomes a
    ``ValueError`` naming the native object (``describe(obj)``, default
    its class) and the reason."""
    kind = type(obj)
    convert = converters.get(kind)
    if convert is None:
        names = ", ".join(sorted(k.__name__ for k in converters))
        raise TypeError(f"from_native converts exactly these types (not "
                        f"subclasses): {names}; got {kind.__module__}."
                        f"{kind.__qualname__}")
    try:
        return convert(obj)
    except (TypeError, ValueError) as err:
        what = describe(obj) if describe is not None \
            else f"{kind.__module__}.{kind.__qualname__}"
        raise ValueError(f"cannot convert {what}: {err}") from None


def _momentum_schedule(sched: Schedule, momentum: Any) -> Schedule | None:
    if isinstance(momentum, str) and momentum == "auto":
        try:
            return sched.momentum
        except ValueError as err:
            raise ValueError(f"{err} (or pass momentum=False to leave "
                             f"momentum alone)") from None
    if momentum is False:
        return None
    if momentum is True or momentum is None:
        raise TypeError(f"momentum must be 'auto', False or a schedule, got "
                        f"{momentum!r}")
    cycle = as_schedule("momentum", momentum)
    if cycle.stateful:
        raise TypeError(f"momentum must be a stateless schedule, got "
                        f"{cycle!r}")
    return cycle


@dataclass(frozen=True)
class Binding:
    """What an adapter drives: the validated, framework-neutral part of a
    ``bind`` call (or of a checkpoint)."""

    schedule: Schedule
    hparams: dict[str, Schedule] = field(default_factory=dict)
    multipliers: Any = None
    unit: str = "step"
    steps_per_epoch: int | None = None

    def index(self, updates_done: int) -> int:
        """The argument the schedules get at update ``updates_done``:
        the update itself, or its epoch with ``unit='epoch'`` and
        ``steps_per_epoch``."""
        if self.steps_per_epoch:
            return updates_done // self.steps_per_epoch
        return updates_done

    def identity(self) -> dict[str, Any]:
        """Plain data that two bindings share exactly when they drive the
        same thing (ReduceOnPlateau state aside)."""
        mult = self.multipliers
        return {"schedule": self.schedule.to_config(),
                "hparams": {k: v.to_config()
                            for k, v in sorted(self.hparams.items())},
                "multipliers": (list(mult) if isinstance(mult, tuple)
                                else mult),
                "unit": self.unit, "steps_per_epoch": self.steps_per_epoch}

    def describe(self) -> str:
        parts = [self.schedule.to_spec()]
        parts += [f"{k}={v.to_spec()}" for k, v in sorted(
            self.hparams.items())]
        if self.multipliers is not None:
            parts.append(f"multipliers={self.multipliers!r}")
        if self.unit != "step":
            parts.append(f"unit={self.unit!r}, steps_per_epoch="
                         f"{self.steps_per_epoch!r}")
        return ", ".join(parts)


class Attributes:
    """The contract's read-only attributes of an adapter, from the
    :class:`Binding` it keeps in ``self._binding``."""

    schedule = property(lambda self: self._binding.schedule)
    hparams = property(lambda self: dict(self._binding.hparams))
    multipliers = property(lambda self: self._binding.multipliers)
    unit = property(lambda self: self._binding.unit)
    steps_per_epoch = property(lambda self: self._binding.steps_per_epoch)


def plateau(sched: Schedule, adapter: str) -> ReduceOnPlateau:
    """The ReduceOnPlateau an adapter's ``observe`` feeds."""
    if isinstance(sched, ReduceOnPlateau):
        return sched
    raise TypeError(f"observe() needs a ReduceOnPlateau schedule; {adapter} "
                    f"runs {sched.to_spec()}, which has none (wrap it: "
                    f"reduce_on_plateau(schedule=...))")


def metric_value(metric: Any) -> float:
    """A metric as a float (framework scalars have ``item()`` or
    ``__float__``); NaN is allowed, as a diverged epoch."""
    if isinstance(metric, (bool, str, bytes)):
        raise TypeError(f"metric must be a number, got {metric!r}")
    if hasattr(metric, "item"):
        metric = metric.item()
    try:
        return float(metric)
    except (TypeError, ValueError):
        raise TypeError(f"metric must be a number, got {metric!r}") from None


# -- checkpoints ----------------------------------------------------------

def state_dict(fmt: str, binding: Binding, updates_done: int
               ) -> dict[str, Any]:
    """The plain-data checkpoint of an adapter."""
    sched = binding.schedule
    state = binding.identity()
    state.update(format=fmt, updates_done=int(updates_done),
                 schedule_state=(sched.state_dict()
                                 if isinstance(sched, ReduceOnPlateau)
                                 else None))
    return state


@dataclass(frozen=True)
class Checkpoint:
    """A validated checkpoint: what to drive and where to continue."""

    binding: Binding
    updates_done: int
    schedule_state: dict[str, Any] | None


def check_state(state: Any, fmt: str) -> Checkpoint:
    """Validate a whole :func:`state_dict` before anything is loaded;
    every error names the field."""
    if not isinstance(state, Mapping):
        raise TypeError(f"state must be a dict (an adapter's state_dict()), "
                        f"got {type(state).__name__}")
    if state.get("format") != fmt:
        raise ValueError(f"state format must be {fmt!r}, got "
                         f"{state.get('format')!r}")
    required = ("schedule", "hparams", "multipliers", "unit",
                "steps_per_epoch", "updates_done", "schedule_state")
    missing = [k for k in required if k not in state]
    if missing:
        raise ValueError(f"state is missing {missing}")
    sched = _load("schedule", state["schedule"])
    if not isinstance(state["hparams"], Mapping):
        raise TypeError(f"state hparams must be a dict, got "
                        f"{state['hparams']!r}")
    hparams = {}
    for key, config in state["hparams"].items():
        if not isinstance(key, str):
            raise TypeError(f"state hparams key must be a str, got {key!r}")
        hparams[key] = _load(f"hparams[{key!r}]", config)
    unit, spe = check_unit(state["unit"], state["steps_per_epoch"],
                           spe_required=False)
    binding = Binding(sched, hparams, check_multipliers(
        state["multipliers"]), unit, spe)
    done = check.integer("updates_done", state["updates_done"])
    plateau_state = state["schedule_state"]
    if plateau_state is not None:
        if not isinstance(sched, ReduceOnPlateau):
            raise ValueError(f"state schedule_state is given but the "
                             f"schedule {sched.to_spec()} has no state")
        plateau_state = sched.check_state(plateau_state)
    return Checkpoint(binding, done, plateau_state)


def _load(name: str, config: Any) -> Schedule:
    try:
        return from_config(config)
    except (TypeError, ValueError, RecursionError) as err:
        raise ValueError(f"state {name} is not a schedule config: "
                         f"{err}") from None


def reconcile(bound: Binding, ckpt: Checkpoint, policy: str) -> Binding:
    """The binding to continue with after loading ``ckpt`` into an adapter
    bound as ``bound``; ``policy`` is the adapter's ``on_mismatch``.  The
    checkpoint's plateau state goes with the result only when both are
    ReduceOnPlateau (see :func:`restore_plateau`)."""
    if bound.identity() == ckpt.binding.identity():
        return bound
    if policy == "checkpoint":
        return ckpt.binding
    if policy == "bound":
        return bound
    raise ValueError(
        f"the checkpoint was made with a different schedule: checkpoint "
        f"{ckpt.binding.describe()}; bound {bound.describe()}. Bind the "
        f"schedule it was made with, or pass on_mismatch='checkpoint' "
        f"(continue the checkpoint's) or 'bound' (keep the bound one, take "
        f"only the position)")


def restore_plateau(binding: Binding, ckpt: Checkpoint) -> None:
    """Load the checkpoint's plateau state into ``binding``'s schedule when
    both are ReduceOnPlateau (call after every check has passed)."""
    sched = binding.schedule
    if ckpt.schedule_state is not None and isinstance(sched,
                                                      ReduceOnPlateau):
        sched.load_state_dict(ckpt.schedule_state)
