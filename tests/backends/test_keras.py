"""The Keras 3 adapter beyond the contract suite, on Keras' tensorflow
backend: the rate (and momentum) each real optimizer update uses equals
the unisched schedule at that update in graphs, under XLA, eagerly, with
gradient accumulation and mixed precision, across save/load in a fresh
process; per-variable multipliers; Keras' own schedules convert to equal
unisched schedules.  ``model.fit`` on every Keras backend:
``test_keras_backends.py``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

# Quiet TensorFlow's C++ logging in the test process only.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

import unisched as us  # noqa: E402
from unisched.backends import keras as uk  # noqa: E402

from catalog import CATALOG, HORIZON, draw, samples  # noqa: E402
from harness_keras import KerasEagerHarness  # noqa: E402

# model.fit on every Keras backend is tested there, with these helpers.
from test_keras_backends import (  # noqa: E402
    BATCH,
    MOMENTUM_SCHEDS,
    Record,
    assert_rates,
    probe_data,
    probe_model,
    sgd_trajectory,
)

STEPS = np.arange(HORIZON)


# -- the formula in the graph -------------------------------------------------

@pytest.mark.parametrize("name,seed", samples(3))
def test_graph_formula_matches_schedule(name, seed):
    sched = draw(name, seed)
    lr = uk.LearningRateSchedule(sched)
    # A vector of steps takes the KerasOps path (the one traced graphs use).
    got = lr(tf.range(HORIZON, dtype=tf.int64))
    assert got.dtype == tf.float32
    assert_rates(got.numpy(), sched.values(STEPS), f"{name}/{seed}")
    # A scalar read eagerly: the Python formula rounded once to float32.
    for k in (0, HORIZON // 3, HORIZON - 1):
        value = lr(tf.constant(k, tf.int64))
        assert value.dtype == tf.float32
        assert value.numpy() == np.float32(sched(k))


def _lr_probe(scheds, jit_compile=False):
    """One tf.function that applies gradient 1 to one zeroed scalar per
    schedule with a real SGD; returns it, the rate each update used (the
    weight after it, negated) and a trace counter."""
    weights = [keras.Variable(0.0, name=f"w{i}") for i in range(len(scheds))]
    opts = [keras.optimizers.SGD() for _ in scheds]
    for sched, opt in zip(scheds, opts, strict=True):
        assert isinstance(uk.bind(sched, opt, momentum=False),
                          uk.KerasAdapter)
    traces = []

    @tf.function(jit_compile=jit_compile)
    def step():
        traces.append(1)  # Python side effect: runs once per trace
        for w, opt in zip(weights, opts, strict=True):
            w.assign(0.0)
            opt.apply_gradients([(tf.ones(()), w)])
        return tf.stack([-w.value for w in weights])

    return step, traces, opts


def _changing(name):
    """The first catalog draw of ``name`` whose rate changes within the
    horizon (a constant window could not show an update off by one)."""
    for seed in range(20):
        sched = draw(name, seed)
        if np.any(np.diff(sched.values(STEPS)) != 0):
            return sched
    return None


def test_sgd_update_k_uses_sched_k_for_every_schedule():
    names = sorted(CATALOG)
    scheds = {name: _changing(name) for name in names}
    # Only the constant schedule has no change to show.
    assert [n for n, s in scheds.items() if s is None] == ["constant"]
    names = [n for n in names if scheds[n] is not None]
    step, traces, opts = _lr_probe([scheds[n] for n in names])
    applied = np.array([step().numpy() for _ in range(HORIZON)])
    assert len(traces) == 1, "retraced during training"
    assert [int(o.iterations) for o in opts] == [HORIZON] * len(opts)
    for i, name in enumerate(names):
        want = scheds[name].values(STEPS)
        assert_rates(applied[:, i], want, name)
        # The same rates one update late would not pass.
        assert np.any(np.abs(applied[1:, i] - want[:-1])
                      > 1e-5 * np.abs(want[:-1]) + 1e-6 * np.abs(want).max())


def test_jit_compiled_apply_matches_schedule():
    scheds = [draw("one_cycle", 1), draw("cosine_restarts", 2),
              draw("warmup", 0)]
    step, traces, _ = _lr_probe(scheds, jit_compile=True)
    applied = np.array([step().numpy() for _ in range(70)])
    assert len(traces) == 1
    for i, sched in enumerate(scheds):
        assert_rates(applied[:, i], sched.values(np.arange(70)), str(sched))


def test_gradient_accumulation_counts_real_updates():
    sched = us.PiecewiseConstantScheduler([1, 3], [0.5, 0.25, 0.125])
    w = keras.Variable(0.0)
    opt = keras.optimizers.SGD(gradient_accumulation_steps=2)
    uk.bind(sched, opt)

    @tf.function
    def step():
        w.assign(0.0)
        opt.apply_gradients([(tf.ones(()), w)])
        return -w.value

    # Every second micro-batch applies an update with the k-th rate.
    applied = [float(step()) for _ in range(10)][1::2]
    assert applied == [0.5, 0.5, 0.25, 0.25, 0.125]
    assert uk.adapter_of(opt).updates_done == 5


def test_gradient_accumulation_with_epochs_and_momentum():
    """unit='epoch' (2 real updates per epoch) under accumulation of 2
    micro-batches: the rate and the momentum of real update k are those
    of epoch k // 2, in a plain eager loop."""
    # Keras' convention: rates[i] up to and including boundaries[i].
    sched = us.PiecewiseConstantScheduler([0, 1], [0.5, 0.25, 0.125])
    w = keras.Variable([0.0, 0.0])
    opt = keras.optimizers.SGD(momentum=0.5, gradient_accumulation_steps=2)
    adapter = uk.bind(sched, opt, unit="epoch", steps_per_epoch=2,
                      hparams={"momentum": "piecewise_constant("
                               "boundaries=[0, 1], rates=[0.9, 0.8, 0.7])"})
    rates, moms = [], []
    for micro in range(12):
        w.assign([0.0, 0.0])
        if opt.built:
            opt.momentums[0].assign([0.0, 1.0])
        opt.apply_gradients([(tf.constant([1.0, 0.0]), w)])
        if micro % 2 == 1:
            rates.append(-float(w[0]))
            moms.append(float(w[1]))
    assert rates == [0.5, 0.5, 0.25, 0.25, 0.125, 0.125]
    np.testing.assert_allclose(moms, [0.9, 0.9, 0.8, 0.8, 0.7, 0.7],
                               rtol=1e-7)
    assert adapter.updates_done == 6


