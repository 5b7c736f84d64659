"""The schedule base class, the registry of schedule names and configs.

Conventions shared by every schedule (documented once, here):

* ``step`` is the number of optimizer updates already done: the first update
  uses ``sched(0)``.  Steps are non-negative integers; epochs appear only
  through :func:`unisched.epochwise` or a backend's ``unit='epoch'``.
* A schedule is immutable and pure: the same step gives the same value in
  any call order.  (:class:`unisched.ReduceOnPlateau` is the one stateful
  schedule; its state changes only through ``observe``.)
* Every schedule stores exactly its constructor arguments; ``to_config()``
  returns them (JSON-safe, nested for combinators) under a ``name`` key and
  :func:`from_config` rebuilds an equal schedule.
"""
from __future__ import annotations

import inspect
import json
import math
from typing import Any, ClassVar

import numpy as np

from . import _validate as check
from ._ops import NumpyOps, Ops, ScalarOps, Tensor

_REGISTRY: dict[str, type[Schedule]] = {}
_CHUNK = 16384


def register(cls: type[Schedule]) -> type[Schedule]:
    """Class decorator: make ``cls`` reachable by its ``name`` in configs
    and specs."""
    if cls.name in _REGISTRY:
        raise ValueError(f"schedule name {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls
    return cls


def registered() -> dict[str, type[Schedule]]:
    """A copy of the name -> class registry."""
    return dict(_REGISTRY)


def schedule_class(name: Any) -> type[Schedule]:
    """The class registered as ``name``; a ``ValueError`` listing the valid
    names otherwise."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"unknown schedule name {name!r}; valid names: "
                         f"{', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def parameter_names(cls: type[Schedule]) -> list[str]:
    """The constructor's argument names, in order."""
    params = inspect.signature(cls.__init__).parameters
    return [p for p in params if p != "self"]


def build(name: str, args: tuple[Any, ...] = (),
          kwargs: dict[str, Any] | None = None) -> Schedule:
    """Construct the schedule registered as ``name``; an unknown argument
    gets a ``ValueError`` listing the valid ones."""
    cls = schedule_class(name)
    kwargs = dict(kwargs or {})
    for old, new in cls.renamed.items():
        if old in kwargs and new not in kwargs:
            kwargs[new] = kwargs.pop(old)
    valid = parameter_names(cls)
    unknown = [k for k in kwargs if k not in valid]
    if unknown:
        raise ValueError(f"{name}() got unknown argument(s) "
                         f"{', '.join(unknown)}; valid arguments: "
                         f"{', '.join(valid)}")
    if len(args) > len(valid):
        raise ValueError(f"{name}() takes at most {len(valid)} positional "
                         f"arguments ({', '.join(valid)}), got {len(args)}")
    for key in valid[:len(args)]:
        if key in kwargs:
            raise ValueError(f"{name}() got argument {key!r} twice")
    try:
        inspect.signature(cls.__init__).bind(None, *args, **kwargs)
    except TypeError as err:
        raise ValueError(f"{name}(): {err}; valid arguments: "
                         f"{', '.join(valid)}") from None
    return cls(*args, **kwargs)


#: how deeply configs (and specs) may nest schedules and lists
MAX_DEPTH = 100


def _decode(value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise ValueError(f"config nested deeper than {MAX_DEPTH} schedules "
                         f"or lists (or it contains itself)")
    if isinstance(value, dict):
        return _from_dict(value, depth + 1)
    if isinstance(value, list):
        return [_decode(v, depth + 1) for v in value]
    return value


def from_config(config: Any) -> Schedule:
    """Rebuild a schedule from ``to_config()`` output (or its JSON).

    >>> from unisched import CosineScheduler, from_config
    >>> s = CosineScheduler(max_update=20, base_lr=0.5)
    >>> from_config(s.to_config()) == s
    True
    """
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except (json.JSONDecodeError, RecursionError) as err:
            raise ValueError(f"config is not valid JSON ({err}): "
                             f"{config!r:.200}") from None
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict, got {config!r:.200}")
    return _from_dict(config, 0)


def _from_dict(config: dict[str, Any], depth: int) -> Schedule:
    if "name" not in config:
        raise ValueError(f"config has no 'name' key: {config!r:.200}")
    kwargs = {k: _decode(v, depth) for k, v in config.items()
              if k != "name"}
    return build(config["name"], (), kwargs)


def _freeze(value: Any) -> Any:
    """Lists become tuples, so no argument can be changed in place."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _encode(value: Any) -> Any:
    if isinstance(value, Schedule):
        return value.to_config()
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def _repr_value(value: Any) -> str:
    """Arguments are stored as tuples; show them as the lists users pass."""
    if isinstance(value, tuple):
        return "[" + ", ".join(_repr_value(v) for v in value) + "]"
    return repr(value)


def _spec_value(value: Any) -> str:
    if isinstance(value, Schedule):
        return value.to_spec()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_spec_value(v) for v in value) + "]"
    return repr(value)


class Schedule:
    """Base class: a learning rate (or momentum) as a function of the step.

    Subclasses call ``super().__init__(**args)`` with their validated
    constructor arguments and implement ``_eval(t, ops)``: the formula for
    a float step ``t`` (or an array / tensor of them) written against an
    ops namespace (see ``unisched._ops``), so that one formula serves
    scalar calls, numpy arrays and the Keras graph.
    """

    name: ClassVar[str] = ""
    stateful: ClassVar[bool] = False
    #: arguments renamed since an earlier release, old -> new: configs and
    #: specs that still use the old name keep loading
    renamed: ClassVar[dict[str, str]] = {}
    #: the constructor arguments, frozen (set once by ``__init__``)
    _args: dict[str, Any]

    def __init__(self, **args: Any) -> None:
        args = {k: _freeze(v) for k, v in args.items()}
        object.__setattr__(self, "_args", args)
        for key, value in args.items():
            object.__setattr__(self, key, value)

    # -- evaluation ---------------------------------------------------------
    def _eval(self, t: Tensor, ops: Ops) -> Tensor:
        raise NotImplementedError

    def __call__(self, step: int) -> float:
        """The value for update ``step`` (0 for the first update)."""
        value = float(self._eval(float(check.step(step)), ScalarOps))
        if not math.isfinite(value):
            self._overflow(np.array([step]), np.array([value]))
        return value

    def values(self, steps: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
        """Vectorized ``__call__`` over an array of steps (float64)."""
        t = check.steps(steps).ravel()
        out = np.empty_like(t)
        # Chunks keep each formula's temporaries in cache: on long arrays
        # this is several times faster than one pass over the whole array.
        with np.errstate(all="ignore"):
            for start in range(0, t.size, _CHUNK):
                part = t[start:start + _CHUNK]
                out[start:start + _CHUNK] = self._eval(part, NumpyOps)
        if not np.isfinite(out).all():
            self._overflow(t, out)
        return out.reshape(np.shape(steps))

    def _overflow(self, steps: np.ndarray[Any, Any],
                  values: np.ndarray[Any, Any]) -> None:
        """A schedule that grows without bound (an exponential with
        ``factor > 1``, a large scale of a large rate) has no finite rate
        past float64's range: say where, instead of returning inf."""
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise ValueError(f"{self.to_spec()[:200]} has no finite value at "
                         f"step {int(steps[bad])} (it is {values[bad]}); "
                         f"bound it, e.g. with a join or a smaller factor")

    @property
    def momentum(self) -> Schedule | None:
        """The momentum (or Adam beta1) cycle that goes with this
        schedule, as a schedule; ``None`` where there is none."""
        return None

    # -- identity -----------------------------------------------------------
    @property
    def args(self) -> dict[str, Any]:
        """The constructor arguments, as given after validation."""
        return dict(self._args)

    def to_config(self) -> dict[str, Any]:
        """JSON-safe dict: ``{'name': ..., **arguments}``, nested for
        schedules that wrap schedules."""
        config: dict[str, Any] = {"name": self.name}
        config.update({k: _encode(v) for k, v in self._args.items()})
        return config

    def to_json(self) -> str:
        return json.dumps(self.to_config())

    def to_spec(self) -> str:
        """A string that :func:`unisched.parse` turns back into ``self``."""
        inner = ", ".join(f"{k}={_spec_value(v)}"
                          for k, v in self._non_default_args().items())
        return f"{self.name}({inner})"

    def _non_default_args(self) -> dict[str, Any]:
        params = inspect.signature(type(self).__init__).parameters
        shown = {}
        for key, value in self._args.items():
            default = params[key].default
            if default is inspect.Parameter.empty or default != value:
                shown[key] = value
        return shown

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={_repr_value(v)}"
                          for k, v in self._non_default_args().items())
        return f"{type(self).__name__}({inner})"

    def __str__(self) -> str:
        return self.to_spec()

    def __eq__(self, other: Any) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.to_config() == other.to_config()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_config(), sort_keys=True))

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; build a "
                             f"new schedule instead of setting {key!r}")

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (from_config, (self.to_config(),))

    # -- display ------------------------------------------------------------
    def plot(self, max_update: int | None = None, ax: Any = None,
             label: str | None = None, **plot_kwargs: Any) -> Any:
        """Plot the values for steps ``0 .. max_update - 1`` on ``ax``
        (a new matplotlib figure if None); returns the axes."""
        from .plot import plot_schedules
        return plot_schedules({label or self.to_spec(): self},
                              max_update=max_update, ax=ax, **plot_kwargs)

    def default_horizon(self) -> int | None:
        """The number of steps that shows the whole schedule, if it has a
        natural end (``max_update`` and the like)."""
        return None
