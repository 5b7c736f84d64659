"""TensorBoard logging, read back with TensorBoard's own reader
(``EventAccumulator``, ``EventMultiplexer``): the rate of every group,
the momentum and the loss per update, the loss and accuracies per epoch,
from ``train_lenet(tensorboard=DIR)``, ``compare`` (one subfolder per
framework), ``unisched train/compare --tensorboard DIR`` and
``Recorder.to_tensorboard``.  TensorBoard stores float32: values are
compared with ``np.float32`` of the expected float64 ones, exactly.
"""
from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.backend.event_processing import event_multiplexer

import unisched as us
from unisched.app.cli import main
from unisched.app.compare import compare
from unisched.app.data import load_dataset
from unisched.tools import Recorder
from unisched.tools.tensorboard import TensorBoardWriter

SCHED = "warmup(cosine(max_update=8, base_lr=0.1, final_lr=0.01), " \
        "warmup_steps=2)"
UPDATE_TAGS = {"lr", "momentum", "loss"}
EPOCH_TAGS = {"epoch/train_loss", "epoch/train_acc", "epoch/test_acc"}


@pytest.fixture(scope="module")
def small():
    return load_dataset("digits", limit=64)   # 4 batches of 16


def read(folder):
    """tag -> (steps, values) from the event files in ``folder``."""
    acc = ea.EventAccumulator(str(folder), size_guidance={ea.SCALARS: 0})
    acc.Reload()
    return {tag: (np.array([e.step for e in acc.Scalars(tag)]),
                  np.array([e.value for e in acc.Scalars(tag)]))
            for tag in acc.Tags()["scalars"]}


def f32(values):
    return np.asarray(values, dtype=np.float32).astype(np.float64)


def assert_epochs(got, rec):
    epochs = rec.epoch_column("epoch")
    for tag in EPOCH_TAGS:
        steps, values = got[tag]
        np.testing.assert_array_equal(steps, epochs)
        np.testing.assert_array_equal(
            values, f32(rec.epoch_column(tag.split("/")[1])))


def test_train_lenet_logs_every_group_momentum_loss_and_epochs(tmp_path,
                                                               small):
    from unisched.backends.torch import train_lenet
    sched = us.OneCycleScheduler(max_lr=0.1, max_update=8)
    rec = train_lenet(sched, small, 2, batch_size=16, lr=slice(0.01, 0.1),
                      log=None, progress=False, tensorboard=tmp_path / "tb")
    got = read(tmp_path / "tb")
    groups = [f"lr/group_{i}" for i in range(3)]
    assert set(got) == {*groups, "momentum", "loss", *EPOCH_TAGS}
    k = np.arange(8)
    factors = us.tools.multipliers(slice(0.01, 0.1), 3)
    assert factors[-1] == 1.0 and factors[0] == pytest.approx(0.1)
    for i, tag in enumerate(groups):
        steps, values = got[tag]
        np.testing.assert_array_equal(steps, k)
        np.testing.assert_array_equal(values,
                                      f32(factors[i] * sched.values(k)))
    assert got["lr/group_2"][1][0] == np.float32(0.1 / 25)  # one-cycle start
    np.testing.assert_array_equal(got["momentum"][1],
                                  f32(sched.momentum.values(k)))
    np.testing.assert_array_equal(got["loss"][0], k)
    np.testing.assert_array_equal(got["loss"][1], f32(rec.losses))
    assert_epochs(got, rec)


def test_compare_writes_one_subfolder_per_framework(tmp_path, small):
    frameworks = ["torch", "keras", "mxnet"]
    for fw in frameworks:   # the backends import them (MXNet's shim)
        pytest.importorskip(f"unisched.backends.{fw}")
    sched = us.parse(SCHED)
    runs = compare(frameworks, sched, small, 1, str(tmp_path / "out"),
                   tensorboard=tmp_path / "tb", batch_size=16, log=None)
    mux = event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(tmp_path / "tb"))
    mux.Reload()
    assert sorted(mux.Runs()) == sorted(frameworks)
    for fw in frameworks:
        got = read(tmp_path / "tb" / fw)
        assert set(got) == UPDATE_TAGS | EPOCH_TAGS
        steps, rates = got["lr"]
        np.testing.assert_array_equal(steps, np.arange(4))
        # the rates each framework applied, logged as float32: sched(k)
        np.testing.assert_allclose(rates, sched.values(np.arange(4)),
                                   rtol=1e-6, atol=0)
        np.testing.assert_array_equal(rates, f32(runs[fw].lrs))
        assert rates[0] == 0.0 and rates[2] == np.float32(0.1)
        assert_epochs(got, runs[fw])


