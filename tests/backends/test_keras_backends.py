"""The Keras adapter on every Keras backend: tensorflow, jax and torch.

Keras fixes its backend when it is imported, so a process tests one.
The tests here are written with ``keras`` and ``keras.ops`` only and run
in this process under its backend (tensorflow in the normal run):
``model.fit`` applies the schedule, its momentum cycle and a plateau cut
made by the adapter's callback, per epoch and after an earlier fit.
:func:`test_every_keras_backend_in_its_own_process` runs, for jax and
torch, the Keras part of the contract suite (the harnesses of that
backend, see ``harness_keras.py``) and this module in a new process with
``KERAS_BACKEND`` set, and asserts that they passed: some tests, no skip,
the backend's harness ids and no other's.
"""
from __future__ import annotations

import glob
import os
import re
import subprocess
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import unisched as us  # noqa: E402
from unisched.backends import keras as uk  # noqa: E402
from unisched.backends.keras import _backend  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH = 4   # a power of two: the mean of the MAE gradient is exactly 1
MOMENTUM_SCHEDS = {
    "one_cycle": us.OneCycleScheduler(max_lr=0.05, max_update=40,
                                      pct_start=0.4, base_momentum=0.6,
                                      max_momentum=0.95),
    "cyclic": us.CyclicScheduler(0.01, 0.05, step_size_up=5,
                                 step_size_down=7, mode="triangular2",
                                 base_momentum=0.5, max_momentum=0.9),
}
#: the backends run in their own process, and their harness ids
OTHER_BACKENDS = {"jax": ["keras-jax-eager", "keras-jax-jit"],
                  "torch": ["keras-torch"]}
#: seconds a backend's run may take (import, ~200 tests, two restores
#: in new processes); CI runs each in well under a minute
TIMEOUT = 900


def backend():
    return keras.backend.backend()


def _jax_x64():
    import jax
    return jax.config.jax_enable_x64


