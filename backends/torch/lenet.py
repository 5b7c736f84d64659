"""LeNet in PyTorch, loaded from unisched's canonical numpy parameters.

PyTorch's layout *is* the canonical one (see ``unisched.app.lenet``), so the
arrays are loaded as they are. Importing this module imports torch.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn
from unisched.app.lenet import (
    LENET_PARAM_SHAPES,
    init_lenet_params,
    validate_lenet_params,
)

__all__ = ["build_lenet", "get_params"]


def _layers() -> OrderedDict[str, nn.Module]:
    """The named layers; parameter names are ``"<layer>.weight|bias"``."""
    f32 = {"dtype": torch.float32}  # canonical dtype, whatever the default
    return OrderedDict([
        ("conv1", nn.Conv2d(1, 6, kernel_size=5, padding=2, **f32)),
        ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(kernel_size=2, stride=2)),
        ("conv2", nn.Conv2d(6, 16, kernel_size=5, **f32)),
        ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(kernel_size=2, stride=2)),
        ("flatten", nn.Flatten()),  # (C, H, W) order, as canonical
        ("fc1", nn.Linear(16 * 5 * 5, 120, **f32)),
        ("relu3", nn.ReLU()),
        ("fc2", nn.Linear(120, 84, **f32)),
        ("relu4", nn.ReLU()),
        ("fc3", nn.Linear(84, 10, **f32)),
    ])


def build_lenet(params: Mapping[str, np.ndarray] | None = None,
                seed: int = 0,
                device: str | torch.device | None = None
                ) -> nn.Sequential:
    """Build LeNet as a ``torch.nn.Sequential`` of named layers.

    Input is NCHW float32, (N, 1, 28, 28); output is (N, 10) logits. Layers
    are addressable by name (``net.conv1``, ``net.fc3``), and parameters are
    named ``"conv1.weight"`` etc., exactly the canonical keys.

    Args:
        params: canonical parameters (``unisched.app.lenet`` layout). If None,
            ``init_lenet_params(seed)`` is used.
        seed: seed for ``init_lenet_params``; ignored when ``params`` is
            given.
        device: where to put the parameters (default CPU). Choosing a GPU is
            the trainer's business.

    Returns:
        The network, holding float32 copies of ``params``.

    Layers are created on the ``meta`` device, so PyTorch's own random
    initialisation is skipped: it would be overwritten anyway, and it would
    advance the caller's global torch RNG.
    """
    if params is None:
        params = init_lenet_params(seed)
    else:
        validate_lenet_params(params)
    with torch.device("meta"):
        net = nn.Sequential(_layers())
    net = net.to_empty(device=torch.device("cpu") if device is None
                       else device)
    state = {name: torch.from_numpy(np.array(params[name], np.float32))
             for name in LENET_PARAM_SHAPES}
    net.load_state_dict(state, strict=True)
    return net


def get_params(net: nn.Module) -> dict[str, np.ndarray]:
    """Return ``net``'s parameters as new float32 numpy arrays in canonical
    layout (the inverse of ``build_lenet``; a no-op conversion for torch).
    """
    state = net.state_dict()
    return {name: state[name].detach().to("cpu", torch.float32)
            .numpy().copy()
            for name in LENET_PARAM_SHAPES}
