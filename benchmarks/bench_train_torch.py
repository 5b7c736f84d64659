"""Training speed of the PyTorch LeNet trainer next to the d2l chapter's
own loop, measured side by side in one process.

Rows (images per second over whole epochs: training plus the per-epoch
test-set evaluation, as both loops do):

* ``unisched train_lenet``: :func:`unisched.backends.torch.train_lenet`
  with a unisched cosine stepped after *every* update (the adapter),
  batches from :func:`unisched.app.data.iterate_batches` (numpy
  shuffling and indexing each epoch), the Recorder writing every update;
* ``chapter loop, DataLoader``: the chapter's ``train`` (``net.train();
  trainer.zero_grad(); l = loss(net(X), y); l.backward();
  trainer.step()``, its ``Accumulator`` / ``accuracy`` metrics, its
  ``evaluate_accuracy_gpu``, a native ``CosineAnnealingLR`` stepped once
  per epoch) over a shuffling ``torch.utils.data.DataLoader`` of the same
  tensors (d2l's loader, minus its worker processes and PIL transforms);
* ``chapter loop, pre-made batches``: the same loop over tensors made in
  advance of exactly the batches ours trains on (``iterate_batches``,
  same seed, epoch by epoch): no loader, no conversion, the floor for any
  loop doing the same work;
* ``chapter loop, pre-made, data order``: over unshuffled slices of the
  data (other batches, so other work: on this LeNet and these digits,
  updates on unshuffled batches measured ~20% faster in PyTorch's CPU
  kernels, 1 thread, identical memory; that is the data, not the loop);
* ``chapter loop, pre-made, channels-last``: the pre-made row with the
  network in ``torch.channels_last`` memory, as the trainer builds it
  (oneDNN's preferred layout for convolutions: ~15-20% faster per update
  here than the chapter's NCHW).  It shows where the trainer's lead over
  the chapter comes from.  Against the same layout, what is left is the
  trainer's own work per update (shuffled gathers, the adapter, the
  recorder, the shared loop): 0.90-1.02 here, between noise and a few
  percent.

Same LeNet weights, same data (digits, the first ``--train`` images), same
batch size 256.  Each figure is the best of ``--repeat`` runs, the runs
interleaved (in rotating order) so that load from other processes hits
every row alike, after one warm-up run each (oneDNN picks its kernels on
the first batches).
Prints images/s and the ratios ours / chapter (> 1: ours is faster):
of the best wall times, the median of the per-repeat ratios, and of the
best CPU times of the process (the least disturbed by other processes on
a shared machine).

Run: ``.venv/bin/python benchmarks/bench_train_torch.py [--quick]``.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from torch import nn
from torch.optim import lr_scheduler

import unisched as us
from unisched.app.data import iterate_batches, load_dataset
from unisched.backends.torch import train_lenet
from unisched.backends.torch.lenet import build_lenet

BATCH = 256
LR = 0.3


# -- the chapter's code (d2l.torch), copied in structure -------------------

class Accumulator:
    """d2l.Accumulator: sums ``n`` variables."""

    def __init__(self, n):
        self.data = [0.0] * n

    def add(self, *args):
        self.data = [a + float(b)
                     for a, b in zip(self.data, args, strict=True)]

    def __getitem__(self, idx):
        return self.data[idx]


def accuracy(y_hat, y):
    """d2l.accuracy: the number of correct predictions."""
    if len(y_hat.shape) > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(axis=1)
    cmp = y_hat.type(y.dtype) == y
    return float(cmp.type(y.dtype).sum())


def evaluate_accuracy_gpu(net, data_iter, device=None):
    """d2l.evaluate_accuracy_gpu."""
    if isinstance(net, nn.Module):
        net.eval()
        if not device:
            device = next(iter(net.parameters())).device
    metric = Accumulator(2)
    with torch.no_grad():
        for X, y in data_iter:
            X, y = X.to(device), y.to(device)
            metric.add(accuracy(net(X), y), y.numel())
    return metric[0] / metric[1]


def chapter_train(net, train_iter, test_iter, num_epochs, loss, trainer,
                  device, scheduler=None):
    """The chapter's PyTorch ``train`` without the animator (and without
    its Xavier re-initialisation: both loops start from the same
    weights)."""
    net.to(device)
    for epoch in range(num_epochs):  # noqa: B007 (the chapter's loop)
        metric = Accumulator(3)  # train_loss, train_acc, num_examples
        for i, (X, y) in enumerate(train_iter):  # noqa: B007 (verbatim)
            net.train()
            trainer.zero_grad()
            X, y = X.to(device), y.to(device)
            y_hat = net(X)
            l = loss(y_hat, y)  # noqa: E741 (the chapter's name)
            l.backward()
            trainer.step()
            with torch.no_grad():
                metric.add(l * X.shape[0], accuracy(y_hat, y), X.shape[0])
            train_loss = metric[0] / metric[2]
            train_acc = metric[1] / metric[2]
        test_acc = evaluate_accuracy_gpu(net, test_iter)
        if scheduler:
            scheduler.step()
    return train_loss, train_acc, test_acc


# -- the rows ---------------------------------------------------------------

class EpochBatches:
    """Pre-made batches, one list per epoch: the k-th ``iter()`` gives
    epoch k's (as a shuffling loader gives a new order each epoch)."""

    def __init__(self, epochs: list) -> None:
        self.epochs, self.count = epochs, 0

    def __iter__(self):
        self.count += 1
        return iter(self.epochs[self.count - 1])


