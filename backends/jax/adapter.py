"""JAX / optax adapter: :func:`bind` implements the adapter contract
(``backends/_contract.py``) for an optax optimizer *factory*.

optax is functional: the optimizer is a pure ``GradientTransformation``
and its state a pytree the user threads through the training step.  So:

* ``adapter.tx`` is ``optax.inject_hyperparams(factory)(learning_rate=
  <schedule>, momentum / b1 / ...=<schedules>, ...)`` (with the factory
  wrapped to add per-leaf multipliers and, where the factory has none,
  ``weight_decay`` as ``optax.add_decayed_weights`` before it): every
  update ``k`` (optax's ``count``) uses ``sched(k)``, and the values used
  by the last update are in ``state.hyperparams``.
* The adapter tracks the state: ``adapter.init(params)`` and
  ``adapter.update(grads, state, params)`` (``tx.update`` under
  ``jax.jit``, traced once) record the latest state; a user who jits a
  whole training step calls ``state = adapter.track(state)`` after it.
  ``adapter.state`` is that state; ``updates_done`` is its ``count``.
* ``observe``, ``load_state_dict`` and ``unbind`` change the tracked
  state (a new pytree, same structure and dtypes: nothing is retraced):
  take it back with ``state = adapter.state``.  A ReduceOnPlateau's
  scale lives in ``state.hyperparams_states['learning_rate']``.
* ``unbind()`` returns the factory's own optimizer (same wrapper, its own
  hyperparameters as numbers) and rewrites the tracked state to them, so
  training continues with the same state and moments.
* Rebinding is a new adapter (and ``init``): nothing is global.
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax
from optax.schedules._inject import WrappedScheduleState

from unisched import _validate as check
from unisched.base import Schedule

from .. import _contract as contract
from .ops import check_horizon, leaf_names, optax_schedule, scale_leaves

#: Tag stored in every state dict; bumped when the layout changes.
STATE_FORMAT = "unisched.jax.Adapter/1"
#: canonical hyperparameter name -> optax's spelling
OPTAX_NAMES = {"momentum": "momentum", "beta1": "b1", "beta2": "b2",
               "weight_decay": "weight_decay"}


def _signature(factory: Callable) -> inspect.Signature:
    """The factory's parameters, keyword-only, plus ``weight_decay``
    (default 0) where it has none."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        raise TypeError(f"target must be an optax optimizer factory with "
                        f"a signature, got {factory!r}") from None
    out = [p.replace(kind=p.KEYWORD_ONLY) for p in params
           if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if "weight_decay" not in {p.name for p in out}:
        out.append(inspect.Parameter("weight_decay", inspect.Parameter.
                                     KEYWORD_ONLY, default=0.0))
    return inspect.Signature(out)


def driven(factory: Callable, multipliers: Any) -> Callable:
    """``factory`` as the inner factory of ``inject_hyperparams``:
    ``chain([add_decayed_weights,] factory(...), scale_leaves)``; the
    chain has the same structure bound or unbound."""
    sig = _signature(factory)
    own = "weight_decay" in inspect.signature(factory).parameters

    @functools.wraps(factory)
    def make(**kw: Any) -> optax.GradientTransformation:
        parts = []
        if not own:
            parts.append(optax.add_decayed_weights(kw.pop("weight_decay")))
        parts += [factory(**kw), scale_leaves(multipliers)]
        return optax.chain(*parts)
    # what inspect.signature reports (functions take the attribute)
    make.__signature__ = sig  # type: ignore[attr-defined]
    return make


def _check_factory(target: Any) -> None:
    if isinstance(target, optax.GradientTransformation):
        raise TypeError("bind needs an optax optimizer factory (optax.sgd, "
                        "optax.adam or a functools.partial of one), got a "
                        "GradientTransformation: pass the function, not "
                        "its result")
    if not callable(target) or "learning_rate" not in \
            _signature(target).parameters:
        raise TypeError(f"bind needs an optax optimizer factory taking "
                        f"learning_rate (optax.sgd, optax.adam...), got "
                        f"{target!r}")


class Adapter(contract.Attributes):
    """The contract's adapter over an optax factory (see the module
    docstring for how the state is tracked).  Attributes: ``tx``,
    ``state``, ``factory``, ``schedule``, ``hparams``, ``multipliers``,
    ``unit``, ``steps_per_epoch``, ``on_mismatch``, ``updates_done``,
    ``bound``."""

    def __init__(self, factory: Callable, binding: contract.Binding,
                 on_mismatch: str, spellings: dict[str, str]) -> None:
        self.factory, self.on_mismatch = factory, on_mismatch
        self._spell, self._binding = spellings, binding
        sig = _signature(factory).parameters
        self._own = {n: p.default for n, p in sig.items()
                     if p.default is not inspect.Parameter.empty}
        self._names: list[str] | None = None
        self._state: Any = None
        self._start = 0
        self.bound = True
        self._build()

    def _build(self) -> None:
        b = self._binding
        self._fns = {"learning_rate": optax_schedule(b.schedule,
                                                     b.steps_per_epoch)}
        for canon, sched in b.hparams.items():
            self._fns[self._spell[canon]] = optax_schedule(
                sched, b.steps_per_epoch)
        self.tx = optax.inject_hyperparams(driven(
            self.factory, b.multipliers))(**self._fns)
        self._update = jax.jit(self.tx.update)

    state = property(lambda self: self._state,
                     doc="The latest optimizer state seen.")

    @property
    def updates_done(self) -> int:
        """The position: the tracked state's ``count`` (before ``init``:
        the position to start at, 0 or as loaded)."""
        if self._state is None:
            return self._start
        return int(self._state.count)

    # -- the training loop --------------------------------------------------
    def init(self, params: Any) -> Any:
        """``tx.init(params)`` at the adapter's position (0, or as
        loaded); tracked."""
        self._names = leaf_names(params)
        state = self.tx.init(params)
        return self._rewrite(state, self._start)

    def update(self, grads: Any, state: Any, params: Any = None
               ) -> tuple[Any, Any]:
        """``tx.update`` (jitted once per adapter); tracks the new
        state."""
        if not self.bound:
            raise RuntimeError("this adapter was unbound; use the "
                               "optimizer unbind() returned")
        updates, state = self._update(grads, state, params)
        self._state = state
        return updates, state

    def track(self, state: Any) -> Any:
        """Record ``state`` (from a step jitted by the user) as the
        latest; returns it."""
        self._state = state
        return state

    def peek(self, state: Any = None) -> dict[str, Any]:
        """The scheduled hyperparameters (optax's names) that the next
        update from ``state`` (default: the tracked one) applies, as
        ``inject_hyperparams`` computes them from it (its
        ``state.hyperparams`` hold the *last* update's).  Pure: call it
        inside a jitted step to read them out with its other results."""
        state = self._state if state is None else state
        out = {}
        for name, fn in self._fns.items():
            sched_state = state.hyperparams_states[name]
            out[name] = fn(sched_state) if hasattr(fn, "init") else \
                fn(sched_state.count)
        return out

    def restore(self, state: Any) -> Any:
        """``state`` (e.g. restored by Orbax, or from a fresh ``init``)
        moved to the adapter's position, schedule values and plateau
        scale; tracked and returned."""
        return self._rewrite(state, self._start if self._state is None
                             else self.updates_done)

    def _values(self, k: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Hyperparameter values and schedule states at update ``k``."""
        values, states = {}, {}
        for name, fn in self._fns.items():
            if hasattr(fn, "init"):     # a ReduceOnPlateau
                states[name] = fn.state(k, self.schedule.scale)
                values[name] = fn(states[name])
            else:
                # optax wraps a plain schedule with a count of its own
                states[name] = WrappedScheduleState(jnp.asarray(k,
                                                                jnp.int32))
                values[name] = fn(states[name].count)
        return values, states

    def _rewrite(self, state: Any, k: int, values: Any = None,
                 states: Any = None) -> Any:
        if values is None:
            values, states = self._values(k)
        hyper = dict(state.hyperparams)
        for name, value in values.items():
            old = hyper.get(name)
            dtype = old.dtype if old is not None else jnp.float32
            hyper[name] = jnp.asarray(value, dtype)
        self._state = state._replace(
            count=jnp.asarray(k, jnp.int32), hyperparams=hyper,
            hyperparams_states=states)
        return self._state

    # -- the contract -------------------------------------------------------
    def observe(self, metric: Any) -> bool:
        """Feed ``metric`` to the ReduceOnPlateau and write the cut scale
        into the tracked state (``adapter.state``); True if cut."""
        plateau = contract.plateau(self.schedule, "this adapter")
        value = contract.metric_value(metric)
        k = self.updates_done
        cut = plateau.observe(value, step=self._binding.index(k))
        if self._state is not None:
            self._rewrite(self._state, k)
        return cut

    def state_dict(self) -> dict[str, Any]:
        """Plain data: the contract's checkpoint, tagged
        :data:`STATE_FORMAT`."""
        return contract.state_dict(STATE_FORMAT, self._binding,
                                   self.updates_done)

    def load_state_dict(self, state: Any) -> None:
        """Validate the whole checkpoint, settle a different binding as
        ``on_mismatch`` says, then move the tracked state (or the next
        ``init``) to its position: take it back with ``adapter.state``."""
        ckpt = contract.check_state(state, STATE_FORMAT)
        binding = contract.reconcile(self._binding, ckpt, self.on_mismatch)
        if binding is not self._binding:
            contract.check_spelled(binding.hparams, self._spell,
                                   _name(self.factory))
            for name, sched in [("schedule", binding.schedule),
                                *binding.hparams.items()]:
                check_horizon(name, sched, binding.steps_per_epoch)
            if self._names is not None:
                contract.resolve_multipliers(
                    binding.multipliers, [[n] for n in self._names])
        contract.restore_plateau(binding, ckpt)
        if binding is not self._binding:
            self._binding = binding
            self._build()
        self._start = ckpt.updates_done
        if self._state is not None:
            self._rewrite(self._state, ckpt.updates_done)

    def unbind(self) -> optax.GradientTransformation:
        """The factory's own optimizer (its own hyperparameters, no
        multipliers), with the tracked state rewritten to them: continue
        with ``tx = adapter.unbind(); state = adapter.state``."""
        if "learning_rate" not in self._own:
            raise ValueError(f"{_name(self.factory)} has no learning_rate "
                             f"of its own to go back to; bind a "
                             f"functools.partial(factory, learning_rate=...)")
        own = {k: v for k, v in self._own.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
        tx = optax.inject_hyperparams(driven(self.factory, None))(**own)
        if self._state is not None:
            state = self._state._replace(hyperparams={
                k: v for k, v in self._state.hyperparams.items()
                if k in own})
            self._rewrite(state, self.updates_done,
                          {k: v for k, v in own.items()
                           if k in self._state.hyperparams}, {})
        self.bound = False
        return tx

    def __repr__(self) -> str:
        return (f"Adapter({_name(self.factory)}, "
                f"{self._binding.describe()}, updates_done="
                f"{self.updates_done}{'' if self.bound else ', unbound'})")


def _name(factory: Any) -> str:
    inner = getattr(factory, "func", factory)
    return f"optax.{getattr(inner, '__name__', type(inner).__name__)}"


def spellings(factory: Callable) -> dict[str, str]:
    """Canonical name -> optax's spelling for every hyperparameter the
    factory has (plus its other numeric arguments under their own
    names, e.g. ``eps``, ``nesterov`` excluded)."""
    params = _signature(factory).parameters
    out = {canon: own for canon, own in OPTAX_NAMES.items()
           if own in params}
    for name, p in params.items():
        if name != "learning_rate" and name not in out.values() and \
                isinstance(p.default, (int, float)) and \
                not isinstance(p.default, bool):
            out[name] = name
    return out


def bind(sched: Schedule | str | float, target: Callable, *,
         unit: str = "step", steps_per_epoch: int | None = None,
         multipliers: Sequence[float] | Mapping[str, float] | None = None,
         hparams: Mapping[str, Any] | None = None, momentum: Any = "auto",
         on_mismatch: str = "error") -> Adapter:
    """Drive an optax optimizer factory (``optax.sgd``, ``optax.adam``, a
    ``functools.partial`` of one) with ``sched``; options are the
    contract's.  ``unit='epoch'`` needs ``steps_per_epoch``;
    ``multipliers`` go per leaf of the params pytree (see
    :func:`leaf_names`) and scale the final update; ``hparams`` take
    ``momentum``, ``beta1`` (``b1``), ``beta2`` (``b2``),
    ``weight_decay`` and the factory's other numeric arguments.

    >>> import jax.numpy as jnp, optax
    >>> ad = bind("multi_factor(step=[2], factor=0.5, base_lr=1.0)",
    ...           optax.sgd)
    >>> params = {"w": jnp.zeros(1)}
    >>> state = ad.init(params)
    >>> rates = []
    >>> for _ in range(4):
    ...     upd, state = ad.update({"w": jnp.ones(1)}, state, params)
    ...     rates.append(-float(upd["w"][0]))
    >>> rates, ad.updates_done
    ([1.0, 1.0, 1.0, 0.5], 4)
    """
    _check_factory(target)
    sched = contract.as_schedule("sched", sched)
    unit, spe = contract.check_unit(unit, steps_per_epoch)
    on_mismatch = check.choice("on_mismatch", on_mismatch,
                               contract.MISMATCH_POLICIES)
    spell = spellings(target)
    planned = contract.plan_hparams(sched, hparams, momentum, spell,
                                    _name(target))
    binding = contract.Binding(sched, planned, contract.check_multipliers(
        multipliers), unit, spe)
    for name, s in [("sched", sched), *planned.items()]:
        check_horizon(name, s, spe)
    return Adapter(target, binding, on_mismatch, spell)
