"""MXNet Gluon adapter: a unisched schedule as a Trainer's ``lr_scheduler``.
"""
from __future__ import annotations

import math
import numbers
import re
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import unisched as us
from unisched._cache import BLOCK, StepCache

from ._mx import mx

UNITS = ("step", "epoch")
_OPTIONS = ("unit", "steps_per_epoch", "hparams", "cycle_momentum")

_opt = mx.optimizer
#: Optimizer class -> the hyperparameters an adapter can drive per update.
#: Each was checked in MXNet 1.9.1's source: the optimizer's ``update``
#: increments ``num_update``, calls the scheduler and only then reads the
#: attribute, so the value set by the scheduler call applies to the SAME
#: update (tests/backends/test_mxnet.py checks the order for every entry).
#: Left out on purpose: LAMB (reads ``beta1`` before the scheduler call),
#: LARS (rescales ``momentum`` by its own rate ratio), DCASGD.
SCHEDULABLE: dict[type, tuple[str, ...]] = {
    _opt.SGD: ("momentum",), _opt.NAG: ("momentum",),
    _opt.Signum: ("momentum",), _opt.Adam: ("beta1",),
    _opt.Adamax: ("beta1",), _opt.Nadam: ("beta1",), _opt.FTML: ("beta1",),
}
# These keep a momentum buffer only if ``momentum != 0`` when the buffer
# would be created (the first update), and skip it while momentum is 0.
_BUFFERED = (_opt.SGD, _opt.NAG, _opt.Signum)
#: Optimizers a schedule cannot drive exactly, and why.
REFUSED: dict[type, str] = {
    _opt.LBSGD: "LBSGD asks for the rate before counting the update "
                "(one update late) and applies its own warmup",
    _opt.AdaDelta: "AdaDelta has no learning rate",
}


def _schedulable(optimizer: Any) -> tuple[str, ...]:
    for klass in type(optimizer).__mro__:
        if klass in SCHEDULABLE:
            return SCHEDULABLE[klass]
    return ()


def _as_schedule(name: str, value: Any, numbers_ok: bool = False
                 ) -> us.Schedule:
    if isinstance(value, str):
        return us.parse(value)
    if numbers_ok and isinstance(value, numbers.Real) \
            and not isinstance(value, bool):
        return us.ConstantScheduler(value)
    if not isinstance(value, us.Schedule):
        raise TypeError(f"{name} must be a unisched schedule or a spec "
                        f"string{', or a number' if numbers_ok else ''}, "
                        f"got {value!r}")
    return value


def _optimizer_of(target: Any, name: str = "target") -> Any:
    if isinstance(target, mx.gluon.Trainer):
        return target._optimizer
    if isinstance(target, mx.optimizer.Optimizer):
        return target
    raise TypeError(f"{name} must be an mxnet.gluon.Trainer (or an "
                    f"mxnet Optimizer), got {type(target).__module__}."
                    f"{type(target).__qualname__}")


