"""Keras 3 harnesses for the adapter contract suite (see ``harness.py``),
on every Keras backend.  The backend is fixed when keras is imported, so
a process tests the one ``KERAS_BACKEND`` names (tensorflow by default;
``conftest.py`` lists its harnesses, ``test_keras_backends.py`` runs the
others in their own processes):

=================  ===============  =========================================
backend            test id          every update is
=================  ===============  =========================================
tensorflow         keras-eager      a plain eager ``apply_gradients``
                   keras-function   the same inside one ``tf.function``
jax                keras-jax-eager  a plain eager ``apply_gradients``
                   keras-jax-jit    one ``jax.jit`` of ``stateless_apply``
                                    (what ``model.fit`` compiles on jax)
torch              keras-torch      a plain ``apply_gradients``: Keras'
                                    torch backend (``model.fit`` too) runs
                                    eagerly
=================  ===============  =========================================

A compiled update is traced once per binding: a function traced before a
``bind`` or a ``load_state_dict`` that changes the schedule keeps the old
one, so it is retraced then, as a user must.

The model (:class:`ProbeModel`) holds one float32 vector ``[a, b]`` per
group, the Keras variables ``g0``, ``g1``, ... (their paths, which
``multipliers`` patterns match).  Before each update the harness zeroes
the weights and sets the optimizer's slots to known values, then applies
the gradient ``[1, 0]``; what the update used is read back exactly:

* SGD without momentum (``w -= lr * g``): ``lr = -a``;
* SGD with momentum (Keras: ``v = m * v - lr * g; w += v``), velocity
  set to ``[0, 1]``: ``a = -lr``, ``b = m``;
* Adam, both moments set to 0: the first moment is ``1 - beta1``, the
  second ``1 - beta2``, and with ``t = iterations + 1`` and Keras'
  ``w -= m * lr * sqrt(1 - beta2**t) / (1 - beta1**t) / (sqrt(v) + eps)``
  the rate is solved from ``a`` (with the betas rounded to float32, as
  Keras raises them to the power ``t`` in the variable's dtype).

``save`` writes ``model.save('m.keras')`` and ``restore`` is
``keras.models.load_model`` (a new process works: it imports this module,
which registers :class:`ProbeModel`, and ``unisched.backends.keras``,
which registers the bound optimizer classes).
"""
from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from unisched.backends import keras as uk

from harness import Applied, Harness

GRAD = np.array([1.0, 0.0], np.float32)
VELOCITY = np.array([0.0, 1.0], np.float32)
ZEROS = np.zeros(2, np.float32)
FILE = "m.keras"
BACKEND = keras.backend.backend()


@keras.saving.register_keras_serializable(package="unisched_tests")
class ProbeModel(keras.Model):
    """``n_groups`` weight vectors ``g0``, ``g1``, ... of two float32
    zeros; nothing to call."""

    def __init__(self, n_groups: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_groups = n_groups
        self.gs = [keras.Variable(np.zeros(2, np.float32), name=f"g{i}")
                   for i in range(n_groups)]
        self.built = True

    def call(self, x: Any) -> Any:
        return x

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "n_groups": self.n_groups}


class Probe:
    """A :meth:`KerasHarness.make` result: the bind target (the
    optimizer) at ``.target``, the model and its weights."""

    def __init__(self, model: ProbeModel) -> None:
        self.model = model
        self.target = model.optimizer
        self.weights = list(model.gs)
        self.function = None    # the traced update (function mode)
        self.traced_for = None  # the objects it was traced with
        self.traces = 0


def _now(value: Any) -> float:
    """A hyperparameter as the update would read it right now."""
    if isinstance(value, uk.ScheduledHyperparameter):
        value = value.value()
    return float(keras.ops.convert_to_numpy(value))