def test_cli_train_and_compare_take_tensorboard(tmp_path, capsys):
    pytest.importorskip("torch")
    common = ["--schedule", SCHED, "--epochs", "1", "--limit", "64",
              "--batch-size", "16", "--tensorboard", str(tmp_path / "tb")]
    assert main(["train", "--framework", "torch", "--out",
                 str(tmp_path / "a"), *common]) == 0
    assert main(["compare", "--frameworks", "torch", "--out",
                 str(tmp_path / "b"), *common]) == 0
    # both wrote into DIR/torch: two event files, the same rates
    files = os.listdir(tmp_path / "tb" / "torch")
    assert len(files) == 2 and all("tfevents" in f for f in files)
    for name in files:
        acc = ea.EventAccumulator(str(tmp_path / "tb" / "torch" / name))
        acc.Reload()
        rates = [e.value for e in acc.Scalars("lr")]
        np.testing.assert_array_equal(
            rates, f32(us.parse(SCHED).values(np.arange(4))))
    capsys.readouterr()


def test_cli_refuses_a_file_as_tensorboard_folder(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(SystemExit) as info:
        main(["train", "--framework", "torch", "--schedule", "0.1",
              "--tensorboard", str(path), "--out", str(tmp_path / "o")])
    assert info.value.code == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_missing_tensorboard_is_a_clear_error(tmp_path, monkeypatch,
                                              capsys):
    monkeypatch.setitem(
        sys.modules, "tensorboard.summary.writer.event_file_writer", None)
    with pytest.raises(ImportError, match="needs the tensorboard package "
                                          r"\(pip install tensorboard"):
        TensorBoardWriter(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(["compare", "--schedule", "0.1", "--tensorboard",
              str(tmp_path / "tb"), "--out", str(tmp_path / "o")])
    assert info.value.code == 2
    assert "needs the tensorboard package" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_recorder_to_tensorboard_and_incremental_writes(tmp_path):
    rec = Recorder()
    rec.record_update(0, lr=[0.01, 0.1], momentum=0.9, loss=2.0)
    rec.record_update(1, lr=[0.02, 0.2], loss=math.nan)  # no momentum
    rec.record_epoch(1, train_loss=1.5, test_acc=0.25)   # no train_acc
    assert rec.to_tensorboard(tmp_path / "all") == str(tmp_path / "all")
    got = read(tmp_path / "all")
    assert set(got) == {"lr/group_0", "lr/group_1", "momentum", "loss",
                        "epoch/train_loss", "epoch/test_acc"}
    np.testing.assert_array_equal(got["lr/group_1"][1], f32([0.1, 0.2]))
    assert got["momentum"][0].tolist() == [0]
    assert got["loss"][1][0] == 2.0 and math.isnan(got["loss"][1][1])
    assert got["epoch/test_acc"][0].tolist() == [1]
    # a writer sends each update once, however often it is called
    board = TensorBoardWriter(tmp_path / "live")
    board.write(rec)
    rec.record_update(2, lr=[0.03, 0.3], loss=1.0)
    board.write(rec)
    board.close(rec)
    board.close()
    assert board.closed and board.updates_written == 3
    assert got_steps(tmp_path / "live", "lr/group_0") == [0, 1, 2]
    with pytest.raises(ValueError, match="closed"):
        board.write(rec)
    with pytest.raises(TypeError, match="logdir must be a folder path"):
        TensorBoardWriter(3)
    with pytest.raises(TypeError, match="recorder must be"):
        TensorBoardWriter(tmp_path / "x").write([1])


def got_steps(folder, tag):
    return read(folder)[tag][0].tolist()


def test_a_failing_run_keeps_what_it_recorded(tmp_path, small):
    from unisched.app.training import fit
    from unisched.backends.torch.lenet import TorchTrainer
    trainer = TorchTrainer(SCHED)
    real, calls = trainer.train_batch, []

    def train_batch(x, y):
        if len(calls) == 6:   # inside the second epoch
            raise RuntimeError("out of memory")
        calls.append(1)
        return real(x, y)

    trainer.train_batch = train_batch
    with pytest.raises(RuntimeError, match="out of memory"):
        fit(trainer, small, 2, 16, log=None, progress=False,
            tensorboard=tmp_path)
    got = read(tmp_path)
    assert got["lr"][0].tolist() == list(range(6))
    assert got["epoch/test_acc"][0].tolist() == [1]


def test_cli_train_with_workers_logs_rank_0s_record(tmp_path, monkeypatch,
                                                    capsys):
    """``--workers``: the workers' run returns rank 0's recorder, which
    is written to DIR/<framework> after the run."""
    from unisched.app import distributed
    rec = Recorder()
    for k in range(4):
        rec.record_update(k, lr=us.parse(SCHED)(k), loss=1.0 / (k + 1))
    rec.record_epoch(1, train_loss=0.5, train_acc=0.5, test_acc=0.25)
    seen = {}

    def fake_train(framework, schedule, data, epochs, workers, **options):
        seen.update(framework=framework, workers=workers, options=options)
        return rec

    monkeypatch.setattr(distributed, "train", fake_train)
    assert main(["train", "--framework", "torch", "--schedule", SCHED,
                 "--workers", "2", "--epochs", "1", "--limit", "64",
                 "--out", str(tmp_path / "o"),
                 "--tensorboard", str(tmp_path / "tb")]) == 0
    assert seen["workers"] == 2 and "tensorboard" not in seen["options"]
    got = read(tmp_path / "tb" / "torch")
    np.testing.assert_array_equal(got["lr"][1], f32(rec.lrs))
    assert_epochs(got, rec)
    capsys.readouterr()
