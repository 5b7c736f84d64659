"""LeNet in Keras 3, loaded from unisched's canonical numpy parameters.

TensorFlow's CPU convolution supports only channels-last, so this model
takes NHWC input (N, 28, 28, 1); ``to_nhwc`` converts canonical NCHW
batches. The canonical (PyTorch) weight layout is converted on the way in
and back on the way out:

=============  ====================  ==============================
parameter      canonical             Keras
=============  ====================  ==============================
conv kernel    (out, in, kh, kw)     (kh, kw, in, out)  "HWIO"
dense kernel   (out, in)             (in, out)
fc1 kernel     columns in (C, H, W)  rows in (H, W, C) flatten order
=============  ====================  ==============================

Importing this module imports keras (not TensorFlow under another Keras
backend).

:class:`KerasTrainer` is the Keras side of :mod:`unisched.app.training`,
on every Keras backend: one update is one call of a compiled step
(``backends/keras/steps.py``: a ``tf.function`` traced ONCE per trainer
on tensorflow, a ``jax.jit`` per batch shape on jax, eager on torch)
holding forward, loss, gradients, the update and the correct count.  The
bound schedule is evaluated inside it from ``optimizer.iterations``; the
loss and the correct count leave it as one tensor together with the
rates and momentum of the NEXT update (read after the update, float32,
exactly as the next ``update_step`` evaluates them), which
:meth:`KerasTrainer.hparams` returns at no cost.  Nothing draws from the
backend's random state, so on the CPU two runs with one seed give
identical losses.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from unisched.app.lenet import (
    LENET_LAYER_GROUPS,
    LENET_PARAM_SHAPES,
    init_lenet_params,
    validate_lenet_params,
)
from unisched.app.training import CHAPTER_LR, Trainer, public_api
from unisched.base import Schedule

from . import _backend
from .adapter import KerasAdapter, bind
from .native import from_native
from .steps import hparams_reader, make_steps

__all__ = ["build_lenet", "get_params", "to_nhwc", "KerasTrainer",
           "train_lenet", "lr_find", "fit_one_cycle"]

_NATIVE = keras.optimizers.schedules.LearningRateSchedule

# pool2 output (C, H, W) = (16, 5, 5): the shape fc1 flattens.
_POOL2_CHW = (16, 5, 5)

_CONV = ("conv1", "conv2")
_DENSE = ("fc1", "fc2", "fc3")


def to_nhwc(x: np.ndarray) -> np.ndarray:
    """Convert a canonical NCHW batch (N, C, H, W) to NHWC (N, H, W, C).

    Returns a new C-contiguous array of the same dtype.
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(
            f"x must be a 4-d NCHW array, got x.shape={x.shape}")
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def _fc1_to_keras(w: np.ndarray) -> np.ndarray:
    """(120, 400) with (C, H, W) columns -> (400, 120) with (H, W, C) rows."""
    out = w.shape[0]
    return w.reshape(out, *_POOL2_CHW).transpose(2, 3, 1, 0).reshape(-1, out)


def _fc1_from_keras(k: np.ndarray) -> np.ndarray:
    """Inverse of ``_fc1_to_keras``."""
    c, h, w = _POOL2_CHW
    out = k.shape[1]
    return k.reshape(h, w, c, out).transpose(3, 2, 0, 1).reshape(out, -1)


def _layouts(name: str) -> tuple[Any, Any]:
    """(canonical -> Keras, Keras -> canonical) for layer ``name``'s
    kernel."""
    if name in _CONV:  # (out, in, kh, kw) <-> (kh, kw, in, out)
        return (lambda w: w.transpose(2, 3, 1, 0),
                lambda k: k.transpose(3, 2, 0, 1))
    if name == "fc1":
        return _fc1_to_keras, _fc1_from_keras
    return np.transpose, np.transpose


