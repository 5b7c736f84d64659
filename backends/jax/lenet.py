"""LeNet in Flax (``flax.linen``), loaded from unisched's canonical numpy
parameters, and its trainer: the JAX side of :mod:`unisched.app.training`.

The module takes canonical NCHW images and works channels last inside
(Flax's layout: conv kernels ``(kh, kw, in, out)``, dense ``(in, out)``,
flatten in (H, W, C) order): the weights go through
``unisched.app.lenet.to_channels_last`` and back.  The transpose of a
one-channel image is a reshape that XLA compiles away.  Its pooling is
:func:`._pool.max_pool_2x2` (``nn.max_pool``'s values and gradient,
without XLA's slow window op on the CPU).

The trainer is the d2l / Flax loop: one ``jax.jit`` step (forward, mean
softmax cross-entropy, ``value_and_grad``, ``tx.update``,
``apply_updates``) with the schedule inside ``tx`` (the adapter's
``optax.inject_hyperparams`` optimizer).  Parameters and optimizer state
are not donated: on the CPU, XLA's copies to honour the aliasing cost
0.7% more instructions per step than fresh buffers.  The step also
returns what the *next* update will apply (``Adapter.peek``), so the
loss, the correct count and the rates leave the device in one transfer
per batch.

Optimizers have PyTorch's meaning (as in every unisched trainer):
``'sgd'`` is ``add_decayed_weights(wd)`` then ``optax.sgd(lr, momentum)``
(PyTorch's SGD: L2 on the gradient, ``buf = m * buf + g``), ``'adam'`` the
same L2 then ``optax.adam`` (eps 1e-8 outside the root, as PyTorch),
``'adamw'`` is ``optax.adamw`` (decoupled decay scaled by the rate).
Importing this module imports jax, optax and flax.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn

from unisched.app.lenet import (
    LENET_LAYER_GROUPS,
    from_channels_last,
    init_lenet_params,
    to_channels_last,
)
from unisched.app.training import Trainer, public_api
from unisched.base import Schedule

from ._pool import max_pool_2x2
from .adapter import Adapter, bind, driven

__all__ = ["LeNet", "FlaxLeNet", "build_lenet", "get_params", "JaxTrainer",
           "train_lenet", "lr_find", "fit_one_cycle", "OPTIMIZERS"]


class LeNet(nn.Module):
    """The chapter's LeNet in Flax: NCHW float32 in, ``(N, 10)`` logits
    out; layers named as the canonical ones."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = jnp.transpose(x, (0, 2, 3, 1))              # NCHW -> NHWC
        x = nn.relu(nn.Conv(6, (5, 5), padding=2, name="conv1")(x))
        x = max_pool_2x2(x)
        x = nn.relu(nn.Conv(16, (5, 5), padding="VALID", name="conv2")(x))
        x = max_pool_2x2(x)
        x = x.reshape((x.shape[0], -1))                 # (H, W, C) order
        x = nn.relu(nn.Dense(120, name="fc1")(x))
        x = nn.relu(nn.Dense(84, name="fc2")(x))
        return nn.Dense(10, name="fc3")(x)


#: the one (stateless) module every FlaxLeNet applies, so that the
#: jitted functions of one input shape compile once per process
_MODULE = LeNet()


@jax.jit
def _logits(params: Any, x: Any) -> jax.Array:
    # without mutable=, apply returns the output alone
    return cast(jax.Array, _MODULE.apply({"params": params}, x))


@jax.jit
def _count_correct(params: Any, x: Any, y: Any) -> jax.Array:
    return jnp.sum(jnp.argmax(_logits(params, x), axis=1) == y)


class FlaxLeNet:
    """A :class:`LeNet` and its parameters (``params``, a pytree
    ``{layer: {'kernel', 'bias'}}`` on ``device``): Flax modules hold no
    weights, so this is what a trainer trains in place.  Calling it gives
    the logits."""

    def __init__(self, params: Any, device: jax.Device) -> None:
        self.module, self.device = _MODULE, device
        self.params = jax.device_put(params, device)

    def __call__(self, x: Any) -> jax.Array:
        return _logits(self.params, x)

    def __repr__(self) -> str:
        return f"FlaxLeNet(device={self.device})"


def _device(device: Any) -> jax.Device:
    """None: JAX's default device (a GPU when JAX has one); a
    ``jax.Device``; or a platform name (``'cpu'``, ``'gpu'``)."""
    if device is None:
        return jax.devices()[0]
    if isinstance(device, jax.Device):
        return device
    try:
        return jax.devices(device)[0]
    except (RuntimeError, TypeError, ValueError) as err:
        raise ValueError(f"device must be a jax.Device or a platform name "
                         f"('cpu', 'gpu'), got {device!r} ({err})") from None


