"""The modernized LeNet of the d2l "Learning Rate Scheduling" chapter.

The same network is built in PyTorch, Keras and MXNet (see
``unisched.backends.torch.lenet``, ``_lenet_keras``, ``_lenet_mxnet``). So
that a schedule comparison across frameworks starts from *identical*
weights, the weights are generated once, here, with numpy only, in one
canonical layout; each backend converts them to its own layout and back.

Architecture (input 1 x 28 x 28, one channel of 28 x 28 pixels)::

    conv1  6 @ 5x5, padding 2   -> 6 x 28 x 28, ReLU
    pool1  max 2x2, stride 2    -> 6 x 14 x 14
    conv2  16 @ 5x5, no padding -> 16 x 10 x 10, ReLU
    pool2  max 2x2, stride 2    -> 16 x 5 x 5
    flatten in (C, H, W) order  -> 400
    fc1    dense 120, ReLU
    fc2    dense 84, ReLU
    fc3    dense 10              -> logits (no softmax)

Canonical parameter layout (PyTorch's; see ``LENET_PARAM_SHAPES``):

- conv weights ``(out_channels, in_channels, kernel_h, kernel_w)``;
- dense weights ``(out_features, in_features)``, applied as ``W @ x``;
- biases ``(out,)``;
- all float32; keys ``"<layer>.weight"`` / ``"<layer>.bias"``, the names
  ``torch.nn.Sequential.state_dict()`` uses for the named layers.

Flatten order: input feature ``i`` of ``fc1`` is the pool2 output at
channel ``c``, row ``h``, column ``w`` with ``i = c * 25 + h * 5 + w``
(C, H, W order, as in PyTorch and MXNet). Keras and Flax work channels
last and flatten (H, W, C): :func:`to_channels_last` gives their layout
(kernels ``(kh, kw, in, out)`` and ``(in, out)``, the ``fc1`` rows
permuted), :func:`from_channels_last` the way back.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "LENET_INPUT_SHAPE",
    "LENET_LAYERS",
    "LENET_NUM_CLASSES",
    "LENET_PARAM_SHAPES",
    "init_lenet_params",
    "lenet_forward_numpy",
    "validate_lenet_params",
    "xavier_bound",
    "to_channels_last",
    "from_channels_last",
]

#: Shape of one input image, (channels, height, width).
LENET_INPUT_SHAPE: tuple[int, int, int] = (1, 28, 28)

#: Number of classes, i.e. of logits per image.
LENET_NUM_CLASSES: int = 10

#: Names of the layers that hold parameters, input to output. Every
#: backend gives its layers these names, so layer groups (e.g. a different
#: learning rate for the classifier head) are addressable by name.
LENET_LAYERS: tuple[str, ...] = ("conv1", "conv2", "fc1", "fc2", "fc3")

#: Canonical parameter names and shapes, in the order ``init_lenet_params``
#: draws them (read-only mapping).
LENET_PARAM_SHAPES: Mapping[str, tuple[int, ...]] = MappingProxyType({
    "conv1.weight": (6, 1, 5, 5),
    "conv1.bias": (6,),
    "conv2.weight": (16, 6, 5, 5),
    "conv2.bias": (16,),
    "fc1.weight": (120, 400),
    "fc1.bias": (120,),
    "fc2.weight": (84, 120),
    "fc2.bias": (84,),
    "fc3.weight": (10, 84),
    "fc3.bias": (10,),
})

#: Layer groups for discriminative learning rates (fastai's ``slice``):
#: the convolutional body, the hidden dense layers, the classifier head.
LENET_LAYER_GROUPS: tuple[tuple[str, ...], ...] = (
    ("conv1", "conv2"), ("fc1", "fc2"), ("fc3",))


def xavier_bound(shape: tuple[int, ...]) -> float:
    """Return the Glorot/Xavier uniform limit ``sqrt(6 / (fan_in + fan_out))``.

    ``shape`` is a canonical weight shape: ``(out, in)`` for a dense layer or
    ``(out, in, kh, kw)`` for a convolution, whose fans are multiplied by the
    receptive field ``kh * kw`` (the convention of
    ``torch.nn.init.xavier_uniform_`` and ``keras.initializers.
    GlorotUniform``). The weights then have variance
    ``2 / (fan_in + fan_out)``, which keeps activation variance roughly
    constant through the layers.
    """
    if len(shape) < 2:
        raise ValueError(
            f"shape must have at least 2 dimensions, got shape={shape!r}")
    receptive_field = int(np.prod(shape[2:], dtype=np.int64))
    fan_out = shape[0] * receptive_field
    fan_in = shape[1] * receptive_field
    return float(np.sqrt(6.0 / (fan_in + fan_out)))


def init_lenet_params(seed: int = 0) -> dict[str, np.ndarray]:
    """Draw LeNet's initial parameters in the canonical layout.

    Weights are Glorot/Xavier uniform, ``U(-b, b)`` with
    ``b = xavier_bound(shape)``; biases are zero. All draws come from one
    ``np.random.default_rng(seed)``, in the order of ``LENET_PARAM_SHAPES``
    (conv1, conv2, fc1, fc2, fc3 weights; biases draw nothing), each drawn
    in float64 and rounded to float32. Rounding is monotone, so every
    float32 weight still satisfies ``|w| <= float32(b)``.

    Args:
        seed: non-negative integer seed. The same seed always gives the
            same arrays (for a given numpy random-stream version); no global
            random state is read or changed.

    Returns:
        A new dict ``name -> float32 array``, keys in ``LENET_PARAM_SHAPES``
        order.

    Example:
        >>> params = init_lenet_params(seed=0)
        >>> params["fc1.weight"].shape, params["fc1.weight"].dtype
        ((120, 400), dtype('float32'))
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(
            f"seed must be a non-negative int, got seed={seed!r} "
            f"of type {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int, got seed={seed}")
    rng = np.random.default_rng(int(seed))
    params: dict[str, np.ndarray] = {}
    for name, shape in LENET_PARAM_SHAPES.items():
        if name.endswith(".bias"):
            params[name] = np.zeros(shape, dtype=np.float32)
        else:
            bound = xavier_bound(shape)
            params[name] = rng.uniform(-bound, bound, size=shape).astype(
                np.float32)
    return params


