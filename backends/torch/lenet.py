"""LeNet in PyTorch, loaded from unisched's canonical numpy parameters,
and its trainer: the PyTorch side of :mod:`unisched.app.training`.

PyTorch's layout *is* the canonical one (see ``unisched.app.lenet``), so the
arrays are loaded as they are. Importing this module imports torch.

The trainer is the chapter's loop body (``zero_grad``, forward, mean
cross-entropy, ``backward``, ``step``) plus the adapter's ``step()``.
Speed: the trainer builds the network in channels-last memory (oneDNN's
layout for convolutions, ~15-20% faster per update here); a batch is
gathered straight into PyTorch's own 64-byte aligned memory (its CPU
kernels ran 5-15% slower here on numpy's 16-byte aligned images); the
loss and the correct count leave the device in one transfer per batch.
Nothing touches PyTorch's random generator or its thread count.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim import lr_scheduler as _tl

from unisched.app.data import batch_indices
from unisched.app.lenet import (
    LENET_LAYER_GROUPS,
    LENET_PARAM_SHAPES,
    init_lenet_params,
    validate_lenet_params,
)
from unisched.app.training import Trainer, public_api
from unisched.base import Schedule

from .adapter import bind
from .native import from_native

__all__ = ["build_lenet", "get_params", "TorchTrainer", "train_lenet",
           "lr_find", "fit_one_cycle"]

_NATIVE = (_tl.LRScheduler, _tl.ReduceLROnPlateau)
_ALIGN = 64  # bytes: the alignment of PyTorch's CPU allocations


def _layers() -> OrderedDict[str, nn.Module]:
    """The named layers; parameter names are ``"<layer>.weight|bias"``."""
    # canonical dtype, whatever the default
    f32: dict[str, Any] = {"dtype": torch.float32}
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


def _copy(value: Any) -> Any:
    """A copy of an optimizer state or param group entry."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    return copy.deepcopy(value)


def _check_device(device: Any, model: nn.Module | None) -> torch.device:
    """None: the model's device if one is given, else the GPU if PyTorch
    sees one, else the CPU."""
    if model is not None:
        here = next(model.parameters()).device
        if device is not None and torch.device(device) != here:
            raise ValueError(f"device={device!r} but the model's weights "
                             f"are on {here}; move the model first or "
                             f"leave device=None")
        return here
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available()
                            else "cpu")
    try:
        return torch.device(device)
    except (TypeError, RuntimeError) as err:
        raise ValueError(f"device must be a torch device or its name, "
                         f"got {device!r} ({err})") from None


