"""The ``unisched`` command line.

    unisched values SPEC --steps N          CSV of step,lr[,momentum]
    unisched plot SPEC [SPEC ...] --steps N -o out.png
    unisched train --framework FW --schedule SPEC --epochs N --data D
    unisched compare --frameworks torch,keras,mxnet --schedule SPEC ...
        (both: --tensorboard DIR, one TensorBoard run per framework)
    unisched lr-find --framework FW --data D
    unisched chapter --out DIR [--data D] [--epochs N]
    unisched demo [--out DIR]               the main job: the chapter's
                                            schedules, then one schedule
                                            trained in all four frameworks
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Sequence

import numpy as np

from .._io import output_set
from ..presets import d2l_chapter
from ..spec import parse


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, got {text!r}")
    return value


#: ``unisched values`` computes and prints this many steps at a time, so
#: any ``--steps`` streams in constant memory
VALUES_CHUNK = 1 << 16


def cmd_values(args: argparse.Namespace) -> int:
    sched = parse(args.spec)
    scheds = [("lr", sched)]
    if args.momentum and sched.momentum is not None:
        scheds.append(("momentum", sched.momentum))
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["step"] + [name for name, _ in scheds])
    for start in range(0, args.steps, VALUES_CHUNK):
        steps = np.arange(start, min(start + VALUES_CHUNK, args.steps))
        columns = [s.values(steps).tolist() for _, s in scheds]
        writer.writerows([int(k), *map(repr, row)]
                         for k, *row in zip(steps.tolist(), *columns,
                                            strict=True))
    return 0


def _figure_for(schedules: dict, steps: int, path: str,
                title: str | None = None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plot import plot_schedules, save_figure
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
    schedules = d2l_chapter()
    steps = args.steps
    shown = [0, 1, 4, 5, 10, 15, 16, 20, 29]
    shown = [s for s in shown if s < steps]
    width = max(len(n) for n in schedules)
    print("The d2l chapter's schedules (rate used at update/epoch k):")
    print(" " * width + "".join(f"{k:>9d}" for k in shown))
    for name, sched in schedules.items():
        row = "".join(f"{v:9.4f}" for v in sched.values(shown))
        print(f"{name:<{width}}{row}")
    # The main job: one schedule, the same update by update, in each
    # framework (batch 64 gives 24 updates per epoch on the digits).
    from .compare import check_frameworks, compare
    from .data import load_dataset
    frameworks = check_frameworks(args.frameworks)
    sched = parse(DEMO_SCHEDULE)
    with output_set(args.out) as stage:
        _figure_for(schedules, steps, os.path.join(stage, "schedules.png"),
                    "d2l chapter schedules")
        print(f"\nTraining LeNet on the embedded digits with "
              f"{sched.to_spec()}")
        compare(frameworks, sched, load_dataset("digits"), args.epochs,
                stage, batch_size=64)
    with open(os.path.join(args.out, "summary.md")) as handle:
        print(handle.read())
    for name in ("schedules.png", "compare.png"):
        print(f"wrote {os.path.join(args.out, name)}")
    return 0


# Batch 64 (24 updates per epoch on the digits): at the chapter's peak of
# 0.3 so small a batch sends some runs into dead ReLUs; 0.1 trains in all.
DEMO_SCHEDULE = ("warmup(cosine(max_update=220, base_lr=0.1, "
                 "final_lr=0.005), warmup_steps=20)")


def _learning_rates(text: str | None):
    """``'0.1'`` -> 0.1; ``'1e-3:1e-1'`` -> slice(1e-3, 1e-1); ``':0.1'``
    -> slice(None, 0.1) (fastai's discriminative rates)."""
    if text is None:
        return None
    try:
        if ":" not in text:
            return float(text)
        lo, hi = text.split(":", 1)
        return slice(float(lo) if lo.strip() else None, float(hi))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--lr must be a number or LO:HI, got {text!r}") from None


def _data(args: argparse.Namespace):
    from .data import load_dataset
    return load_dataset(args.data, limit=args.limit)


def _train_options(args: argparse.Namespace) -> dict:
    options = dict(batch_size=args.batch_size, optimizer=args.optimizer,
                   momentum=args.momentum, unit=args.unit, seed=args.seed)
    if args.lr is not None:
        options["lr"] = args.lr
    return options


def _tensorboard_folder(text: str) -> str:
    """``--tensorboard DIR``, checked before any training: a folder (or
    a path to create) and the tensorboard package installed."""
    from ..tools.tensorboard import require_tensorboard
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} is a file, not a "
                                         f"folder")
    try:
        require_tensorboard()
    except ImportError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def cmd_train(args: argparse.Namespace) -> int:
    from .compare import plot_runs, train, write_run
    keras_backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if args.workers is not None and args.framework == "keras" and \
            keras_backend != "tensorflow":
        raise ValueError(f"--workers trains Keras under tf.distribute, "
                         f"which needs the tensorflow backend, got "
                         f"KERAS_BACKEND={keras_backend!r}")
    board = None if args.tensorboard is None else os.path.join(
        args.tensorboard, args.framework)
    with output_set(args.out) as stage:
        data = _data(args)
        if args.workers is None:
            rec = train(args.framework, parse(args.schedule), data,
                        args.epochs, tensorboard=board,
                        **_train_options(args))
        else:   # data-parallel on the framework's own engine
            from .distributed import train as train_workers
            rec = train_workers(args.framework, parse(args.schedule)
                                .to_spec(), args.data, args.epochs,
                                args.workers, limit=args.limit,
                                **_train_options(args))
            if board is not None:   # rank 0's record, after the run
                rec.to_tensorboard(board)
        names = [os.path.basename(p)
                 for p in write_run(rec, stage, args.framework)]
        names.append(f"{args.framework}.png")
        plot_runs({args.framework: rec}, os.path.join(stage, names[-1]),
                  f"{args.schedule} on {data.name}")
    for name in names:
        print(f"wrote {os.path.join(args.out, name)}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import check_frameworks, compare
    frameworks = check_frameworks(args.frameworks)
    with output_set(args.out) as stage:
        data = _data(args)
        runs = compare(frameworks, parse(args.schedule), data, args.epochs,
                       stage, tensorboard=args.tensorboard,
                       **_train_options(args))
    with open(os.path.join(args.out, "summary.md")) as handle:
        print(handle.read())
    print(f"wrote {os.path.join(args.out, 'compare.png')} and metrics of "
          f"{', '.join(runs)} in {args.out}")
    return 0


def cmd_lr_find(args: argparse.Namespace) -> int:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plot import save_figure
    from .compare import backend
    with output_set(args.out) as stage:
        data = _data(args)
        result = backend(args.framework).lr_find(
            data, start_lr=args.start_lr, end_lr=args.end_lr,
            num_it=args.num_it, batch_size=args.batch_size,
            optimizer=args.optimizer, momentum=args.momentum,
            seed=args.seed)
        print(f"lr finder ({args.framework}, {data.name}): "
              f"{len(result.lrs)} updates, stopped: {result.stop_reason}")
        for name in ("minimum", "steep", "valley", "slide"):
            suggestion = result.suggestions.get(name)
            value = f"{suggestion.lr:.3g}" if suggestion else \
                "n/a (the sweep stopped too early for this rule)"
            print(f"{name:>8}: {value}")
        figure = f"lr_find_{args.framework}.png"
        ax = result.plot()
        save_figure(ax.figure, os.path.join(stage, figure))
        plt.close(ax.figure)
        result.to_json(os.path.join(stage,
                                    f"lr_find_{args.framework}.json"))
    print(f"wrote {os.path.join(args.out, figure)}")
    return 0


def cmd_chapter(args: argparse.Namespace) -> int:
    from .chapter import ChapterError
    from .report import render_chapter
    try:
        with output_set(args.out) as stage:
            path = render_chapter(stage, data=args.data, epochs=args.epochs,
                                  frameworks=args.frameworks,
                                  limit=args.limit, num_it=args.num_it)
    except ChapterError as err:
        print(f"unisched chapter: error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {os.path.join(args.out, os.path.relpath(path, stage))}")
    return 0


def _add_tensorboard_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tensorboard", type=_tensorboard_folder, default=None,
                   metavar="DIR",
                   help="also log rates, momentum, losses and accuracies "
                        "to TensorBoard event files in DIR/<framework> "
                        "(one run per framework: TensorBoard overlays "
                        "them)")