def validate_lenet_params(params: Mapping[str, np.ndarray]) -> None:
    """Raise ``ValueError`` unless ``params`` has exactly the canonical
    names (``LENET_PARAM_SHAPES``) with the canonical shapes.

    Backends call this before converting, so a wrong layout (for example a
    Keras-ordered kernel) fails loudly instead of loading garbage.
    """
    if not isinstance(params, Mapping):
        raise TypeError(
            f"params must be a mapping name -> array, got "
            f"{type(params).__name__}")
    missing = [k for k in LENET_PARAM_SHAPES if k not in params]
    extra = [k for k in params if k not in LENET_PARAM_SHAPES]
    if missing or extra:
        raise ValueError(
            f"params must have exactly the keys of LENET_PARAM_SHAPES; "
            f"missing={missing}, unexpected={extra}")
    for name, shape in LENET_PARAM_SHAPES.items():
        got = tuple(np.shape(params[name]))
        if got != shape:
            raise ValueError(
                f"params[{name!r}] must have shape {shape}, got {got}")


def _conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray,
            pad: int) -> np.ndarray:
    """Cross-correlation (what every framework calls convolution), stride 1.

    ``x`` is (N, C, H, W), ``w`` is (O, C, kh, kw); returns (N, O, H', W').
    The sliding windows are a strided view, so only the einsum allocates.
    """
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    # numpy's stub types axis as one int; a tuple is documented and works
    windows = sliding_window_view(  # type: ignore[call-overload]
        x, w.shape[2:], axis=(2, 3))
    out = np.einsum("nchwij,ocij->nohw", windows, w, optimize=True)
    return out + b[None, :, None, None]


