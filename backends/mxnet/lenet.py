"""LeNet in MXNet Gluon, loaded from unisched's canonical numpy parameters.

Gluon's default layouts (NCHW input, conv weights (out, in, kh, kw), dense
weights (units, in_units), flatten in (C, H, W) order) are the canonical
ones, so the arrays are loaded as they are. Importing this module imports
mxnet, through ``import_mxnet`` (which holds the numpy compatibility shim).

:class:`MXNetTrainer` is the MXNet side of :mod:`unisched.app.training`:
the hybridized LeNet, Gluon's ``SoftmaxCrossEntropyLoss`` and a
``gluon.Trainer`` (``optimizer``, what ``bind`` takes) stepped with
``step(batch_size)`` so that the gradient is the batch mean, as in the
chapter.  The adapter keeps unisched's convention (update ``k`` uses
``sched(k)``, although MXNet numbers it ``k + 1``); an MXNet scheduler is
given to the optimizer unchanged, as the chapter does, and MXNet calls it
with its own 1-based ``num_update``.

Optimizers (MXNet 1.9.1 defaults otherwise): ``'sgd'`` is
``mx.optimizer.SGD(momentum)``, whose momentum buffer holds ``-lr * grad``
terms (``m = momentum * m - lr * (g + wd * w); w += m``), so a rate change
acts through the buffer, unlike PyTorch's SGD; ``'adam'`` is
``mx.optimizer.Adam`` (``wd`` an L2 term on the gradient); ``'adamw'`` is
:class:`AdamW` below (MXNet 1.9.1 has no AdamW optimizer class).
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from unisched.app.lenet import (
    LENET_LAYER_GROUPS,
    LENET_PARAM_SHAPES,
    init_lenet_params,
    validate_lenet_params,
)
from unisched.app.training import Trainer, public_api
from unisched.base import Schedule

from .._contract import check_multipliers, resolve_multipliers
from ._mx import mx
from .adapter import LRScheduler, bind

if TYPE_CHECKING:  # for annotations only: imported for real through _mx
    import mxnet

__all__ = ["build_lenet", "get_params", "MXNetTrainer", "AdamW",
           "default_device", "train_lenet", "lr_find", "fit_one_cycle"]

_PREFIX = "lenet_"


def _param(net: mxnet.gluon.HybridBlock, name: str
           ) -> mxnet.gluon.Parameter:
    """The Gluon parameter for canonical ``name`` (``"fc1.weight"`` is
    ``"lenet_fc1_weight"``)."""
    layer, kind = name.split(".")
    return net.collect_params()[f"{net.prefix}{layer}_{kind}"]


def build_lenet(params: Mapping[str, np.ndarray] | None = None,
                seed: int = 0,
                ctx: mxnet.Context | Sequence[mxnet.Context] | None = None
                ) -> mxnet.gluon.nn.HybridSequential:
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


def get_params(net: mxnet.gluon.HybridBlock) -> dict[str, np.ndarray]:
    """Return ``net``'s parameters as new float32 numpy arrays in canonical
    layout (the inverse of ``build_lenet``), read from its first context.
    """
    return {name: _param(net, name).list_data()[0].asnumpy()
            .astype(np.float32, copy=True)
            for name in LENET_PARAM_SHAPES}


class AdamW(mx.optimizer.Adam):
    """Adam with decoupled weight decay, on MXNet's ``adamw_update``::

        g = clip(rescale_grad * grad)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        w = w - lr_t * (c_t * m / (sqrt(v) + epsilon) + wd * w)
        c_t = sqrt(1 - beta2**t) / (1 - beta1**t)

    ``lr_t`` is the scheduled rate times the parameter's ``lr_mult`` and
    ``t`` the parameter's update count (1 for the first).  The decay
    ``lr_t * wd * w`` uses the weight before the update and does not pass
    through ``m`` and ``v``: PyTorch's ``AdamW``, except that the bias
    correction multiplies the step as in MXNet's ``Adam`` (epsilon is not
    bias-corrected).  With ``wd = 0`` it is MXNet's ``Adam``.

    The update counts, calls the scheduler and only then reads ``beta1``,
    so the adapter's ``beta1`` schedule applies to the same update (as for
    ``Adam`` in :data:`.mxnet.SCHEDULABLE`, which covers subclasses).

    Args: as ``mx.optimizer.Adam`` (``learning_rate`` 0.001, ``beta1``
    0.9, ``beta2`` 0.999, ``epsilon`` 1e-8, ``wd``); dense weights only.
    """

    def __init__(self, learning_rate: float = 0.001, beta1: float = 0.9,
                 beta2: float = 0.999, epsilon: float = 1e-8,
                 **kwargs: Any) -> None:
        kwargs.setdefault("lazy_update", False)
        super().__init__(learning_rate=learning_rate, beta1=beta1,
                         beta2=beta2, epsilon=epsilon, **kwargs)
        self._scales: dict[Any, tuple[float, Any]] = {}

    def _rescale(self, ctx: Any) -> Any:
        # The operator takes rescale_grad as an NDArray; one per device,
        # refilled only when Trainer.step changes the batch size.
        value = float(self.rescale_grad)
        held = self._scales.get(ctx)
        if held is None or held[0] != value:
            held = (value, mx.nd.full((1,), value, ctx=ctx,
                                      dtype="float32"))
            self._scales[ctx] = held
        return held[1]

    def update(self, index: Any, weight: Any, grad: Any, state: Any) -> None:
        self._update_count(index)
        lr = self._get_lr(index)        # the scheduler may set beta1 here
        wd = self._get_wd(index)
        t = self._index_update_count[index]
        correction = math.sqrt(1.0 - self.beta2 ** t) / (1.0 - self.beta1 ** t)
        options = {"beta1": self.beta1, "beta2": self.beta2,
                   "epsilon": self.epsilon}
        if self.clip_gradient:
            options["clip_gradient"] = self.clip_gradient
        mean, var = state
        mx.nd.contrib.adamw_update(weight, grad, mean, var,
                                   self._rescale(weight.context),
                                   out=weight, lr=correction, eta=lr, wd=wd,
                                   **options)

    def __getstate__(self) -> dict:
        # Trainer.save_states pickles the optimizer; the cache is rebuilt.
        state = super().__getstate__()
        state["_scales"] = {}
        return state


def default_device() -> Any:
    """The first GPU if MXNet sees one, else the CPU."""
    try:
        gpus = mx.context.num_gpus()
    except mx.base.MXNetError:          # a CUDA build without a driver
        gpus = 0
    return mx.gpu() if gpus > 0 else mx.cpu()


def _device(device: Any) -> Any:
    """``None`` / an ``mx.Context`` / ``'cpu'``, ``'gpu'``, ``'gpu(1)'``,
    ``'gpu:1'`` -> a checked ``mx.Context``."""
    if device is None:
        return default_device()
    if isinstance(device, str):
        found = re.fullmatch(r"\s*(cpu|gpu)\s*(?:[(:]\s*(\d+)\s*\)?)?\s*",
                             device.lower())
        if found is None:
            raise ValueError(f"device must be 'cpu', 'gpu', 'gpu(i)' or an "
                             f"mx.Context, got {device!r}")
        device = mx.Context(found.group(1), int(found.group(2) or 0))
    if not isinstance(device, mx.Context):
        raise TypeError(f"device must be None, a string or an mx.Context, "
                        f"got {device!r}")
    if device.device_type == "gpu":
        try:
            gpus = mx.context.num_gpus()
        except mx.base.MXNetError:
            gpus = 0
        if device.device_id >= gpus:
            raise ValueError(f"device {device} is not available: MXNet "
                             f"sees {gpus} GPU(s)")
    return device


def _group_patterns(net: Any) -> list[str]:
    """A name pattern per ``LENET_LAYER_GROUPS`` entry (``lenet_fc3_.*``)."""
    prefix = re.escape(net.prefix)
    return [f"{prefix}({'|'.join(group)})_.*" for group in LENET_LAYER_GROUPS]


class MXNetTrainer(Trainer):
    """The MXNet trainer (see :class:`unisched.app.training.Trainer` for
    the rates, arguments and attributes).

    MXNet specifics: ``optimizer`` is the ``gluon.Trainer``; ``adapter``
    the :class:`unisched.backends.mxnet.LRScheduler` that ``bind`` put in
    its optimizer, with discriminative rates as ``multipliers``
    ``{parameter-name pattern: factor}`` (MXNet's ``lr_mult``).  An
    ``mxnet.lr_scheduler.LRScheduler`` (``native``, a copy: MXNet's
    Factor/MultiFactor rewrite their ``base_lr`` as they go) is given to
    the optimizer as the chapter does, only with ``unit='step'``; ``lr``
    then sets the parameters' ``lr_mult``.  :meth:`hparams` asks the
    optimizer's scheduler for MXNet's next ``num_update`` (the value the
    update itself will get) times each group's ``lr_mult``, then reads
    ``momentum`` (SGD) or ``beta1`` (Adam, AdamW).

    Example:
        >>> t = MXNetTrainer(0.1, momentum=0.9)
        >>> t.hparams(), type(t.optimizer.optimizer).__name__
        (([0.1], 0.9), 'SGD')
    """

    framework = "mxnet"

    def __init__(self, sched: Any, **options: Any) -> None:
        self._was_active = False
        super().__init__(sched, **options)
        self.loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
        every = list(self.model.collect_params().values())
        patterns = _group_patterns(self.model) \
            if self.multipliers is not None else [".*"]
        # one parameter per group: the optimizer multiplies by its lr_mult
        self._group_params = [next(p for p in every if re.fullmatch(pat,
                                                                    p.name))
                              for pat in patterns]
        self._momentum_name = "momentum" if self.optimizer_name == "sgd" \
            else "beta1"

    def _check_model(self, model: Any) -> None:
        if not isinstance(model, mx.gluon.HybridBlock):
            raise TypeError(f"model must be a Gluon LeNet from "
                            f"build_lenet, got {model!r}")
        self._was_active = bool(getattr(model, "_active", False))

    def _resolve_device(self, device: Any, model: Any) -> Any:
        if model is None:
            return _device(device)
        here = next(iter(model.collect_params().values())).list_ctx()[0]
        if device is not None and _device(device) != here:
            raise ValueError(f"device={device!r} but the model's weights "
                             f"are on {here}; move the model first or "
                             f"leave device=None")
        return here

    def _build_model(self, params: Any, seed: int) -> Any:
        self._was_active = True  # its own model stays hybridized
        return build_lenet(params, seed=seed, ctx=self.device)

    def _make_optimizer(self) -> Any:
        self.model.hybridize()
        options = {"learning_rate": self.base_lrs[-1],
                   "wd": self.weight_decay}
        if self.optimizer_name == "sgd":
            opt = mx.optimizer.SGD(momentum=self.momentum, **options)
        elif self.optimizer_name == "adam":
            opt = mx.optimizer.Adam(**options)
        else:
            opt = AdamW(**options)
        return mx.gluon.Trainer(self.model.collect_params(), opt)

    def _multipliers(self) -> dict[str, float]:
        assert self.multipliers is not None  # called only with some
        return dict(zip(_group_patterns(self.model), self.multipliers,
                        strict=True))

    def _bind(self, schedule: Schedule, options: dict[str, Any]
              ) -> LRScheduler:
        if "multipliers" in options:
            options["multipliers"] = self._multipliers()
        return bind(schedule, self.optimizer, **options)

    def _bind_native(self, sched: Any) -> Any:
        if not isinstance(sched, mx.lr_scheduler.LRScheduler):
            raise TypeError(f"sched must be a unisched schedule, a spec "
                            f"string, a number or an mxnet.lr_scheduler."
                            f"LRScheduler, got {sched!r}")
        if self.unit != "step":
            raise ValueError(
                f"an MXNet scheduler counts updates (MXNet's num_update), "
                f"so unit must be 'step', got unit={self.unit!r}; for a "
                f"per-epoch schedule pass unisched.backends.mxnet."
                f"from_native(scheduler) or a unisched schedule")
        if self.multipliers is not None:
            # no adapter here: MXNet's own per-parameter lr_mult
            params = list(self.model.collect_params().values())
            factors = resolve_multipliers(
                check_multipliers(self._multipliers()),
                [[p.name] for p in params])
            assert factors is not None  # multipliers were given
            for p, factor in zip(params, factors, strict=True):
                p.lr_mult = factor
        native = copy.deepcopy(sched)
        # set after construction: MXNet's Optimizer would write its own
        # learning_rate into the scheduler's base_lr
        self.optimizer.optimizer.lr_scheduler = native
        return native

    # -- the batch operations ---------------------------------------------
    def _inputs(self, x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
        # A private float32 copy handed to MXNet without a second copy
        # (DLPack): a third of mx.nd.array's cost, and the caller's arrays
        # are not made read-only as from_numpy does to what it is given.
        xs = mx.nd.from_numpy(np.array(x, dtype=np.float32, order="C"),
                              zero_copy=True)
        ys = mx.nd.from_numpy(np.array(y, dtype=np.float32, order="C"),
                              zero_copy=True)
        return xs.as_in_context(self.device), ys.as_in_context(self.device)

    def train_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        xs, ys = self._inputs(x, y)
        with mx.autograd.record():
            out = self.model(xs)
            loss = self.loss_fn(out, ys)
        loss.backward()
        self.optimizer.step(xs.shape[0])
        hits = (out.argmax(axis=1) == ys).sum()
        return float(loss.mean().asscalar()), int(hits.asscalar())

    def count_correct(self, x: np.ndarray, y: np.ndarray) -> int:
        xs, ys = self._inputs(x, y)
        return int((self.model(xs).argmax(axis=1) == ys).sum().asscalar())

    def hparams(self) -> tuple[list[float], float | None]:
        opt = self.optimizer.optimizer
        sched = opt.lr_scheduler
        rate = opt.lr if sched is None else sched(opt.num_update + 1)
        return ([rate * p.lr_mult for p in self._group_params],
                float(getattr(opt, self._momentum_name)))

    def _snapshot(self) -> Any:
        every = list(self.model.collect_params().values())
        opt = self.optimizer.optimizer
        return ([[d.copy() for d in p.list_data()] for p in every],
                [[g.copy() for g in p.list_grad()]
                 if p.grad_req != "null" else [] for p in every],
                [p.lr_mult for p in every],
                [u.get_states(dump_optimizer=False)
                 for u in self.optimizer._updaters],
                opt.num_update, dict(opt._index_update_count))

    def _restore(self, saved: Any) -> None:
        weights, grads, lr_mults, states, num_update, counts = saved
        every = list(self.model.collect_params().values())
        for p, data, grad, mult in zip(every, weights, grads, lr_mults,
                                       strict=True):
            for d, s in zip(p.list_data(), data, strict=True):
                s.copyto(d)
            for d, s in zip(p.list_grad() if grad else [], grad, strict=True):
                s.copyto(d)
            p.lr_mult = mult
        for updater, state in zip(self.optimizer._updaters, states,
                                  strict=True):
            updater.set_states(state)
        opt = self.optimizer.optimizer
        opt.num_update, opt._index_update_count = num_update, counts
        if not self._was_active:
            self.model.hybridize(False)
        mx.nd.waitall()


train_lenet, lr_find, fit_one_cycle = public_api(MXNetTrainer)