def _add_training_options(p: argparse.ArgumentParser, epochs: int) -> None:
    p.add_argument("--data", default="digits",
                   choices=["digits", "fashion-mnist"],
                   help="digits (embedded, offline) or fashion-mnist "
                        "(downloaded once into the cache)")
    p.add_argument("--limit", type=positive_int, default=None,
                   help="use at most this many training images")
    p.add_argument("--epochs", type=positive_int, default=epochs)
    p.add_argument("--batch-size", type=positive_int, default=256)
    p.add_argument("--optimizer", default="sgd",
                   choices=["sgd", "adam", "adamw"])
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--unit", default="step", choices=["step", "epoch"],
                   help="what the schedule counts: updates or epochs")
    p.add_argument("--lr", type=_learning_rates, default=None,
                   help="discriminative rates over the layer groups: a "
                        "multiplier or LO:HI (fastai's slice)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="out")
    _add_keras_backend_option(p)


def _add_keras_backend_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keras-backend", default=None,
                   choices=list(KERAS_BACKENDS),
                   help="the backend Keras 3 runs on (sets KERAS_BACKEND; "
                        "default: the environment's, else tensorflow)")


#: the Keras 3 backends unisched's Keras adapter runs on
KERAS_BACKENDS = ("tensorflow", "jax", "torch")


