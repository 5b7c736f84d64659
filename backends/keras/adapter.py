"""Binding a schedule to a Keras optimizer or model: the adapter contract
(``backends/_contract.py``) for Keras 3.

Everything runs in the graph: the rate is a :class:`LearningRateSchedule`
and every other hyperparameter a :class:`ScheduledHyperparameter`, both
read from ``optimizer.iterations`` when the update runs (eagerly, in
``tf.function``, ``jax.jit`` and under XLA alike, on every Keras
backend).  The bound optimizer's class becomes a registered subclass (see
:func:`bound_class`) whose update applies the multipliers, whose
variables include the adapter's (the step of the bind, a plateau's
scale: state that ``jax.jit`` passes in) and whose config carries the
binding, so ``model.save`` / ``keras.models.load_model`` restore it.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import keras

from unisched import _validate as check
from unisched.base import Schedule
from unisched.plateau import ReduceOnPlateau

from .._contract import (
    MISMATCH_POLICIES,
    Attributes,
    Binding,
    as_schedule,
    check_multipliers,
    check_spelled,
    check_state,
    check_unit,
    metric_value,
    plan_hparams,
    plateau,
    reconcile,
    resolve_multipliers,
    restore_plateau,
    state_dict,
)
from .hparams import _scheduled, _unwrap, bound_class, spellings
from .schedule import LearningRateSchedule

#: the ``format`` of a Keras adapter's state_dict
FORMAT = "unisched.keras"


def variable_name(variable: Any) -> str:
    """What ``multipliers`` patterns match: a Keras variable's ``path``
    (``'dense/kernel'``), a tf.Variable's name without ``':0'``."""
    path = getattr(variable, "path", None)
    return path if path else variable.name.split(":")[0]


class _Plan:
    """A binding checked against one optimizer, with the objects to
    install built; creating it changes nothing."""

    def __init__(self, optimizer: Any, binding: Binding, start: Any) -> None:
        spell = spellings(optimizer)
        check_spelled(binding.hparams, spell, type(optimizer).__name__)
        acc = optimizer.gradient_accumulation_steps or 1
        every = acc * (binding.steps_per_epoch or 1)
        self.binding = binding
        # Both read the optimizer's micro-batch count: the k-th real
        # update after the bind happens at micro-batch start + (k + 1) *
        # acc - 1 (at most), whose floor((step - start) / acc) is k.
        self.lr = LearningRateSchedule(binding.schedule, every, start)
        self.params = _scheduled(optimizer, {
            spell[canon]: sched for canon, sched in binding.hparams.items()},
            every, start)
        self.factors = _resolve(optimizer, binding.multipliers)


def _resolve(optimizer: Any, multipliers: Any) -> list[float] | None:
    if multipliers is None or not optimizer.built:
        return None
    names = [variable_name(v) for v in optimizer._trainable_variables]
    return resolve_multipliers(multipliers, [[n] for n in names])