def assert_rates(got, want, what=""):
    """float32 tolerance: 1e-5 of the rate, plus 1e-6 of the schedule's
    peak.  The absolute part covers float32 cancellation where a decay
    approaches zero (``1 + cos(pi p)`` near p = 1), which Keras' own
    CosineDecay shares."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    peak = np.abs(want).max() if want.size else 0.0
    tol = 1e-5 * np.abs(want) + 1e-6 * peak + 1e-12
    bad = np.flatnonzero(np.abs(got - want) > tol)
    assert bad.size == 0, (
        f"{what}: first mismatch at step {bad[0]}: got {got[bad[0]]!r}, "
        f"want {want[bad[0]]!r} ({bad.size} mismatches)")


# -- the formulas' ops -------------------------------------------------------

def test_keras_ops_compute_in_the_formula_dtype_with_python_floats():
    """float64 (float32 on jax without x64), even where keras.ops would
    return float32 (cos, floor, ceil on jax; floor, ceil, minimum,
    maximum on torch); only the rate handed to the optimizer is float32."""
    ops, dtype = uk.KerasOps, _backend.formula_dtype()
    assert dtype == ("float32" if backend() == "jax" and not
                     _jax_x64() else "float64")
    t = keras.ops.convert_to_tensor([0.0, 1.0, 2.0], "float32")
    results = {"where": ops.where(t > 0.5, 1.0, 0.0),
               "power": ops.power(0.5, t), "maximum": ops.maximum(t, 0.25),
               "minimum": ops.minimum(0.25, t), "clip": ops.clip(t, 0.5, 1.5),
               "cos": ops.cos(3.0), "floor": ops.floor(t / 2),
               "ceil": ops.ceil(t / 2), "exp": ops.exp(t),
               "log": ops.log(t + 1), "sqrt": ops.sqrt(t)}
    assert {name: keras.backend.standardize_dtype(r.dtype)
            for name, r in results.items()} == dict.fromkeys(results, dtype)
    assert keras.ops.convert_to_numpy(ops.power(0.5, t)).tolist() == [
        1.0, 0.5, 0.25]
    # floatx must not leak into the schedule's arithmetic.
    old = keras.config.floatx()
    keras.config.set_floatx("float64")
    try:
        lr = uk.LearningRateSchedule(us.OneCycleScheduler(0.1, 20))
        rates = lr(keras.ops.arange(5, dtype="int32"))
        assert keras.backend.standardize_dtype(rates.dtype) == "float32"
    finally:
        keras.config.set_floatx(old)


# -- model.fit on this process's backend -------------------------------------

def probe_model(optimizer, jit_compile="auto"):
    """w * x with x = 1 and MAE against a far target: d loss / d w = 1."""
    model = keras.Sequential([
        keras.Input((1,)),
        keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros",
                           name="probe")])
    model.compile(optimizer=optimizer, loss="mae", jit_compile=jit_compile)
    return model


def probe_data(steps_per_epoch):
    n = steps_per_epoch * BATCH
    return (np.ones((n, 1), np.float32),
            np.full((n, 1), -1e4, np.float32))


class Record(keras.callbacks.Callback):
    """The weight after every batch; with ``reset`` it is zeroed first,
    so the weight after a plain SGD update is minus its rate."""

    def __init__(self, reset):
        super().__init__()
        self.reset = reset
        self.weights = []

    def on_train_batch_begin(self, batch, logs=None):
        if self.reset:
            self.model.get_layer("probe").kernel.assign(np.zeros((1, 1)))

    def on_train_batch_end(self, batch, logs=None):
        kernel = self.model.get_layer("probe").kernel
        self.weights.append(float(kernel.numpy()[0, 0]))


def sgd_trajectory(sched, n, start=0):
    """Weights after each SGD-with-momentum update, gradient 1."""
    k = np.arange(n)
    lr, mom = sched.values(k), sched.momentum.values(k)
    w = v = 0.0
    out = []
    for i in range(n):
        v = mom[i] * v - lr[i]
        w += v
        out.append(w)
    return np.array(out[start:])


def test_epoch_callback_under_fit_uses_epochwise_rate():
    sched = us.MultiFactorScheduler(step=[1, 3], factor=0.5, base_lr=0.4)
    spe, epochs = 3, 5
    callback = uk.epoch_callback(sched)
    assert isinstance(callback, keras.callbacks.LearningRateScheduler)
    model = probe_model(keras.optimizers.SGD(0.01))
    record = Record(reset=True)
    model.fit(*probe_data(spe), batch_size=BATCH, epochs=epochs,
              shuffle=False, callbacks=[callback, record], verbose=0)
    applied = -np.array(record.weights)
    want = us.epochwise(sched, spe).values(np.arange(spe * epochs))
    assert_rates(applied, want, "epoch_callback")
    assert want[0] != want[-1]


def test_fit_follows_rate_and_momentum_cycle():
    """The compiled train step of fit (tf.function with XLA where
    ``'auto'`` picks it, jax.jit, torch eagerly) over 8 epochs."""
    sched = MOMENTUM_SCHEDS["one_cycle"]
    model = probe_model(keras.optimizers.SGD())
    assert isinstance(uk.bind(sched, model), uk.KerasAdapter)
    record = Record(reset=False)
    spe, epochs = 5, 8
    model.fit(*probe_data(spe), batch_size=BATCH, epochs=epochs,
              shuffle=False, callbacks=[record], verbose=0)
    assert_rates(record.weights, sgd_trajectory(sched, spe * epochs), "fit")


def test_reduce_on_plateau_cuts_the_rate_in_the_compiled_step():
    """The cut lands in a variable the compiled step reads: on jax, the
    adapter's variables are optimizer state that fit passes in."""
    # mode='max' on a falling loss: every epoch after the first is bad.
    def plateau():
        return us.ReduceOnPlateau(us.CosineScheduler(60, base_lr=0.2),
                                  mode="max", factor=0.5, patience=1)

    sched = plateau()
    model = probe_model(keras.optimizers.SGD())
    callbacks = [uk.bind(sched, model).callback(monitor="loss")]
    assert [type(c) for c in callbacks] == [uk.ReduceOnPlateauCallback]
    record = Record(reset=True)
    losses = keras.callbacks.History()
    spe, epochs = 3, 6
    model.fit(*probe_data(spe), batch_size=BATCH, epochs=epochs,
              shuffle=False, callbacks=[losses, *callbacks, record],
              verbose=0)
    # Replay the same losses into a fresh copy: the rate of epoch e is the
    # schedule after e observations.
    replay = plateau()
    want = []
    for epoch in range(epochs):
        want += [replay(spe * epoch + j) for j in range(spe)]
        replay.observe(losses.history["loss"][epoch])
    assert sched.scale == replay.scale == 0.5 ** 2
    assert_rates(-np.array(record.weights), want, "plateau")


