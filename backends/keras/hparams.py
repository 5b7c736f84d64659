"""Hyperparameters other than the rate (momentum, ``beta_1``...) evaluated
in the graph from ``optimizer.iterations``, and the class a bound
optimizer takes (:func:`bound_class`: multipliers in ``update_step``, the
binding in its config).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import keras

from unisched import _validate as check
from unisched.base import Schedule

from ._backend import EAGER_HPARAMS, constant
from .schedule import KerasOps, _schedule, eager_index, index, rate

# -- hyperparameters other than the learning rate ---------------------------

def _binary(op: Callable) -> tuple[Callable, Callable]:
    def forward(self, other):
        return op(self.value(), other)

    def reflected(self, other):
        return op(other, self.value())
    return forward, reflected


class ScheduledHyperparameter(float):
    """An optimizer hyperparameter (SGD ``momentum``, Adam ``beta_1``, ...)
    that follows a schedule of ``optimizer.iterations``.

    Keras 3 optimizers read such hyperparameters as Python attributes
    inside ``update_step`` (``ops.cast(self.momentum, dtype)``, ``1 -
    self.beta_1``); a plain float there is baked into the traced graph, so
    assigning a new float later changes nothing in a compiled train step.
    This object replaces the attribute.  Converted to a tensor (the
    ``__tf_tensor__`` and ``__jax_array__`` protocols) or used in
    arithmetic, it is ``schedule(optimizer.iterations)``, evaluated with
    :class:`KerasOps` when traced, so update k uses ``schedule(k)`` in
    ``model.fit``, custom loops, ``tf.function``, ``jax.jit`` and XLA
    alike.  Keras' torch backend converts Python floats without asking
    them: there the bound optimizer sets the attribute to the current
    value, a plain float, for each (eager) update.

    As a Python float it is ``schedule(0)``: that is what build-time
    checks such as SGD's ``momentum != 0`` (which decides whether velocity
    slots exist) see.  A bound optimizer's config holds its own value and
    the binding instead (see :func:`bound_class`).

    :func:`bind` creates them (``hparams=``, or a momentum cycle).
    """

    optimizer: Any
    name: str
    schedule: Schedule
    every: int
    start: Any

    def __new__(cls, optimizer: Any, name: str, schedule: Schedule | str,
                every: int = 1, start: Any = None
                ) -> ScheduledHyperparameter:
        sched = _schedule(schedule, name)
        if sched.stateful:
            raise TypeError(f"{name} schedule must be stateless, "
                            f"got {sched!r}")
        obj = super().__new__(cls, sched(0))
        obj.optimizer = optimizer
        obj.name = name
        obj.schedule = sched
        obj.every = check.integer("every", every, 1)
        obj.start = start
        return obj

    def value(self) -> Any:
        """``schedule((step - start) // every)`` as a float32 tensor, where
        ``step`` is the optimizer's own step count (micro-batches under
        gradient accumulation, as for the rate)."""
        step = self.optimizer._iterations
        now = eager_index(step, self.every, self.start)
        if now is not None:
            return constant(self.schedule(now))
        return rate(self.schedule._eval(index(step, self.every,
                                              self.start), KerasOps))

    def __tf_tensor__(self, dtype: Any = None, name: Any = None) -> Any:
        value = self.value()
        return value if dtype is None else keras.ops.cast(value, dtype)

    def __jax_array__(self) -> Any:
        return self.value()

    __add__, __radd__ = _binary(lambda a, b: a + b)
    __sub__, __rsub__ = _binary(lambda a, b: a - b)
    __mul__, __rmul__ = _binary(lambda a, b: a * b)
    __truediv__, __rtruediv__ = _binary(lambda a, b: a / b)
    __pow__, __rpow__ = _binary(lambda a, b: a ** b)

    def __neg__(self):
        return -self.value()

    def __reduce__(self):
        # Copies and pickles hold the recorded constant, like get_config.
        return (float, (float(self),))

    def __repr__(self) -> str:
        return (f"ScheduledHyperparameter({self.name}="
                f"{self.schedule.to_spec()})")

    __str__ = __repr__


def _unwrap(optimizer: Any) -> keras.optimizers.Optimizer:
    """The optimizer that owns the hyperparameters (mixed precision wraps
    it in a LossScaleOptimizer)."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.inner_optimizer
    if isinstance(optimizer, keras.optimizers.MultiOptimizer):
        raise TypeError("a MultiOptimizer has one learning rate per inner "
                        "optimizer: bind each of optimizer.optimizers, or "
                        "use one optimizer and bind(..., multipliers=...)")
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise TypeError(f"optimizer must be a keras.optimizers.Optimizer, "
                        f"got {type(optimizer).__module__}."
                        f"{type(optimizer).__qualname__}")
    return optimizer


