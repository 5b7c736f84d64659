"""The Keras LeNet trainer: every update's recorded rate (per group) and
momentum equal the schedule at that update -- per update, per epoch,
discriminative, native Keras schedules and the chapter's per-epoch
callback -- and are what the optimizer really applied; a short real run
learns; runs are deterministic; the finder restores the model; bad
arguments fail clearly.

Runs on small slices of the embedded digits data (600 training images:
batches of 256, 256 and a partial 88 per epoch), under this process's
Keras backend (tensorflow in the normal run).  On jax and torch, each in
its own process (the backend is fixed when keras is imported), the same
few dozen updates (:func:`short_runs`: discriminative rates with L2
weight decay, Adam's beta1 cycle, a plateau cut with SGD momentum, the
finder) start from the same weights and must end where tensorflow's do:
the same rates, losses, accuracies and weights up to float32 noise.
This module imports only keras at the top, so those processes import it
to run :func:`short_runs` without TensorFlow.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import unisched as us  # noqa: E402
from unisched.app.data import iterate_batches, load_dataset  # noqa: E402
from unisched.app.lenet import init_lenet_params  # noqa: E402
from unisched.app.training import CHAPTER_LR, fit  # noqa: E402
from unisched.backends import keras as uk  # noqa: E402
from unisched.backends.keras.lenet import (  # noqa: E402
    KerasTrainer,
    build_lenet,
    fit_one_cycle,
    get_params,
    lr_find,
    to_nhwc,
    train_lenet,
)
from unisched.tools import multipliers, one_cycle  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SPE = 3            # updates per epoch on the 600-image slice
UPDATES = 2 * SPE  # two epochs
WARM_COSINE = us.warmup(us.CosineScheduler(max_update=UPDATES, base_lr=0.3,
                                           final_lr=0.01), 2)
# threshold 0.9: only a 10x lower loss counts as better, so the second
# epoch is bad and, with patience 0, the third epoch runs at half rate.
PLATEAU = us.ReduceOnPlateau(0.3, patience=0, factor=0.5, threshold=0.9)
#: the initial weights of each of :func:`short_runs`
SEEDS = {"discriminative": 0, "adam_one_cycle": 1, "plateau_momentum": 2}
#: how far the weights' change in a short run may differ from this
#: process's, relative to its size: float noise, but on jax without x64
#: the float32 formulas' noise (~1e-6 of a rate) grows to ~0.5% through
#: Adam (``backends/keras/_backend.py``)
CHANGE_RTOL = {"jax": {"adam_one_cycle": 2e-2}, "default": 5e-4}


def backend():
    return keras.backend.backend()


@pytest.fixture(scope="module")
def small():
    return load_dataset("digits", limit=600)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def assert_f32(got, want, what=""):
    """float32 tolerance: the optimizers evaluate rates in float32."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-9,
                               err_msg=what)


@pytest.fixture(scope="module")
def step_runs(small):
    """The same warmup+cosine run twice (for determinism)."""
    return [train_lenet(WARM_COSINE, small, 2, log=None) for _ in range(2)]


# -- the rates each update uses ----------------------------------------------

def test_step_rates_equal_sched_k_for_every_update(step_runs):
    rec = step_runs[0]
    assert list(rec.steps) == list(range(UPDATES))
    assert rec.n_groups == 1
    assert_f32(rec.lrs, WARM_COSINE.values(np.arange(UPDATES)), "lr")
    # warmup ramp 0 -> 0.3 over two updates, then the cosine
    assert_f32(rec.lrs[:3], [0.0, 0.15, 0.3])
    assert_f32(rec.momentums, np.zeros(UPDATES), "SGD momentum 0")
    assert len(rec.epochs) == 2
    assert all(np.isfinite(rec.losses))


def test_same_seed_gives_identical_losses(step_runs):
    first, second = step_runs
    assert np.array_equal(first.losses, second.losses)
    assert first.epochs[-1]["test_acc"] == second.epochs[-1]["test_acc"]


def test_traces_for_a_run_with_partial_batches(small):
    trainer = KerasTrainer(WARM_COSINE)
    fit(trainer, small, 2, log=None)  # 88-image last batch, 300 evals
    # tensorflow: one graph for every batch size; jax: one per shape
    # (256 and 88); torch: eager.
    assert trainer.traces == {"tensorflow": 1, "jax": 2,
                              "torch": 0}[backend()]