def test_bind_on_a_model_after_fit_drives_momentum_under_fit():
    """bind(sched, model, hparams=...) after an earlier fit compiled the
    train step: the momentum applied at update k (recovered from the
    weights: with gradient 1, SGD's velocity is v_k = m_k v_(k-1) - lr,
    w_k = w_(k-1) + v_k) is the schedule's at k, counted from the bind."""
    cyc = us.CyclicScheduler(0.1, 0.1, step_size_up=3, base_momentum=0.5,
                             max_momentum=0.9)
    model = keras.Sequential([keras.Input((1,)),
                              keras.layers.Dense(1, use_bias=False,
                                                 kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss=lambda y_true, y_pred: keras.ops.sum(y_pred))
    x, y = np.ones((1, 1), "float32"), np.zeros((1, 1), "float32")
    model.fit(x, y, epochs=1, verbose=0)   # compiled with momentum 0.9
    model.optimizer.momentums[0].assign(np.zeros((1, 1)))
    adapter = uk.bind(0.1, model, hparams={"momentum": cyc.momentum})
    weights = [float(model.get_weights()[0][0, 0])]

    class Track(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            weights.append(float(self.model.get_weights()[0][0, 0]))

    model.fit(x, y, epochs=12, verbose=0, callbacks=[Track()])
    assert adapter.updates_done == 12
    v = np.diff(weights)                    # v_0 .. v_11
    applied = (v[1:] + 0.1) / v[:-1]        # m_k for updates 1 .. 11
    np.testing.assert_allclose(applied, cyc.momentum.values(range(1, 12)),
                               rtol=1e-4)
    assert np.abs(applied - cyc.momentum.values(range(2, 13))).max() > 0.05


# -- the other backends, each in its own process -----------------------------

@pytest.mark.parametrize("backend", sorted(OTHER_BACKENDS))
def test_every_keras_backend_in_its_own_process(backend):
    contract = sorted(glob.glob(os.path.join(HERE, "test_contract_*.py")))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider",
         *contract, os.path.abspath(__file__),
         "-k", "keras and not own_process"],
        capture_output=True, text=True, timeout=TIMEOUT,
        cwd=os.path.dirname(os.path.dirname(HERE)),
        env=dict(os.environ, KERAS_BACKEND=backend))
    out = proc.stdout
    summary = out.strip().splitlines()[-1] if out.strip() else ""
    assert proc.returncode == 0, (summary, out[-6000:], proc.stderr[-3000:])
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) > 0, summary
    assert not re.search(r"skipped|failed|error|xfail|xpass", summary), \
        summary
    for name in OTHER_BACKENDS[backend]:
        assert f"{name}]" in out or f"{name}-" in out, \
            f"harness {name} did not run:\n{out[-3000:]}"
    # The contract ran under this backend only (no tensorflow harness)
    # and so did this module.
    assert not re.search(r"[\[-]keras-(eager|function)[\]-]", out)
    assert "test_keras_backends.py::test_fit_follows_rate_and_momentum_" \
           "cycle PASSED" in out