def _float_hparams(optimizer: Any) -> list[str]:
    skip = {"learning_rate", "ema_momentum", "loss_scale_factor"}
    return sorted(k for k, v in vars(optimizer).items()
                  if isinstance(v, float) and not k.startswith("_")
                  and k not in skip)


#: the contract's names -> Keras' spelling
CANONICAL = {"momentum": "momentum", "beta1": "beta_1", "beta2": "beta_2",
             "weight_decay": "weight_decay"}


def spellings(optimizer: Any) -> dict[str, str]:
    """Every hyperparameter ``bind`` can drive on ``optimizer``: canonical
    name -> Keras attribute (the contract's names where they apply, else
    Keras' own: ``rho``, ``epsilon``...).  ``weight_decay`` counts where
    it is None too (a schedule switches decoupled decay on)."""
    own = _float_hparams(optimizer)
    out = {canon: native for canon, native in CANONICAL.items()
           if native in own}
    if getattr(optimizer, "weight_decay", 0.0) is None:
        out["weight_decay"] = "weight_decay"
    taken = set(out.values())
    out.update((name, name) for name in own if name not in taken)
    return out


def _scheduled(optimizer: Any, hparams: Mapping[str, Any], every: int = 1,
               start: Any = None) -> dict[str, ScheduledHyperparameter]:
    """Check ``hparams`` (Keras attribute -> schedule) against
    ``optimizer`` and build the objects, changing nothing yet (so a bad
    name leaves the optimizer as it was)."""
    if not isinstance(hparams, Mapping):
        raise TypeError(f"hparams must be a dict name -> schedule, "
                        f"got {hparams!r}")
    valid = sorted(set(spellings(optimizer).values()))
    out = {}
    for name, sched in hparams.items():
        if name not in valid:
            raise ValueError(
                f"{type(optimizer).__name__} has no float hyperparameter "
                f"{name!r}; it has {valid}")
        current = getattr(optimizer, name)
        param = ScheduledHyperparameter(optimizer, name, sched, every, start)
        if name == "momentum":
            # SGD and RMSprop keep velocity slots only if momentum != 0 at
            # build time; the graph needs them for every update.
            if optimizer.built and float(current) == 0 \
                    and not _has_velocity(optimizer):
                raise ValueError(
                    f"{type(optimizer).__name__} was built with momentum="
                    f"{float(current)!r}, so it has no velocity slots; "
                    f"bind before the first update or construct it with "
                    f"momentum > 0")
            if float(param) == 0:
                raise ValueError(
                    f"the momentum schedule starts at 0.0 ({param!r}); "
                    f"Keras would build the optimizer without velocity "
                    f"slots: start it above 0")
        out[name] = param
    return out


def _has_velocity(optimizer: Any) -> bool:
    # SGD keeps its slots in .momentums, RMSprop in ._momentums.
    return bool(getattr(optimizer, "momentums", None)
                or getattr(optimizer, "_momentums", None))


# -- the class of a bound optimizer -------------------------------------------

if TYPE_CHECKING:
    # bound_class mixes _Bound into a Keras optimizer class, which Keras
    # ships no types for: to mypy the host, and so the base, is Any
    from keras.optimizers import Optimizer as _Host
else:
    _Host = object


