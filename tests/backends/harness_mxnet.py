"""The MXNet Gluon backend for the contract suite (see ``harness.py``).

Group ``i`` is one float64 ``gluon.Parameter`` ``g{i}`` of two elements
under a ``gluon.Trainer``; groups start at different rates through
``lr_mult`` (``learning_rate = lrs[0]``, ``lr_mult = lrs[i] / lrs[0]``).
MXNet hands the rate and momentum to its kernels as float32, so applied
values match to ~6e-8 (``rtol`` 1e-6).

Probes, gradient 1 on element 0 of every weight:

* plain SGD (no momentum buffer): ``lr_k = w_k - w_k+1``;
* MXNet SGD with momentum: ``mom_k = m_k * mom_k-1 - lr_k * g``,
  ``w += mom_k``; the buffer is read from the optimizer state.  Element 1
  gets gradient 0 (1 when its buffer is 0, to restart it), so the two
  elements give two equations ``mom_k = m_k * mom_k-1 - lr_k * g`` in
  ``(m_k, lr_k)``, solved exactly; at the very first update (both buffers
  0) the momentum is unobservable and the optimizer's value is reported;
* Adam: ``beta1_k = (1 - mean_k) / (1 - mean_k-1)`` from the first moment,
  and ``lr_k`` from ``w_k - w_k+1 = lr_k * sqrt(1 - beta2**t) /
  (1 - beta1**t) * mean_k / (sqrt(var_k) + eps)`` (MXNet's Adam).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from unisched.backends import mxnet as usm

from harness import Applied, Harness

mx = usm.mx
L = mx.lr_scheduler


class MyCosine(L.CosineScheduler):
    """A subclass of a supported native type: not converted."""


@dataclass
class Model:
    """A Trainer over ``params`` and how it was made."""

    target: Any
    params: list
    spec: dict = field(default_factory=dict)


class MXNetHarness(Harness):
    name = "mxnet"
    requires = "mxnet"
    rtol = 1e-6
    group_rates = True
    module = usm

    def make(self, n_groups: int = 1, *, optimizer: str = "sgd",
             lrs: tuple[float, ...] | None = None, momentum: float = 0.0
             ) -> Model:
        lrs = tuple(lrs) if lrs is not None else (0.1,) * n_groups
        base = lrs[0] if lrs[0] != 0 else 1.0
        params = []
        for i, lr in enumerate(lrs):
            p = mx.gluon.Parameter(f"g{i}", shape=(2,), dtype="float64",
                                   init=mx.init.Zero())
            p.initialize(ctx=mx.cpu())
            p.lr_mult = lr / base
            params.append(p)
        options = {"learning_rate": base}
        if optimizer == "sgd":
            options["momentum"] = momentum
        trainer = mx.gluon.Trainer(params, optimizer, options)
        return Model(trainer, params, {
            "n_groups": n_groups, "optimizer": optimizer,
            "lrs": list(lrs), "momentum": momentum})

    def step(self, target: Model, n: int = 1) -> list[Applied]:
        return [self._one(target) for _ in range(n)]

    def _one(self, model: Model) -> Applied:
        trainer = model.target
        states = trainer._updaters[0].states
        before = [p.data().asnumpy() for p in model.params]
        prev = [_state(states.get(i)) for i in range(len(model.params))]
        kicks = []
        for i, p in enumerate(model.params):
            # Restart element 1's momentum buffer when it is 0.
            kick = 1.0 if prev[i] is None or (
                isinstance(prev[i], list) and prev[i][1] == 0) else 0.0
            kicks.append(kick)
            p.grad()[:] = mx.nd.array([1.0, kick], dtype="float64")
            p.data()._fresh_grad = True
        trainer.step(1)
        opt = trainer._optimizer
        after = [_state(states.get(i)) for i in range(len(model.params))]
        rates, momentum = [], None
        for i, p in enumerate(model.params):
            delta = before[i][0] - p.data().asnumpy()[0]
            lr, mom = _decode(opt, i, delta, prev[i], after[i], kicks[i])
            rates.append(lr)
            momentum = mom if momentum is None else momentum
        return Applied(rates, momentum)

    def own_hparams(self, target: Model) -> dict[str, Any]:
        """The rate the next update will use (MXNet asks the scheduler
        with ``num_update + 1``) times each ``lr_mult``, and momentum or
        beta1 as the optimizer holds it."""
        opt = target.target._optimizer
        sched = opt.lr_scheduler
        rate = opt.lr if sched is None else sched(opt.num_update + 1)
        out: dict[str, Any] = {"lr": [rate * p.lr_mult
                                      for p in target.params]}
        name = "beta1" if target.spec["optimizer"] == "adam" else "momentum"
        out[name] = float(getattr(opt, name))
        return out

    def save(self, target: Model, adapter: Any, directory: str) -> None:
        mx.nd.save(os.path.join(directory, "model.params"),
                   {p.name: p.data() for p in target.params})
        target.target.save_states(os.path.join(directory, "trainer.states"))
        self.save_spec(target, directory)

    def restore(self, directory: str, **bind_options: Any
                ) -> tuple[Model, Any]:
        model = self.remake(directory)
        saved = mx.nd.load(os.path.join(directory, "model.params"))
        for p in model.params:
            p.set_data(saved[p.name])
        sched = bind_options.pop("sched", None)
        if sched is not None:
            self.bind(sched, model, **bind_options)
        model.target.load_states(os.path.join(directory, "trainer.states"))
        return model, usm.attached(model.target)

    def natives(self) -> list[tuple[str, Any, Any]]:
        makers = {
            "factor": lambda: L.FactorScheduler(
                step=3, factor=0.5, base_lr=0.1, warmup_steps=2,
                warmup_begin_lr=0.02),
            "multi_factor": lambda: L.MultiFactorScheduler(
                [4, 7], 0.5, base_lr=0.1),
            "poly": lambda: L.PolyScheduler(10, 0.1, pwr=2, final_lr=0.01,
                                            warmup_steps=3),
            "cosine": lambda: L.CosineScheduler(10, 0.1, 0.01)}
        return [(name, (lambda target, f=f: f()),
                 partial(self._native_rates, f))
                for name, f in makers.items()]

    def _native_rates(self, make: Any, n: int) -> list[tuple[float, Any]]:
        model = self.make(1, momentum=0.9)
        model.target._optimizer.lr_scheduler = make()
        return [(a.rates[0], a.momentum) for a in self.step(model, n)]

    def not_convertible(self) -> list[tuple[str, Any, type]]:
        stepped = L.FactorScheduler(step=2, factor=0.5, base_lr=1.0)
        for n in range(1, 6):
            stepped(n)
        return [("subclass", MyCosine(10, 0.1), TypeError),
                ("unknown", object(), TypeError),
                ("stepped_factor", stepped, ValueError)]


def _state(state: Any) -> Any:
    """An optimizer state as numbers: SGD's buffer ``[a, b]``, Adam's
    ``((mean, var))`` of element 0, or None (no state yet / none)."""
    if state is None:
        return None
    if isinstance(state, (tuple, list)):
        return (float(state[0].asnumpy()[0]), float(state[1].asnumpy()[0]))
    return list(state.asnumpy())


def _decode(opt: Any, index: int, delta: float, prev: Any, after: Any,
            kick: float) -> tuple[float, float | None]:
    """``(lr, momentum)`` of one update of parameter ``index``."""
    if isinstance(after, tuple):                        # Adam
        mean, var = after
        mean0 = prev[0] if prev is not None else 0.0
        beta1 = (1 - mean) / (1 - mean0)
        t = opt._index_update_count[index]
        coef = math.sqrt(1 - opt.beta2 ** t) / (1 - opt.beta1 ** t)
        return delta / (coef * mean / (math.sqrt(var) + opt.epsilon)), \
            beta1
    if after is None:                                   # plain SGD
        return delta, float(getattr(opt, "momentum", 0.0))
    a0, b0 = prev if prev is not None else (0.0, 0.0)
    a1, b1 = after
    det = b0 - a0 * kick
    if det == 0:                # first update: momentum unobservable
        return -a1, float(opt.momentum)
    return (a0 * b1 - b0 * a1) / det, (b1 - kick * a1) / det
