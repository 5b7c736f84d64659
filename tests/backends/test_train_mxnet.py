"""Tests for the MXNet LeNet trainer (``unisched.backends.mxnet.lenet``).

Rates are checked twice: as recorded (read from the optimizer before each
update) against the schedule, and as really applied, measured from the
weights.  With plain SGD (no momentum, no weight decay) an update moves a
weight by ``-lr_mult * lr * grad / batch_size`` and Gluon leaves the
gradient in ``param.grad()``, so the rate a group got is the least-squares
ratio of the weight change to the mean gradient (float32 weights: a few
1e-5 relative).  Runs use the embedded digits data, small.
"""
from __future__ import annotations

import doctest
import importlib.util
import math

import numpy as np
import pytest

if importlib.util.find_spec("mxnet") is None:
    pytest.skip("mxnet is not installed", allow_module_level=True)

import unisched as us
from unisched.app.data import load_dataset, num_batches
from unisched.app.lenet import LENET_LAYER_GROUPS
from unisched.app.training import fit
from unisched.backends import mxnet as usm
from unisched.backends.mxnet import lenet as tm
from unisched.backends.mxnet.lenet import build_lenet, get_params
from unisched.tools import lr_finder_schedule, one_cycle

mx = usm.mx
F32 = 2.0 ** -23            # float32 relative rounding
BATCH = 32


@pytest.fixture(scope="module")
def small():
    """96 training images: 3 updates per epoch at batch 32."""
    return load_dataset("digits", limit=96)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