def make_rows(data, epochs: int) -> dict:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    x_train, y_train = (torch.from_numpy(data.x_train),
                        torch.from_numpy(data.y_train))
    x_test, y_test = (torch.from_numpy(data.x_test),
                      torch.from_numpy(data.y_test))
    train_set = torch.utils.data.TensorDataset(x_train, y_train)
    test_set = torch.utils.data.TensorDataset(x_test, y_test)
    steps = epochs * math.ceil(len(y_train) / BATCH)

    def batches(x, y):
        return [(x[i:i + BATCH], y[i:i + BATCH])
                for i in range(0, len(y), BATCH)]

    ordered = batches(x_train, y_train), batches(x_test, y_test)
    same = [[(torch.from_numpy(x).clone(), torch.from_numpy(y))
             for x, y in iterate_batches(data.x_train, data.y_train, BATCH,
                                         seed=0, epoch=e)]
            for e in range(epochs)]
    test_same = [(torch.from_numpy(x).clone(), torch.from_numpy(y))
                 for x, y in iterate_batches(data.x_test, data.y_test,
                                             BATCH, shuffle=False)]

    def chapter(loaders, channels_last=False):
        def go():
            net = build_lenet(seed=0)
            if channels_last:
                net = net.to(memory_format=torch.channels_last)
            trainer = torch.optim.SGD(net.parameters(), lr=LR)
            scheduler = lr_scheduler.CosineAnnealingLR(trainer, epochs)
            if loaders is None:
                train_iter = torch.utils.data.DataLoader(
                    train_set, BATCH, shuffle=True)
                test_iter = torch.utils.data.DataLoader(test_set, BATCH)
            elif loaders is same:  # epoch e iterates epoch e's batches
                train_iter, test_iter = EpochBatches(same), test_same
            else:
                train_iter, test_iter = loaders
            chapter_train(net, train_iter, test_iter, epochs,
                          nn.CrossEntropyLoss(), trainer, device, scheduler)
        return go

    def ours():
        train_lenet(us.CosineScheduler(steps, base_lr=LR), data, epochs,
                    BATCH, log=None, progress=False, device=device)

    return {"unisched train_lenet": ours,
            "chapter loop, DataLoader": chapter(None),
            "chapter loop, pre-made batches": chapter(same),
            "chapter loop, pre-made, channels-last": chapter(same, True),
            "chapter loop, pre-made, data order": chapter(ordered)}


def timings(rows: dict, repeat: int) -> dict[str, np.ndarray]:
    """Per row and repeat: (wall seconds, CPU seconds of this process)."""
    for fn in rows.values():  # warm-up
        fn()
    out = {name: [] for name in rows}
    names = list(rows)
    for r in range(repeat):
        # Rotate the order too, so no row always runs after the same one.
        for name in names[r % len(names):] + names[:r % len(names)]:
            wall, cpu = time.perf_counter(), time.process_time()
            rows[name]()
            out[name].append((time.perf_counter() - wall,
                              time.process_time() - cpu))
    return {name: np.array(t) for name, t in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer images and repeats (a smoke run)")
    parser.add_argument("--train", type=int, default=1024,
                        help="training images (default 1024: 4 batches)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    if args.quick:
        args.train, args.repeat = 512, 2
    data = load_dataset("digits", limit=args.train)
    times = timings(make_rows(data, args.epochs), args.repeat)
    images = args.epochs * len(data.y_train)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{len(data.y_train)} train + {len(data.y_test)} test images, "
          f"batch {BATCH}, {args.epochs} epochs; {args.repeat} repeats")
    for name, t in times.items():
        print(f"  {name:40s} {images / t[:, 0].min():9.0f} images/s "
              f"(best {t[:, 0].min():.3f} s, CPU {t[:, 1].min():.3f} s)")
    ours = times["unisched train_lenet"]
    print("speed ratios ours / chapter (> 1 = ours faster): best wall, "
          "median of paired repeats, best CPU time")
    for name in list(times)[1:]:
        t = times[name]
        print(f"  vs {name:40s} {t[:, 0].min() / ours[:, 0].min():6.3f} "
              f"{np.median(t[:, 0] / ours[:, 0]):6.3f} "
              f"{t[:, 1].min() / ours[:, 1].min():6.3f}")


if __name__ == "__main__":
    main()
