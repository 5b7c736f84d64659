"""JAX side of a schedule: the ``jax.numpy`` ops namespace every formula
evaluates in, and any unisched schedule as an optax schedule.

Precision.  optax counts updates in an ``int32`` (``count``, saturating at
``2**31 - 1``).  The step part is computed in integers
(``count // steps_per_epoch`` with ``unit='epoch'``), so it is exact over
the whole int32 range; the formula then runs in the float dtype JAX
computes in: float64 when ``jax_enable_x64`` is on (steps exact to
``2**31 - 1``, rates as ``sched(k)`` to ~1e-15), float32 otherwise
(steps, periods and boundaries exact to ``2**24`` = 16 777 216 updates;
rates as ``sched(k)`` to the float32 rounding of the formula: measured
4e-6 relative at worst over the contract suite, ~2e-7 typical; the
absolute error stays ~1e-7 of the peak rate, so a rate far below its
peak, or ``gamma ** t`` over thousands of steps, is off by more in
relative terms).  This module never turns x64 on: that is the user's
global choice.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from unisched.base import Schedule
from unisched.plateau import ReduceOnPlateau

from .. import _contract as contract

#: the largest update count optax's int32 ``count`` reaches
MAX_COUNT = 2 ** 31 - 1
#: updates whose index is exact in float32 (without x64)
EXACT_FLOAT32 = 2 ** 24


def formula_dtype() -> Any:
    """float64 when ``jax_enable_x64`` is on, else float32."""
    # jax declares its config flags at run time, not in its types
    x64 = jax.config.jax_enable_x64  # type: ignore[attr-defined]
    return jnp.float64 if x64 else jnp.float32


class JaxOps:
    """The ops namespace of ``unisched._ops`` over ``jax.numpy``:
    ``where, cos, sqrt, exp, log, floor, ceil, minimum, maximum, power,
    clip``.  Python numbers are weakly typed in JAX, so a formula stays in
    its step's dtype (see :func:`formula_dtype`); it traces once under
    ``jax.jit`` and inside ``jax.grad``.

    >>> import jax.numpy as jnp
    >>> from unisched import CosineScheduler
    >>> s = CosineScheduler(max_update=10, base_lr=1.0)
    >>> s._eval(jnp.arange(0.0, 11.0, 5.0), JaxOps).round(6).tolist()
    [1.0, 0.5, 0.0]
    """

    where = staticmethod(jnp.where)
    cos = staticmethod(jnp.cos)
    sqrt = staticmethod(jnp.sqrt)
    exp = staticmethod(jnp.exp)
    log = staticmethod(jnp.log)
    floor = staticmethod(jnp.floor)
    ceil = staticmethod(jnp.ceil)
    minimum = staticmethod(jnp.minimum)
    maximum = staticmethod(jnp.maximum)
    power = staticmethod(jnp.power)
    clip = staticmethod(jnp.clip)


def check_horizon(name: str, sched: Schedule, steps_per_epoch: int | None
                  ) -> None:
    """Refuse a schedule whose natural end (``default_horizon()`` steps,
    the last one at update ``(horizon - 1) * steps_per_epoch``) lies past
    what optax's int32 ``count`` reaches."""
    horizon = sched.default_horizon()
    if horizon is None:
        return
    last = (horizon - 1) * (steps_per_epoch or 1)
    if last > MAX_COUNT:
        raise ValueError(
            f"{name} {sched.to_spec()[:120]} needs update {last}, past "
            f"optax's int32 count (at most {MAX_COUNT} = 2**31 - 1)")


def _index(count: Any, steps_per_epoch: int | None) -> Any:
    """The schedule's argument: the count (or its epoch, in int32, exact)
    as the formula dtype."""
    count = jnp.asarray(count)
    if steps_per_epoch:
        count = count // jnp.asarray(steps_per_epoch, count.dtype)
    return count.astype(formula_dtype())