class KerasAdapter(Attributes):
    """A schedule bound to one Keras optimizer (see :func:`bind`).

    ``.schedule``, ``.hparams``, ``.multipliers``, ``.unit``,
    ``.steps_per_epoch``, ``.on_mismatch``: what it drives.
    ``.updates_done``: ``optimizer.iterations`` (real updates under
    gradient accumulation).  ``.observe(metric)``, ``.state_dict()``,
    ``.load_state_dict(state)``, ``.unbind()``: the contract's.
    ``.callback(monitor)``: a ``model.fit`` callback feeding
    ``observe`` at each epoch end.
    """

    def __init__(self, optimizer: Any, binding: Binding, on_mismatch: str,
                 model: Any = None) -> None:
        # The schedules count updates from the bind (as PyTorch's do);
        # a variable, so that loading a position needs no retrace.
        start = keras.Variable(int(optimizer._iterations.numpy()),
                               dtype=optimizer._iterations.dtype,
                               trainable=False, name="unisched_start")
        plan = _Plan(optimizer, binding, start)
        previous = adapter_of(optimizer)
        if previous is not None:
            previous.unbind()
        self.on_mismatch = on_mismatch
        self._start = start
        self._optimizer = optimizer
        self._model = model
        self._bound = True
        self._saved_factors: list[float] | None = None
        self._own_lr = optimizer._learning_rate
        self._own = {name: getattr(optimizer, name)
                     for name in set(spellings(optimizer).values())}
        self._install(plan)
        optimizer.__class__ = bound_class(type(optimizer))
        optimizer._unisched_adapter = self

    # -- what it drives -----------------------------------------------------
    _binding = property(lambda self: self.binding)
    optimizer = property(lambda self: self._optimizer)

    @property
    def updates_done(self) -> int:
        """Optimizer updates since the bind (or the loaded position): the
        next one uses ``sched(updates_done)`` (``unit='step'``)."""
        self._sync()
        opt = self._optimizer
        done = int(opt._iterations.numpy()) - int(self._start.numpy())
        return done // (opt.gradient_accumulation_steps or 1)

    def _sync(self) -> None:
        # model.fit on jax holds the state outside the variables during
        # an epoch (callbacks get it back through ``callback.model``).
        sync = getattr(self._model, "jax_state_sync", None)
        if sync is not None:
            sync()

    def _install(self, plan: _Plan) -> None:
        opt = self._optimizer
        # Set directly, not through the setter: a float rate's variable
        # stays tracked, so saved files keep the layout of the optimizer
        # that load_model builds before re-binding, and unbind gets it back.
        opt._learning_rate = plan.lr
        for name, param in plan.params.items():
            setattr(opt, name, param)
        self.binding, self._lr = plan.binding, plan.lr
        self._params, self._factors = plan.params, plan.factors
        if self._model is not None:
            # fit() reuses a traced train function: make it retrace.
            self._model.train_function = None

    def _restore_own(self) -> None:
        opt = self._optimizer
        opt._learning_rate = self._own_lr
        for name in self._params:
            setattr(opt, name, self._own[name])

    def _variables(self) -> list[Any]:
        """The state the graph reads besides the optimizer's own."""
        scale = self._lr._scale
        return [self._start] if scale is None else [self._start, scale]

    @contextlib.contextmanager
    def _own_values(self) -> Iterator[None]:
        """The optimizer's own rate and hyperparameters, for a while (its
        config is written with them)."""
        self._restore_own()
        try:
            yield
        finally:
            self._optimizer._learning_rate = self._lr
            for name, param in self._params.items():
                setattr(self._optimizer, name, param)

    def _resolve(self) -> None:
        """Per-variable factors once the optimizer knows its variables.
        A loaded optimizer takes the factors it was saved with, by
        position: Keras may name the variables of a loaded model
        differently (``'probe/kernel'`` for ``'sequential/probe/kernel'``)
        but keeps their order, as it does for the slot variables."""
        saved, self._saved_factors = self._saved_factors, None
        if saved is not None and self._optimizer.built and len(saved) == \
                len(self._optimizer._trainable_variables):
            self._factors = saved
            return
        self._factors = _resolve(self._optimizer, self.binding.multipliers)

    def _check_bound(self) -> None:
        if not self._bound:
            raise RuntimeError("this adapter was unbound (unbind() or a "
                               "later bind of the same optimizer)")

    # -- the contract -------------------------------------------------------
    def observe(self, metric: Any) -> bool:
        """Feed ``metric`` to the ReduceOnPlateau schedule; the scale
        variable the graph reads changes at once.  True if the rate was
        cut."""
        self._check_bound()
        plateau(self.binding.schedule, "this KerasAdapter")
        step = self.binding.index(self.updates_done)  # syncs fit's state
        return self._lr.observe(metric_value(metric), step)

    def callback(self, monitor: str = "val_loss") -> keras.callbacks.Callback:
        """A ``model.fit`` callback calling :meth:`observe` with
        ``logs[monitor]`` at every epoch end."""
        from .callbacks import ReduceOnPlateauCallback
        plateau(self.binding.schedule, "this KerasAdapter")
        return ReduceOnPlateauCallback(monitor, self)

    def state_dict(self) -> dict[str, Any]:
        """Plain data: the binding, the position and the plateau state."""
        return state_dict(FORMAT, self.binding, self.updates_done)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from ``state``: everything is checked first (a bad
        state changes nothing); a different binding follows
        ``on_mismatch``; the position becomes ``optimizer.iterations``.
        A function traced earlier keeps the schedules it was traced with:
        bind, or load, before tracing."""
        self._check_bound()
        ckpt = check_state(state, FORMAT)
        binding = reconcile(self.binding, ckpt, self.on_mismatch)
        plan = None if binding is self.binding \
            else _Plan(self._optimizer, binding, self._start)
        sched = binding.schedule
        if ckpt.schedule_state is not None and \
                isinstance(sched, ReduceOnPlateau):
            sched.check_state(ckpt.schedule_state)
        acc = self._optimizer.gradient_accumulation_steps or 1
        if plan is not None:
            self._restore_own()
            self._install(plan)
        restore_plateau(binding, ckpt)
        self._lr._sync_scale()
        # The position is the optimizer's own step count (Adam's bias
        # correction reads it too), counted from 0.
        self._optimizer._iterations.assign(ckpt.updates_done * acc)
        self._start.assign(0)

    def unbind(self) -> None:
        """Give the optimizer back its own rate (float or schedule) and
        hyperparameters, and its own class; detach.  Idempotent."""
        if not self._bound:
            return
        opt = self._optimizer
        self._restore_own()
        opt.__class__ = opt._unisched_base
        del opt._unisched_adapter
        self._bound = False
        if self._model is not None:
            self._model.train_function = None

    def _config(self) -> dict[str, Any]:
        return {"state": self.state_dict(), "on_mismatch": self.on_mismatch,
                "factors": self._factors,
                "start": int(self._start.numpy())}

    def __repr__(self) -> str:
        opt = self._optimizer
        kind = getattr(opt, "_unisched_base", type(opt)).__name__
        gone = "" if self._bound else ", unbound"
        return f"KerasAdapter({kind}: {self.binding.describe()}{gone})"


def adapter_of(optimizer: Any) -> KerasAdapter | None:
    """The adapter bound to ``optimizer`` (unwrapped from a
    LossScaleOptimizer), e.g. after ``keras.models.load_model``; None if
    it has none."""
    return getattr(_unwrap(optimizer), "_unisched_adapter", None)


def _rebind(optimizer: Any, saved: Any) -> KerasAdapter:
    if not isinstance(saved, Mapping):
        raise TypeError(f"the optimizer config's 'unisched' entry must be "
                        f"a dict, got {saved!r}")
    ckpt = check_state(saved.get("state"), FORMAT)
    policy = check.choice("on_mismatch", saved.get("on_mismatch"),
                          MISMATCH_POLICIES)
    factors = saved.get("factors")
    if factors is not None:
        factors = check.rates("the optimizer config's 'factors'", factors)
    start = check.integer("the optimizer config's 'start'",
                          saved.get("start", 0))
    adapter = KerasAdapter(optimizer, ckpt.binding, policy)
    adapter._saved_factors = factors
    # The optimizer's step count comes back with its variables.
    adapter._start.assign(start)
    restore_plateau(ckpt.binding, ckpt)
    adapter._lr._sync_scale()
    return adapter


def _target(target: Any) -> tuple[Any, Any]:
    """``(optimizer, model or None)`` from what ``bind`` was given."""
    if isinstance(target, keras.Model):
        optimizer = getattr(target, "optimizer", None)
        if optimizer is None:
            raise ValueError(f"model {target.name!r} has no optimizer: "
                             f"call model.compile(optimizer=...) first")
        return _unwrap(optimizer), target
    if isinstance(target, keras.optimizers.Optimizer):
        return _unwrap(target), None
    raise TypeError(f"target must be a keras.optimizers.Optimizer or a "
                    f"compiled keras.Model, got "
                    f"{type(target).__module__}.{type(target).__qualname__}")


def bind(sched: Schedule | str | float, target: Any, *, unit: str = "step",
         steps_per_epoch: int | None = None, multipliers: Any = None,
         hparams: Mapping[str, Any] | None = None, momentum: Any = "auto",
         on_mismatch: str = "error") -> KerasAdapter:
    """Drive a Keras optimizer (or a compiled model's) with ``sched``:
    update ``k`` uses ``sched(k)`` (``unit='epoch'``:
    ``sched(k // steps_per_epoch)``, ``steps_per_epoch`` required), the
    hyperparameters ``hparams[name](k)``, and variable ``v`` the rate
    times its multiplier.  Arguments as in the contract
    (``backends/_contract.py``); ``multipliers`` as a sequence has one
    factor per trainable variable in the optimizer's order, as a dict it
    matches variable paths (``re.fullmatch``); both are resolved when the
    optimizer is built.  ``hparams`` takes ``momentum``, ``beta1``,
    ``beta2``, ``weight_decay`` and Keras' own names (``beta_1``,
    ``rho``, ``epsilon``...).  With ``gradient_accumulation_steps`` the
    schedules count real updates.

    Bind before the first update, or before tracing a function that
    applies the optimizer (graphs traced earlier keep the old values); a
    model's compiled train function is reset for you.

    >>> import keras
    >>> opt = keras.optimizers.Adam()
    >>> bind("one_cycle(max_lr=0.01, max_update=1000)", opt)
    KerasAdapter(Adam: one_cycle(max_lr=0.01, max_update=1000), \
beta1=one_cycle_momentum(...))
    >>> round(float(opt.learning_rate), 6), round(float(opt.beta_1), 6)
    (0.0004, 0.95)
    """
    optimizer, model = _target(target)
    sched = as_schedule("sched", sched)
    unit, spe = check_unit(unit, steps_per_epoch)
    mult = check_multipliers(multipliers)
    policy = check.choice("on_mismatch", on_mismatch, MISMATCH_POLICIES)
    planned = plan_hparams(sched, hparams, momentum, spellings(optimizer),
                           type(optimizer).__name__)
    return KerasAdapter(optimizer, Binding(sched, planned, mult, unit, spe),
                        policy, model)


__all__ = ["FORMAT", "KerasAdapter", "adapter_of", "bind", "variable_name"]
