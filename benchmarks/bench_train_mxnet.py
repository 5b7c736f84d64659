"""Images per second: the MXNet LeNet trainer next to the chapter's loop.

Side by side in this one run, on the same random images (batch 256), each
doing one epoch = training on ``TRAIN`` images + test accuracy on ``TEST``
images, ``REPEATS`` times (interleaved in rotating order, after a warm-up
epoch that builds the hybridized graphs):

* ours: ``unisched.app.training.fit`` over ``MXNetTrainer`` (hybridized LeNet,
  cosine schedule through the unisched adapter, per-update rate and
  momentum read from the optimizer and recorded, numpy batches from
  ``iterate_batches`` converted per batch);
* chapter, NDArray batches: the d2l chapter's ``train`` loop for MXNet
  (``autograd.record``, ``l.backward()``, ``trainer.step(X.shape[0])``,
  ``Accumulator`` of ``l.sum()`` and ``accuracy``,
  ``evaluate_accuracy_gpu``; no plotting) with MXNet's own
  ``CosineScheduler`` in the Trainer, fed batches already converted to
  NDArrays: no data pipeline at all, the strictest baseline;
* chapter, DataLoader: the same loop fed by ``gluon.data.DataLoader``
  (shuffle, ``num_workers=0``), as the chapter's ``load_data_*`` does
  (without its per-image ``ToTensor`` transform).

Test batches are ``EVAL_BATCH`` images in all three (``Trainer.evaluate``'s
default; the chapter evaluates with its training batch size).

Prints images/s (best and median epoch) and the ratios ours / chapter,
from the best epochs and as the median of the per-repeat ratios (goal:
>= 1, i.e. the trainer adds no per-update cost a plain loop does not
have), then the time per update of what ours does beyond the chapter's
loop body (batch slicing, conversion, reading hyperparameters,
recording) as a share of an update.  Compare the ratios, not the
absolute numbers (2 shared cores: with other work on the machine the
ratio moves by +-10% between runs; the bookkeeping share is the stable
figure).

    python benchmarks/bench_train_mxnet.py
"""
from __future__ import annotations

import time
import warnings

import numpy as np

import unisched as us
from unisched.app.data import Dataset
from unisched.app.training import fit
from unisched.backends.mxnet import lenet as tm
from unisched.backends.mxnet.lenet import build_lenet
from unisched.tools import Recorder

from _timing import interleaved, print_speeds

warnings.simplefilter("ignore", DeprecationWarning)
mx = tm.mx
autograd, gluon = mx.autograd, mx.gluon

BATCH = 256
TRAIN = 4 * BATCH
TEST = BATCH
REPEATS = 15
#: Test batches of Trainer.evaluate's size in all three, so that the
#: comparison is about the training loop.
EVAL_BATCH = 256
HORIZON = 100_000       # updates of the cosine: never reached


class Accumulator:
    """d2l's Accumulator: sums over ``n`` variables."""

    def __init__(self, n: int) -> None:
        self.data = [0.0] * n

    def add(self, *args) -> None:
        self.data = [a + float(b)
                     for a, b in zip(self.data, args, strict=True)]

    def __getitem__(self, idx: int) -> float:
        return self.data[idx]


def accuracy(y_hat, y) -> float:
    """d2l's accuracy: number of correct predictions."""
    cmp = y_hat.argmax(axis=1).astype(y.dtype) == y
    return float(cmp.astype(y.dtype).sum().asscalar())


def evaluate_accuracy_gpu(net, data_iter, device) -> float:
    metric = Accumulator(2)
    for X, y in data_iter:
        X, y = X.as_in_context(device), y.as_in_context(device)
        metric.add(accuracy(net(X), y), y.size)
    return metric[0] / metric[1]


def chapter_epoch(net, train_iter, test_iter, loss, trainer, device):
    """One epoch of the chapter's ``train`` (its loop body, verbatim
    apart from the plotting, on the NDArray API that ``build_lenet``
    uses instead of the chapter's ``npx.set_np()``)."""
    metric = Accumulator(3)
    for i, (X, y) in enumerate(train_iter):  # noqa: B007 (verbatim)
        X, y = X.as_in_context(device), y.as_in_context(device)
        with autograd.record():
            y_hat = net(X)
            l = loss(y_hat, y)  # noqa: E741 (the chapter's name)
        l.backward()
        trainer.step(X.shape[0])
        # The chapter's mx.np arrays take float(); an NDArray asscalar().
        metric.add(l.sum().asscalar(), accuracy(y_hat, y), X.shape[0])
        train_loss = metric[0] / metric[2]
        train_acc = metric[1] / metric[2]
    test_acc = evaluate_accuracy_gpu(net, test_iter, device)
    return train_loss, train_acc, test_acc


