"""The JAX / optax backend for the contract suite (see ``harness.py``).

The params pytree is ``{'g0': w0, 'g1': w1, ...}``, each a float32
vector of two zeros (JAX without x64 computes in float32); optax has no
groups, so every leaf is a group (``group_rates = False``).  The bind
target is a factory, ``functools.partial(optax.sgd, learning_rate=0.1,
momentum=m or None)`` or ``partial(optax.adam, learning_rate=0.1)``;
before any bind (and after ``unbind``) the harness runs the factory's own
optimizer as ``optax.inject_hyperparams(factory)()``, whose state shows
its hyperparameters.  The weights are zeroed before each update, so the
weights after it are the update itself, ``d``:

* plain SGD: ``lr_k = -d``;
* optax SGD with momentum (``trace_k = g + m_k trace_k-1``, ``d = -lr_k
  trace_k``): entry 0 gets gradient 1, so ``lr_k = -d0 / trace0_k``;
  entry 1 gets gradient 0 while its trace is non-zero (1 to restart it),
  so ``m_k = trace1_k / trace1_k-1`` (traces read from the optimizer
  state, as the MXNet harness reads its buffers).  At the very first
  update (trace 0) the momentum is unobservable: the value the state
  holds (``state.hyperparams``) is reported;
* Adam (first moment zeroed before each update, gradient 1): ``mu_k =
  1 - b1_k``, so ``beta1_k = 1 - mu_k``; the rate from ``d = -lr_k
  mu_hat / (sqrt(nu_hat) + eps)`` with optax's bias corrections
  (``1 - b ** count``, the b1/b2 the state says the update used).

Precision (float32): applied rates match ``sched(k)`` to the float32
rounding of the formula: the suite passes at ``rtol`` 4e-6 and fails 7
cases at 3e-6 (cosines and one-cycles near their floor, where float32's
absolute error of ~1e-8 is a larger share of a small rate); ``rtol``
5e-6.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax

import unisched as us
from unisched.backends import jax as usj

from harness import Applied, Harness

ONE_CYCLE = us.OneCycleScheduler(0.1, 30)
COSINE = us.CosineScheduler(max_update=30, base_lr=0.1, final_lr=0.01)


@dataclass
class Model:
    """The factory (bind target), the params and what steps them."""

    target: Any
    params: dict
    spec: dict
    adapter: Any = None
    tx: Any = None          # the optimizer run when no adapter is bound
    state: Any = None
    update: Any = None      # jax.jit(tx.update)

    def run(self, tx: Any, state: Any) -> None:
        self.tx, self.state, self.adapter = tx, state, None
        self.update = jax.jit(tx.update)


def _find(state: Any, kind: type) -> Any:
    found = [x for x in jax.tree_util.tree_leaves(
        state, is_leaf=lambda x: isinstance(x, kind)) if isinstance(x, kind)]
    return found[0] if found else None


def _zero_mu(state: Any) -> Any:
    return jax.tree_util.tree_map(
        lambda x: x._replace(mu=jax.tree_util.tree_map(jnp.zeros_like,
                                                       x.mu))
        if isinstance(x, optax.ScaleByAdamState) else x, state,
        is_leaf=lambda x: isinstance(x, optax.ScaleByAdamState))


class JaxHarness(Harness):
    name = "jax"
    requires = "jax"
    rtol = 5e-6
    group_rates = False
    module = usj
    spe_required = True

    def make(self, n_groups: int = 1, *, optimizer: str = "sgd",
             lrs: tuple[float, ...] | None = None, momentum: float = 0.0
             ) -> Model:
        lrs = tuple(lrs) if lrs is not None else (0.1,) * n_groups
        if len(set(lrs)) != 1:
            raise ValueError(f"optax has one rate per optimizer, got "
                             f"lrs={lrs}")
        if optimizer == "sgd":
            factory = functools.partial(optax.sgd, learning_rate=lrs[0],
                                        momentum=momentum or None)
        elif optimizer == "adam":
            factory = functools.partial(optax.adam, learning_rate=lrs[0])
        else:
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got "
                             f"{optimizer!r}")
        params = {f"g{i}": jnp.zeros(2, jnp.float32)
                  for i in range(n_groups)}
        model = Model(factory, params, dict(
            n_groups=n_groups, optimizer=optimizer, lrs=list(lrs),
            momentum=momentum))
        tx = optax.inject_hyperparams(factory)()
        model.run(tx, tx.init(params))
        return model

    def bind(self, sched: Any, target: Model, **options: Any) -> Any:
        adapter = usj.bind(sched, target.target, **options)
        adapter.init(target.params)
        target.adapter = adapter
        return adapter

    def step(self, target: Model, n: int = 1) -> list[Applied]:
        return [self._one(target) for _ in range(n)]

    def _one(self, model: Model) -> Applied:
        ad = model.adapter
        if ad is not None and not ad.bound:      # unbound: its own tx
            model.run(ad.unbind(), ad.state)
            ad = None
        state = ad.state if ad is not None else model.state
        state = _zero_mu(state)
        before = _find(state, optax.TraceState)
        grads = {}
        for name in model.params:
            kick = 1.0 if before is None or \
                float(before.trace[name][1]) == 0 else 0.0
            grads[name] = jnp.array([1.0, kick], jnp.float32)
        if ad is not None:
            updates, state = ad.update(grads, state, model.params)
        else:
            updates, state = model.update(grads, state, model.params)
            model.state = state
        weights = optax.apply_updates(model.params, updates)
        hyper = {k: float(v) for k, v in state.hyperparams.items()}
        after = _find(state, optax.TraceState)
        adam = _find(state, optax.ScaleByAdamState)
        rates, momentum = [], None
        for name in model.params:
            d = float(weights[name][0])
            if adam is not None:
                lr, mom = _adam(d, adam, name, hyper)
            elif after is None:
                lr, mom = -d, None
            else:
                t0, t1 = float(after.trace[name][0]), \
                    float(after.trace[name][1])
                b = float(before.trace[name][1])
                lr = -d / t0
                mom = t1 / b if b != 0 else hyper["momentum"]
            rates.append(lr)
            momentum = mom if momentum is None else momentum
        return Applied(rates, momentum)

    def own_hparams(self, target: Model) -> dict[str, Any]:
        ad = target.adapter
        state = ad.state if ad is not None else target.state
        hyper = {k: float(v) for k, v in state.hyperparams.items()}
        out = {"lr": [hyper["learning_rate"]] * len(target.params),
               "weight_decay": hyper.get("weight_decay", 0.0)}
        if target.spec["optimizer"] == "adam":
            out["beta1"] = hyper["b1"]
        else:
            out["momentum"] = hyper.get("momentum", 0.0)
        return out

    def save(self, target: Model, adapter: Any, directory: str) -> None:
        usj.save(directory, adapter, params=target.params)
        self.save_spec(target, directory)

    def restore(self, directory: str, **bind_options: Any
                ) -> tuple[Model, Any]:
        model = self.remake(directory)
        adapter, _, params = usj.restore(directory, model.target,
                                         model.params, **bind_options)
        model.adapter, model.params = adapter, params
        return model, adapter

    def natives(self) -> list[tuple[str, Any, Any]]:
        def optax_native(sched):
            def rates(n):
                model = self.make(1, momentum=0.9)
                tx = optax.inject_hyperparams(optax.sgd)(
                    learning_rate=usj.OptaxSchedule(sched), momentum=0.9)
                model.run(tx, tx.init(model.params))
                return [(a.rates[0], a.momentum)
                        for a in self.step(model, n)]
            return (lambda target: usj.OptaxSchedule(sched)), rates

        def adapter_rates(n):
            model = self.make(1, momentum=0.9)
            self.bind(ONE_CYCLE, model)
            return [(a.rates[0], a.momentum) for a in self.step(model, n)]

        return [
            ("OptaxSchedule-cosine", *optax_native(COSINE)),
            ("OptaxSchedule-one_cycle", *optax_native(ONE_CYCLE)),
            ("Adapter-one_cycle", lambda target: usj.bind(
                ONE_CYCLE, target.target), adapter_rates),
        ]

    def not_convertible(self) -> list[tuple[str, Any, type]]:
        class MySchedule(usj.OptaxSchedule):
            pass

        model = self.make(2, momentum=0.9)
        return [
            ("optax-closure", optax.cosine_decay_schedule(0.1, 100),
             TypeError),
            ("subclass", MySchedule(COSINE), TypeError),
            ("inject-state", model.state, TypeError),
            ("unknown", object(), TypeError),
            ("epoch-OptaxSchedule", usj.OptaxSchedule(
                COSINE, steps_per_epoch=4), ValueError),
            ("Adapter-multipliers", usj.bind(
                COSINE, model.target, multipliers={"g1": 0.5}),
             ValueError),
        ]


def _adam(d: float, adam: Any, name: str, hyper: dict) -> tuple[float,
                                                                 float]:
    """``(lr, beta1)`` of one Adam update of leaf ``name``."""
    mu, nu = float(adam.mu[name][0]), float(adam.nu[name][0])
    count = int(adam.count)
    b1, b2 = hyper["b1"], hyper["b2"]
    mu_hat = mu / (1 - b1 ** count)
    nu_hat = nu / (1 - b2 ** count)
    eps = hyper.get("eps", 1e-8)
    return -d * (math.sqrt(nu_hat + hyper.get("eps_root", 0.0)) + eps) \
        / mu_hat, 1 - mu