def build_lenet(params: Mapping[str, np.ndarray] | None = None,
                seed: int = 0) -> keras.Sequential:
    """Build LeNet as a ``keras.Sequential`` taking NHWC input.

    Input is (N, 28, 28, 1) float32 (use ``to_nhwc``); output is (N, 10)
    logits. Layers are named ``conv1, pool1, conv2, pool2, flatten, fc1,
    fc2, fc3`` (``model.get_layer("fc3")``); ReLUs are fused into the
    conv/dense layers. ``data_format="channels_last"`` is set on every layer
    so a global ``image_data_format`` setting cannot change the layout.

    Args:
        params: canonical parameters (``unisched.app.lenet`` layout). If None,
            ``init_lenet_params(seed)`` is used.
        seed: seed for ``init_lenet_params``; ignored when ``params`` is
            given.

    Returns:
        The built model, holding the converted ``params``.
    """
    if params is None:
        params = init_lenet_params(seed)
    else:
        validate_lenet_params(params)
    layers = keras.layers
    # Zero initialisers: the values are overwritten below, and zeros draw
    # nothing from Keras' random state.
    init = {"kernel_initializer": "zeros", "bias_initializer": "zeros"}
    last = {"data_format": "channels_last"}
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(6, 5, padding="same", activation="relu",
                      name="conv1", **init, **last),
        layers.MaxPooling2D(2, strides=2, name="pool1", **last),
        layers.Conv2D(16, 5, padding="valid", activation="relu",
                      name="conv2", **init, **last),
        layers.MaxPooling2D(2, strides=2, name="pool2", **last),
        layers.Flatten(name="flatten", **last),
        layers.Dense(120, activation="relu", name="fc1", **init),
        layers.Dense(84, activation="relu", name="fc2", **init),
        layers.Dense(10, name="fc3", **init),
    ], name="lenet")
    for name in _CONV + _DENSE:
        w = np.asarray(params[f"{name}.weight"], dtype=np.float32)
        b = np.asarray(params[f"{name}.bias"], dtype=np.float32)
        model.get_layer(name).set_weights([_layouts(name)[0](w), b])
    return model


def get_params(model: keras.Model) -> dict[str, np.ndarray]:
    """Return ``model``'s parameters as new float32 numpy arrays in the
    canonical layout (the inverse of ``build_lenet``'s conversion).
    """
    params: dict[str, np.ndarray] = {}
    for name in _CONV + _DENSE:
        kernel, bias = model.get_layer(name).get_weights()
        w = _layouts(name)[1](kernel)
        params[f"{name}.weight"] = np.array(w, dtype=np.float32, order="C")
        params[f"{name}.bias"] = np.array(bias, dtype=np.float32)
    return {name: params[name] for name in LENET_PARAM_SHAPES}


def _resolve_device(device: Any, model: keras.Model | None) -> str:
    """The device the trainer places its work on, named as the Keras
    backend names it (``'/device:CPU:0'`` on tensorflow, ``'cpu:0'`` on
    jax, ``'cpu'`` on torch; see ``_backend.device_name``).

    None: the device of the model's weights if a model is given, else the
    first GPU the backend sees, else the CPU.  A name (``'cpu'``,
    ``'GPU:0'``, ``'/device:CPU:0'``) must be a device of this process."""
    available = _backend.devices()
    if device is None:
        if model is not None and model.weights:
            placed = _backend.device_of(model.weights[0].value)
            if placed is not None:
                return placed
        gpus = [d for d in available if "gpu" in d.lower()]
        return gpus[0] if gpus else _backend.device_name("cpu", 0)
    if not isinstance(device, str):
        raise TypeError(f"device must be None or a device name such as "
                        f"'cpu' or 'GPU:0', got {device!r}")
    body = device.strip().lstrip("/")
    if body.lower().startswith("device:"):
        body = body[len("device:"):]
    kind, _, index = body.partition(":")
    if not kind.isalpha() or (index and not index.isdigit()) or \
            _backend.device_name(kind, int(index or 0)) not in available:
        raise ValueError(f"device={device!r} is not a device Keras' "
                         f"{_backend.BACKEND} backend sees here; "
                         f"available: {', '.join(available)}")
    return _backend.device_name(kind, int(index or 0))