class _Bound(_Host):
    """What a bound optimizer adds to its class: multipliers in the
    update and in weight decay, the adapter's variables, the binding in
    its config."""

    def apply(self, grads: Any, trainable_variables: Any = None) -> Any:
        if not EAGER_HPARAMS:
            return super().apply(grads, trainable_variables)
        # Keras' torch backend reads hyperparameters as Python floats:
        # this update's values, for the (eager) update.
        params = self._unisched_adapter._params
        for name, param in params.items():
            setattr(self, name, float(param.value()))
        try:
            return super().apply(grads, trainable_variables)
        finally:
            for name, param in params.items():
                setattr(self, name, param)

    def _backend_update_step(self, grads: Any, trainable_variables: Any,
                             learning_rate: Any) -> Any:
        # One call of the backend's own update per multiplier (torch's
        # fused foreach update and TensorFlow's distributed one stay).
        groups: dict[float, tuple[list, list]] = {}
        for grad, variable in zip(grads, trainable_variables, strict=True):
            group = groups.setdefault(self._unisched_factor(variable),
                                      ([], []))
            group[0].append(grad)
            group[1].append(variable)
        for factor, (some, variables) in groups.items():
            lr = learning_rate if factor == 1.0 else learning_rate * factor
            super()._backend_update_step(some, variables, lr)

    @property
    def variables(self) -> list[Any]:
        # The adapter's variables (where the bind started, a plateau's
        # scale) are optimizer state: jax.jit and model.fit on jax pass
        # them in with the others, and model.save keeps them.  Last, so
        # that the layout is the same whether the optimizer was built
        # before the bind or (load_model) after it.
        return self._variables + self._unisched_adapter._variables()

    def _unisched_factor(self, variable: Any) -> float:
        factors = self._unisched_adapter._factors
        if factors is None:
            return 1.0
        return factors[self._get_variable_index(variable)]

    def _apply_weight_decay(self, variables: Any) -> None:
        # Decoupled decay is lr * wd * w: the variable's rate is scaled.
        # (Keras' own version, used when no factor differs from 1,
        # also handles tf.distribute merge calls.)
        factors = self._unisched_adapter._factors
        if self.weight_decay is None or factors is None or all(
                f == 1.0 for f in factors):
            return super()._apply_weight_decay(variables)
        for variable in variables:
            if self._use_weight_decay(variable):
                lr = keras.ops.cast(self.learning_rate, variable.dtype)
                wd = keras.ops.cast(self.weight_decay, variable.dtype)
                lr = lr * self._unisched_factor(variable)
                variable.assign(variable - variable * wd * lr)

    def build(self, variables: Any) -> None:
        super().build(variables)
        self._unisched_adapter._resolve()

    def get_config(self) -> dict[str, Any]:
        adapter = self._unisched_adapter
        with adapter._own_values():
            config = super().get_config()
        config["unisched"] = adapter._config()
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any],
                    custom_objects: Any = None) -> Any:
        config = dict(config)
        saved = config.pop("unisched", None)
        optimizer = cls._unisched_base.from_config(
            config, custom_objects=custom_objects)
        if saved is not None:
            from .adapter import _rebind  # the adapter module imports this
            _rebind(optimizer, saved)
        return optimizer


_BOUND: dict[type, type] = {}


def bound_class(cls: type) -> type:
    """The registered subclass a bound ``cls`` optimizer becomes
    (``'unisched>BoundSGD'``...); made once per class.  Keras' own
    optimizers get theirs when this module is imported, so
    ``load_model`` in a fresh process finds them; for another optimizer
    class, bind one instance (or call this) before loading."""
    if cls in _BOUND:
        return _BOUND[cls]
    if cls.__module__.startswith("keras."):
        name = f"Bound{cls.__name__}"
    else:
        name = f"Bound_{cls.__module__}.{cls.__qualname__}"
    bound = type(name, (_Bound, cls), {
        "_unisched_base": cls, "__module__": __name__,
        "__doc__": f"A {cls.__name__} bound to a unisched schedule."})
    _BOUND[cls] = keras.saving.register_keras_serializable(
        "unisched", name)(bound)
    return _BOUND[cls]


for _cls in vars(keras.optimizers).values():
    if isinstance(_cls, type) and issubclass(
            _cls, keras.optimizers.Optimizer) and _cls not in (
            keras.optimizers.Optimizer, keras.optimizers.LossScaleOptimizer):
        bound_class(_cls)