# -- momentum and beta_1 ------------------------------------------------------

@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("name", sorted(MOMENTUM_SCHEDS))
def test_sgd_momentum_at_update_k_is_sched_momentum_k(name, jit):
    sched = MOMENTUM_SCHEDS[name]
    w = keras.Variable(0.0)
    opt = keras.optimizers.SGD()   # momentum=0.0: bind switches it on
    uk.bind(sched, opt)

    @tf.function(jit_compile=jit)
    def step():
        # With w reset and gradient 1, the weight after the update is the
        # velocity v_k = m_k * v_{k-1} - lr_k.
        w.assign(0.0)
        opt.apply_gradients([(tf.ones(()), w)])
        return w.value

    n = 50
    v = np.array([float(step()) for _ in range(n)])
    lr = sched.values(np.arange(n)).astype(np.float32).astype(np.float64)
    measured = (v[1:] + lr[1:]) / v[:-1]
    want = sched.momentum.values(np.arange(1, n))
    np.testing.assert_allclose(measured, want, atol=2e-5)
    # Off by one update would be detected.
    shifted = sched.momentum.values(np.arange(2, n + 1))
    assert np.abs(measured - shifted).max() > 1e-2


def _adam_reference(grads, lr, beta1, beta2=0.999, eps=1e-7):
    """Keras' Adam (PyTorch's bias correction: the current beta1 to the
    power of the 1-based step; epsilon added to sqrt(v) before the
    correction, as Keras does) in float64, beta1 per update."""
    w = m = v = 0.0
    out = []
    for k, g in enumerate(grads):
        t = k + 1
        m = beta1[k] * m + (1 - beta1[k]) * g
        v = beta2 * v + (1 - beta2) * g * g
        alpha = lr[k] * np.sqrt(1 - beta2 ** t) / (1 - beta1[k] ** t)
        w -= m * alpha / (np.sqrt(v) + eps)
        out.append(w)
    return np.array(out)


