"""Per-update cost of the PyTorch adapter, side by side with PyTorch.

Measures, in one process, the time of one ``scheduler.step()``:

* (a) ``unisched.backends.torch.LRScheduler`` (closed form, this package),
* (b) PyTorch's own scheduler for the same curve (``CosineAnnealingLR`` vs
  a unisched cosine; ``OneCycleLR`` vs a unisched one-cycle, both cycling
  SGD's momentum),
* (c) a hand-written loop body: ``group['lr'] = value`` with the value
  precomputed (the floor: a dict store), and with the cosine formula
  written inline (what a careful user would type),

and one LeNet training step (batch 256 of random 1x28x28 images, SGD,
cross-entropy) for scale.  Each figure is the minimum over ``--repeat``
timeit runs (the least disturbed one; the machine is shared).  Prints
microseconds per call and the ratios adapter/native, adapter/hand-written
and adapter as a percentage of a training step.

Run: ``.venv/bin/python benchmarks/bench_torch_adapter.py [--quick]``.
"""
from __future__ import annotations

import argparse
import math
import timeit

import torch
from torch.optim import lr_scheduler as L

import unisched as us
from unisched.backends import torch as ust
from unisched.backends.torch.lenet import build_lenet

STORE = "hand-written: group['lr'] = value"
# Long enough that no scheduler runs off its end while being timed.
LONG = 10 ** 8


def _optimizer() -> torch.optim.SGD:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1,
                           momentum=0.9)


def _ready(sch, opt):
    """One optimizer step first, so neither scheduler warns about the
    call order while being timed."""
    opt.step()
    sch.step()
    return sch


def per_call(fns: dict, number: int, repeat: int) -> dict[str, float]:
    """Seconds per call of each function: the minimum over ``repeat``
    runs of ``number`` calls.  The runs are interleaved (a, b, c, a, b,
    c, ...) so that load from other processes hits every row alike."""
    best = {name: math.inf for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            secs = timeit.timeit(fn, number=number) / number
            best[name] = min(best[name], secs)
    return best


def scheduler_rows(number: int, repeat: int) -> dict[str, float]:
    base, low = 0.1, 1e-4
    fns = {}
    opt = _optimizer()
    fns["torch CosineAnnealingLR.step"] = _ready(
        L.CosineAnnealingLR(opt, T_max=LONG, eta_min=low), opt).step
    opt = _optimizer()
    fns["unisched cosine .step"] = _ready(
        ust.bind(us.CosineScheduler(LONG, base, low), opt), opt).step
    opt = _optimizer()
    fns["torch OneCycleLR.step"] = _ready(
        L.OneCycleLR(opt, max_lr=base, total_steps=LONG), opt).step
    opt = _optimizer()
    fns["unisched one_cycle .step (+momentum)"] = _ready(
        ust.bind(us.OneCycleScheduler(base, LONG), opt), opt).step

    groups = _optimizer().param_groups

    def store():
        for group in groups:
            group["lr"] = 0.05

    state = {"k": 0}

    def inline_cosine():
        k = state["k"] = state["k"] + 1
        value = low + (base - low) * (1 + math.cos(math.pi * k / LONG)) / 2
        for group in groups:
            group["lr"] = value

    fns[STORE] = store
    fns["hand-written: inline cosine + store"] = inline_cosine
    return per_call(fns, number, repeat)


def lenet_step(number: int, repeat: int) -> float:
    torch.manual_seed(0)
    net = build_lenet(seed=0)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    x = torch.rand(256, 1, 28, 28)
    y = torch.randint(0, 10, (256,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def train_step():
        opt.zero_grad()
        loss_fn(net(x), y).backward()
        opt.step()

    train_step()  # warm-up: allocations, oneDNN kernel choice
    return per_call({"train": train_step}, number, repeat)["train"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer calls (a smoke run, noisier figures)")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    number = 2_000 if args.quick else 20_000
    train_number = 2 if args.quick else 5

    rows = scheduler_rows(number, args.repeat)
    train = lenet_step(train_number, args.repeat)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"min of {args.repeat} runs of {number} calls")
    for name, secs in rows.items():
        print(f"  {name:40s} {secs * 1e6:8.2f} us")
    print(f"  {'LeNet training step (batch 256)':40s} {train * 1e3:8.2f} ms")

    cos = rows["unisched cosine .step"]
    one = rows["unisched one_cycle .step (+momentum)"]
    print("ratios:")
    print(f"  adapter/native, cosine:               "
          f"{cos / rows['torch CosineAnnealingLR.step']:6.2f}")
    print(f"  adapter/native, one-cycle:            "
          f"{one / rows['torch OneCycleLR.step']:6.2f}")
    print(f"  adapter/hand-written store:           "
          f"{cos / rows[STORE]:6.2f}")
    print(f"  adapter/hand-written inline cosine:   "
          f"{cos / rows['hand-written: inline cosine + store']:6.2f}")
    print(f"  adapter cosine, % of a training step: "
          f"{100 * cos / train:6.3f} %")
    print(f"  adapter one-cycle, % of a step:       "
          f"{100 * one / train:6.3f} %")


if __name__ == "__main__":
    main()