class Probe(tm.MXNetTrainer):
    """Measures, per update, the rate each layer group really got."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        params = self.model.collect_params()
        self.probes = [params[f"{self.model.prefix}{group[0]}_weight"]
                       for group in LENET_LAYER_GROUPS]
        self.applied = []

    def train_batch(self, x, y):
        before = [p.data().asnumpy().astype(np.float64) for p in self.probes]
        out = super().train_batch(x, y)
        rates = []
        for p, w in zip(self.probes, before, strict=True):
            step = w - p.data().asnumpy()
            grad = p.grad().asnumpy().astype(np.float64) / len(y)
            rates.append(float(np.sum(step * grad) / np.sum(grad * grad)))
        self.applied.append(rates)
        return out


def probe_run(sched, data, epochs=2, **options):
    spe = num_batches(len(data.y_train), BATCH)
    if options.get("unit") == "epoch":
        options["steps_per_epoch"] = spe
    trainer = Probe(sched, **options)
    rec = fit(trainer, data, epochs, BATCH, log=None)
    return rec, np.array(trainer.applied)


def warmup_cosine():
    return us.warmup(us.CosineScheduler(4, base_lr=0.2, final_lr=0.02), 2,
                     warmup_begin_lr=0.01)


def check_applied(rec, applied, expected):
    """Recorded rates == expected (float32 tolerance); applied rates ==
    recorded (to the precision of the measurement)."""
    expected = np.asarray(expected, dtype=np.float64).reshape(applied.shape)
    np.testing.assert_allclose(rec.group_lrs, expected, rtol=F32, atol=0)
    np.testing.assert_allclose(applied, rec.group_lrs, rtol=1e-3, atol=0)


# -- rates ---------------------------------------------------------------

def test_recorded_and_applied_rates_follow_schedule(small):
    sched = warmup_cosine()
    rec, applied = probe_run(sched, small)
    assert len(rec) == 6 and rec.n_groups == 1
    values = sched.values(np.arange(6))
    # Every update has a different rate, so an off-by-one cannot pass.
    assert np.all(np.abs(np.diff(values)) > 0.01)
    check_applied(rec, applied[:, -1:], values)
    np.testing.assert_array_equal(rec.momentums, np.zeros(6))


def test_train_lenet_records_the_schedule(small):
    sched = warmup_cosine()
    rec = tm.train_lenet(sched, small, 2, batch_size=BATCH, log=None)
    np.testing.assert_allclose(rec.lrs, sched.values(np.arange(6)),
                               rtol=F32, atol=0)
    assert [e["epoch"] for e in rec.epochs] == [1, 2]
    assert all(0 <= e["test_acc"] <= 1 for e in rec.epochs)
    # A spec string and a number go through the same adapter.
    spec = tm.train_lenet("cosine(max_update=5, base_lr=0.2, final_lr=0.02)",
                          small, 1, batch_size=BATCH, log=None)
    # 0.02 + 0.09 * (1 + cos(pi * k / 5))
    np.testing.assert_allclose(spec.lrs, [0.2, 0.1828115, 0.1378115],
                               rtol=1e-6)
    const = tm.train_lenet(0.05, small, 1, batch_size=BATCH, log=None)
    np.testing.assert_array_equal(const.lrs, [0.05] * 3)


def test_unit_epoch(small):
    sched = us.ExponentialScheduler(0.2, factor=0.5, step=1)
    rec, applied = probe_run(sched, small, epochs=3, unit="epoch")
    spe = 3
    expected = sched.values(np.arange(9) // spe)
    np.testing.assert_allclose(expected, [0.2] * 3 + [0.1] * 3 + [0.05] * 3)
    check_applied(rec, applied[:, -1:], expected)
    # train_lenet derives steps_per_epoch from the data and batch size.
    via = tm.train_lenet(sched, small, 3, batch_size=BATCH, unit="epoch",
                         log=None)
    np.testing.assert_array_equal(via.lrs, rec.lrs)


def test_discriminative_rates_per_group(small):
    sched = warmup_cosine()
    rec, applied = probe_run(sched, small, lr=slice(1e-3, 1e-1))
    mults = np.array([0.01, 0.1, 1.0])
    assert rec.n_groups == 3
    check_applied(rec, applied,
                  np.outer(sched.values(np.arange(6)), mults))
    # fastai's slice(hi): hi / 10 for every group but the head.
    head = tm.train_lenet(0.1, small, 1, batch_size=BATCH, log=None,
                          lr=slice(0.1))
    np.testing.assert_allclose(head.group_lrs, [[0.01, 0.01, 0.1]] * 3,
                               rtol=1e-15)


def test_native_scheduler_uses_mxnet_indexing(small):
    native = mx.lr_scheduler.MultiFactorScheduler([2, 4], factor=0.5,
                                                  base_lr=0.2)
    expected = usm.from_native(native).values(np.arange(6))
    # MXNet decays when num_update > 2, i.e. from update index 2 on.
    np.testing.assert_allclose(expected, [0.2, 0.2, 0.1, 0.1, 0.05, 0.05])
    rec, applied = probe_run(native, small, lr=[0.5, 1.0, 1.0])
    check_applied(rec, applied,
                  np.outer(expected, [0.5, 1.0, 1.0]))
    # The Trainer got a copy: the caller's scheduler is still fresh.
    assert (native.cur_step_ind, native.base_lr) == (0, 0.2)
    via = tm.train_lenet(native, small, 2, batch_size=BATCH, log=None)
    np.testing.assert_allclose(via.lrs, expected, rtol=F32)


def test_native_scheduler_rate_survives_adam(small):
    # MXNet's Adam passes learning_rate=0.001 by default, which would
    # overwrite the scheduler's base_lr; the trainer keeps the scheduler's.
    native = mx.lr_scheduler.FactorScheduler(step=2, factor=0.5,
                                             base_lr=0.01)
    expected = usm.from_native(native).values(np.arange(6))
    rec = tm.train_lenet(native, small, 2, batch_size=BATCH,
                         optimizer="adam", log=None)
    np.testing.assert_allclose(rec.lrs, expected, rtol=F32)
    np.testing.assert_allclose(rec.lrs, [0.01, 0.01, 0.005, 0.005,
                                         0.0025, 0.0025], rtol=1e-12)
    np.testing.assert_array_equal(rec.momentums, [0.9] * 6)   # beta1


def test_reduce_on_plateau_observes_epoch_loss(small):
    # An absolute threshold of 100 makes only the first epoch an
    # improvement: with patience 0 every later epoch halves the rate.
    plateau = us.ReduceOnPlateau(0.1, factor=0.5, patience=0,
                                 threshold=100.0, threshold_mode="abs")
    rec, applied = probe_run(plateau, small, epochs=4)
    expected = [0.1] * 6 + [0.05] * 3 + [0.025] * 3
    check_applied(rec, applied[:, -1:], expected)
    assert plateau.scale == 1.0          # the trainer observed a copy
    # Per epoch: the observation is of epochs, the rate of the epoch.
    rec = tm.train_lenet(plateau, small, 3, batch_size=BATCH, unit="epoch",
                         log=None)
    np.testing.assert_allclose(rec.lrs, [0.1] * 6 + [0.05] * 3)


def test_trainer_structure():
    t = tm.MXNetTrainer(0.1, optimizer="sgd", momentum=0.9,
                        weight_decay=1e-4)
    assert isinstance(t.optimizer, mx.gluon.Trainer)
    assert type(t.optimizer.optimizer) is mx.optimizer.SGD
    assert (t.optimizer.optimizer.momentum,
            t.optimizer.optimizer.wd) == (0.9, 1e-4)
    assert t.model._active          # hybridized, as in the chapter
    assert isinstance(t.loss_fn, mx.gluon.loss.SoftmaxCrossEntropyLoss)
    assert usm.attached(t.optimizer) is t.adapter
    gpu = mx.context.num_gpus() > 0
    assert t.device == (mx.gpu() if gpu else mx.cpu())
    assert type(tm.MXNetTrainer(0.1, optimizer="adam").optimizer.optimizer) \
        is mx.optimizer.Adam
    assert type(tm.MXNetTrainer(0.1,
                                optimizer="adamw").optimizer.optimizer) \
        is tm.AdamW
    assert t.hparams() == ([0.1], 0.9)


# -- training ----------------------------------------------------------------

def test_real_run_learns(digits):
    spe = num_batches(len(digits.y_train), 64)
    sched = us.warmup(us.CosineScheduler(3 * spe - 5, 0.1, 0.001), 5)
    rec = tm.train_lenet(sched, digits, 3, batch_size=64, momentum=0.9,
                         log=None, progress=False)
    acc = rec.epoch_column("test_acc")
    assert acc[-1] > 0.6, acc            # chance is 0.1; ~0.9 measured
    loss = rec.epoch_column("train_loss")
    assert loss[-1] < 0.7 * loss[0], loss


def test_same_seed_same_run(small):
    def run(seed):
        return tm.train_lenet(warmup_cosine(), small, 2, batch_size=BATCH,
                              momentum=0.5, seed=seed, log=None)
    a, b, c = run(0), run(0), run(1)
    np.testing.assert_array_equal(a.losses, b.losses)
    assert a.epochs[-1]["test_acc"] == b.epochs[-1]["test_acc"]
    assert not np.array_equal(a.losses, c.losses)


def test_params_set_initial_weights(small):
    from unisched.app.lenet import init_lenet_params
    a = tm.train_lenet(0.1, small, 1, batch_size=BATCH, log=None, seed=3,
                       params=init_lenet_params(5))
    b = tm.train_lenet(0.1, small, 1, batch_size=BATCH, log=None, seed=3,
                       params=init_lenet_params(5))
    c = tm.train_lenet(0.1, small, 1, batch_size=BATCH, log=None, seed=3)
    np.testing.assert_array_equal(a.losses, b.losses)
    assert a.losses[0] != c.losses[0]


# -- lr_find ----------------------------------------------------------------

def test_lr_find_restores_model(small):
    model = build_lenet(seed=2)
    for p in model.collect_params().values():
        if "fc3" in p.name:
            p.lr_mult = 0.5
    before = get_params(model)
    rng = np.random.default_rng(0)
    for p in model.collect_params().values():
        p.grad()[:] = rng.normal(size=p.shape)
    grads = {p.name: p.grad().asnumpy()
             for p in model.collect_params().values()}
    res = tm.lr_find(small, start_lr=1e-4, end_lr=1.0, num_it=30,
                     batch_size=BATCH, model=model)
    after = get_params(model)
    for name in before:
        np.testing.assert_array_equal(after[name], before[name])
    for p in model.collect_params().values():
        np.testing.assert_array_equal(p.grad().asnumpy(), grads[p.name])
    mults = {p.name: p.lr_mult for p in model.collect_params().values()}
    assert mults["lenet_fc3_weight"] == 0.5
    assert mults["lenet_conv1_weight"] == 1.0
    assert not model._active
    assert res.stop_reason == "num_it" and len(res.lrs) == 30
    np.testing.assert_allclose(
        res.lrs, lr_finder_schedule(1e-4, 1.0, 30).values(np.arange(30)))
    assert set(res.suggestions) == {"minimum", "steep", "valley", "slide"}
    for s in res.suggestions.values():
        assert all(math.isfinite(v) for v in s), s
        assert 1e-4 <= s.lr <= 1.0


def test_lr_find_stops_on_divergence(small):
    res = tm.lr_find(small, start_lr=1e-3, end_lr=1e6, num_it=100,
                     batch_size=BATCH)
    assert res.stop_reason in ("diverged", "non-finite")
    assert len(res.lrs) < 100


# -- one cycle ---------------------------------------------------------------

@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_fit_one_cycle_drives_momentum(small, optimizer):
    rec = tm.fit_one_cycle(small, 2, 0.05, batch_size=BATCH,
                           optimizer=optimizer, log=None)
    sched = one_cycle(0.05, 6)
    steps = np.arange(6)
    np.testing.assert_allclose(rec.lrs, sched.values(steps), rtol=F32)
    np.testing.assert_allclose(rec.momentums,
                               sched.momentum.values(steps), rtol=F32)
    assert rec.momentums[0] == 0.95 and rec.momentums.min() < 0.9


def test_fit_one_cycle_slice_is_per_group(small):
    rec = tm.fit_one_cycle(small, 1, slice(1e-3, 1e-2), batch_size=BATCH,
                           log=None)
    sched = one_cycle(1e-2, 3)
    np.testing.assert_allclose(
        rec.group_lrs,
        np.outer(sched.values(np.arange(3)), [0.1, 10 ** -0.5, 1.0]),
        rtol=1e-12)


# -- AdamW -------------------------------------------------------------------

def _adam_steps(opt_name, grads, rates, wd, w0):
    """Weights after each of ``len(grads)`` updates of one parameter;
    update ``k`` has rate ``rates[k]``."""
    p = mx.gluon.Parameter("w", shape=w0.shape, dtype="float64",
                           init=mx.init.Constant(0))
    p.initialize(ctx=mx.cpu())
    p.set_data(mx.nd.array(w0, dtype="float64"))
    opt = tm.AdamW(wd=wd) if opt_name == "adamw" \
        else mx.optimizer.Adam(wd=wd)
    trainer = mx.gluon.Trainer([p], opt)
    usm.bind(us.PiecewiseConstantScheduler(list(range(len(rates) - 1)),
                                           rates), trainer)
    out = []
    for g in grads:
        p.grad()[:] = g
        p.data()._fresh_grad = True
        trainer.step(1)
        out.append(p.data().asnumpy().copy())
    return np.array(out)


def test_adamw_is_decoupled_adam():
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=5)
    grads = rng.normal(size=(3, 5))
    rates, wd = [0.1, 0.05, 0.02], 0.3
    got = _adam_steps("adamw", grads, rates, wd, w0)
    # Reference, float64: decay on the old weight, outside m and v.
    w, m, v, want = w0.copy(), np.zeros(5), np.zeros(5), []
    for t, (g, lr) in enumerate(zip(grads, rates, strict=True), start=1):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        c = math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        w = w - lr * (c * m / (np.sqrt(v) + 1e-8) + wd * w)
        want.append(w.copy())
    # MXNet hands betas, epsilon and rates to its kernels as float32: its
    # own Adam is as far (~1e-6) from the float64 formula.
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    # Coupled L2 (MXNet's Adam) differs; without decay they agree.
    coupled = _adam_steps("adam", grads, rates, wd, w0)
    assert np.max(np.abs(coupled - got)) > 1e-3
    np.testing.assert_allclose(_adam_steps("adamw", grads, rates, 0.0, w0),
                               _adam_steps("adam", grads, rates, 0.0, w0),
                               rtol=0, atol=1e-7)


def test_adamw_trains_and_reads_beta1(small):
    rec = tm.fit_one_cycle(small, 1, 0.003, batch_size=BATCH,
                           optimizer="adamw", weight_decay=0.01, log=None)
    np.testing.assert_allclose(rec.momentums,
                               one_cycle(0.003, 3).momentum.values(
                                   np.arange(3)), rtol=F32)
    assert np.all(np.isfinite(rec.losses))


# -- bad arguments ----------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, word", [
    ({"optimizer": "rmsprop"}, ValueError, "optimizer"),
    ({"optimizer": None}, ValueError, "optimizer"),
    ({"unit": "batch"}, ValueError, "unit"),
    ({"lr": slice(1e-1, 1e-3)}, ValueError, "start <= stop"),
    ({"lr": slice(1e-3, 1e-1, 2)}, ValueError, "step"),
    ({"lr": slice(0, 1e-1)}, ValueError, "lr.start"),
    ({"lr": [0.1, 0.2]}, ValueError, "3 parameter groups"),
    ({"lr": "0.1"}, TypeError, "lr"),
    ({"momentum": 1.0}, ValueError, "momentum"),
    ({"momentum": 0.9, "optimizer": "adam"}, ValueError, "momentum"),
    ({"weight_decay": -1.0}, ValueError, "weight_decay"),
    ({"device": "tpu"}, ValueError, "device"),
    ({"device": 3}, TypeError, "device"),
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"num_epochs": 0}, ValueError, "num_epochs"),
])
def test_bad_arguments(small, kwargs, error, word):
    kwargs.setdefault("num_epochs", 1)
    with pytest.raises(error, match=word):
        tm.train_lenet(0.1, small, log=None, **kwargs)


@pytest.mark.parametrize("sched, error, word", [
    (lambda n: 0.1, TypeError, "sched"),
    (True, TypeError, "sched"),
    (None, TypeError, "sched"),
    ("cosine(max_update=-1)", ValueError, "max_update"),
    (-0.1, ValueError, "sched"),
    (us.ReduceOnPlateau(0.1, mode="max"), ValueError, "mode='min'"),
])
def test_bad_schedule(small, sched, error, word):
    with pytest.raises(error, match=word):
        tm.train_lenet(sched, small, 1, log=None)


def test_bad_combinations(small):
    native = mx.lr_scheduler.FactorScheduler(step=2, base_lr=0.1)
    with pytest.raises(ValueError, match="unit must be 'step'"):
        tm.train_lenet(native, small, 1, unit="epoch", log=None)
    with pytest.raises(TypeError, match="adapter"):
        tm.train_lenet(usm.LRScheduler(us.ConstantScheduler(0.1)), small, 1,
                       log=None)
    with pytest.raises(TypeError, match="Dataset"):
        tm.train_lenet(0.1, (small.x_train, small.y_train), 1, log=None)
    with pytest.raises(ValueError, match="unit must be 'step'"):
        tm.fit_one_cycle(small, 1, 0.1, unit="epoch", log=None)
    with pytest.raises(ValueError, match="not both"):
        tm.fit_one_cycle(small, 1, slice(0.1), lr=slice(0.1), log=None)
    with pytest.raises(ValueError, match="not both"):
        tm.lr_find(small, model=build_lenet(), params={})
    with pytest.raises(ValueError, match="steps_per_epoch"):
        tm.MXNetTrainer(0.1, unit="epoch")
    with pytest.raises(ValueError, match="model's weights"):
        tm.MXNetTrainer(0.1, model=build_lenet(), device="cpu(1)")
    if mx.context.num_gpus() == 0:
        with pytest.raises(ValueError, match="not available"):
            tm.MXNetTrainer(0.1, device="gpu")


def test_doctests():
    result = doctest.testmod(tm)
    assert result.attempted > 0 and result.failed == 0