class TorchTrainer(Trainer):
    """The PyTorch trainer (see :class:`unisched.app.training.Trainer`
    for the rates, arguments and attributes).

    PyTorch specifics: ``torch.optim.SGD`` / ``Adam`` / ``AdamW`` with
    PyTorch's defaults, one param group per ``LENET_LAYER_GROUPS`` entry
    when ``lr`` is given; the adapter (``adapter``,
    :class:`unisched.backends.torch.LRScheduler`) is stepped after every
    update, or once per epoch with ``unit='epoch'`` (PyTorch's own
    per-epoch style, the chapter's).  Native schedulers, as the chapter
    uses them:

    * a *factory* ``optimizer -> scheduler`` (e.g. ``lambda opt:
      MultiStepLR(opt, [15, 30], 0.5)``), in ``native``: it gets the
      optimizer holding the base rates ``lr_range(lr, 3)`` (0.3 when
      ``lr`` is None), is stepped after every update (``unit='step'``)
      or every epoch (``unit='epoch'``); ``ReduceLROnPlateau`` is stepped
      once per epoch with the epoch's mean training loss;
    * a scheduler instance (bound to another optimizer): converted
      exactly with :func:`unisched.backends.torch.from_native`.

    Example:
        >>> t = TorchTrainer("cosine(max_update=100, base_lr=0.3)",
        ...                  lr=slice(0.03, 0.3))
        >>> [round(r, 6) for r in t.hparams()[0]], type(t.adapter).__name__
        ([0.03, 0.094868, 0.3], 'LRScheduler')
    """

    framework = "torch"

    def __init__(self, sched: Any, **options: Any) -> None:
        super().__init__(sched, **options)
        self.loss_fn = nn.CrossEntropyLoss()
        # Stepped after every update, or once per epoch (unit='epoch',
        # or a native ReduceLROnPlateau, which needs the epoch's loss).
        self._per_update = self.unit == "step" and not isinstance(
            self.native, _tl.ReduceLROnPlateau)
        self._groups = self.optimizer.param_groups
        self._mom_key = "momentum" if self.optimizer_name == "sgd" \
            else "betas"
        self._on_cpu = self.device.type == "cpu"

    def _check_model(self, model: Any) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module from "
                            f"build_lenet, got {type(model).__name__}")

    def _resolve_device(self, device: Any, model: Any) -> torch.device:
        return _check_device(device, model)

    def _build_model(self, params: Any, seed: int) -> nn.Module:
        # Channels-last weights: oneDNN's (and cuDNN's) preferred layout
        # for convolutions, ~15-20% faster per update here on the CPU
        # than NCHW; the values, names and results are the same.  A
        # model the caller passes in is used as it is.  (Module.to's typed
        # overloads omit memory_format, which torch documents and accepts.)
        model = build_lenet(params, seed=seed, device=self.device)
        return model.to(  # type: ignore[call-overload]
            memory_format=torch.channels_last)

    def _make_optimizer(self) -> torch.optim.Optimizer:
        model = self.model
        groups: list[dict[str, Any]]
        if self.multipliers is None:
            groups = [{"params": list(model.parameters())}]
        else:
            groups = [{"params": [p for layer in names
                                  for p in getattr(model, layer).parameters()]}
                      for names in LENET_LAYER_GROUPS]
            covered = sum(len(g["params"]) for g in groups)
            if covered != len(list(model.parameters())):
                raise ValueError(f"LENET_LAYER_GROUPS covers {covered} of "
                                 f"the model's parameter tensors")
        for group, rate in zip(groups, self.base_lrs[-len(groups):],
                               strict=True):
            group["lr"] = rate
        options: dict[str, Any] = {"lr": self.base_lrs[-1],
                                   "weight_decay": self.weight_decay}
        if self.optimizer_name == "sgd":
            return torch.optim.SGD(groups, momentum=self.momentum,
                                   **options)
        klass = torch.optim.Adam if self.optimizer_name == "adam" \
            else torch.optim.AdamW
        return klass(groups, **options)

    def _bind(self, schedule: Schedule, options: dict[str, Any]) -> Any:
        # PyTorch's per-epoch style: without steps_per_epoch the adapter
        # counts epochs and is stepped once per epoch (end_epoch).
        options.pop("steps_per_epoch", None)
        return bind(schedule, self.optimizer, **options)

    def _from_native(self, sched: Any) -> Any:
        if isinstance(sched, _NATIVE):
            # bound to another optimizer: its exact unisched equivalent
            # (TypeError/ValueError for what cannot convert)
            return from_native(sched)
        return sched

    def _bind_native(self, factory: Any) -> Any:
        if not callable(factory):
            raise TypeError(f"sched must be a unisched schedule, a spec "
                            f"string, a number, or a callable optimizer "
                            f"-> torch scheduler, got {factory!r} "
                            f"({type(factory).__name__})")
        try:
            native = factory(self.optimizer)
        except TypeError as err:  # e.g. a function of the epoch
            raise TypeError(f"sched, a callable, must take the optimizer "
                            f"and return a torch.optim.lr_scheduler "
                            f"scheduler (a rate per epoch is "
                            f"unisched.parse(...) or a schedule with "
                            f"unit='epoch'); calling it with the optimizer "
                            f"raised {err!r}") from err
        if not isinstance(native, _NATIVE) or \
                native.optimizer is not self.optimizer:
            raise TypeError(f"sched, a callable, must return a "
                            f"torch.optim.lr_scheduler scheduler built on "
                            f"the optimizer it is given, got {native!r}")
        if isinstance(native, _tl.ReduceLROnPlateau) and \
                native.mode != "min":
            raise ValueError(f"the trainer steps ReduceLROnPlateau with the "
                             f"epoch's mean training loss, which needs "
                             f"mode='min', got mode={native.mode!r}")
        return native

    def _step_scheduler(self) -> None:
        (self.native if self.adapter is None else self.adapter).step()

    # -- the batch operations ---------------------------------------------
    def _tensors(self, x: np.ndarray, y: np.ndarray
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        if not self._on_cpu:
            return (xt.to(self.device, non_blocking=True),
                    yt.to(self.device, non_blocking=True))
        if x.ctypes.data % _ALIGN:
            # numpy aligns big arrays to 16 bytes only; PyTorch's CPU
            # kernels ran 5-15% slower per update here on images not
            # aligned to 64 bytes, while a copy into PyTorch's own
            # (64-byte aligned) memory costs ~0.1 ms per batch.
            xt = xt.clone()
        return xt, yt

    def batches(self, x: np.ndarray, y: np.ndarray, batch_size: int, *,
                shuffle: bool = True, seed: int = 0,
                epoch: int = 0) -> Iterator[tuple[torch.Tensor,
                                                  torch.Tensor]]:
        """The batches of ``iterate_batches`` as tensors on the device.
        On the CPU the images are gathered (``np.take``) straight into
        PyTorch's own 64-byte aligned memory: one copy per batch, where
        fancy indexing and an aligning clone made two (``index_select``
        on a tensor of the whole set measured 5-10x slower here)."""
        if not self._on_cpu:
            for xb, yb in super().batches(x, y, batch_size, shuffle=shuffle,
                                          seed=seed, epoch=epoch):
                yield self._tensors(xb, yb)
            return
        for idx in batch_indices(len(y), batch_size, shuffle=shuffle,
                                 seed=seed, epoch=epoch):
            xt = torch.empty((len(idx), *x.shape[1:]),
                             dtype=torch.from_numpy(x[:0]).dtype)
            np.take(x, idx, axis=0, out=xt.numpy())
            yield xt, torch.from_numpy(y[idx])

    def train_batch(self, x: torch.Tensor, y: torch.Tensor
                    ) -> tuple[float, int]:
        model = self.model
        if not model.training:
            model.train()
        self.optimizer.zero_grad(set_to_none=True)
        out = model(x)
        loss = self.loss_fn(out, y)
        loss.backward()
        self.optimizer.step()
        if self._per_update:
            self._step_scheduler()
        with torch.no_grad():
            hits = (out.argmax(dim=1) == y).sum()
            # One device-to-host transfer for both numbers.
            value, correct = torch.stack(
                (loss.detach().double(), hits.double())).tolist()
        return value, int(correct)

    def count_correct(self, x: torch.Tensor, y: torch.Tensor) -> int:
        model = self.model
        if model.training:
            model.eval()
        with torch.inference_mode():
            return int((model(x).argmax(dim=1) == y).sum())

    def hparams(self) -> tuple[list[float], float | None]:
        lrs = [float(g["lr"]) for g in self._groups]
        mom = self._groups[0][self._mom_key]
        if self._mom_key == "betas":
            mom = mom[0]
        return lrs, float(mom)

    def end_epoch(self, train_loss: float) -> None:
        if isinstance(self.native, _tl.ReduceLROnPlateau):
            self.native.step(train_loss)
            return
        super().end_epoch(train_loss)
        if not self._per_update:
            self._step_scheduler()

    def _snapshot(self) -> Any:
        model = self.model
        return ({k: v.detach().clone()
                 for k, v in model.state_dict().items()},
                [None if p.grad is None else p.grad.detach().clone()
                 for p in model.parameters()],
                model.training,
                {p: {k: _copy(v) for k, v in state.items()}
                 for p, state in self.optimizer.state.items()},
                [{k: _copy(v) for k, v in group.items() if k != "params"}
                 for group in self.optimizer.param_groups])

    def _restore(self, saved: Any) -> None:
        weights, grads, training, state, groups = saved
        model = self.model
        # In place: the caller's Parameter objects (and any optimizer
        # holding them) stay the same objects.
        model.load_state_dict(weights)
        for p, g in zip(model.parameters(), grads, strict=True):
            p.grad = g
        model.train(training)
        # Not optimizer.load_state_dict, which replaces the param group
        # dicts that the adapter (and this trainer) write and read.
        self.optimizer.state.clear()
        self.optimizer.state.update(
            (p, {k: _copy(v) for k, v in st.items()})
            for p, st in state.items())
        for group, values in zip(self.optimizer.param_groups, groups,
                                 strict=True):
            group.update((k, _copy(v)) for k, v in values.items())


train_lenet, lr_find, fit_one_cycle = public_api(TorchTrainer)