@pytest.mark.parametrize("name", sorted(MOMENTUM_SCHEDS))
def test_adam_beta1_at_update_k_is_sched_momentum_k(name):
    sched = MOMENTUM_SCHEDS[name]
    w = keras.Variable(0.0)
    opt = keras.optimizers.Adam()
    uk.bind(sched, opt)
    assert isinstance(opt.beta_1, uk.ScheduledHyperparameter)
    grads = np.random.default_rng(0).normal(size=45).astype(np.float32)

    @tf.function
    def step(g):
        opt.apply_gradients([(g, w)])
        return w.value

    got = np.array([float(step(tf.constant(g))) for g in grads])
    k = np.arange(len(grads))
    lr = sched.values(k)
    want = _adam_reference(grads, lr, sched.momentum.values(k))
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-7)
    wrong = _adam_reference(grads, lr, sched.momentum.values(k + 1))
    assert np.abs(got - wrong).max() > 1e-4


def test_config_holds_the_optimizers_own_values_and_the_binding():
    sched = MOMENTUM_SCHEDS["one_cycle"]
    opt = keras.optimizers.SGD(0.3, momentum=0.2)
    adapter = uk.bind(sched, opt, multipliers={"w": 0.5})
    config = opt.get_config()
    assert (config["learning_rate"], config["momentum"]) == (
        pytest.approx(0.3), 0.2)
    assert config["unisched"]["state"] == adapter.state_dict()
    # A plain SGD from the config without the binding is the original...
    own = {k: v for k, v in config.items() if k != "unisched"}
    plain = keras.optimizers.SGD.from_config(own)
    assert type(plain.momentum) is float and plain.momentum == 0.2
    # ... and the serialized optimizer comes back bound.
    data = json.loads(json.dumps(keras.optimizers.serialize(opt)))
    assert data["registered_name"] == "unisched>BoundSGD"
    back = keras.optimizers.deserialize(data)
    assert type(back).__name__ == "BoundSGD"
    assert uk.adapter_of(back).state_dict() == adapter.state_dict()
    assert isinstance(back.momentum, uk.ScheduledHyperparameter)


# -- serialization ------------------------------------------------------------

def test_plateau_state_round_trips_through_keras_serialization():
    sched = us.ReduceOnPlateau(0.1, patience=0, factor=0.5)
    lr = uk.LearningRateSchedule(sched)
    lr.observe(1.0)
    assert lr.observe(2.0) is True
    config = keras.optimizers.schedules.serialize(lr)
    back = keras.optimizers.schedules.deserialize(json.loads(
        json.dumps(config)))
    assert isinstance(back, uk.LearningRateSchedule)
    assert back.schedule == sched
    assert float(back(tf.range(2))[1]) == pytest.approx(0.05)


@pytest.mark.parametrize("name,seed", samples(1))
def test_schedule_round_trips_through_keras_serialization(name, seed):
    sched = draw(name, seed)
    config = keras.optimizers.schedules.serialize(
        uk.LearningRateSchedule(sched))
    assert config["registered_name"] == "unisched>LearningRateSchedule"
    back = keras.optimizers.schedules.deserialize(json.loads(
        json.dumps(config)))
    assert back.schedule == sched


# -- resume from model.save in a fresh process --------------------------------

_RESUME = textwrap.dedent("""
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import numpy as np, keras
    import unisched
    from unisched.backends import keras as uk
    path, config, start, epochs, spe = sys.argv[1:6]
    start, epochs, spe = int(start), int(epochs), int(spe)
    sched = unisched.from_config(config)
    model = keras.models.load_model(path)
    opt = model.optimizer
    # No second bind: the schedule, its momentum cycle, the multipliers
    # and the position come back with the optimizer.
    adapter = uk.adapter_of(opt)
    assert adapter.schedule == sched, adapter
    assert adapter.hparams == {"momentum": sched.momentum}, adapter
    assert adapter.multipliers == {".*/probe/kernel": 1.0}, adapter
    assert adapter.updates_done == start * spe, adapter.updates_done
    weights = []
    kernel = model.get_layer("probe").kernel
    record = keras.callbacks.LambdaCallback(on_batch_end=lambda b, logs:
        weights.append(float(kernel.numpy()[0, 0])))
    n = spe * 4
    x = np.ones((n, 1), np.float32)
    y = np.full((n, 1), -1e4, np.float32)
    model.fit(x, y, batch_size=4, epochs=epochs, initial_epoch=start,
              shuffle=False, callbacks=[record], verbose=0)
    print(json.dumps(weights))
""")


