"""The ``unisched`` command line.

    unisched values SPEC --steps N          CSV of step,lr[,momentum]
    unisched plot SPEC [SPEC ...] --steps N -o out.png
    unisched demo [--out DIR]               the chapter's schedules: table
                                            and plot
"""
from __future__ import annotations

import argparse
import csv
import sys
from typing import Sequence

import numpy as np

from .presets import d2l_chapter
from .spec import parse


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, got {text!r}")
    return value


def cmd_values(args: argparse.Namespace) -> int:
    sched = parse(args.spec)
    steps = np.arange(args.steps)
    columns = [("lr", sched.values(steps))]
    if args.momentum and sched.momentum is not None:
        columns.append(("momentum", sched.momentum.values(steps)))
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["step"] + [name for name, _ in columns])
    for i, step in enumerate(steps):
        writer.writerow([int(step)] + [repr(float(c[i])) for _, c in columns])
    return 0


def _figure_for(schedules: dict, steps: int, path: str,
                title: str | None = None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plot import plot_schedules, save_figure
    with_momentum = any(s.momentum is not None for s in schedules.values())
    fig, axes = plt.subplots(1, 2 if with_momentum else 1,
                             figsize=(11 if with_momentum else 6.5, 3.8),
                             squeeze=False)
    plot_schedules(schedules, max_update=steps, ax=axes[0][0])
    if with_momentum:
        plot_schedules(schedules, max_update=steps, ax=axes[0][1],
                       momentum=True)
    if title:
        fig.suptitle(title)
    save_figure(fig, path)
    plt.close(fig)


def cmd_plot(args: argparse.Namespace) -> int:
    schedules = {spec: parse(spec) for spec in args.specs}
    _figure_for(schedules, args.steps, args.output)
    print(f"wrote {args.output}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import os
    schedules = d2l_chapter()
    steps = args.steps
    os.makedirs(args.out, exist_ok=True)
    shown = [0, 1, 4, 5, 10, 15, 16, 20, 29]
    shown = [s for s in shown if s < steps]
    width = max(len(n) for n in schedules)
    print("The d2l chapter's schedules (rate used at update/epoch k):")
    print(" " * width + "".join(f"{k:>9d}" for k in shown))
    for name, sched in schedules.items():
        row = "".join(f"{v:9.4f}" for v in sched.values(shown))
        print(f"{name:<{width}}{row}")
    path = os.path.join(args.out, "schedules.png")
    _figure_for(schedules, steps, path, "d2l chapter schedules")
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unisched",
        description="One learning-rate schedule for PyTorch, Keras and "
                    "MXNet.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("values", help="print a CSV of step,lr")
    p.add_argument("spec", help='e.g. "cosine(max_update=20, base_lr=0.5)"')
    p.add_argument("--steps", type=_positive_int, required=True,
                   help="number of updates (steps 0..N-1)")
    p.add_argument("--momentum", action="store_true",
                   help="add the momentum column where there is one")
    p.set_defaults(func=cmd_values)

    p = sub.add_parser("plot", help="overlay schedule curves in a PNG")
    p.add_argument("specs", nargs="+")
    p.add_argument("--steps", type=_positive_int, required=True)
    p.add_argument("-o", "--output", default="schedules.png")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("demo", help="the d2l chapter's schedules: a table "
                                    "of values and a plot")
    p.add_argument("--out", default="out")
    p.add_argument("--steps", type=_positive_int, default=30)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError) as err:
        parser.exit(2, f"unisched {args.command}: error: {err}\n")


if __name__ == "__main__":
    sys.exit(main())