def bookkeeping(trainer, data) -> float:
    """Seconds per update of what ``fit`` + ``MXNetTrainer`` do beyond
    the chapter's loop body: slicing a numpy batch, converting it, reading
    the hyperparameters from the optimizer, recording them."""
    rec = Recorder()
    order = np.random.default_rng(1).permutation(len(data.y_train))[:BATCH]
    calls = 2000

    def one(k):
        x, y = data.x_train[order], data.y_train[order]
        trainer._inputs(x, y)
        lrs, momentum = trainer.hparams()
        rec.record_update(k, lrs, momentum, 1.0)

    one(0)
    times = []
    for r in range(3):
        start = time.perf_counter()
        for k in range(calls):
            one(1 + r * calls + k)
        mx.nd.waitall()
        times.append(time.perf_counter() - start)
    return min(times) / calls


def main() -> None:
    rng = np.random.default_rng(0)
    data = Dataset(
        "random",
        rng.random((TRAIN, 1, 28, 28), dtype=np.float32),
        rng.integers(0, 10, TRAIN).astype(np.int64),
        rng.random((TEST, 1, 28, 28), dtype=np.float32),
        rng.integers(0, 10, TEST).astype(np.int64),
        tuple(str(i) for i in range(10)))
    device = tm.default_device()

    # Ours.
    ours_trainer = tm.MXNetTrainer(us.CosineScheduler(HORIZON, 0.1, 0.01),
                                   device=device)

    def run_ours():
        fit(ours_trainer, data, 1, BATCH, log=None, progress=False)

    # The chapter's loop, twice (its own net and Trainer each).
    def chapter_setup():
        net = build_lenet(seed=0, ctx=device)
        net.hybridize()
        sched = mx.lr_scheduler.CosineScheduler(HORIZON, 0.1, 0.01)
        trainer = gluon.Trainer(net.collect_params(), "sgd",
                                {"lr_scheduler": sched})
        return net, trainer, gluon.loss.SoftmaxCrossEntropyLoss()

    def nd_batches(x, y, shuffle, size=BATCH):
        order = rng.permutation(len(y)) if shuffle else np.arange(len(y))
        return [(mx.nd.array(x[order[i:i + size]], ctx=device),
                 mx.nd.array(y[order[i:i + size]], ctx=device,
                             dtype=np.float32))
                for i in range(0, len(y), size)]

    net_a, trainer_a, loss_a = chapter_setup()
    train_nd = nd_batches(data.x_train, data.y_train, True)
    test_nd = nd_batches(data.x_test, data.y_test, False, EVAL_BATCH)

    def run_chapter_nd():
        chapter_epoch(net_a, train_nd, test_nd, loss_a, trainer_a, device)

    net_b, trainer_b, loss_b = chapter_setup()
    labels = (data.y_train.astype(np.float32),
              data.y_test.astype(np.float32))
    train_dl = gluon.data.DataLoader(
        gluon.data.ArrayDataset(data.x_train, labels[0]), BATCH,
        shuffle=True)
    test_dl = gluon.data.DataLoader(
        gluon.data.ArrayDataset(data.x_test, labels[1]), EVAL_BATCH,
        shuffle=False)

    def run_chapter_dl():
        chapter_epoch(net_b, train_dl, test_dl, loss_b, trainer_b, device)

    runs = {"ours (fit + MXNetTrainer)": run_ours,
            "chapter, NDArray batches": run_chapter_nd,
            "chapter, DataLoader": run_chapter_dl}
    times = interleaved(runs, REPEATS, mx.nd.waitall)
    print(f"one epoch = {TRAIN} training + {TEST} test images, batch "
          f"{BATCH}, device {device}, {REPEATS} repeats")
    print_speeds(times, TRAIN)
    ours = times[next(iter(runs))]
    extra = bookkeeping(ours_trainer, data)
    update = ours.min() / (TRAIN / BATCH)
    print(f"ours, per update beyond the chapter's loop body (batch "
          f"slicing, conversion, hparams, record): {extra * 1e6:.0f} us "
          f"= {extra / update:.2%} of an update ({update * 1e3:.0f} ms "
          f"incl. its share of the evaluation)")


if __name__ == "__main__":
    main()
