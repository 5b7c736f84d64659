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

Importing this module imports keras.
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import numpy as np
from unisched.app.lenet import (
    LENET_PARAM_SHAPES,
    init_lenet_params,
    validate_lenet_params,
)

__all__ = ["build_lenet", "get_params", "to_nhwc"]

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
        if name in _CONV:
            kernel = w.transpose(2, 3, 1, 0)
        elif name == "fc1":
            kernel = _fc1_to_keras(w)
        else:
            kernel = w.T
        model.get_layer(name).set_weights([kernel, b])
    return model


def get_params(model: keras.Model) -> dict[str, np.ndarray]:
    """Return ``model``'s parameters as new float32 numpy arrays in the
    canonical layout (the inverse of ``build_lenet``'s conversion).
    """
    params: dict[str, np.ndarray] = {}
    for name in _CONV + _DENSE:
        kernel, bias = model.get_layer(name).get_weights()
        if name in _CONV:
            w = kernel.transpose(3, 2, 0, 1)
        elif name == "fc1":
            w = _fc1_from_keras(kernel)
        else:
            w = kernel.T
        params[f"{name}.weight"] = np.array(w, dtype=np.float32, order="C")
        params[f"{name}.bias"] = np.array(bias, dtype=np.float32)
    return {name: params[name] for name in LENET_PARAM_SHAPES}
