"""The trainer written once (``unisched.app.training``), checked against
every framework's backend: the same public functions with the same
signatures, the same attributes, the documented example, and the
finder's restore in a ``finally`` (a sweep that raises at update 5 leaves
the weights, the optimizer state and the position exactly as before).

Per-framework behaviour (native schedulers, applied rates measured from
the weights, devices) is in ``tests/backends/test_train_<fw>.py``.
"""
from __future__ import annotations

import doctest
import importlib
import importlib.util
import inspect
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from unisched.app import training
from unisched.app.data import load_dataset
from unisched.tools import LRFinderState

FRAMEWORKS = [fw for fw, module in (("torch", "torch"),
                                    ("keras", "keras"),
                                    ("mxnet", "mxnet"),
                                    ("jax", "flax"))
              if importlib.util.find_spec(module) is not None]
BATCH = 32
PUBLIC = ("train_lenet", "lr_find", "fit_one_cycle")


@pytest.fixture(scope="module")
def small():
    return load_dataset("digits", limit=160)


@pytest.fixture(params=FRAMEWORKS, scope="module")
def lenet(request):
    """The backend's ``lenet`` module (model, trainer, functions)."""
    return importlib.import_module(f"unisched.backends.{request.param}."
                                   f"lenet")


def trainer_class(lenet):
    return next(v for v in vars(lenet).values() if isinstance(v, type)
                and issubclass(v, training.Trainer)
                and v is not training.Trainer)


def test_public_functions_are_the_shared_ones(lenet):
    package = importlib.import_module(lenet.__name__.rsplit(".", 1)[0])
    for name in PUBLIC:
        fn = getattr(package, name)
        assert fn is getattr(lenet, name)
        reference = getattr(importlib.import_module(
            f"unisched.backends.{FRAMEWORKS[0]}"), name)
        assert inspect.signature(fn) == inspect.signature(reference), name
        # the code is the one in unisched.app.training, not a copy
        assert fn.__code__ is reference.__code__, name
        assert fn.__doc__ and fn.__module__ == lenet.__name__


def test_same_attributes_in_every_framework(lenet):
    cls = trainer_class(lenet)
    t = cls("cosine(max_update=10, base_lr=0.3)", lr=slice(0.03, 0.3))
    assert t.framework == lenet.__name__.split(".")[2]
    assert t.adapter is not None and t.native is None
    assert t.adapter.schedule == t.schedule
    assert t.multipliers == pytest.approx((0.1, 0.1 ** 0.5, 1.0))
    assert t.model is not None and t.optimizer is not None
    assert t.device is not None
    lrs, momentum = t.hparams()
    np.testing.assert_allclose(lrs, [0.03, 0.3 * 0.1 ** 0.5, 0.3],
                               rtol=1e-6)
    assert momentum == 0.0


def test_train_lenet_example_runs(lenet):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in doctest.DocTestFinder().find(lenet.train_lenet,
                                             "train_lenet", globs={}):
        runner.run(test)
    assert tuple(runner.summarize(verbose=False)) == (0, 4)


def test_plateau_observes_the_epoch_loss(lenet, small):
    import unisched as us
    sched = us.ReduceOnPlateau(0.3, patience=0, factor=0.5, threshold=0.9)
    rec = lenet.train_lenet(sched, small, 3, batch_size=BATCH, log=None,
                            progress=False)
    np.testing.assert_allclose(rec.lrs, [0.3] * 10 + [0.15] * 5,
                               rtol=1e-6)
    assert sched.scale == 1.0  # the caller's schedule is untouched


# -- the finder restores, in a finally -------------------------------------

def _fail_at_update_5(monkeypatch, lenet):
    """Make update 5 raise; returns the list of the weights each call
    found (the fifth: those the sweep had made when it failed)."""
    cls = trainer_class(lenet)
    original = cls.train_batch
    calls = []

    def train_batch(self, x, y):
        calls.append(lenet.get_params(self.model))
        if len(calls) == 5:
            raise RuntimeError("update 5 failed")
        return original(self, x, y)

    monkeypatch.setattr(cls, "train_batch", train_batch)
    return calls


def test_interrupted_lr_find_restores_the_model(lenet, small,
                                                monkeypatch):
    model = lenet.build_lenet(seed=1)
    before = lenet.get_params(model)
    calls = _fail_at_update_5(monkeypatch, lenet)
    with pytest.raises(RuntimeError, match="update 5"):
        lenet.lr_find(small, start_lr=1e-2, end_lr=1.0, num_it=20,
                      batch_size=BATCH, momentum=0.9, model=model)
    assert len(calls) == 5
    # the sweep had moved the weights when it failed ...
    assert np.abs(calls[-1]["fc3.weight"] - before["fc3.weight"]).max() \
        > 1e-4
    # ... and they are back, bit for bit
    after = lenet.get_params(model)
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value, err_msg=name)


def test_interrupted_sweep_restores_optimizer_state_and_position(
        lenet, small, monkeypatch):
    """After the failed sweep the trainer's next update is exactly a
    fresh twin's first one (SGD momentum 0.9: a momentum buffer or a
    position left behind would change it)."""
    cls = trainer_class(lenet)
    state = LRFinderState(1e-2, 1.0, 20)
    trainer = cls(state.schedule, momentum=0.9, seed=1)
    twin = cls(state.schedule, momentum=0.9, seed=1)
    _fail_at_update_5(monkeypatch, lenet)
    with pytest.raises(RuntimeError, match="update 5"):
        training.find_lr(trainer, small, state, BATCH)
    monkeypatch.undo()
    assert trainer.hparams() == twin.hparams()
    xb, yb = next(trainer.batches(small.x_train, small.y_train, BATCH,
                                  seed=3))
    for _ in range(2):
        assert trainer.train_batch(xb, yb) == twin.train_batch(xb, yb)
        assert trainer.hparams() == twin.hparams()
    mine, theirs = (lenet.get_params(trainer.model),
                    lenet.get_params(twin.model))
    for name, value in theirs.items():
        np.testing.assert_array_equal(mine[name], value, err_msg=name)


def test_bad_trainer_arguments_are_the_same_everywhere(lenet, small):
    with pytest.raises(ValueError, match="SGD's"):
        lenet.train_lenet(0.1, small, 1, optimizer="adam", momentum=0.9)
    with pytest.raises(ValueError, match="model or params"):
        trainer_class(lenet)(0.1, model=lenet.build_lenet(), params={})
    with pytest.raises(ValueError, match="steps_per_epoch"):
        trainer_class(lenet)(0.1, unit="epoch")
    with pytest.raises(TypeError, match="Dataset"):
        lenet.train_lenet(0.1, "digits", 1)
    with pytest.raises(ValueError, match="unit must be 'step'"):
        lenet.fit_one_cycle(small, 1, 0.1, unit="epoch")