def test_epoch_unit_holds_the_rate_within_each_epoch(small):
    rec = train_lenet(WARM_COSINE, small, 2, unit="epoch", log=None)
    want = [WARM_COSINE(k // SPE) for k in range(UPDATES)]
    assert_f32(rec.lrs, want)
    assert_f32(rec.lrs, [0.0] * SPE + [0.15] * SPE)


def test_discriminative_rates_are_the_ones_applied(small):
    """lr=slice(1e-3, 1e-1): geometric multipliers 0.01, 0.1, 1 over
    (conv, fc1+fc2, fc3); and the weight change of each group at one
    update is -lr_i * (grad + wd * w): the rate recorded is the rate the
    optimizer used, with PyTorch's L2 weight decay."""
    tf = pytest.importorskip("tensorflow")
    wd = 0.01
    trainer = KerasTrainer(WARM_COSINE, lr=slice(1e-3, 1e-1),
                           weight_decay=wd)
    assert multipliers(slice(1e-3, 1e-1), 3) == pytest.approx(
        [0.01, 0.1, 1.0])
    rec = fit(trainer, small, 1, max_updates=2, log=None)
    x, y = next(iterate_batches(small.x_train, small.y_train, 256,
                                seed=5))
    lrs, _ = trainer.hparams()
    # hparams() is what the optimizer itself evaluates at its step, times
    # the factor its update_step applies to each group's variables
    opt = trainer.optimizer
    assert_f32(lrs, [float(opt.learning_rate) * opt._unisched_factor(
        trainer.model.get_layer(layer).kernel)
        for layer in ("conv1", "fc2", "fc3")])
    model = trainer.model
    variables = model.trainable_variables
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(to_nhwc(x), training=True))
    grads = [g.numpy() for g in tape.gradient(loss, variables)]
    before = [v.numpy().copy() for v in variables]
    trainer.train_batch(x, y)
    rec.record_update(2, lrs, 0.0, None)
    layer_group = {"conv1": 0, "conv2": 0, "fc1": 1, "fc2": 1, "fc3": 2}
    for v, g, w in zip(variables, grads, before, strict=True):
        rate = lrs[layer_group[v.path.split("/")[-2]]]
        np.testing.assert_allclose(v.numpy() - w, -rate * (g + wd * w),
                                   rtol=2e-3, atol=1e-7, err_msg=v.path)
    want = WARM_COSINE.values(np.arange(3))[:, None] * [0.01, 0.1, 1.0]
    assert_f32(rec.group_lrs, want)


def test_native_keras_schedule_is_indexed_by_keras(small):
    native = keras.optimizers.schedules.PiecewiseConstantDecay(
        [1, 4], [0.3, 0.1, 0.03])
    rec = train_lenet(native, small, 2, log=None)
    want = uk.from_native(native).values(np.arange(UPDATES))
    assert_f32(rec.lrs, want)
    assert_f32(rec.lrs, [0.3, 0.3, 0.1, 0.1, 0.1, 0.03])
    # per epoch and per group: m_i * native(k // SPE)
    rec = train_lenet(native, small, 2, unit="epoch", lr=slice(0.3),
                      log=None)
    want = np.array([keras.ops.convert_to_numpy(native(k // SPE))
                     for k in range(UPDATES)])
    assert_f32(rec.group_lrs, want[:, None] * [0.1, 0.1, 1.0])


def test_per_epoch_callable_goes_through_keras_callback(small):
    """The chapter's TF style: LearningRateScheduler(schedule) once per
    epoch, both call forms (epoch) and (epoch, lr)."""
    seen = []

    def factor(epoch, lr):
        seen.append((epoch, round(lr, 6)))
        return lr * 0.5

    trainer = KerasTrainer(factor, unit="epoch")
    assert isinstance(trainer.callback,
                      keras.callbacks.LearningRateScheduler)
    rec = fit(trainer, small, 3, log=None)
    assert_f32(rec.lrs, np.repeat(CHAPTER_LR * 0.5 ** np.arange(1, 4), SPE))
    # called once per epoch that runs, before its first update, as fit does
    assert seen == [(0, 0.3), (1, 0.15), (2, 0.075)]
    sqrt = us.SquareRootScheduler(0.3)
    rec = train_lenet(lambda epoch: sqrt(epoch), small, 2, unit="epoch",
                      log=None)
    assert_f32(rec.lrs, [sqrt(k // SPE) for k in range(UPDATES)])


def test_reduce_on_plateau_cuts_after_a_bad_epoch(small):
    rec = train_lenet(PLATEAU, small, 3, log=None)
    assert_f32(rec.lrs, [0.3] * (2 * SPE) + [0.15] * SPE)
    assert PLATEAU.scale == 1.0  # the caller's schedule is untouched
    rec = train_lenet(PLATEAU, small, 3, lr=slice(0.3), log=None)
    assert_f32(rec.group_lrs[-1], [0.015, 0.015, 0.15])


# -- a real run, one-cycle -------------------------------------------------

def test_fit_one_cycle_learns_and_beta1_follows_cycle(digits):
    rec = fit_one_cycle(digits, 3, 0.01, optimizer="adam", log=None)
    total = len(rec)
    assert total == 3 * 6
    sched = one_cycle(0.01, total)
    assert_f32(rec.lrs, sched.values(np.arange(total)))
    assert_f32(rec.momentums, sched.momentum.values(np.arange(total)))
    # fastai's cycle: 0.95 -> 0.85 (at the peak, update 4.5) -> 0.95
    assert rec.momentums[0] == pytest.approx(0.95, abs=1e-6)
    assert 0.85 < rec.momentums.min() < 0.851
    assert rec.epochs[-1]["test_acc"] > 0.5  # chance is 0.1


def test_fit_one_cycle_drives_sgd_momentum_per_group(small):
    rec = fit_one_cycle(small, 2, slice(0.03), log=None)
    sched = one_cycle(0.03, UPDATES)
    assert_f32(rec.momentums, sched.momentum.values(np.arange(UPDATES)))
    assert_f32(rec.group_lrs, sched.values(np.arange(UPDATES))[:, None]
               * [0.1, 0.1, 1.0])


# -- the learning-rate finder ------------------------------------------------

def test_lr_find_restores_weights_and_suggests(small):
    model = build_lenet(seed=3)
    before = [w.copy() for w in model.get_weights()]
    res = lr_find(small, start_lr=1e-4, end_lr=1.0, num_it=30, model=model)
    after = model.get_weights()
    assert all(np.array_equal(a, b)
               for a, b in zip(before, after, strict=True))
    assert sorted(res.suggestions) == ["minimum", "slide", "steep",
                                       "valley"]
    for s in res.suggestions.values():
        assert np.isfinite(s.lr) and s.lr > 0
    assert res.stop_reason == "num_it" and len(res.lrs) == 30
    assert_f32(res.lrs, us.tools.lr_finder_schedule(1e-4, 1.0, 30).values(
        np.arange(30)))


def test_lr_find_stops_early_on_divergence(small):
    res = lr_find(small, start_lr=1e-2, end_lr=1e6, num_it=100)
    assert res.stop_reason in ("diverged", "non-finite")
    assert len(res.lrs) < 100


# -- bad arguments ------------------------------------------------------------

@pytest.mark.parametrize("kwargs,error,message", [
    ({"optimizer": "rmsprop"}, ValueError, "optimizer"),
    ({"unit": "batch"}, ValueError, "unit"),
    ({"lr": slice(1e-1, 1e-3)}, ValueError, "start <= stop"),
    ({"lr": slice(1e-3, 1e-1, 2)}, ValueError, "step"),
    ({"lr": [0.1, 0.2]}, ValueError, "3 parameter groups"),
    ({"momentum": 0.9, "optimizer": "adam"}, ValueError, "SGD's"),
    ({"momentum": 1.0}, ValueError, "momentum"),
    ({"weight_decay": -1.0}, ValueError, "weight_decay"),
    ({"device": "tpu:7"}, ValueError, "device='tpu:7'"),
    ({"device": 0}, TypeError, "device"),
])
def test_bad_arguments_raise_clearly(small, kwargs, error, message):
    with pytest.raises(error, match=message):
        train_lenet(0.1, small, 1, log=None, **kwargs)


def test_bad_sched_and_unit_combinations():
    with pytest.raises(TypeError, match="sched must be"):
        KerasTrainer(object())
    with pytest.raises(ValueError, match="unit='epoch'"):
        KerasTrainer(lambda epoch: 0.1)
    with pytest.raises(ValueError, match="same rate on every variable"):
        KerasTrainer(lambda epoch: 0.1, unit="epoch", lr=slice(0.1))
    with pytest.raises(ValueError, match="steps_per_epoch"):
        KerasTrainer(WARM_COSINE, unit="epoch")
    with pytest.raises(ValueError, match="mode='min'"):
        KerasTrainer(us.ReduceOnPlateau(0.1, mode="max"))
    with pytest.raises(ValueError, match="model or params"):
        KerasTrainer(0.1, model=build_lenet(), params={})
    with pytest.raises(ValueError, match="unit must be 'step'"):
        fit_one_cycle(load_dataset("digits", limit=10), 1, 0.1,
                      unit="epoch")
    with pytest.raises(TypeError, match="Dataset"):
        train_lenet(0.1, "digits", 1)


# -- the same updates on every Keras backend ---------------------------------

def short_runs(data) -> dict[str, np.ndarray]:
    """A few dozen updates through what the trainer adds to the adapter,
    as ``{'<run>.<what>': array}``: per update the rates of every group,
    the momentum and the loss; the test accuracy of every epoch; the
    weights after the run; and the finder, which must put them back."""
    runs = {
        "discriminative": (WARM_COSINE, 2, {"lr": slice(1e-3, 1e-1),
                                            "weight_decay": 0.01}),
        "adam_one_cycle": (one_cycle(0.01, UPDATES), 2,
                           {"optimizer": "adam"}),
        "plateau_momentum": (PLATEAU, 3, {"momentum": 0.9}),
    }
    out = {}
    for name, (sched, epochs, options) in runs.items():
        trainer = KerasTrainer(sched, seed=SEEDS[name], **options)
        rec = fit(trainer, data, epochs, log=None)
        out.update({f"{name}.lrs": rec.group_lrs,
                    f"{name}.momentums": rec.momentums,
                    f"{name}.losses": rec.losses,
                    f"{name}.test_acc": [e["test_acc"] for e in rec.epochs]})
        out.update({f"{name}.{k}": v
                    for k, v in get_params(trainer.model).items()})
    res = lr_find(data, start_lr=1e-4, end_lr=1.0, num_it=8,
                  model=trainer.model)
    out.update({"lr_find.lrs": res.lrs, "lr_find.losses": res.losses})
    out.update({f"lr_find.{k}": v
                for k, v in get_params(trainer.model).items()})
    return {k: np.asarray(v) for k, v in out.items()}


_RUNS = textwrap.dedent("""
    import sys
    sys.path[:0] = sys.argv[2:]
    import numpy as np
    import test_train_keras as t
    runs = t.short_runs(t.load_dataset("digits", limit=600))
    runs["tensorflow_imported"] = np.array("tensorflow" in sys.modules)
    np.savez(sys.argv[1], **runs)
""")


@pytest.fixture(scope="module")
def this_backend_runs(small):
    return short_runs(small)


def test_short_runs_follow_the_schedules(this_backend_runs):
    """What :func:`short_runs` checks against on the other backends."""
    runs = this_backend_runs
    k = np.arange(UPDATES)
    assert_f32(runs["discriminative.lrs"],
               WARM_COSINE.values(k)[:, None] * [0.01, 0.1, 1.0])
    sched = one_cycle(0.01, UPDATES)
    assert_f32(runs["adam_one_cycle.lrs"][:, 0], sched.values(k))
    assert_f32(runs["adam_one_cycle.momentums"], sched.momentum.values(k))
    assert_f32(runs["plateau_momentum.lrs"][:, 0],
               [0.3] * (2 * SPE) + [0.15] * SPE)
    assert_f32(runs["plateau_momentum.momentums"], [0.9] * (3 * SPE))
    assert_f32(runs["lr_find.lrs"], us.tools.lr_finder_schedule(
        1e-4, 1.0, 8).values(np.arange(8)))
    for name in ("conv1.weight", "fc3.bias"):   # the finder restored them
        assert np.array_equal(runs[f"lr_find.{name}"],
                              runs[f"plateau_momentum.{name}"])
    assert all(np.isfinite(v).all() for v in runs.values())


@pytest.mark.parametrize("other", [b for b in ("tensorflow", "jax", "torch")
                                   if b != backend()])
def test_other_keras_backends_train_like_this_one(other, this_backend_runs,
                                                  tmp_path):
    path = tmp_path / "runs.npz"
    proc = subprocess.run(
        [sys.executable, "-c", _RUNS, str(path), HERE,
         os.path.dirname(HERE)], capture_output=True, text=True,
        timeout=900, env=dict(os.environ, KERAS_BACKEND=other))
    assert proc.returncode == 0, proc.stderr[-4000:]
    with np.load(path) as got:
        got = dict(got)
    assert not got.pop("tensorflow_imported")
    want = this_backend_runs
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        run, what = key.split(".", 1)
        if what in ("lrs", "momentums"):
            assert_f32(got[key], value, key)
        elif what == "test_acc":
            np.testing.assert_array_equal(got[key], value, err_msg=key)
        elif what == "losses":
            np.testing.assert_allclose(got[key], value, rtol=2e-4,
                                       err_msg=key)
        elif run == "lr_find":   # put back exactly, as here
            assert np.array_equal(got[key],
                                  got[f"plateau_momentum.{what}"]), key
        else:   # the weights' change from the same start
            start = init_lenet_params(SEEDS[run])[what]
            rtol = CHANGE_RTOL.get(other, {}).get(run,
                                                  CHANGE_RTOL["default"])
            change = value - start
            assert np.linalg.norm(got[key] - value) <= \
                rtol * np.linalg.norm(change), key