class LRScheduler(mx.lr_scheduler.LRScheduler):
    """A unisched schedule as an MXNet ``lr_scheduler``.

    MXNet calls ``lr_scheduler(num_update)`` with ``num_update = k + 1``
    for update ``k`` (see the module docstring); this returns::

        rate(num_update) = schedule(i),  i = max(num_update - 1, 0)
                                             unit='step'
                         = schedule(i // steps_per_epoch)   unit='epoch'

    (``Trainer.learning_rate`` asks with the current ``num_update``: it
    reads the rate of the last update, or of the first before any.)
    Per-parameter ``lr_mult`` multiplies this rate (:func:`set_multipliers`).

    Args:
        schedule: a unisched schedule or spec string; the source of truth
            for the rate. ``ReduceOnPlateau`` works: ``observe()`` on it
            takes effect at the next update.
        unit: ``'step'`` (the schedule counts updates) or ``'epoch'``
            (it counts epochs of ``steps_per_epoch`` updates and is held
            constant within one, i.e. ``epochwise(schedule, spe)``).
        steps_per_epoch: updates per epoch; required for ``unit='epoch'``.
        hparams: optimizer attributes to drive per update, name ->
            schedule, spec or number (same ``unit``), e.g.
            ``{'momentum': s.momentum}``. ``None`` (default): if the
            schedule has a momentum cycle and ``cycle_momentum`` is true,
            drive ``momentum`` (SGD, NAG, Signum) or ``beta1`` (Adam
            family) with it, and refuse an optimizer with neither, as
            PyTorch's ``OneCycleLR`` does; ``{}``: drive nothing.
            Hyperparameters need the optimizer, so they are applied only
            once attached (:func:`bind` or :meth:`attach`). SGD, NAG and
            Signum skip their momentum buffer entirely at an update whose
            momentum is exactly 0 (MXNet's behaviour).
        cycle_momentum: see ``hparams``; consulted only when ``hparams``
            is None.

    ``base_lr``: MXNet's Optimizer writes its ``learning_rate`` argument
    into the scheduler's ``base_lr``; here that attribute is informative
    only (it starts as ``schedule(0)``) and a different value written
    into it warns that it is ignored.

    Pickling (``Trainer.save_states``, a kvstore shipping the optimizer to
    a server) keeps the schedule (with a ``ReduceOnPlateau``'s state), the
    options and the link to the optimizer whose hyperparameters it drives.

    >>> import unisched as us
    >>> s = LRScheduler(us.CosineScheduler(10, base_lr=1.0))
    >>> s(1), s(6)      # MXNet's num_update 1 is update 0
    (1.0, 0.5)
    >>> e = LRScheduler("exponential(1.0, factor=0.5)", unit="epoch",
    ...                 steps_per_epoch=3)
    >>> [e(n) for n in range(1, 8)]
    [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]
    """

    def __init__(self, schedule: us.Schedule | str, unit: str = "step",
                 steps_per_epoch: int | None = None,
                 hparams: Mapping[str, us.Schedule | str | float]
                 | None = None, cycle_momentum: bool = True) -> None:
        schedule = _as_schedule("schedule", schedule)
        if unit not in UNITS:
            raise ValueError(f"unit must be one of {list(UNITS)}, "
                             f"got {unit!r}")
        if unit == "epoch":
            if steps_per_epoch is None:
                raise ValueError("steps_per_epoch is required with "
                                 "unit='epoch', got None")
            if isinstance(steps_per_epoch, bool) or not isinstance(
                    steps_per_epoch, numbers.Integral):
                raise TypeError(f"steps_per_epoch must be an integer, "
                                f"got {steps_per_epoch!r}")
            if steps_per_epoch < 1:
                raise ValueError(f"steps_per_epoch must be >= 1, "
                                 f"got {steps_per_epoch!r}")
            steps_per_epoch = int(steps_per_epoch)
        elif steps_per_epoch is not None:
            raise ValueError(f"steps_per_epoch is only for unit='epoch' "
                             f"(unit={unit!r}), got {steps_per_epoch!r}")
        if hparams is not None:
            if not isinstance(hparams, Mapping):
                raise TypeError(f"hparams must be a dict of name -> "
                                f"schedule, got {hparams!r}")
            hparams = {_hparam_name(k): _as_schedule(f"hparams[{k!r}]", v,
                                                     numbers_ok=True)
                       for k, v in hparams.items()}
        if not isinstance(cycle_momentum, bool):
            raise TypeError(f"cycle_momentum must be True or False, got "
                            f"{cycle_momentum!r}")
        self.schedule = schedule
        self.unit = unit
        self.steps_per_epoch = steps_per_epoch
        self._requested = hparams          # None: the default, see attach
        self.cycle_momentum = cycle_momentum
        self.hparams: dict[str, us.Schedule] = {}
        self._optimizer = None
        self._divisor = steps_per_epoch or 1
        self._cache_update = None
        self._cache_rate = 0.0
        self._steps = StepCache([schedule])
        self._stateful = schedule.stateful
        self._warned = False
        super().__init__(base_lr=float(schedule(0)))

    # -- MXNet's side -------------------------------------------------------
    @property
    def base_lr(self) -> float:
        """Informative only: the rate comes from ``schedule``."""
        return self._base_lr

    @base_lr.setter
    def base_lr(self, value: float) -> None:
        # MXNet's Optimizer sets this to its learning_rate argument.
        if "_base_lr" in self.__dict__ and value != self.schedule(0):
            warnings.warn(f"learning_rate={value!r} given to the optimizer "
                          f"is ignored: the unisched schedule gives the rate "
                          f"(schedule(0) = {self.schedule(0)!r})",
                          UserWarning, stacklevel=2)
        self._base_lr = value

    def __call__(self, num_update: int) -> float:
        """The rate for the update MXNet numbers ``num_update`` (1 for the
        first); also sets the driven hyperparameters on the optimizer."""
        # MXNet asks once per parameter group for the same update.
        if num_update == self._cache_update:
            return self._cache_rate
        index = (num_update - 1 if num_update > 0 else 0) // self._divisor
        # sched(index) and the hyperparameters, looked up from blocks
        # evaluated a few hundred updates at a time (inlined hot path of
        # StepCache.at).
        steps = self._steps
        i = index - steps.start
        row = steps.rows[i] if 0 <= i < BLOCK else steps.at(index)
        rate = row[0]
        if self._optimizer is not None:
            if self.hparams:
                for name, value in zip(self.hparams, row[1:]):
                    setattr(self._optimizer, name, value)
        elif self._requested or (self._requested is None and not
                                 self._warned and self.cycle_momentum):
            self._not_attached()
        if not self._stateful:
            # Several parameter groups, devices and Trainer.learning_rate
            # ask for the same update; ReduceOnPlateau may change between.
            self._cache_update, self._cache_rate = num_update, rate
        return rate

    def _not_attached(self) -> None:
        if self._requested:
            raise RuntimeError(
                f"LRScheduler(hparams={sorted(self._requested)}) is not "
                f"attached to an optimizer, so it cannot set them; use "
                f"unisched.backends.mxnet.bind(schedule, trainer) or "
                f"adapter.attach(trainer)")
        self._warned = True
        if _momentum_of(self.schedule, quiet=True) is not None:
            warnings.warn("the schedule has a momentum cycle, but this "
                          "LRScheduler is not attached to an optimizer, so "
                          "only the rate is scheduled; use bind(schedule, "
                          "trainer) or adapter.attach(trainer) to drive "
                          "momentum, or cycle_momentum=False to silence "
                          "this",
                          UserWarning, stacklevel=3)

    # -- attaching ----------------------------------------------------------
    def attach(self, target: Any) -> "LRScheduler":
        """Drive ``target``'s optimizer (a Gluon Trainer or an MXNet
        Optimizer): resolve and check ``hparams`` against it and set them
        to their values for the next update. Does not install ``self`` as
        the optimizer's scheduler (:func:`bind` does both). Returns self.
        """
        optimizer = _optimizer_of(target)
        for klass, why in REFUSED.items():
            if isinstance(optimizer, klass):
                raise ValueError(f"cannot schedule {type(optimizer).__name__}"
                                 f" exactly: {why}")
        allowed = _schedulable(optimizer)
        requested = self._requested
        if requested is None:
            momentum = _momentum_of(self.schedule) \
                if self.cycle_momentum else None
            name = next((n for n in ("momentum", "beta1") if n in allowed),
                        None)
            if momentum is not None and name is None:
                raise ValueError(
                    f"the schedule cycles momentum, but optimizer "
                    f"{type(optimizer).__name__} has no momentum or beta1 "
                    f"that unisched can schedule; pass "
                    f"cycle_momentum=False to schedule only the rate")
            requested = {} if momentum is None else {name: momentum}
        for name in requested:
            if name not in allowed:
                have = (f"schedulable here: {list(allowed)}" if allowed
                        else "it has none that unisched can schedule")
                raise ValueError(
                    f"hparams: optimizer {type(optimizer).__name__} has no "
                    f"schedulable hyperparameter {name!r}; {have} (see "
                    f"unisched.backends.mxnet.SCHEDULABLE)")
        # The next update is k = num_update; check everything, then set.
        index = optimizer.num_update // self._divisor
        values = {name: sched(index) for name, sched in requested.items()}
        if "momentum" in values and isinstance(optimizer, _BUFFERED):
            _check_buffers(optimizer, values["momentum"])
        for name, value in values.items():
            setattr(optimizer, name, value)
        self.hparams = dict(requested)
        self._optimizer = optimizer
        self._cache_update = None
        self._steps = StepCache([self.schedule, *self.hparams.values()])
        return self

    # -- identity -----------------------------------------------------------
    def __repr__(self) -> str:
        extra = ""
        if self.unit == "epoch":
            extra = f", unit='epoch', steps_per_epoch={self.steps_per_epoch}"
        if self._requested is not None:
            extra += f", hparams={self._requested!r}"
        if not self.cycle_momentum:
            extra += ", cycle_momentum=False"
        return f"LRScheduler({self.schedule!r}{extra})"