def test_resume_in_a_fresh_process_continues_the_schedule(tmp_path):
    sched = MOMENTUM_SCHEDS["one_cycle"]
    spe, first, epochs = 4, 3, 9
    # Uninterrupted, in this process.
    full = probe_model(keras.optimizers.SGD())
    uk.bind(sched, full, multipliers={".*/probe/kernel": 1.0})
    whole = Record(reset=False)
    full.fit(*probe_data(spe), batch_size=BATCH, epochs=epochs,
             shuffle=False, callbacks=[whole], verbose=0)
    # Interrupted after `first` epochs, saved, resumed elsewhere.
    part = probe_model(keras.optimizers.SGD())
    uk.bind(sched, part, multipliers={".*/probe/kernel": 1.0})
    begin = Record(reset=False)
    part.fit(*probe_data(spe), batch_size=BATCH, epochs=first,
             shuffle=False, callbacks=[begin], verbose=0)
    path = tmp_path / "m.keras"
    part.save(path)
    out = subprocess.run(
        [sys.executable, "-c", _RESUME, str(path), sched.to_json(),
         str(first), str(epochs), str(spe)],
        capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    rest = json.loads(out.stdout.strip().splitlines()[-1])
    resumed = begin.weights + rest
    assert len(resumed) == spe * epochs
    np.testing.assert_allclose(resumed, whole.weights, rtol=1e-6)
    assert_rates(resumed, sgd_trajectory(sched, spe * epochs), "resumed")


_RESTORE = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[2])
    import harness_keras
    harness = harness_keras.KerasEagerHarness()
    probe, adapter = harness.restore(sys.argv[1])
    out = {"scale": adapter.schedule.scale, "done": adapter.updates_done,
           "multipliers": adapter.multipliers,
           "applied": [(a.rates, a.momentum)
                       for a in harness.step(probe, 3)]}
    print(json.dumps(out))