def build_lenet(params: Mapping[str, np.ndarray] | None = None,
                seed: int = 0, device: Any = None) -> FlaxLeNet:
    """LeNet in Flax from canonical ``params`` (None:
    ``init_lenet_params(seed)``), float32, on ``device``.

    >>> import numpy as np
    >>> net = build_lenet(seed=0)
    >>> net(np.zeros((2, 1, 28, 28), np.float32)).shape
    (2, 10)
    """
    if params is None:
        params = init_lenet_params(seed)
    tree = {layer: {"kernel": k, "bias": b}
            for layer, (k, b) in to_channels_last(params).items()}
    return FlaxLeNet(tree, _device(device))


def get_params(net: FlaxLeNet) -> dict[str, np.ndarray]:
    """``net``'s parameters as new float32 numpy arrays in canonical
    layout (the inverse of :func:`build_lenet`)."""
    tree = jax.device_get(net.params)
    return from_channels_last({layer: (v["kernel"], v["bias"])
                               for layer, v in tree.items()})


# -- optimizers with PyTorch's meaning ----------------------------------------

def _decayed(wd: Any, tx: optax.GradientTransformation
             ) -> optax.GradientTransformation:
    """L2 on the gradient (PyTorch's SGD/Adam ``weight_decay``) before
    ``tx``; nothing when it is a literal 0."""
    if isinstance(wd, (int, float)) and wd == 0:
        return tx
    return optax.chain(optax.add_decayed_weights(wd), tx)


def sgd(learning_rate: Any, momentum: Any = 0.0,
        weight_decay: Any = 0.0) -> optax.GradientTransformation:
    """PyTorch's SGD: ``g + wd * w`` into ``buf = m * buf + g``; no
    buffer when ``momentum`` is a literal 0 (as PyTorch keeps none)."""
    if isinstance(momentum, (int, float)) and momentum == 0:
        momentum = None
    return _decayed(weight_decay, optax.sgd(learning_rate, momentum))


def adam(learning_rate: Any, b1: Any = 0.9, b2: Any = 0.999,
         weight_decay: Any = 0.0) -> optax.GradientTransformation:
    """PyTorch's Adam (L2 ``weight_decay`` on the gradient)."""
    return _decayed(weight_decay, optax.adam(learning_rate, b1, b2,
                                             eps=1e-8))


def adamw(learning_rate: Any, b1: Any = 0.9, b2: Any = 0.999,
          weight_decay: Any = 0.0) -> optax.GradientTransformation:
    """PyTorch's AdamW (decoupled decay, scaled by the rate)."""
    return optax.adamw(learning_rate, b1, b2, eps=1e-8,
                       weight_decay=weight_decay)


OPTIMIZERS: dict[str, Callable[..., Any]] = {"sgd": sgd, "adam": adam,
                                             "adamw": adamw}
_GROUP_PATTERNS = tuple(f"({'|'.join(layers)})/.*"
                        for layers in LENET_LAYER_GROUPS)


def _loss(params: Any, apply: Any, x: Any, y: Any) -> tuple[Any, Any]:
    logits = apply({"params": params}, x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y)
    return loss.mean(), logits