def _hparam_name(name: Any) -> str:
    if not isinstance(name, str):
        raise TypeError(f"hparams keys must be attribute names (str), "
                        f"got {name!r}")
    return name


def _momentum_of(schedule: us.Schedule, quiet: bool = False
                 ) -> us.Schedule | None:
    try:
        return schedule.momentum
    except ValueError as err:
        if quiet:
            return None
        raise ValueError(f"{err}; pass cycle_momentum=False (or "
                         f"hparams={{}}) to schedule only the rate") from None


def _check_buffers(optimizer: Any, first: float) -> None:
    """SGD-style optimizers create their momentum buffers at the first
    update only if momentum is non-zero then; without buffers a later
    non-zero momentum would crash inside MXNet."""
    if first == 0 and optimizer.num_update == 0:
        raise ValueError(f"the momentum schedule gives 0 at the first "
                         f"update; {type(optimizer).__name__} would create "
                         f"no momentum buffers. Start it above 0")
    if optimizer.momentum == 0 and optimizer.num_update > 0:
        raise ValueError(f"{type(optimizer).__name__} already ran "
                         f"{optimizer.num_update} updates with momentum=0, "
                         f"so it has no momentum buffers; bind before the "
                         f"first step or create it with momentum > 0")


def bind(sched: us.Schedule | str, trainer: Any,
         **options: Any) -> LRScheduler:
    """Make ``trainer`` (a ``gluon.Trainer``) use ``sched``: update ``k``
    (``k = 0, 1, ...`` counted by the optimizer, so it continues after
    ``load_states``) gets rate ``sched(k)`` and the driven hyperparameters
    their values at ``k``. Replaces any scheduler the optimizer had.

    Args:
        sched: a unisched schedule or a spec string.
        trainer: the ``mxnet.gluon.Trainer``.
        **options: ``unit``, ``steps_per_epoch``, ``hparams``,
            ``cycle_momentum``, as for :class:`LRScheduler`.

    Returns:
        The :class:`LRScheduler` now in ``trainer.optimizer.lr_scheduler``.
        ``Trainer.load_states`` replaces the optimizer, scheduler
        included, by the saved one: afterwards use :func:`attached`.

    >>> import unisched as us
    >>> w = mx.gluon.Parameter("w", shape=(1,), init=mx.init.Zero())
    >>> w.initialize()
    >>> t = mx.gluon.Trainer([w], "sgd")
    >>> a = bind(us.OneCycleScheduler(1.0, 20), t)
    >>> sorted(a.hparams), t.optimizer.momentum
    (['momentum'], 0.95)
    """
    if not isinstance(trainer, mx.gluon.Trainer):
        raise TypeError(f"trainer must be an mxnet.gluon.Trainer, got "
                        f"{type(trainer).__module__}."
                        f"{type(trainer).__qualname__}")
    if trainer._kv_initialized and trainer._update_on_kvstore and \
            trainer._distributed:
        raise ValueError("the trainer already sent its optimizer to the "
                         "kvstore servers; bind before the first step")
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ValueError(f"bind() got unknown option(s) {unknown}; valid "
                         f"options: {list(_OPTIONS)}")
    adapter = LRScheduler(sched, **options).attach(trainer)
    trainer._optimizer.lr_scheduler = adapter
    return adapter