""")


def test_plateau_adam_and_multipliers_restore_in_a_fresh_process(tmp_path):
    """Keras' own checkpoint of a bound Adam: a new process that imports
    unisched.backends.keras (here via the harness) gets the plateau cut,
    the beta1 cycle, the multipliers and the position back."""
    def sched():
        return us.ReduceOnPlateau(MOMENTUM_SCHEDS["cyclic"], patience=0,
                                  factor=0.5)

    harness = KerasEagerHarness()
    probe = harness.make(2, optimizer="adam")
    adapter = harness.bind(sched(), probe, multipliers={"g1": 0.25},
                           momentum=MOMENTUM_SCHEDS["cyclic"].momentum)
    harness.step(probe, 5)
    adapter.observe(1.0)
    adapter.observe(2.0)
    harness.save(probe, adapter, str(tmp_path))
    here = harness.step(probe, 3)
    out = subprocess.run(
        [sys.executable, "-c", _RESTORE, str(tmp_path),
         os.path.dirname(os.path.abspath(__file__))],
        capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert (got["scale"], got["done"], got["multipliers"]) == (
        0.5, 5, {"g1": 0.25})
    base = MOMENTUM_SCHEDS["cyclic"]
    for (rates, mom), mine, k in zip(got["applied"], here, (5, 6, 7),
                                     strict=True):
        assert rates == pytest.approx(mine.rates, rel=1e-6)
        assert rates == pytest.approx([0.5 * base(k), 0.125 * base(k)],
                                      rel=1e-5)
        assert mom == pytest.approx(base.momentum(k), rel=1e-6)


# -- per-variable multipliers ------------------------------------------------

@pytest.mark.parametrize("jit", [False, True])
def test_multipliers_scale_adam_rate_per_variable_exactly(jit):
    sched = us.CosineScheduler(30, base_lr=0.1, final_lr=0.01)
    slow = keras.Variable(0.0, name="backbone_w")
    fast = keras.Variable(0.0, name="head_w")
    opt = keras.optimizers.Adam(epsilon=1e-12)
    uk.bind(sched, opt, multipliers={"backbone_.*": 0.1})
    # Scaling the gradient instead (the inexact alternative): Adam ignores
    # the scale.
    scaled = keras.Variable(0.0, name="scaled_w")
    plain = keras.optimizers.Adam(epsilon=1e-12)
    uk.bind(sched, plain)

    @tf.function(jit_compile=jit)
    def step():
        for v in (slow, fast, scaled):
            v.assign(0.0)
        opt.apply_gradients([(tf.ones(()), slow), (tf.ones(()), fast)])
        plain.apply_gradients([(0.1 * tf.ones(()), scaled)])
        return -tf.stack([slow.value, fast.value, scaled.value])

    # Constant gradient: Adam's corrected step is exactly lr * g / |g|.
    got = np.array([step().numpy() for _ in range(30)])
    rates = sched.values(np.arange(30))
    assert_rates(got[:, 0], 0.1 * rates, "slow variable")
    assert_rates(got[:, 1], rates, "fast variable")
    assert_rates(got[:, 2], rates, "scaled gradient")   # not 0.1 * rates


def test_multipliers_resolve_when_the_optimizer_is_built():
    """A sequence has one factor per variable in the optimizer's order;
    before the build nothing is known, so a bad pattern or length shows
    at build time."""
    harness = KerasEagerHarness()
    probe = harness.make(3)
    adapter = harness.bind("constant(0.2)", probe, multipliers=(1, 0.5, 0))
    assert adapter._factors is None and not probe.target.built
    applied = harness.step(probe, 2)
    assert [a.rates for a in applied] == [[pytest.approx(0.2),
                                           pytest.approx(0.1), 0.0]] * 2
    bad = harness.make(2)
    harness.bind("constant(0.2)", bad, multipliers={"g7": 2.0})
    with pytest.raises(ValueError, match="'g7' matches no parameter"):
        harness.step(bad)
    short = harness.make(2)
    harness.bind("constant(0.2)", short, multipliers=[1.0])
    with pytest.raises(ValueError, match="multipliers has 1 entries"):
        harness.step(short)


def test_multipliers_scale_decoupled_weight_decay():
    """AdamW decays ``w -= lr * wd * w`` before the Adam step: with a
    multiplier, by the variable's own rate (as PyTorch's groups do)."""
    w = [keras.Variable(1.0, name="a"), keras.Variable(1.0, name="b")]
    opt = keras.optimizers.AdamW(weight_decay=0.5)
    uk.bind("constant(0.1)", opt, multipliers={"a": 0.2})
    opt.apply_gradients([(tf.zeros(()), v) for v in w])
    # Zero gradient: only the decay moves the weights.
    assert [float(v) for v in w] == [pytest.approx(1 - 0.02 * 0.5),
                                     pytest.approx(1 - 0.1 * 0.5)]


# -- bind: targets, rebinding, unbinding, errors ------------------------------

def test_bind_through_the_core_dispatch_and_spec_strings():
    opt = keras.optimizers.Adam(0.001)
    adapter = us.bind("cosine(max_update=10, base_lr=0.5)", opt)
    assert isinstance(adapter, uk.KerasAdapter)
    assert uk.adapter_of(opt) is adapter
    assert float(opt.learning_rate) == 0.5
    assert us.from_native(opt._learning_rate) == adapter.schedule
    # A number is a constant rate.
    assert uk.bind(0.25, opt).schedule == us.ConstantScheduler(0.25)


def test_eager_update_k_uses_hparams_at_k_not_k_plus_1():
    """A plain eager loop (no tf.function): the rate, SGD's momentum and
    Adam's beta1 of update k are sched(k) and sched.momentum(k).  Reading
    optimizer.iterations after it is incremented would give k + 1."""
    sched = MOMENTUM_SCHEDS["cyclic"]
    harness = KerasEagerHarness()
    k = np.arange(25)
    for kind in ("sgd", "adam"):
        probe = harness.make(1, optimizer=kind)
        uk.bind(sched, probe.target)
        applied = harness.step(probe, 25)
        rates = np.array([a.rates[0] for a in applied])
        moms = np.array([a.momentum for a in applied])
        np.testing.assert_allclose(rates, sched.values(k), rtol=1e-5)
        np.testing.assert_allclose(moms, sched.momentum.values(k),
                                   rtol=1e-6)
        assert np.abs(moms - sched.momentum.values(k + 1)).max() > 1e-2


def test_unbind_restores_the_optimizers_own_values():
    native = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    for opt, own in ((keras.optimizers.SGD(0.3, momentum=0.2), 0.3),
                     (keras.optimizers.SGD(native, momentum=0.2), native)):
        kind = type(opt)
        names = [v.path for v in opt.variables]
        adapter = uk.bind(MOMENTUM_SCHEDS["one_cycle"], opt,
                          multipliers=[0.5], hparams={"weight_decay": 0.1})
        w = keras.Variable(0.0)
        opt.apply_gradients([(tf.ones(()), w)])
        adapter.unbind()
        adapter.unbind()    # idempotent
        assert type(opt) is kind and uk.adapter_of(opt) is None
        assert opt.momentum == 0.2 and opt.weight_decay is None
        if own is native:
            assert opt._learning_rate is native
        else:
            assert float(opt._learning_rate) == pytest.approx(own)
        # The same variables, in the same order (checkpoint layout).
        assert [v.path for v in opt.variables][:len(names)] == names
        # The optimizer's own update again: lr * g, no multiplier.
        w.assign(0.0)
        opt.momentums[0].assign(0.0)
        opt.apply_gradients([(tf.ones(()), w)])
        lr = float(native(1)) if own is native else 0.3
        assert float(w) == pytest.approx(-lr)
        with pytest.raises(RuntimeError, match="unbound"):
            adapter.observe(1.0)


def test_binding_again_unbinds_the_previous_adapter():
    opt = keras.optimizers.SGD(0.1, momentum=0.3)
    first = uk.bind(MOMENTUM_SCHEDS["one_cycle"], opt)
    second = uk.bind("constant(0.05)", opt)
    assert uk.adapter_of(opt) is second
    assert "unbound" in repr(first)
    # The first one's momentum cycle no longer runs: momentum is SGD's.
    assert opt.momentum == 0.3 and type(opt.momentum) is float
    harness = KerasEagerHarness()
    probe = harness.make(1, momentum=0.3)
    uk.bind(MOMENTUM_SCHEDS["one_cycle"], probe.target)
    uk.bind("constant(0.05)", probe.target)
    applied = harness.step(probe, 3)
    assert [(a.rates[0], a.momentum) for a in applied] == [
        (pytest.approx(0.05), pytest.approx(0.3))] * 3


def test_loss_scale_optimizer_is_bound_through():
    inner = keras.optimizers.SGD(0.1)
    opt = keras.optimizers.LossScaleOptimizer(inner)
    adapter = uk.bind("exponential(base_lr=0.5, factor=0.5)", opt)
    assert uk.adapter_of(opt) is adapter and adapter.optimizer is inner
    w = keras.Variable(0.0)
    applied = []
    for _ in range(3):
        w.assign(0.0)
        # The loss-scaled gradient is unscaled before the update.
        opt.apply_gradients([(tf.ones(()) * opt.scale_loss(1.0), w)])
        applied.append(-float(w))
    assert applied == [0.5, 0.25, 0.125]


def test_loss_scale_optimizer_model_save_restores_the_binding(tmp_path):
    model = probe_model(keras.optimizers.LossScaleOptimizer(
        keras.optimizers.SGD()))
    adapter = uk.bind(MOMENTUM_SCHEDS["cyclic"], model)
    model.fit(*probe_data(3), batch_size=BATCH, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    back = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(back.optimizer, keras.optimizers.LossScaleOptimizer)
    loaded = uk.adapter_of(back.optimizer)
    assert loaded.state_dict() == adapter.state_dict()
    assert loaded.updates_done == 3
    assert float(back.optimizer.inner_optimizer.momentum.value()) == \
        pytest.approx(MOMENTUM_SCHEDS["cyclic"].momentum(3))


def test_state_dict_round_trip_and_atomic_load():
    sched = us.ReduceOnPlateau(us.CosineScheduler(20, base_lr=0.2),
                               patience=0, factor=0.5)
    opt = keras.optimizers.SGD()
    adapter = uk.bind(sched, opt)
    w = keras.Variable(0.0)
    for _ in range(4):
        opt.apply_gradients([(tf.ones(()), w)])
    adapter.observe(1.0)
    assert adapter.observe(np.float32(2.0)) is True
    state = json.loads(json.dumps(adapter.state_dict()))
    assert state["updates_done"] == 4 and state["format"] == "unisched.keras"
    other = keras.optimizers.SGD()
    again = uk.bind(us.ReduceOnPlateau(us.CosineScheduler(20, base_lr=0.2),
                                       patience=0, factor=0.5), other)
    again.load_state_dict(state)
    assert again.updates_done == 4 and again.schedule.scale == 0.5
    assert float(other.learning_rate) == pytest.approx(0.5 * sched(4) /
                                                       sched.scale)
    before = again.state_dict()
    for bad in ({**state, "updates_done": -1},
                {**state, "schedule_state": {"scale": "x"}},
                {**state, "hparams": {"rho": "constant(0.5)"},
                 "updates_done": 9}):
        with pytest.raises((TypeError, ValueError)):
            uk.bind(sched, keras.optimizers.SGD(), on_mismatch="checkpoint"
                    ).load_state_dict(bad)
        with pytest.raises((TypeError, ValueError)):
            again.load_state_dict(bad)
        assert again.state_dict() == before


def test_bind_errors_name_the_problem():
    sched = MOMENTUM_SCHEDS["one_cycle"]
    with pytest.raises(TypeError, match="target must be"):
        uk.bind(sched, object())
    with pytest.raises(TypeError, match="sched must be"):
        uk.bind([0.1], keras.optimizers.SGD())
    with pytest.raises(ValueError, match="no optimizer"):
        uk.bind(sched, keras.Sequential([keras.layers.Dense(1)]))
    with pytest.raises(ValueError, match="momentum=False"):
        uk.bind(sched, keras.optimizers.Adagrad())
    uk.bind(sched, keras.optimizers.Adagrad(), momentum=False)
    with pytest.raises(ValueError, match="'beta_9'"):
        uk.bind("constant(0.1)", keras.optimizers.Adam(),
                hparams={"beta_9": "constant(0.5)"})
    with pytest.raises(TypeError, match="momentum must be"):
        uk.bind(sched, keras.optimizers.SGD(), momentum=True)
    with pytest.raises(ValueError, match="steps_per_epoch is required"):
        uk.bind(sched, keras.optimizers.SGD(), unit="epoch")
    with pytest.raises(ValueError, match="on_mismatch"):
        uk.bind(sched, keras.optimizers.SGD(), on_mismatch="ignore")
    multi = keras.optimizers.MultiOptimizer(keras.optimizers.OptimizerMap(
        keras.optimizers.SGD()))
    with pytest.raises(TypeError, match="MultiOptimizer"):
        uk.bind(sched, multi)
    # An SGD already built without velocity slots cannot take a momentum,
    # and the failed bind leaves it alone.
    built = keras.optimizers.SGD(0.01)
    built.build([keras.Variable(0.0)])
    with pytest.raises(ValueError, match="no velocity slots"):
        uk.bind(sched, built)
    assert type(built) is keras.optimizers.SGD
    assert uk.adapter_of(built) is None
    with pytest.raises(ValueError, match="starts at 0.0"):
        uk.bind("constant(0.1)", keras.optimizers.SGD(),
                hparams={"momentum": "constant(0.0)"})
    with pytest.raises(TypeError, match="stateless"):
        uk.bind("constant(0.1)", keras.optimizers.SGD(),
                hparams={"momentum": us.ReduceOnPlateau(0.9)})
    with pytest.raises(TypeError, match="ReduceOnPlateau"):
        uk.bind("constant(0.1)", keras.optimizers.SGD()).observe(1.0)


# -- Keras' own schedules -----------------------------------------------------

def _keras_values(native):
    """Keras' schedule at steps 0 .. HORIZON - 1, float32."""
    steps = tf.range(HORIZON, dtype=tf.int64)
    if getattr(native, "warmup_target", None) is not None:
        # Its warmup branch is a scalar cond: one call per step.
        fn = tf.function(native)
        return np.array([float(fn(s)) for s in steps])
    return native(steps).numpy()