def _max_pool_2x2(x: np.ndarray) -> np.ndarray:
    """2x2 max pooling with stride 2 on (N, C, H, W), H and W even."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def lenet_forward_numpy(params: Mapping[str, np.ndarray],
                        x: np.ndarray) -> np.ndarray:
    """Compute LeNet's logits in pure numpy: the reference for the backends.

    The arithmetic is done in float64 so that, compared with a float32
    framework, the difference measures the framework's rounding only.

    Args:
        params: canonical parameters (see ``init_lenet_params``).
        x: images, shape (N, 1, 28, 28) (NCHW), any real dtype (float32
            expected), pixel values in whatever scale the network sees.

    Returns:
        float64 logits of shape (N, 10).

    Example:
        >>> params = init_lenet_params(0)
        >>> x = np.zeros((2, 1, 28, 28), dtype=np.float32)
        >>> lenet_forward_numpy(params, x).shape
        (2, 10)
    """
    validate_lenet_params(params)
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[1:] != LENET_INPUT_SHAPE:
        raise ValueError(
            f"x must have shape (N, {', '.join(map(str, LENET_INPUT_SHAPE))})"
            f" (NCHW), got x.shape={x.shape}")
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    h = x.astype(np.float64)
    h = _max_pool_2x2(np.maximum(
        _conv2d(h, p["conv1.weight"], p["conv1.bias"], pad=2), 0.0))
    h = _max_pool_2x2(np.maximum(
        _conv2d(h, p["conv2.weight"], p["conv2.bias"], pad=0), 0.0))
    h = h.reshape(h.shape[0], -1)  # (C, H, W) flatten order
    h = np.maximum(h @ p["fc1.weight"].T + p["fc1.bias"], 0.0)
    h = np.maximum(h @ p["fc2.weight"].T + p["fc2.bias"], 0.0)
    return h @ p["fc3.weight"].T + p["fc3.bias"]


# pool2 output (C, H, W): the shape fc1 flattens.
_POOL2_CHW = (16, 5, 5)


def to_channels_last(params: Mapping[str, np.ndarray]
                     ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Canonical parameters as ``layer -> (kernel, bias)`` in the layout
    of channels-last frameworks (Keras, Flax): conv kernels
    ``(kh, kw, in, out)``, dense kernels ``(in, out)``, and ``fc1``'s rows
    in the (H, W, C) order in which an NHWC tensor flattens.

    >>> layers = to_channels_last(init_lenet_params(0))
    >>> layers["conv1"][0].shape, layers["fc1"][0].shape
    ((5, 5, 1, 6), (400, 120))
    """
    validate_lenet_params(params)
    out = {}
    for layer in LENET_LAYERS:
        w = np.asarray(params[f"{layer}.weight"], np.float32)
        if w.ndim == 4:      # (out, in, kh, kw) -> (kh, kw, in, out)
            kernel = w.transpose(2, 3, 1, 0)
        elif layer == "fc1":  # columns (C, H, W) -> rows (H, W, C)
            kernel = w.reshape(-1, *_POOL2_CHW).transpose(2, 3, 1, 0)
            kernel = kernel.reshape(-1, w.shape[0])
        else:
            kernel = w.T
        out[layer] = (np.ascontiguousarray(kernel),
                      np.array(params[f"{layer}.bias"], np.float32))
    return out


def from_channels_last(layers: Mapping[str, tuple[np.ndarray, np.ndarray]]
                       ) -> dict[str, np.ndarray]:
    """The inverse of :func:`to_channels_last`: canonical float32 arrays.

    >>> p = init_lenet_params(1)
    >>> back = from_channels_last(to_channels_last(p))
    >>> all(np.array_equal(back[k], p[k]) for k in p)
    True
    """
    c, h, w = _POOL2_CHW
    params = {}
    for layer in LENET_LAYERS:
        kernel, bias = (np.asarray(a, np.float32) for a in layers[layer])
        if kernel.ndim == 4:
            weight = kernel.transpose(3, 2, 0, 1)
        elif layer == "fc1":
            weight = kernel.reshape(h, w, c, -1).transpose(3, 2, 0, 1)
            weight = weight.reshape(kernel.shape[1], -1)
        else:
            weight = kernel.T
        params[f"{layer}.weight"] = np.ascontiguousarray(weight)
        params[f"{layer}.bias"] = bias.copy()
    validate_lenet_params(params)
    return {k: params[k] for k in LENET_PARAM_SHAPES}