def _group_variables(model: keras.Model) -> list[list[Any]]:
    """The trainable variables of each ``LENET_LAYER_GROUPS`` entry,
    checked to cover the model's."""
    groups = []
    for names in LENET_LAYER_GROUPS:
        try:
            groups.append([v for name in names for v in
                           model.get_layer(name).trainable_variables])
        except ValueError:
            raise ValueError(f"model has no layer among {list(names)}; "
                             f"discriminative rates need the LeNet of "
                             f"build_lenet") from None
    covered = sum(map(len, groups))
    if covered != len(model.trainable_variables):
        raise ValueError(f"LENET_LAYER_GROUPS covers {covered} of the "
                         f"model's {len(model.trainable_variables)} "
                         f"trainable variables")
    return groups


class KerasTrainer(Trainer):
    """The Keras trainer (see :class:`unisched.app.training.Trainer` for
    the rates, arguments and attributes).

    Keras specifics: ``keras.optimizers.SGD`` / ``Adam`` / ``AdamW`` with
    Keras' defaults (``epsilon=1e-7``); one optimizer, bound with
    :func:`unisched.backends.keras.bind` (``adapter``, a
    :class:`~unisched.backends.keras.KerasAdapter`): discriminative rates
    are its ``multipliers`` ``{variable-path pattern: factor}`` over
    ``LENET_LAYER_GROUPS``.  ``weight_decay`` is an L2 term added to the
    gradients in the train step for SGD and Adam, Keras' decoupled decay
    for AdamW (PyTorch's AdamW).  It runs on the process's Keras backend
    (``KERAS_BACKEND``: tensorflow, jax or torch; the steps in
    ``steps.py``); ``jit_compile=True`` compiles tensorflow's step with
    XLA (jax's always is; torch, eager, refuses it).  Native schedules, as
    the chapter uses them:

    * a ``keras.optimizers.schedules.LearningRateSchedule``: given to the
      optimizer as is (Keras indexes it with ``optimizer.iterations``);
      with ``unit='epoch'`` or ``lr`` it is converted exactly with
      :func:`unisched.backends.keras.from_native` and bound;
    * a callable ``(epoch, lr) -> rate`` or ``epoch -> rate``
      (``unit='epoch'`` only, one rate): a genuine
      ``keras.callbacks.LearningRateScheduler`` (``callback``), whose
      ``on_epoch_begin(epoch)`` runs before each epoch's first update,
      where ``model.fit`` calls it; the optimizer starts at
      ``CHAPTER_LR``, the ``lr`` the callable sees first.

    Example:
        >>> t = KerasTrainer("cosine(max_update=100, base_lr=0.3)")
        >>> t.hparams()
        ([0.30000001192092896], 0.0)
    """

    framework = "keras"

    def __init__(self, sched: Any, *, jit_compile: bool = False,
                 **options: Any) -> None:
        self.callback: Any = None
        self.jit_compile = bool(jit_compile)
        super().__init__(sched, **options)
        self.loss_fn = keras.losses.SparseCategoricalCrossentropy(
            from_logits=True)
        with keras.device(self.device):
            self.optimizer.build(self.model.trainable_variables)
        # The hparams of the next update, as the last train step read
        # them after its update; None: read them anew.
        self._next: list[float] | None = None
        self._compile()

    def _check_model(self, model: Any) -> None:
        if not isinstance(model, keras.Model):
            raise TypeError(f"model must be a keras.Model from "
                            f"build_lenet, got {type(model).__name__}")

    def _resolve_device(self, device: Any, model: Any) -> str:
        return _resolve_device(device, model)

    def _build_model(self, params: Any, seed: int) -> keras.Model:
        with keras.device(self.device):
            return build_lenet(params, seed=seed)

    def _make_optimizer(self) -> keras.optimizers.Optimizer:
        if self.optimizer_name == "sgd":
            return keras.optimizers.SGD(CHAPTER_LR, momentum=self.momentum)
        if self.optimizer_name == "adam":
            return keras.optimizers.Adam(CHAPTER_LR)
        return keras.optimizers.AdamW(CHAPTER_LR,
                                      weight_decay=self.weight_decay)

    def _bind(self, schedule: Schedule, options: dict[str, Any]
              ) -> KerasAdapter:
        if "multipliers" in options:
            options["multipliers"] = {
                "|".join(re.escape(v.path) for v in group): factor
                for group, factor in zip(_group_variables(self.model),
                                         options["multipliers"], strict=True)}
        return bind(schedule, self.optimizer, **options)

    def _from_native(self, sched: Any) -> Any:
        if isinstance(sched, _NATIVE) and (
                self.unit == "epoch" or self.multipliers is not None):
            return from_native(sched)
        return sched

    def _bind_native(self, sched: Any) -> Any:
        if isinstance(sched, _NATIVE):
            self.optimizer.learning_rate = sched
            return sched
        if not callable(sched):
            raise TypeError(f"sched must be a unisched schedule, a spec "
                            f"string, a number, a keras.optimizers."
                            f"schedules.LearningRateSchedule or a "
                            f"per-epoch callable (epoch[, lr]) -> rate, "
                            f"got {sched!r} ({type(sched).__name__})")
        if self.unit != "epoch":
            raise ValueError(
                f"a callable sched ({sched!r}) is a per-epoch function for "
                f"keras.callbacks.LearningRateScheduler: pass unit='epoch' "
                f"(for per-update rates pass a unisched schedule or a "
                f"keras.optimizers.schedules.LearningRateSchedule)")
        if self.multipliers is not None:
            raise ValueError(
                "lr needs one rate per group, but a callable sched goes "
                "through keras.callbacks.LearningRateScheduler, which sets "
                "the same rate on every variable; pass a unisched "
                "schedule instead")
        self.callback = keras.callbacks.LearningRateScheduler(sched)
        # The callback reads only ``model.optimizer``: no fit here.
        self.callback.set_model(types.SimpleNamespace(
            optimizer=self.optimizer))
        return self.callback

    def _compile(self) -> None:
        """The backend's compiled steps (``steps.py``), traced now where
        the backend traces ahead (tensorflow)."""
        optimizer = self.optimizer
        # each group's factor, as the bound optimizer applies it to the
        # group's variables
        factor = getattr(optimizer, "_unisched_factor", lambda v: 1.0)
        firsts = [g[0] for g in _group_variables(self.model)] \
            if self.multipliers is not None \
            else self.model.trainable_variables[:1]
        read = hparams_reader(
            optimizer, "momentum" if self.optimizer_name == "sgd"
            else "beta_1", [factor(v) for v in firsts])
        wd = self.weight_decay if self.optimizer_name != "adamw" else 0.0
        self._steps = make_steps(self.model, optimizer, self.loss_fn, read,
                                 wd, self.jit_compile, self.device)

    @property
    def traces(self) -> int:
        """How many times the train step has been traced: 1 on
        tensorflow (the batch dimension is free, so partial batches reuse
        the graph), one per batch shape on jax, 0 on torch (eager)."""
        return self._steps.traces

    # -- the batch operations ---------------------------------------------
    def train_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        out = self._steps.train(to_nhwc(x), y)
        self._next = out[2:]
        return out[0], int(out[1])

    def count_correct(self, x: np.ndarray, y: np.ndarray) -> int:
        return self._steps.evaluate(to_nhwc(x), y)

    def hparams(self) -> tuple[list[float], float | None]:
        """Evaluated in float32 as ``update_step`` does: by the last train
        step after its update, or afresh at the start of an epoch (change
        the optimizer only through the trainer between updates)."""
        values = self._next
        if values is None:
            values = self._steps.hparams()
            self._next = values
        return values[:-1], values[-1]

    def begin_epoch(self, epoch: int) -> None:
        """A per-epoch callable: Keras' callback sets this epoch's rate,
        before its first update (where fit calls on_epoch_begin)."""
        if self.callback is not None:
            self.callback.on_epoch_begin(epoch)
        self._next = None

    def end_epoch(self, train_loss: float) -> None:
        super().end_epoch(train_loss)
        self._next = None

    def _snapshot(self) -> Any:
        return ([np.array(w, copy=True) for w in self.model.get_weights()],
                [np.array(v, copy=True) for v in self.optimizer.variables])

    def _restore(self, saved: Any) -> None:
        weights, optimizer_state = saved
        # assign() in place: the caller's variables stay the same objects
        # (a compiled model keeps working).
        self.model.set_weights(weights)
        for variable, value in zip(self.optimizer.variables,
                                   optimizer_state, strict=True):
            variable.assign(value)
        self._next = None


train_lenet, lr_find, fit_one_cycle = public_api(KerasTrainer)