def _natives(rng):
    sch = keras.optimizers.schedules
    lr = float(np.exp(rng.uniform(np.log(1e-3), 0.0)))
    steps = int(rng.integers(1, 60))
    yield sch.ExponentialDecay(lr, steps, float(rng.uniform(0.3, 1.2)),
                               staircase=bool(rng.random() < 0.5))
    yield sch.ExponentialDecay(lr, float(rng.uniform(0.5, 30)),
                               float(rng.uniform(0.3, 1.0)))
    yield sch.InverseTimeDecay(lr, steps, float(rng.uniform(0, 2)),
                               staircase=bool(rng.random() < 0.5))
    bounds = sorted(int(b) for b in rng.choice(np.arange(1, 110), 3,
                                               replace=False))
    yield sch.PiecewiseConstantDecay(
        bounds, [float(v) for v in rng.uniform(0, 1, 4)])
    yield sch.PolynomialDecay(lr, int(rng.integers(1, 110)),
                              end_learning_rate=lr * rng.uniform(0, 0.5),
                              power=float(rng.choice([1.0, 2.0, 0.5,
                                                      rng.uniform(0.2, 4)])))
    yield sch.CosineDecay(lr, int(rng.integers(1, 110)),
                          alpha=float(rng.choice([0.0, rng.uniform(0, 1)])))
    yield sch.CosineDecay(lr * rng.uniform(0, 1), int(rng.integers(1, 80)),
                          alpha=float(rng.uniform(0, 0.5)),
                          warmup_target=lr,
                          warmup_steps=int(rng.integers(0, 40)))
    yield sch.CosineDecayRestarts(
        lr, int(rng.integers(1, 40)),
        t_mul=float(rng.choice([1.0, 2.0, rng.uniform(1, 3)])),
        m_mul=float(rng.uniform(0.3, 1.0)),
        alpha=float(rng.uniform(0, 0.3)))


