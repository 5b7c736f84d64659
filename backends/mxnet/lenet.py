"""LeNet in MXNet Gluon, loaded from unisched's canonical numpy parameters.

Gluon's default layouts (NCHW input, conv weights (out, in, kh, kw), dense
weights (units, in_units), flatten in (C, H, W) order) are the canonical
ones, so the arrays are loaded as they are. Importing this module imports
mxnet, through ``import_mxnet`` (which holds the numpy compatibility shim).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from unisched.app.lenet import (
    LENET_PARAM_SHAPES,
    init_lenet_params,
    validate_lenet_params,
)

from ._mx import mx

__all__ = ["build_lenet", "get_params"]

_PREFIX = "lenet_"


def _param(net: mx.gluon.HybridBlock, name: str) -> mx.gluon.Parameter:
    """The Gluon parameter for canonical ``name`` (``"fc1.weight"`` is
    ``"lenet_fc1_weight"``)."""
    layer, kind = name.split(".")
    return net.collect_params()[f"{net.prefix}{layer}_{kind}"]


def build_lenet(params: Mapping[str, np.ndarray] | None = None,
                seed: int = 0,
                ctx: mx.Context | Sequence[mx.Context] | None = None
                ) -> mx.gluon.nn.HybridSequential:
    """Build LeNet as a Gluon ``HybridSequential`` (not hybridized).

    Input is NCHW float32, (N, 1, 28, 28); output is (N, 10) logits. Layer
    prefixes are ``lenet_conv1_`` ... ``lenet_fc3_``, so parameters are
    named ``lenet_<layer>_weight|bias`` and layer groups are addressable
    by name (e.g. ``net.collect_params("lenet_fc3_.*")``). ReLUs are fused
    into the conv/dense layers; ``fc1`` flattens its input (``flatten=True``).

    Args:
        params: canonical parameters (``unisched.app.lenet`` layout). If None,
            ``init_lenet_params(seed)`` is used.
        seed: seed for ``init_lenet_params``; ignored when ``params`` is
            given.
        ctx: context or list of contexts for the parameters (default
            ``mx.cpu()``). Choosing a GPU is the trainer's business.

    Returns:
        The initialised network, holding float32 copies of ``params``.
    """
    if params is None:
        params = init_lenet_params(seed)
    else:
        validate_lenet_params(params)
    nn = mx.gluon.nn
    net = nn.HybridSequential(prefix=_PREFIX)
    with net.name_scope():
        net.add(
            nn.Conv2D(6, 5, padding=2, in_channels=1, activation="relu",
                      prefix="conv1_"),
            nn.MaxPool2D(pool_size=2, strides=2, prefix="pool1_"),
            nn.Conv2D(16, 5, in_channels=6, activation="relu",
                      prefix="conv2_"),
            nn.MaxPool2D(pool_size=2, strides=2, prefix="pool2_"),
            nn.Dense(120, activation="relu", in_units=16 * 5 * 5,
                     flatten=True, prefix="fc1_"),
            nn.Dense(84, activation="relu", in_units=120, prefix="fc2_"),
            nn.Dense(10, in_units=84, prefix="fc3_"),
        )
    # Zero init draws nothing from MXNet's global RNG; values are replaced.
    net.initialize(mx.init.Zero(), ctx=mx.cpu() if ctx is None else ctx)
    for name in LENET_PARAM_SHAPES:
        _param(net, name).set_data(
            mx.nd.array(np.asarray(params[name], np.float32),
                        dtype="float32"))
    return net


def get_params(net: mx.gluon.HybridBlock) -> dict[str, np.ndarray]:
    """Return ``net``'s parameters as new float32 numpy arrays in canonical
    layout (the inverse of ``build_lenet``), read from its first context.
    """
    return {name: _param(net, name).list_data()[0].asnumpy()
            .astype(np.float32, copy=True)
            for name in LENET_PARAM_SHAPES}
