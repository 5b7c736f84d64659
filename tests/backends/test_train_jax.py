"""The JAX (Flax) LeNet trainer: what is specific to it.

The shared behaviour (public functions, attributes, plateau, lr_find
restoring, argument errors) is in ``tests/app/test_training.py`` and the
cross-framework parity in ``tests/app/test_cross_framework.py``; here:
the rate each update really applied, read back from the weights (SGD
without momentum: ``w' = w - lr * g``, with ``g`` the gradient at the
same weights and batch), per layer group; optax's own schedules; PyTorch's
meaning of Adam / AdamW weight decay; the refusals."""
from __future__ import annotations

from itertools import islice

import jax
import numpy as np
import optax
import pytest

import unisched as us
from unisched.app.data import load_dataset
from unisched.backends.jax import lenet as jl
from unisched.backends.torch import lenet as tl

BATCH = 32
SCHED = us.warmup(us.CosineScheduler(max_update=12, base_lr=0.2,
                                     final_lr=0.02), warmup_steps=3)


@pytest.fixture(scope="module")
def small():
    return load_dataset("digits", limit=4 * BATCH)


def applied_rates(trainer, data, updates):
    """Per update and layer group, ``-(w' - w) / g`` on the largest
    gradient entry of the group's kernels: the rate the update applied."""
    grad = jax.jit(jax.grad(lambda p, x, y: jl._loss(
        p, trainer.model.module.apply, x, y)[0]))
    out = []
    batches = trainer.batches(data.x_train, data.y_train, BATCH, seed=0)
    for x, y in islice(batches, updates):
        before = jax.device_get(trainer.model.params)
        g = jax.device_get(grad(trainer.model.params, x, y))
        trainer.train_batch(x, y)
        after = jax.device_get(trainer.model.params)
        rates = []
        for layers in jl.LENET_LAYER_GROUPS:
            name = layers[-1]
            gk = g[name]["kernel"]
            i = np.unravel_index(np.abs(gk).argmax(), gk.shape)
            step = after[name]["kernel"][i] - before[name]["kernel"][i]
            rates.append(-float(step) / float(gk[i]))
        out.append(rates)
    return np.array(out)


def test_every_update_applies_sched_k_in_every_group(small):
    t = jl.JaxTrainer(SCHED, lr=slice(0.02, 0.2))
    m = np.array(t.multipliers)
    expected = SCHED.values(np.arange(4))[:, None] * m
    # the rates read before each update are the ones it then applies
    read = [t.hparams()[0]]
    got = applied_rates(t, small, 4)
    np.testing.assert_allclose(read[0], expected[0], rtol=1e-6)
    # float32 weights: the step is rounded to the weight's spacing
    np.testing.assert_allclose(got, expected, rtol=2e-3, atol=1e-9)
    assert t.adapter.updates_done == 4


def test_optax_schedule_is_given_to_inject_hyperparams(small):
    native = optax.cosine_decay_schedule(0.5, decay_steps=8, alpha=0.1)
    rec = jl.train_lenet(native, small, 2, BATCH, log=None,
                         progress=False)
    cosine = us.CosineScheduler(max_update=8, base_lr=0.5, final_lr=0.05)
    np.testing.assert_allclose(rec.lrs, cosine.values(rec.steps),
                               rtol=1e-6)  # optax counts from 0 too
    assert rec.steps.tolist() == list(range(8))


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_adam_and_adamw_mean_what_they_mean_in_pytorch(small, optimizer):
    # Adam: L2 on the gradient; AdamW: decoupled; eps 1e-8 outside the
    # root.  A wrong one moves the losses by >1e-3 within 4 updates.
    args = dict(optimizer=optimizer, weight_decay=0.05, log=None,
                progress=False, max_updates=4)
    sched = "cosine(max_update=4, base_lr=0.01)"
    ours = jl.train_lenet(sched, small, 1, BATCH, **args)
    ref = tl.train_lenet(sched, small, 1, BATCH, **args)
    np.testing.assert_allclose(ours.losses, ref.losses, atol=2e-6)
    np.testing.assert_allclose(ours.momentums, 0.9)


def test_one_cycle_drives_beta1(small):
    rec = jl.fit_one_cycle(small, 1, 0.01, batch_size=BATCH,
                           optimizer="adam", log=None, progress=False)
    cycle = us.tools.one_cycle(0.01, len(rec.steps))
    np.testing.assert_allclose(rec.momentums,
                               cycle.momentum.values(rec.steps), rtol=1e-6)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"sched": 3j}, TypeError, "optax schedule"),
    ({"sched": lambda count: [1.0, 2.0]}, TypeError, "one finite rate"),
    ({"sched": lambda: 0.1}, TypeError, "calling it with 0"),
    ({"sched": optax.constant_schedule(0.1), "unit": "epoch",
      "steps_per_epoch": 4}, ValueError, "unit must be 'step'"),
    ({"sched": 0.1, "model": object()}, TypeError, "FlaxLeNet"),
    ({"sched": 0.1, "device": "tpu9"}, ValueError, "device"),
])
def test_refusals_name_the_argument(kwargs, error, match):
    sched = kwargs.pop("sched")
    with pytest.raises(error, match=match):
        jl.JaxTrainer(sched, **kwargs)


def test_model_trained_in_place_and_device_checked(small):
    net = jl.build_lenet(seed=1)
    t = jl.JaxTrainer(0.1, model=net)
    before = jl.get_params(net)
    t.train_batch(small.x_train[:BATCH], small.y_train[:BATCH])
    after = jl.get_params(net)
    assert not np.array_equal(before["fc3.weight"], after["fc3.weight"])
    assert t.device == net.device
