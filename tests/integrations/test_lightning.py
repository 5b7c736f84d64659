"""The PyTorch adapter inside a real ``lightning.Trainer`` (CPU): returned
from ``configure_optimizers`` with ``interval='step'``
(``adapter.lightning_schedulers()``), update k applies ``sched(k)``, with
``accumulate_grad_batches``, across ``Trainer.fit(ckpt_path=...)``, and
with a ReduceOnPlateau fed a logged metric (``monitor``).

The module is ``loss = sum(w * x)`` under plain SGD: each update is a
weight probe, ``lr = (w_before - w_after) / grad``, recorded with the
adapter's position and the rate read back from the optimizer.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
L = pytest.importorskip("lightning")

import unisched as us  # noqa: E402
from unisched.backends import torch as ust  # noqa: E402

WARMUP_COSINE = ("warmup(cosine(max_update=12, base_lr=0.5, "
                 "final_lr=0.01), warmup_steps=3)")
ROWS, BATCH, ACCUMULATE = 12, 2, 2
PER_EPOCH = ROWS // (BATCH * ACCUMULATE)  # 3 updates an epoch
#: the logged metric per epoch: a best, better, worse (a cut with patience
#: 0), worse again (a cut), better, worse (a cut)
METRIC = [1.0, 0.9, 0.95, 0.95, 0.8, 0.85]


class Probe(L.LightningModule):
    def __init__(self, make_scheduler) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
        self.make_scheduler = make_scheduler
        self.positions, self.lrs, self.moved = [], [], []

    def training_step(self, batch, batch_idx):
        (x,) = batch
        return (self.w * x).sum()

    def validation_step(self, batch, batch_idx):
        self.log("val_metric", torch.tensor(METRIC[self.current_epoch]))

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.5)
        self.scheduler, configs = self.make_scheduler(opt)
        return [opt], configs

    def optimizer_step(self, epoch, batch_idx, optimizer, closure=None):
        before = self.w.detach().clone()
        self.positions.append(getattr(self.scheduler, "updates_done", None))
        self.lrs.append(optimizer.param_groups[0]["lr"])
        super().optimizer_step(epoch, batch_idx, optimizer, closure)
        moved = (before - self.w.detach()) / self.w.grad.detach()
        self.moved.append(moved.mean().item())


def unisched_scheduler(spec, monitor=None):
    def make(opt):
        adapter = ust.bind(spec, opt)
        return adapter, adapter.lightning_schedulers(monitor=monitor)
    return make


def fit(make_scheduler, epochs, *, ckpt_dir=None, ckpt_path=None,
        every_n_train_steps=None, validate=False):
    torch.manual_seed(0)
    rows = torch.utils.data.TensorDataset(
        torch.rand(ROWS, 3, dtype=torch.float64) + 0.5)
    loader = torch.utils.data.DataLoader(rows, batch_size=BATCH)
    callbacks = []
    if ckpt_dir is not None:
        callbacks.append(L.pytorch.callbacks.ModelCheckpoint(
            dirpath=ckpt_dir, save_top_k=-1, filename="{epoch}-{step}",
            every_n_train_steps=every_n_train_steps,
            every_n_epochs=None if every_n_train_steps else 1))
    trainer = L.Trainer(
        max_epochs=epochs, accelerator="cpu", logger=False,
        enable_checkpointing=ckpt_dir is not None, callbacks=callbacks,
        enable_progress_bar=False, enable_model_summary=False,
        accumulate_grad_batches=ACCUMULATE,
        limit_val_batches=1 if validate else 0)
    module = Probe(make_scheduler)
    trainer.fit(module, loader, loader if validate else None,
                ckpt_path=ckpt_path)
    return module


def replay(spec, epochs, skip_observation=None):
    """The rates a ReduceOnPlateau fed METRIC after each epoch gives."""
    sched = us.parse(spec)
    rates = []
    for epoch in range(epochs):
        rates += [sched(k) for k in range(epoch * PER_EPOCH,
                                          (epoch + 1) * PER_EPOCH)]
        if epoch != skip_observation:
            sched.observe(METRIC[epoch], step=(epoch + 1) * PER_EPOCH)
    return rates


def test_interval_step_applies_sched_k_per_update_with_accumulation():
    module = fit(unisched_scheduler(WARMUP_COSINE), 3)
    # 6 batches an epoch, one update per 2: the adapter steps 9 times
    assert module.positions == list(range(9))
    assert module.scheduler.updates_done == 9
    want = us.parse(WARMUP_COSINE).values(np.arange(9))
    np.testing.assert_array_equal(module.lrs, want)
    np.testing.assert_allclose(module.moved, want, rtol=1e-12, atol=1e-15)
    assert module.lrs[:4] == [0.0, 0.5 / 3, 1 / 3, 0.5]


@pytest.mark.parametrize("every_n_train_steps, name", [
    (None, "epoch=1-step=6.ckpt"),   # the end of epoch 1
    (4, "epoch=1-step=4.ckpt"),      # inside epoch 1
])
def test_fit_from_ckpt_path_continues_exactly(tmp_path, every_n_train_steps,
                                              name):
    full = fit(unisched_scheduler(WARMUP_COSINE), 4, ckpt_dir=tmp_path,
               every_n_train_steps=every_n_train_steps)
    ckpt = tmp_path / name
    saved = torch.load(ckpt, weights_only=True)["lr_schedulers"][0]
    done = saved["updates_done"]
    assert done == int(name.split("step=")[1].split(".")[0])
    resumed = fit(unisched_scheduler(WARMUP_COSINE), 4, ckpt_path=ckpt)
    assert resumed.positions == list(range(done, 12))
    np.testing.assert_array_equal(resumed.lrs, full.lrs[done:])
    np.testing.assert_array_equal(
        resumed.lrs, us.parse(WARMUP_COSINE).values(np.arange(done, 12)))
    np.testing.assert_allclose(resumed.moved, full.moved[done:],
                               rtol=1e-12)


def test_reduce_on_plateau_follows_the_monitored_metric():
    spec = ("reduce_on_plateau(schedule=cosine(max_update=40, base_lr=0.5,"
            " final_lr=0.01), factor=0.5, patience=0)")
    module = fit(unisched_scheduler(spec, monitor="val_metric"), 6,
                 validate=True)
    assert module.positions == list(range(18))
    np.testing.assert_array_equal(module.lrs, replay(spec, 6))
    np.testing.assert_allclose(module.moved, module.lrs, rtol=1e-12)
    assert module.scheduler.schedule.scale == 0.125  # three cuts


def torch_plateau(opt):
    native = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5,
                                                        patience=0)
    return native, [{"scheduler": native, "monitor": "val_metric"}]


@pytest.mark.parametrize("resume", [False, True])
def test_reduce_on_plateau_matches_torchs_under_lightning(tmp_path, resume):
    """The same rates as PyTorch's ReduceLROnPlateau in Lightning, also
    resumed from an epoch's end, where Lightning does not replay that
    epoch's plateau step (its metrics are not in the checkpoint)."""
    spec = "reduce_on_plateau(schedule=0.5, factor=0.5, patience=0)"
    runs = {}
    for name, make in (("unisched", unisched_scheduler(spec, "val_metric")),
                       ("torch", torch_plateau)):
        folder = tmp_path / name
        run = fit(make, 6, ckpt_dir=folder, validate=True)
        if resume:
            run = fit(make, 6, validate=True,
                      ckpt_path=folder / "epoch=2-step=9.ckpt")
        runs[name] = run.lrs
    assert runs["unisched"] == runs["torch"]
    if resume:   # epoch 2's metric (a cut) is never observed
        assert runs["unisched"] == replay(spec, 6, skip_observation=2)[9:]
    else:
        assert runs["unisched"] == replay(spec, 6)
        # each cut applies from the epoch after the metric
        assert runs["unisched"][::3] == [0.5, 0.5, 0.5, 0.25, 0.125,
                                         0.125]