def attached(trainer: Any) -> LRScheduler:
    """The :class:`LRScheduler` that ``trainer`` uses now. After
    ``Trainer.load_states`` this is the saved one (with the saved
    ``ReduceOnPlateau`` state), not the object :func:`bind` returned."""
    optimizer = _optimizer_of(trainer, "trainer")
    sched = getattr(optimizer, "lr_scheduler", None)
    if not isinstance(sched, LRScheduler):
        raise ValueError(f"trainer's optimizer has no unisched LRScheduler "
                         f"(it has {sched!r}); use bind(schedule, trainer)")
    return sched


def _parameters(target: Any) -> list:
    gluon = mx.gluon
    if isinstance(target, gluon.Trainer):
        return list(target._params)
    if isinstance(target, gluon.Block):
        return list(target.collect_params().values())
    if isinstance(target, gluon.ParameterDict):
        return list(target.values())
    if isinstance(target, gluon.Parameter):
        return [target]
    if isinstance(target, Iterable) and not isinstance(target, str):
        params = list(target)
        if all(isinstance(p, gluon.Parameter) for p in params):
            return params
    raise TypeError(f"target must be a gluon Trainer, Block, ParameterDict "
                    f"or list of Parameters, got {target!r}")


def set_multipliers(target: Any, multipliers: Mapping[Any, float]
                    ) -> dict[str, float]:
    """Set per-parameter rate multipliers (MXNet's ``param.lr_mult``):
    parameter ``p`` then gets rate ``mult * sched(k)`` at update ``k``.

    Args:
        target: a Trainer, Block, ParameterDict or list of Parameters;
            the parameters the keys are looked up in.
        multipliers: key -> multiplier (finite, >= 0). A key is a regular
            expression that must match a whole parameter name
            (``re.fullmatch``), a ``gluon.Block`` (all its parameters) or a
            ``gluon.Parameter``. Every key must select something; two keys
            may select the same parameter only with the same multiplier.

    Returns:
        parameter name -> multiplier, for the parameters that were set.

    ``lr_mult`` lives on the Parameters: ``Trainer.save_states`` does not
    save it, so set it again after building a fresh model.

    >>> net = mx.gluon.nn.Dense(2, in_units=3, prefix="fc_")
    >>> set_multipliers(net, {"fc_bias": 2.0, r".*weight": 0.1})
    {'fc_bias': 2.0, 'fc_weight': 0.1}
    """
    params = _parameters(target)
    if not isinstance(multipliers, Mapping):
        raise TypeError(f"multipliers must be a dict of key -> multiplier,"
                        f" got {multipliers!r}")
    chosen: dict[str, tuple[Any, float]] = {}
    names = [p.name for p in params]
    for key, mult in multipliers.items():
        if isinstance(mult, bool) or not isinstance(mult, numbers.Real) \
                or not math.isfinite(mult) or mult < 0:
            raise ValueError(f"multiplier for {key!r} must be a finite "
                             f"number >= 0, got {mult!r}")
        if isinstance(key, str):
            try:
                pattern = re.compile(key)
            except re.error as err:
                raise ValueError(f"bad pattern {key!r}: {err}") from None
            hits = [p for p in params if pattern.fullmatch(p.name)]
        elif isinstance(key, mx.gluon.Block):
            own = {id(p) for p in key.collect_params().values()}
            hits = [p for p in params if id(p) in own]
        elif isinstance(key, mx.gluon.Parameter):
            hits = [p for p in params if p is key]
        else:
            raise TypeError(f"multipliers keys must be name patterns, "
                            f"Blocks or Parameters, got {key!r}")
        if not hits:
            raise ValueError(f"multipliers key {key!r} selects no "
                             f"parameter; parameters: {names}")
        for p in hits:
            if p.name in chosen and chosen[p.name][1] != float(mult):
                raise ValueError(
                    f"parameter {p.name!r} is selected by {key!r} "
                    f"(multiplier {mult!r}) and by {chosen[p.name][0]!r} "
                    f"(multiplier {chosen[p.name][1]!r})")
            chosen[p.name] = (key, float(mult))
    for p in params:
        if p.name in chosen:
            p.lr_mult = chosen[p.name][1]
    return {name: mult for name, (_, mult) in chosen.items()}