class JaxTrainer(Trainer):
    """The JAX trainer (see :class:`unisched.app.training.Trainer` for
    the rates, arguments and attributes).

    JAX specifics: ``model`` is a :class:`FlaxLeNet`; ``optimizer`` is
    the optax factory ``bind`` takes (:data:`OPTIMIZERS`, with the
    trainer's momentum and weight decay as its defaults); ``adapter`` is
    a :class:`unisched.backends.jax.Adapter` (layer groups by leaf-path
    patterns); ``state`` is the optimizer state.  A native scheduler is
    an optax schedule (a function of the update count, e.g.
    ``optax.cosine_decay_schedule(...)``), given to
    ``optax.inject_hyperparams`` as the rate of the head (``native``);
    it counts updates, so ``unit`` must be ``'step'``.

    >>> t = JaxTrainer("cosine(max_update=100, base_lr=0.3)",
    ...                lr=slice(0.03, 0.3))
    >>> [round(r, 6) for r in t.hparams()[0]], type(t.adapter).__name__
    ([0.03, 0.094868, 0.3], 'Adapter')
    """

    framework = "jax"

    def __init__(self, sched: Any, **options: Any) -> None:
        super().__init__(sched, **options)
        apply = self.model.module.apply
        if self.adapter is not None:
            tx, peek = self.adapter.tx, self.adapter.peek
            self.state = self.adapter.init(self.model.params)
        else:
            tx = optax.inject_hyperparams(driven(
                self.optimizer, self._patterns()))(learning_rate=self.native)
            native = self.native

            def peek(state: Any) -> dict[str, Any]:
                return {"learning_rate": native(state.count)}
            self.state = tx.init(self.model.params)
        self._take(self.state)
        self._tx = tx
        mom_name = "momentum" if self.optimizer_name == "sgd" else "b1"
        fixed = float(self.momentum if mom_name == "momentum" else 0.9)
        factors = jnp.asarray(self.multipliers or (1.0,), jnp.float32)

        def upcoming(state: Any) -> jax.Array:
            nxt = peek(state)
            mom = nxt.get(mom_name, fixed)
            return jnp.concatenate([
                nxt["learning_rate"] * factors,
                jnp.asarray(mom, jnp.float32)[None]]).astype(jnp.float32)

        def step(params: Any, state: Any, x: Any, y: Any) -> Any:
            (loss, logits), grads = jax.value_and_grad(
                _loss, has_aux=True)(params, apply, x, y)
            updates, state = tx.update(grads, state, params)
            params = optax.apply_updates(params, updates)
            hits = jnp.sum(jnp.argmax(logits, axis=1) == y)
            stats = jnp.concatenate([
                jnp.stack([loss, hits]).astype(jnp.float32),
                upcoming(state)])
            return params, state, stats

        self._step = jax.jit(step)
        self._upcoming = jax.jit(upcoming)
        self._refresh()

    def _check_model(self, model: Any) -> None:
        if not isinstance(model, FlaxLeNet):
            raise TypeError(f"model must be a FlaxLeNet from build_lenet, "
                            f"got {type(model).__name__}")

    def _resolve_device(self, device: Any, model: Any) -> jax.Device:
        if model is None:
            return _device(device)
        if device is not None and _device(device) != model.device:
            raise ValueError(f"device={device!r} but the model's weights "
                             f"are on {model.device}; leave device=None")
        return model.device

    def _build_model(self, params: Any, seed: int) -> FlaxLeNet:
        return build_lenet(params, seed=seed, device=self.device)

    def _make_optimizer(self) -> Any:
        own = {"weight_decay": self.weight_decay}
        if self.optimizer_name == "sgd":
            own["momentum"] = self.momentum
        return functools.partial(OPTIMIZERS[self.optimizer_name], **own)

    def _patterns(self) -> dict[str, float] | None:
        if self.multipliers is None:
            return None
        return dict(zip(_GROUP_PATTERNS, self.multipliers, strict=True))

    def _bind(self, schedule: Schedule, options: dict[str, Any]
              ) -> Adapter:
        if "multipliers" in options:
            options["multipliers"] = self._patterns()
        return bind(schedule, self.optimizer, **options)

    def _bind_native(self, sched: Any) -> Any:
        if not callable(sched):
            raise TypeError(f"sched must be a unisched schedule, a spec "
                            f"string, a number or an optax schedule (a "
                            f"function of the update count), got "
                            f"{sched!r}")
        if self.unit != "step":
            raise ValueError(f"an optax schedule counts updates, so unit "
                             f"must be 'step', got unit={self.unit!r}; for "
                             f"a per-epoch schedule use a unisched one")
        try:
            value = np.asarray(sched(jnp.asarray(0, jnp.int32)))
        except Exception as err:  # a user's function: say what it did
            raise TypeError(f"sched, a callable, must be an optax schedule "
                            f"(update count -> rate); calling it with 0 "
                            f"raised {err!r}") from err
        if value.shape != () or not np.isfinite(value):
            raise TypeError(f"sched, a callable, must return one finite "
                            f"rate per update count, got {value!r}")
        return sched

    def _take(self, state: Any) -> None:
        """Make ``state`` the optimizer state (and the adapter's), committed
        to the device like the step's outputs: an uncommitted leaf (as
        ``observe`` or ``load_state_dict`` write) would cost a second
        compilation of the step."""
        self.state = jax.device_put(state, self.device)
        if self.adapter is not None:
            self.adapter.track(self.state)

    # -- the batch operations -------------------------------------------------
    def _refresh(self) -> None:
        """The next update's rates and momentum, read from the state."""
        self._next = np.asarray(self._upcoming(self.state)).tolist()

    def train_batch(self, x: Any, y: Any) -> tuple[float, int]:
        model = self.model
        model.params, state, stats = self._step(model.params, self.state,
                                                x, y)
        self.state = state if self.adapter is None else \
            self.adapter.track(state)
        loss, hits, *self._next = np.asarray(stats).tolist()
        return loss, int(hits)

    def count_correct(self, x: Any, y: Any) -> int:
        return int(_count_correct(self.model.params, x, y))

    def hparams(self) -> tuple[list[float], float | None]:
        *lrs, mom = self._next
        return lrs, mom

    def end_epoch(self, train_loss: float) -> None:
        super().end_epoch(train_loss)
        if self.schedule is not None and self.schedule.stateful:
            self._take(self.adapter.state)   # the plateau's new scale
            self._refresh()

    def _snapshot(self) -> Any:
        # copies on the host, whatever the step does with the buffers
        return jax.device_get((self.model.params, self.state))

    def _restore(self, saved: Any) -> None:
        params, state = saved
        self.model.params = jax.device_put(params, self.device)
        self._take(state)

    def restore(self, saved: Any) -> None:
        super().restore(saved)
        if self.adapter is not None:
            self._take(self.adapter.state)  # at the checkpoint's position
        self._refresh()


train_lenet, lr_find, fit_one_cycle = public_api(JaxTrainer)
