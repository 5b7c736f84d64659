"""Tests for the PyTorch LeNet trainer (``unisched.backends.torch.train``).

Every rate checked here is the one the trainer recorded, i.e. read from
the optimizer's param groups before each update (what was really
applied), compared with the schedule's own values or with PyTorch's
schedulers through ``from_native``.  Runs are short (digits, small
batches) to keep the file well under a minute on two shared cores.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import unisched as us  # noqa: E402
from unisched.app.data import load_dataset  # noqa: E402
from unisched.backends import torch as ust  # noqa: E402
from unisched.backends.torch.lenet import (  # noqa: E402
    TorchTrainer,
    build_lenet,
    fit_one_cycle,
    get_params,
    lr_find,
    train_lenet,
)
from unisched.tools import one_cycle  # noqa: E402

L = torch.optim.lr_scheduler
RTOL = 1e-6  # float32 tolerance, as the brief asks
BS = 32      # small batches: 5 updates per epoch on SMALL
SPE = 5


@pytest.fixture(scope="module")
def small():
    """160 training images (5 batches of 32) and 160 test images."""
    return load_dataset("digits", limit=160)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def run(sched, data, epochs=2, **options):
    options.setdefault("batch_size", BS)
    return train_lenet(sched, data, epochs, log=None, progress=False,
                       **options)


def warmup_cosine():
    return us.warmup(us.CosineScheduler(8, base_lr=0.1, final_lr=0.01), 3)


# -- the rates the optimizer applied -------------------------------------

def test_step_unit_records_sched_k_at_every_update(small):
    sched = warmup_cosine()
    rec = run(sched, small)
    assert len(rec) == 2 * SPE
    assert rec.n_groups == 1
    np.testing.assert_array_equal(rec.steps, np.arange(10))
    np.testing.assert_allclose(rec.lrs, sched.values(np.arange(10)),
                               rtol=RTOL, atol=0)
    # literal points: warmup start, warmup end = cosine peak, cosine end
    assert rec.lrs[0] == 0.0
    assert rec.lrs[3] == pytest.approx(0.1, rel=RTOL)
    assert rec.lrs[9] == pytest.approx(
        0.01 + 0.09 * (1 + math.cos(math.pi * 6 / 8)) / 2, rel=RTOL)
    np.testing.assert_array_equal(rec.momentums, np.zeros(10))


def test_epoch_unit_records_sched_of_epoch(small):
    sched = us.CosineScheduler(3, base_lr=0.1, final_lr=0.01)
    rec = run(sched, small, epochs=3, unit="epoch")
    k = np.arange(3 * SPE)
    np.testing.assert_allclose(rec.lrs, sched.values(k // SPE), rtol=RTOL,
                               atol=0)
    expected = [0.1, 0.01 + 0.09 * 0.75, 0.01 + 0.09 * 0.25]
    np.testing.assert_allclose(rec.lrs, np.repeat(expected, SPE),
                               rtol=RTOL)


def test_numbers_and_spec_strings(small):
    rec = run(0.2, small, epochs=1)
    np.testing.assert_array_equal(rec.lrs, np.full(SPE, 0.2))
    spec = "cosine(max_update=5, base_lr=0.1)"
    rec = run(spec, small, epochs=1)
    np.testing.assert_allclose(rec.lrs, us.parse(spec).values(range(5)),
                               rtol=RTOL)


def test_slice_gives_three_geometric_groups(small):
    sched = warmup_cosine()
    rec = run(sched, small, lr=slice(1e-3, 1e-1))
    assert rec.n_groups == 3
    expected = np.outer(sched.values(np.arange(10)), [0.01, 0.1, 1.0])
    np.testing.assert_allclose(rec.group_lrs, expected, rtol=RTOL, atol=0)
    rec = run(0.5, small, epochs=1, lr=slice(0.2))
    np.testing.assert_allclose(rec.group_lrs[0], [0.05, 0.05, 0.5],
                               rtol=RTOL)


def test_groups_are_the_lenet_layer_groups(small):
    """Each layer moves by exactly -rate * gradient with its group's rate
    (plain SGD), so a layer in the wrong group would move 2-5x off."""
    rates = {"conv1": 0.1, "conv2": 0.1, "fc1": 0.2, "fc2": 0.2,
             "fc3": 0.5}
    trainer = TorchTrainer(0.5, lr=[0.1, 0.2, 0.5], seed=3)
    twin = build_lenet(seed=3)
    x, y = small.x_train[:BS], small.y_train[:BS]
    torch.nn.CrossEntropyLoss()(twin(torch.from_numpy(x)),
                                torch.from_numpy(y)).backward()
    assert trainer.hparams() == ([0.1, 0.2, 0.5], 0.0)
    trainer.train_batch(*next(trainer.batches(x, y, BS, shuffle=False)))
    after = dict(trainer.model.named_parameters())
    for name, p in twin.named_parameters():
        assert float(p.grad.abs().max()) > 0
        expected = p.detach() - rates[name.split(".")[0]] * p.grad
        torch.testing.assert_close(after[name].detach(), expected,
                                   rtol=1e-5, atol=1e-7)


# -- native PyTorch schedulers -------------------------------------------

def test_native_multistep_per_update_equals_from_native(small):
    made = []

    def factory(opt):
        made.append(L.MultiStepLR(opt, milestones=[3, 7], gamma=0.5))
        return made[-1]

    rec = run(factory, small)
    np.testing.assert_allclose(
        rec.lrs, ust.from_native(made[0]).values(np.arange(10)), rtol=RTOL,
        atol=0)
    # the chapter's base rate 0.3, halved at updates 3 and 7
    np.testing.assert_allclose(rec.lrs, [0.3] * 3 + [0.15] * 4
                               + [0.075] * 3, rtol=RTOL)


def test_native_multistep_per_epoch_equals_from_native(small):
    made = []

    def factory(opt):
        made.append(L.MultiStepLR(opt, milestones=[1, 2], gamma=0.5))
        return made[-1]

    rec = run(factory, small, epochs=3, unit="epoch", lr=0.2)
    expected = us.epochwise(ust.from_native(made[0]), SPE).values(
        np.arange(3 * SPE))
    np.testing.assert_allclose(rec.lrs, expected, rtol=RTOL, atol=0)
    np.testing.assert_allclose(rec.lrs, np.repeat([0.2, 0.1, 0.05], SPE),
                               rtol=RTOL)


def test_native_with_discriminative_base_rates(small):
    rec = run(lambda opt: L.MultiStepLR(opt, [3], 0.1), small, epochs=1,
              lr=slice(1e-3, 1e-1))
    factor = np.array([1, 1, 1, 0.1, 0.1])
    np.testing.assert_allclose(rec.group_lrs,
                               np.outer(factor, [1e-3, 1e-2, 1e-1]),
                               rtol=RTOL)


def test_native_instance_is_converted_exactly(small):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.4)
    native = L.StepLR(opt, step_size=4, gamma=0.5)
    rec = run(native, small)
    np.testing.assert_allclose(rec.lrs, np.repeat([0.4, 0.2, 0.1], 4)[:10],
                               rtol=RTOL)


def test_plateau_schedules_see_the_epoch_training_loss(small):
    """With threshold 0.9 only the first epoch counts as an improvement,
    so patience 0 cuts the rate after epoch 2, in both flavours."""
    sched = us.ReduceOnPlateau(0.3, patience=0, factor=0.5, threshold=0.9)
    rec = run(sched, small, epochs=3)
    np.testing.assert_allclose(rec.lrs, [0.3] * 10 + [0.15] * 5,
                               rtol=RTOL)
    assert sched.scale == 1.0  # the trainer worked on a copy
    rec = run(lambda opt: L.ReduceLROnPlateau(opt, patience=0, factor=0.5,
                                              threshold=0.9), small,
              epochs=3)
    np.testing.assert_allclose(rec.lrs, [0.3] * 10 + [0.15] * 5,
                               rtol=RTOL)


# -- training for real ------------------------------------------------------

def test_short_real_run_learns_digits(digits):
    lines = []
    sched = us.CosineScheduler(72, base_lr=0.05)
    rec = train_lenet(sched, digits, 3, batch_size=64, momentum=0.9,
                      log=lines.append, progress=False)
    assert len(rec) == 3 * 24
    test_acc = rec.epoch_column("test_acc")
    assert test_acc[-1] > 0.8  # chance is 0.1
    loss = rec.epoch_column("train_loss")
    assert loss[-1] < loss[0] < 2.31
    assert [line.split(":")[0] for line in lines] == \
        ["epoch 1", "epoch 2", "epoch 3"]
    np.testing.assert_array_equal(rec.momentums, np.full(72, 0.9))


def test_same_seed_same_run_other_seed_other_run(small):
    a = run(0.05, small, momentum=0.9, seed=4)
    b = run(0.05, small, momentum=0.9, seed=4)
    np.testing.assert_array_equal(a.losses, b.losses)
    assert a.epochs[-1]["test_acc"] == b.epochs[-1]["test_acc"]
    c = run(0.05, small, momentum=0.9, seed=5)
    assert not np.array_equal(a.losses, c.losses)


def test_max_updates_and_given_params(small):
    """``params`` replaces the seed's weights; the seed still orders the
    batches."""
    from unisched.app.lenet import init_lenet_params
    a = run(0.1, small, params=init_lenet_params(7), max_updates=3)
    b = run(0.1, small, params=get_params(build_lenet(seed=7)),
            max_updates=3)
    c = run(0.1, small, max_updates=3)
    assert len(a) == 3 and len(a.epochs) == 1
    np.testing.assert_array_equal(a.losses, b.losses)
    assert not np.array_equal(a.losses, c.losses)


def test_built_model_is_channels_last_and_same_values(small):
    """The trainer's own network is channels-last (the faster layout for
    convolutions); its weights are the canonical ones, its logits those
    of the NCHW network to float32 noise, and a model passed in keeps
    its layout."""
    t = TorchTrainer(0.1, seed=3)
    conv = t.model.conv2.weight  # conv1 has one input channel: both
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert not conv.is_contiguous()
    plain = build_lenet(seed=3)
    for name, value in get_params(t.model).items():
        assert value.flags.c_contiguous
        np.testing.assert_array_equal(value, get_params(plain)[name])
    x = torch.from_numpy(small.x_test[:32])
    with torch.no_grad():
        np.testing.assert_allclose(t.model(x).numpy(), plain(x).numpy(),
                                   rtol=1e-5, atol=1e-5)
    given = TorchTrainer(0.1, model=plain)
    assert given.model is plain and plain.conv2.weight.is_contiguous()


# -- lr_find ----------------------------------------------------------------

def test_lr_find_restores_model_and_suggests(digits):
    model = build_lenet(seed=1)
    first = next(model.parameters())
    first.grad = torch.full_like(first, 0.25)
    model.eval()
    before = get_params(model)
    res = lr_find(digits, start_lr=1e-5, end_lr=1.0, num_it=40,
                  batch_size=64, model=model)
    after = get_params(model)
    for name in before:
        np.testing.assert_array_equal(after[name], before[name])
    assert next(model.parameters()) is first
    assert torch.equal(first.grad, torch.full_like(first, 0.25))
    assert all(p.grad is None for p in list(model.parameters())[1:])
    assert not model.training
    assert res.stop_reason == "num_it" and len(res.lrs) == 40
    assert res.lrs[0] == 1e-5
    np.testing.assert_allclose(res.lrs, 1e-5 * 1e5 ** (np.arange(40) / 40),
                               rtol=1e-12)
    assert set(res.suggestions) == {"minimum", "steep", "valley", "slide"}
    for s in res.suggestions.values():
        assert math.isfinite(s.lr) and 1e-5 <= s.lr <= 1.0


def test_lr_find_stops_on_divergence(digits):
    res = lr_find(digits, start_lr=1e-3, end_lr=1e6, num_it=100,
                  batch_size=64)
    assert res.stop_reason in ("diverged", "non-finite")
    assert 5 < len(res.lrs) < 100


# -- fit_one_cycle ----------------------------------------------------------

@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_fit_one_cycle_drives_momentum(small, optimizer):
    rec = fit_one_cycle(small, 2, 0.01, batch_size=BS, optimizer=optimizer,
                        log=None, progress=False)
    sched = one_cycle(0.01, 2 * SPE)
    k = np.arange(2 * SPE)
    np.testing.assert_allclose(rec.lrs, sched.values(k), rtol=RTOL)
    np.testing.assert_allclose(rec.momentums, sched.momentum.values(k),
                               rtol=RTOL)
    # fastai: momentum 0.95 at the start, 0.85 at the peak (25%)
    assert rec.momentums[0] == pytest.approx(0.95, rel=RTOL)
    assert rec.momentums.min() == pytest.approx(
        sched.momentum(int(np.argmin(rec.momentums))), rel=RTOL)
    assert rec.momentums.min() < 0.9


def test_fit_one_cycle_discriminative(small):
    rec = fit_one_cycle(small, 1, slice(1e-4, 1e-2), batch_size=BS,
                        log=None, progress=False)
    sched = one_cycle(1e-2, SPE)
    np.testing.assert_allclose(
        rec.group_lrs, np.outer(sched.values(np.arange(SPE)),
                                [0.01, 0.1, 1.0]), rtol=RTOL)


# -- devices and bad input ------------------------------------------------

def test_device_defaults():
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert TorchTrainer(0.1).device.type == want
    model = build_lenet(seed=0)
    assert TorchTrainer(0.1, model=model, device="cpu").model is model
    with pytest.raises(ValueError, match="device"):
        TorchTrainer(0.1, model=model, device="meta")


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(optimizer="rmsprop"), ValueError, "optimizer"),
    (dict(unit="batch"), ValueError, "unit"),
    (dict(lr=slice(1e-1, 1e-3)), ValueError, "start <= stop"),
    (dict(lr=slice(1e-3, 1e-1, 2)), ValueError, "step"),
    (dict(lr=slice(None)), ValueError, "stop"),
    (dict(lr=[0.1, 0.2]), ValueError, "3 parameter groups"),
    (dict(lr=-0.1), ValueError, "lr"),
    (dict(momentum=1.0), ValueError, "momentum"),
    (dict(optimizer="adam", momentum=0.9), ValueError, "beta1"),
    (dict(weight_decay=-1.0), ValueError, "weight_decay"),
    (dict(sched=True), TypeError, "sched"),
    (dict(sched=[0.1]), TypeError, "sched"),
    (dict(sched=lambda opt: 0.1), TypeError, "callable"),
    (dict(sched=lambda epoch: 0.3 * (epoch + 1) ** -0.5), TypeError,
     "must take the optimizer"),
    (dict(sched=L.LambdaLR(torch.optim.SGD(
        [torch.nn.Parameter(torch.zeros(1))], lr=1.0), lambda k: 1.0)),
     ValueError, "LambdaLR: lr_lambda .* is code-defined"),
    (dict(sched=us.ReduceOnPlateau(0.1, mode="max")), ValueError, "mode"),
    (dict(data="digits"), TypeError, "Dataset"),
])
def test_bad_arguments_fail_before_training(small, kwargs, error, match):
    args = dict(sched=0.1, data=small)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        train_lenet(args.pop("sched"), args.pop("data"), 1, log=None,
                    **args)


def test_bad_arguments_of_the_helpers(small):
    with pytest.raises(ValueError, match="model or params"):
        lr_find(small, model=build_lenet(), params=get_params(build_lenet()))
    with pytest.raises(ValueError, match="num_it"):
        lr_find(small, num_it=2)
    with pytest.raises(ValueError, match="unit"):
        fit_one_cycle(small, 1, 0.1, unit="epoch")
    with pytest.raises(ValueError, match="not both"):
        fit_one_cycle(small, 1, slice(0.1), lr=slice(0.1))
    with pytest.raises(ValueError, match="preset"):
        fit_one_cycle(small, 1, 0.1, preset="keras")
    with pytest.raises(TypeError, match="unexpected keyword"):
        fit_one_cycle(small, 1, 0.1, momentun=0.9, log=None)