class KerasHarness(Harness):
    """The eager and compiled harnesses' shared part."""

    requires = "keras"
    #: float32 graph formulas (cos, power...) are off by up to ~3e-6
    rtol = 1e-5
    group_rates = False
    module = uk

    # -- building -----------------------------------------------------------
    def make(self, n_groups: int = 1, *, optimizer: str = "sgd",
             lrs: tuple[float, ...] | None = None, momentum: float = 0.0
             ) -> Probe:
        lrs = tuple(lrs) if lrs is not None else (0.1,) * n_groups
        if len(lrs) != n_groups or len(set(lrs)) != 1:
            raise ValueError(f"Keras has one rate per optimizer: lrs must "
                             f"be {n_groups} equal rates, got {lrs!r}")
        return self._probe(n_groups, optimizer, float(lrs[0]), momentum)

    @staticmethod
    def _probe(n_groups: int, optimizer: str, lr: Any,
               momentum: float) -> Probe:
        if optimizer == "sgd":
            opt = keras.optimizers.SGD(lr, momentum=momentum)
        elif optimizer == "adam":
            opt = keras.optimizers.Adam(lr)
        else:
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got "
                             f"{optimizer!r}")
        model = ProbeModel(n_groups)
        model.compile(optimizer=opt)    # model.save keeps the optimizer
        return Probe(model)

    # -- updates ------------------------------------------------------------
    @staticmethod
    def _reset(probe: Probe) -> None:
        """Known weights and slots before an update."""
        opt = probe.target
        for w in probe.weights:
            w.assign(ZEROS)
        if isinstance(opt, keras.optimizers.SGD):
            for v in opt.momentums:
                v.assign(VELOCITY)
        else:
            for m in list(opt._momentums) + list(opt._velocities):
                m.assign(ZEROS)

    def _update(self, probe: Probe) -> None:
        """One update from known weights and slots (eager or traced)."""
        self._reset(probe)
        grad = keras.ops.convert_to_tensor(GRAD)
        probe.target.apply_gradients([(grad, w) for w in probe.weights])

    def _run(self, probe: Probe) -> None:
        self._update(probe)

    @staticmethod
    def _traced_for(probe: Probe) -> list[Any]:
        """The objects a compiled update reads when it is traced (the
        objects themselves, not ids, which a new object may reuse)."""
        opt = probe.target
        return [opt._learning_rate] + [
            getattr(opt, n, None)
            for n in ("momentum", "beta_1", "beta_2", "weight_decay")]

    def _stale(self, probe: Probe) -> bool:
        """Whether the compiled update must be traced (again)."""
        key, old = self._traced_for(probe), probe.traced_for
        if probe.function is not None and all(
                a is b for a, b in zip(old, key, strict=True)):
            return False
        probe.traced_for = key
        return True

    def step(self, target: Probe, n: int = 1) -> list[Applied]:
        opt = target.target
        if not opt.built:
            # Build eagerly (slots must exist to be set before update 0).
            opt.build(target.weights)
        out = []
        for _ in range(n):
            before = int(opt.iterations.numpy())
            self._run(target)
            out.append(self._read(target, before))
        return out

    @staticmethod
    def _read(probe: Probe, before: int) -> Applied:
        opt = probe.target
        weights = [w.numpy().astype(np.float64) for w in probe.weights]
        if isinstance(opt, keras.optimizers.SGD):
            rates = [-w[0] for w in weights]
            momentum = weights[0][1] if opt.momentums else None
            return Applied([float(r) for r in rates], None
                           if momentum is None else float(momentum))
        t = before + 1
        rates = []
        beta1 = None
        for var, w in zip(probe.weights, weights, strict=True):
            i = opt._get_variable_index(var)
            m = float(opt._momentums[i].numpy()[0])
            v = float(opt._velocities[i].numpy()[0])
            # Keras raises the betas, cast to float32, to the power t.
            b1, b2 = float(np.float32(1 - m)), float(np.float32(1 - v))
            eps = _now(opt.epsilon)
            rates.append(-w[0] * (np.sqrt(v) + eps) * (1 - b1 ** t)
                         / (m * np.sqrt(1 - b2 ** t)))
            beta1 = b1 if beta1 is None else beta1
        return Applied([float(r) for r in rates], beta1)

    def own_hparams(self, target: Probe) -> dict[str, Any]:
        opt = target.target
        out: dict[str, Any] = {
            "lr": [_now(opt.learning_rate)] * len(target.weights)}
        if isinstance(opt, keras.optimizers.SGD):
            out["momentum"] = _now(opt.momentum)
        else:
            out["beta1"] = _now(opt.beta_1)
        if opt.weight_decay is not None:   # None: no decay at all
            out["weight_decay"] = _now(opt.weight_decay)
        return out

    # -- checkpoints --------------------------------------------------------
    def save(self, target: Probe, adapter: Any, directory: str) -> None:
        target.model.save(os.path.join(directory, FILE))

    def restore(self, directory: str, **bind_options: Any
                ) -> tuple[Probe, Any]:
        model = keras.models.load_model(os.path.join(directory, FILE))
        probe = Probe(model)
        adapter = uk.adapter_of(probe.target)
        if "sched" in bind_options:
            options = dict(bind_options)
            sched = options.pop("sched")
            state = None if adapter is None else adapter.state_dict()
            adapter = uk.bind(sched, probe.target, **options)
            if state is not None:
                adapter.load_state_dict(state)
        return probe, adapter

    # -- Keras' own schedules -----------------------------------------------
    def natives(self) -> list[tuple[str, Any, Any]]:
        sch = keras.optimizers.schedules
        cases = {
            "ExponentialDecay": lambda: sch.ExponentialDecay(0.1, 3, 0.5),
            "ExponentialDecay-staircase": lambda: sch.ExponentialDecay(
                0.1, 3, 0.5, staircase=True),
            "InverseTimeDecay": lambda: sch.InverseTimeDecay(0.1, 2, 0.5),
            "PiecewiseConstantDecay": lambda: sch.PiecewiseConstantDecay(
                [2, 5], [0.1, 0.05, 0.01]),
            "PolynomialDecay": lambda: sch.PolynomialDecay(
                0.1, 8, end_learning_rate=0.01, power=2.0),
            "CosineDecay": lambda: sch.CosineDecay(0.1, 8, alpha=0.1),
            "CosineDecay-warmup": lambda: sch.CosineDecay(
                0.01, 6, alpha=0.1, warmup_target=0.1, warmup_steps=3),
            "CosineDecayRestarts": lambda: sch.CosineDecayRestarts(
                0.1, 3, t_mul=2.0, m_mul=0.5, alpha=0.1),
        }
        return [(name, lambda target, f=f: f(),
                 lambda n, f=f: self._native_rates(f(), n))
                for name, f in cases.items()]

    def _native_rates(self, native: Any, n: int
                      ) -> list[tuple[float, float | None]]:
        probe = self._probe(1, "sgd", native, 0.9)
        return [(a.rates[0], a.momentum) for a in self.step(probe, n)]

    def not_convertible(self) -> list[tuple[str, Any, type]]:
        sch = keras.optimizers.schedules

        class MyDecay(sch.ExponentialDecay):
            pass

        return [
            ("subclass", MyDecay(0.1, 10, 0.5), TypeError),
            ("unknown", keras.optimizers.SGD(), TypeError),
            ("PolynomialDecay-cycle",
             sch.PolynomialDecay(0.1, 10, cycle=True), ValueError),
        ]


