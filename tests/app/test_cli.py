"""The ``unisched`` command line, called in-process through ``main``."""
from __future__ import annotations

import csv
import importlib.util
import io
import json
import os

import pytest

import unisched as us
from unisched.app.cli import main

HAS_TORCH = importlib.util.find_spec("torch") is not None


def test_values_prints_the_schedule_as_csv(capsys):
    assert main(["values", "cosine(max_update=4, base_lr=1.0)",
                 "--steps", "6"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["step", "lr"]
    assert [int(r[0]) for r in rows[1:]] == [0, 1, 2, 3, 4, 5]
    got = [float(r[1]) for r in rows[1:]]
    assert got == us.CosineScheduler(4, base_lr=1.0).values(range(6)).tolist()
    assert got[2] == 0.5 and got[4:] == [0.0, 0.0]


def test_values_with_momentum_column(capsys):
    assert main(["values", "one_cycle(max_lr=1.0, max_update=10, "
                 "pct_start=0.5)", "--steps", "10", "--momentum"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["step", "lr", "momentum"]
    assert float(rows[5][1]) == 1.0 and float(rows[5][2]) == 0.85
    assert float(rows[1][2]) == 0.95


def test_plot_writes_a_png(tmp_path, capsys):
    out = tmp_path / "curves.png"
    assert main(["plot", "cosine(max_update=20, base_lr=0.5)",
                 "warmup(cosine(max_update=15, base_lr=0.5), "
                 "warmup_steps=5)", "--steps", "30", "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]


@pytest.mark.parametrize("argv, message", [
    (["values", "cosin(max_update=3)", "--steps", "3"],
     "unknown schedule 'cosin'"),
    (["values", "cosine(max_update=0)", "--steps", "3"],
     "max_update must be > 0, got 0"),
    (["values", "cosine(max_update=3, lr=1)", "--steps", "3"],
     "unknown argument(s) lr"),
    (["values", "cosine(3", "--steps", "3"], "expected"),
])
def test_bad_spec_is_a_message_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["values", "constant(0.1)", "--steps", "0"],
    ["values", "constant(0.1)", "--steps", "x"],
    ["train", "--framework", "julia", "--schedule", "constant(0.1)"],
    ["train", "--framework", "torch", "--schedule", "constant(0.1)",
     "--lr", "a:b"],
])
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.skipif(not HAS_TORCH, reason="needs torch")
def test_train_writes_metrics_and_a_figure(tmp_path, capsys):
    assert main(["train", "--framework", "torch", "--schedule",
                 "cosine(max_update=8, base_lr=0.1)", "--epochs", "2",
                 "--batch-size", "64", "--limit", "256", "--out",
                 str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "epoch 2: train loss" in out
    names = sorted(p.name for p in tmp_path.iterdir())
    run = ["torch.json", "torch.png", "torch_epochs.csv",
           "torch_updates.csv"]
    assert names == [".unisched-run.json"] + run
    manifest = json.loads((tmp_path / ".unisched-run.json").read_text())
    assert manifest == {"files": run}
    record = json.loads((tmp_path / "torch.json").read_text())
    lrs = [row[0] for row in record["updates"]["lr"]]
    assert lrs == pytest.approx(
        us.CosineScheduler(8, base_lr=0.1).values(range(8)).tolist(),
        rel=1e-7)


@pytest.mark.skipif(not HAS_TORCH, reason="needs torch")
def test_lr_find_prints_each_suggestion(tmp_path, capsys):
    assert main(["lr-find", "--framework", "torch", "--num-it", "30",
                 "--batch-size", "32", "--limit", "320", "--out",
                 str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in ("minimum", "steep", "valley", "slide"):
        assert f"{name}: " in out
    assert os.path.exists(tmp_path / "lr_find_torch.png")
    saved = json.loads((tmp_path / "lr_find_torch.json").read_text())
    assert len(saved["lrs"]) == 30


def test_keras_backend_cannot_change_after_keras_is_imported(monkeypatch):
    import keras

    from unisched.app.cli import use_keras_backend
    monkeypatch.setenv("KERAS_BACKEND", keras.backend.backend())
    other = "jax" if keras.backend.backend() != "jax" else "torch"
    with pytest.raises(ValueError, match=f"--keras-backend {other}: "
                       f"Keras is already imported with the"):
        use_keras_backend(other)
    use_keras_backend(keras.backend.backend())   # the same one: fine
    use_keras_backend(None)


def test_workers_with_keras_on_another_backend_is_refused(monkeypatch,
                                                         capsys, tmp_path):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    with pytest.raises(SystemExit) as info:
        main(["train", "--framework", "keras", "--schedule", "constant(0.1)",
              "--workers", "2", "--out", str(tmp_path / "out")])
    assert info.value.code == 2
    assert "needs the tensorflow backend, got KERAS_BACKEND='jax'" in \
        capsys.readouterr().err
    assert not (tmp_path / "out").exists()
