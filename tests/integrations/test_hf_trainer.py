"""The PyTorch adapter inside the Hugging Face ``Trainer``
(``Trainer(optimizers=(opt, adapter))``): update k applies ``sched(k)``,
with gradient accumulation and ``resume_from_checkpoint``.

The model is a local ``torch.nn.Module`` returning its loss (no
download, ``HF_HUB_OFFLINE=1``): ``loss = sum(w * x)``, so the gradient
is known and plain SGD turns each update into a weight probe,
``lr = (w_before - w_after) / grad``, next to the rate read back from the
optimizer before each update.
"""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import unisched as us  # noqa: E402
from unisched.backends import torch as ust  # noqa: E402

SPEC = ("warmup(cosine(max_update=12, base_lr=0.5, final_lr=0.01), "
        "warmup_steps=3)")
N, BATCH, ACCUMULATE, EPOCHS = 12, 2, 2, 3
UPDATES_PER_EPOCH = N // (BATCH * ACCUMULATE)   # 3
UPDATES = EPOCHS * UPDATES_PER_EPOCH            # 9


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


class Linear(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))

    def forward(self, x):
        return {"loss": (self.w * x).sum()}


class Rows(torch.utils.data.Dataset):
    def __init__(self) -> None:
        gen = torch.Generator().manual_seed(0)
        self.x = torch.rand(N, 3, generator=gen, dtype=torch.float64) + 0.5

    def __len__(self) -> int:
        return N

    def __getitem__(self, i):
        return {"x": self.x[i]}


class Probe(transformers.TrainerCallback):
    """Per update: the adapter's position, the rate in the param group,
    and the rate the weights moved by."""

    def __init__(self) -> None:
        self.positions, self.lrs, self.moved = [], [], []

    def on_pre_optimizer_step(self, args, state, control, **kw):
        self._w = kw["model"].w.detach().clone()
        self._g = kw["model"].w.grad.detach().clone()
        self.positions.append(kw["lr_scheduler"].updates_done)
        self.lrs.append(kw["optimizer"].param_groups[0]["lr"])

    def on_optimizer_step(self, args, state, control, **kw):
        step = (self._w - kw["model"].w.detach()) / self._g
        self.moved.append(step.mean().item())


def train(out, resume=None, save_steps=None):
    model = Linear()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    adapter = ust.bind(SPEC, opt)
    probe = Probe()
    args = transformers.TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=BATCH,
        gradient_accumulation_steps=ACCUMULATE, num_train_epochs=EPOCHS,
        max_grad_norm=0.0, use_cpu=True, report_to=[], disable_tqdm=True,
        save_strategy="steps" if save_steps else "no",
        save_steps=save_steps or 500, logging_steps=1000, seed=0)
    trainer = transformers.Trainer(model=model, args=args,
                                   train_dataset=Rows(),
                                   optimizers=(opt, adapter),
                                   callbacks=[probe])
    trainer.train(resume_from_checkpoint=resume)
    assert trainer.lr_scheduler is adapter
    return probe, adapter


def expected(first=0):
    return us.parse(SPEC).values(np.arange(first, UPDATES))


def test_update_k_applies_sched_k_with_gradient_accumulation(tmp_path):
    probe, adapter = train(tmp_path)
    # 12 rows, batches of 2, 2 batches per update: 3 updates an epoch
    assert probe.positions == list(range(UPDATES))
    assert adapter.updates_done == UPDATES
    np.testing.assert_array_equal(probe.lrs, expected())
    np.testing.assert_allclose(probe.moved, expected(), rtol=1e-12,
                               atol=1e-15)
    # literal points: the warmup's start and end, the cosine after it
    assert probe.lrs[:4] == [0.0, 0.5 / 3, 1 / 3, 0.5]
    assert probe.lrs[8] == pytest.approx(
        0.01 + 0.49 * (1 + np.cos(np.pi * 5 / 12)) / 2, rel=1e-15)


@pytest.mark.parametrize("checkpoint", [3, 4])  # an epoch's end; its middle
def test_resume_from_checkpoint_continues_exactly(tmp_path, checkpoint):
    full, _ = train(tmp_path, save_steps=checkpoint)
    path = tmp_path / f"checkpoint-{checkpoint}"
    assert (path / "scheduler.pt").is_file()
    state = torch.load(path / "scheduler.pt", weights_only=True)
    assert state["updates_done"] == checkpoint
    resumed, adapter = train(tmp_path / "again", resume=str(path))
    assert resumed.positions == list(range(checkpoint, UPDATES))
    np.testing.assert_array_equal(resumed.lrs, full.lrs[checkpoint:])
    np.testing.assert_array_equal(resumed.lrs, expected(checkpoint))
    np.testing.assert_allclose(resumed.moved, expected(checkpoint),
                               rtol=1e-12, atol=1e-15)
    assert adapter.updates_done == UPDATES