class OptaxSchedule:
    """A unisched schedule as an optax schedule: ``self(count)`` is
    ``sched(count)`` (``sched(count // steps_per_epoch)`` with
    ``steps_per_epoch``), a JAX scalar, traced once under ``jax.jit``.
    Pass it wherever optax takes a schedule (``optax.sgd(learning_rate=
    OptaxSchedule(s))``); optax calls it with the count of updates done,
    so update ``k`` uses ``sched(k)``.

    >>> import unisched as us
    >>> f = OptaxSchedule(us.MultiFactorScheduler([2], 0.5, base_lr=1.0))
    >>> [float(f(k)) for k in range(4)]
    [1.0, 1.0, 1.0, 0.5]
    """

    def __init__(self, schedule: Schedule,
                 steps_per_epoch: int | None = None) -> None:
        if not isinstance(schedule, Schedule) or schedule.stateful:
            raise TypeError(f"schedule must be a stateless unisched "
                            f"schedule (ReduceOnPlateau goes through "
                            f"bind), got {schedule!r}")
        check_horizon("schedule", schedule, steps_per_epoch)
        self.schedule = schedule
        self.steps_per_epoch = steps_per_epoch

    def __call__(self, count: Any) -> Any:
        return self.schedule._eval(_index(count, self.steps_per_epoch),
                                   JaxOps)

    def __repr__(self) -> str:
        spe = f", steps_per_epoch={self.steps_per_epoch}" \
            if self.steps_per_epoch else ""
        return f"OptaxSchedule({self.schedule.to_spec()}{spe})"


class PlateauSchedule:
    """A ReduceOnPlateau as an optax *stateful* schedule
    (``optax.base.StatefulSchedule``): its state ``{'count': int32,
    'scale': float}`` lives in the optimizer state
    (``state.hyperparams_states['learning_rate']``), so a cut reaches the
    jitted step as data, without retracing."""

    def __init__(self, schedule: ReduceOnPlateau,
                 steps_per_epoch: int | None = None) -> None:
        check_horizon("schedule", schedule, steps_per_epoch)
        self.schedule = schedule
        self.steps_per_epoch = steps_per_epoch

    def state(self, count: int, scale: float) -> dict[str, Any]:
        """The schedule state at update ``count`` with ``scale``."""
        return {"count": jnp.asarray(count, jnp.int32),
                "scale": jnp.asarray(scale, formula_dtype())}

    def init(self) -> dict[str, Any]:
        return self.state(0, self.schedule.scale)

    def update(self, state: dict[str, Any], **extra: Any) -> dict[str, Any]:
        count = state["count"]
        step = jnp.where(count < MAX_COUNT, count + 1, count)
        return {"count": step, "scale": state["scale"]}

    def __call__(self, state: dict[str, Any], **extra: Any) -> Any:
        t = _index(state["count"], self.steps_per_epoch)
        return self.schedule.eval_scaled(t, JaxOps, state["scale"])


def optax_schedule(sched: Schedule, steps_per_epoch: int | None = None
                   ) -> Any:
    """:class:`OptaxSchedule`, or :class:`PlateauSchedule` for a
    ReduceOnPlateau."""
    if isinstance(sched, ReduceOnPlateau):
        return PlateauSchedule(sched, steps_per_epoch)
    return OptaxSchedule(sched, steps_per_epoch)


# -- per-leaf multipliers ----------------------------------------------------

def leaf_names(tree: Any) -> list[str]:
    """The key path of every leaf, in ``jax.tree_util`` order, joined
    with ``'/'`` (``{'dense': {'kernel': w}}`` -> ``'dense/kernel'``)."""
    def part(key: Any) -> str:
        for attr in ("key", "name", "idx"):
            if hasattr(key, attr):
                return str(getattr(key, attr))
        return str(key)
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return ["/".join(part(k) for k in path) for path, _ in leaves]


def scale_leaves(multipliers: Any) -> optax.GradientTransformation:
    """Multiply each leaf's final update by its factor (checked
    ``multipliers``: a tuple, one per leaf, or ``{pattern: factor}`` over
    :func:`leaf_names`; None: identity)."""
    def factors(tree: Any) -> list[float] | None:
        names = leaf_names(tree)
        return contract.resolve_multipliers(multipliers,
                                            [[n] for n in names])

    def init(params: Any) -> optax.EmptyState:
        factors(params)  # refuse what fits no leaf before any update
        return optax.EmptyState()

    def update(updates: Any, state: Any, params: Any = None) -> Any:
        scale = factors(updates)
        if scale is None:
            return updates, state
        leaves, tree = jax.tree_util.tree_flatten(updates)
        return jax.tree_util.tree_unflatten(tree, [
            u * jnp.asarray(f, u.dtype)
            for u, f in zip(leaves, scale, strict=True)]), state
    return optax.GradientTransformation(init, update)