@pytest.mark.parametrize("seed", range(4))
def test_from_native_equals_keras_schedule(seed):
    for native in _natives(np.random.default_rng(seed)):
        sched = uk.from_native(native)
        assert us.from_native(native) == sched   # the core's dispatch
        assert_rates(_keras_values(native), sched.values(STEPS),
                     f"{type(native).__name__}({native.get_config()}) "
                     f"-> {sched!r}")


def test_from_native_maps_to_the_documented_schedules():
    sch = keras.optimizers.schedules
    assert uk.from_native(sch.CosineDecay(
        0.0, 50, alpha=0.1, warmup_target=0.2, warmup_steps=10)) == \
        us.warmup(us.CosineScheduler(50, base_lr=0.2, final_lr=0.1 * 0.2),
                  10, warmup_begin_lr=0.0)
    assert uk.from_native(sch.PolynomialDecay(0.1, 20, 0.01, power=0.0)) \
        == us.ConstantScheduler(0.1)
    assert uk.from_native(sch.CosineDecayRestarts(
        1.0, 10, t_mul=2.0, m_mul=0.5, alpha=0.1)) == \
        us.CosineRestartsScheduler(10, 1.0, 0.1, 2.0, 0.5)


@pytest.mark.parametrize("native,message", [
    (lambda s: s.PolynomialDecay(0.1, 10, cycle=True), "cycle=True"),
    (lambda s: s.PolynomialDecay(0.1, 10, power=-1.0), "power"),
    (lambda s: s.PolynomialDecay(0.1, 10.5), "decay_steps"),
    (lambda s: s.CosineDecayRestarts(0.1, 10, t_mul=0.5), "t_mul"),
    (lambda s: s.CosineDecay(0.1, 10, alpha=-0.5), "alpha"),
    (lambda s: s.ExponentialDecay(0.1, 2.5, 0.5, staircase=True),
     "staircase"),
    (lambda s: s.ExponentialDecay(0.1, 10, -0.5), "factor"),
    (lambda s: s.PiecewiseConstantDecay([2.5], [0.1, 0.2]),
     "boundaries"),
])
def test_from_native_refuses_what_it_cannot_represent(native, message):
    with pytest.raises(ValueError, match=message):
        uk.from_native(native(keras.optimizers.schedules))


def test_from_native_dispatches_on_exact_types():
    sch = keras.optimizers.schedules

    class Mine(sch.CosineDecay):
        pass

    for obj in (keras.optimizers.SGD(), Mine(0.1, 10)):
        with pytest.raises(TypeError, match="exactly these types.*"
                           "CosineDecay, CosineDecayRestarts"):
            uk.from_native(obj)
    with pytest.raises(ValueError, match=r"PolynomialDecay\(.*cycle=True"):
        uk.from_native(sch.PolynomialDecay(0.1, 10, cycle=True))
    # The core's constructor refusing a converted value: still a
    # ValueError naming the Keras class and the attribute.
    with pytest.raises(ValueError, match=r"cannot convert "
                       r"PiecewiseConstantDecay.*rates"):
        uk.from_native(sch.PiecewiseConstantDecay([2], [0.1, -0.2]))
    assert uk.from_native(sch.PiecewiseConstantDecay([2], [0.1, 0.2])) == \
        us.PiecewiseConstantScheduler([2], rates=[0.1, 0.2])