def sgd():
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)


def test_lightning_schedulers_configs_and_bad_input():
    adapter = ust.bind("reduce_on_plateau(schedule=0.1)", sgd())
    assert adapter.lightning_schedulers() == [
        {"scheduler": adapter, "interval": "step"}]
    assert adapter.lightning_schedulers("loss", strict=False)[1] == {
        "scheduler": adapter, "interval": "epoch", "monitor": "loss",
        "reduce_on_plateau": True, "strict": False}
    with pytest.raises(TypeError, match="monitor must be .* got 3"):
        adapter.lightning_schedulers(3)
    with pytest.raises(TypeError, match="strict must be True or False"):
        adapter.lightning_schedulers("loss", strict="yes")
    cosine = ust.bind("cosine(max_update=10, base_lr=0.1)", sgd())
    with pytest.raises(TypeError, match="needs a ReduceOnPlateau"):
        cosine.lightning_schedulers(monitor="loss")
    # step(metric) observes without advancing; an integer jumps
    opt = sgd()
    adapter = ust.bind("reduce_on_plateau(schedule=0.1, patience=0)", opt)
    adapter.step(torch.tensor(1.0))
    adapter.step(2.0)
    assert adapter.updates_done == 0
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01, rel=1e-15)
    adapter.step(5)
    assert adapter.updates_done == 5
    with pytest.raises(TypeError, match="needs a ReduceOnPlateau"):
        cosine.step(0.25)