class KerasEagerHarness(KerasHarness):
    """Every update a plain eager ``optimizer.apply_gradients``."""

    name = {"tensorflow": "keras-eager", "jax": "keras-jax-eager",
            "torch": "keras-torch"}[BACKEND]


class KerasFunctionHarness(KerasHarness):
    """Every update one call of a ``tf.function`` traced once (again only
    when the objects it reads were replaced by a bind or a load)."""

    name = "keras-function"

    def __init__(self) -> None:
        if BACKEND != "tensorflow":
            raise RuntimeError(f"{type(self).__name__} needs Keras' "
                               f"tensorflow backend, this process has "
                               f"{BACKEND!r}")

    def _run(self, probe: Probe) -> None:
        import tensorflow as tf
        if self._stale(probe):
            def update():
                probe.traces += 1   # Python side effect: once per trace
                self._update(probe)
            probe.function = tf.function(update)
        probe.function()


class KerasJitHarness(KerasHarness):
    """Every update one call of a ``jax.jit`` of
    ``optimizer.stateless_apply`` (the optimizer's variables and the
    weights in, their new values out and assigned back), traced once
    (again only when the objects it reads were replaced by a bind or a
    load, or the optimizer's variables changed)."""

    name = "keras-jax-jit"

    def __init__(self) -> None:
        if BACKEND != "jax":
            raise RuntimeError(f"{type(self).__name__} needs Keras' jax "
                               f"backend, this process has {BACKEND!r}")

    def _run(self, probe: Probe) -> None:
        import jax
        opt = probe.target
        self._reset(probe)
        if self._stale(probe):
            def update(opt_vars, weights):
                probe.traces += 1   # Python side effect: once per trace
                grads = [keras.ops.convert_to_tensor(GRAD)] * len(weights)
                return opt.stateless_apply(opt_vars, grads, weights)
            probe.function = jax.jit(update)
        weights, opt_vars = probe.function(
            [v.value for v in opt.variables],
            [w.value for w in probe.weights])
        for variable, value in zip(probe.weights + opt.variables,
                                   weights + opt_vars, strict=True):
            variable.assign(value)