def use_keras_backend(name: str | None) -> None:
    """Make Keras 3 run on ``name`` (None: leave it): Keras reads
    ``KERAS_BACKEND`` once, at its import, so a different backend after
    that is an error rather than a silent tensorflow run."""
    if name is None:
        return
    keras = sys.modules.get("keras")
    if keras is not None and keras.backend.backend() != name:
        raise ValueError(f"--keras-backend {name}: Keras is already "
                         f"imported with the {keras.backend.backend()} "
                         f"backend in this process")
    os.environ["KERAS_BACKEND"] = name


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unisched",
        description="One learning-rate schedule for PyTorch, Keras, "
                    "MXNet and JAX.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("values", help="print a CSV of step,lr")
    p.add_argument("spec", help='e.g. "cosine(max_update=20, base_lr=0.5)"')
    p.add_argument("--steps", type=positive_int, required=True,
                   help="number of updates (steps 0..N-1)")
    p.add_argument("--momentum", action="store_true",
                   help="add the momentum column where there is one")
    p.set_defaults(func=cmd_values)

    p = sub.add_parser("plot", help="overlay schedule curves in a PNG")
    p.add_argument("specs", nargs="+")
    p.add_argument("--steps", type=positive_int, required=True)
    p.add_argument("-o", "--output", default="schedules.png")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("train", help="train the LeNet in one framework")
    p.add_argument("--framework", required=True,
                   choices=["torch", "keras", "mxnet", "jax"])
    p.add_argument("--schedule", required=True, help="a schedule spec")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="train data-parallel on N workers of the "
                        "framework's own engine (torchrun, tf.distribute, "
                        "MXNet's dist kvstore, JAX devices); --batch-size "
                        "is the global batch")
    _add_training_options(p, epochs=10)
    _add_tensorboard_option(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("compare", help="train one schedule in several "
                                       "frameworks and compare")
    p.add_argument("--frameworks", default="torch,keras,mxnet,jax")
    p.add_argument("--schedule", required=True, help="a schedule spec")
    _add_training_options(p, epochs=10)
    _add_tensorboard_option(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("lr-find", help="the learning-rate finder")
    p.add_argument("--framework", required=True,
                   choices=["torch", "keras", "mxnet", "jax"])
    p.add_argument("--start-lr", type=float, default=1e-7)
    p.add_argument("--end-lr", type=float, default=10.0)
    p.add_argument("--num-it", type=positive_int, default=100)
    _add_training_options(p, epochs=1)
    p.set_defaults(func=cmd_lr_find)

    p = sub.add_parser("chapter", help="run the d2l chapter and render "
                                       "it as one report")
    p.add_argument("--out", default="out/chapter")
    p.add_argument("--data", default="digits",
                   choices=["digits", "fashion-mnist"])
    p.add_argument("--epochs", type=positive_int, default=None)
    p.add_argument("--frameworks", default="torch,keras,mxnet,jax")
    p.add_argument("--limit", type=positive_int, default=None)
    p.add_argument("--num-it", type=positive_int, default=100,
                   help="updates of the lr-finder sweep")
    p.set_defaults(func=cmd_chapter)

    p = sub.add_parser("demo", help="the main job: the chapter's schedules "
                                    "and one schedule trained in all four "
                                    "frameworks on the embedded data")
    p.add_argument("--out", default="out")
    p.add_argument("--steps", type=positive_int, default=30)
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--frameworks", default="torch,keras,mxnet,jax")
    _add_keras_backend_option(p)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        use_keras_backend(getattr(args, "keras_backend", None))
        return args.func(args)
    except BrokenPipeError:  # `unisched values ... | head`: not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (ValueError, TypeError, OSError, OverflowError,
            RecursionError, MemoryError) as err:
        # bad specs and arguments, missing data sets, a full disk or an
        # impossible size: one line, no trace
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        parser.exit(2, f"unisched {args.command}: error: {text[:500]}\n")



if __name__ == "__main__":
    sys.exit(main())
