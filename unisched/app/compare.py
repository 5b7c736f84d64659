"""Train one schedule in several frameworks and compare the runs.

Used by ``unisched train``, ``unisched compare`` and ``make demo``: each
framework's ``train_lenet`` (``unisched.backends.<fw>``) trains the same
LeNet from the same initial weights on the same batches; this module
writes the metrics, one figure and a summary table.
"""
from __future__ import annotations

import importlib
import json
import os
from collections.abc import Sequence
from itertools import cycle
from typing import Any

import numpy as np

from .._io import write_text
from ..tools import Recorder
from .data import Dataset

FRAMEWORKS = ("torch", "keras", "mxnet", "jax")


def check_frameworks(frameworks: Sequence[str] | str) -> list[str]:
    """``'torch,keras'`` or a list -> validated, de-duplicated list."""
    if isinstance(frameworks, str):
        frameworks = [f.strip() for f in frameworks.split(",") if f.strip()]
    chosen = []
    for fw in frameworks:
        if fw not in FRAMEWORKS:
            raise ValueError(f"frameworks: unknown framework {fw!r}; valid: "
                             f"{', '.join(FRAMEWORKS)}")
        if fw not in chosen:
            chosen.append(fw)
    if not chosen:
        raise ValueError(f"frameworks must name at least one of "
                         f"{', '.join(FRAMEWORKS)}, got {frameworks!r}")
    return chosen


def backend(framework: str):
    """The backend module of ``framework`` (imports the framework)."""
    check_frameworks([framework])
    return importlib.import_module(f"unisched.backends.{framework}")


def train(framework: str, sched: Any, data: Dataset, num_epochs: int,
          **options: Any) -> Recorder:
    """``unisched.backends.<framework>.train_lenet(sched, data, ...)``."""
    return backend(framework).train_lenet(sched, data, num_epochs,
                                          **options)


def write_run(recorder: Recorder, out_dir: str, prefix: str) -> list[str]:
    """Metrics as JSON and CSV (per epoch and per update), atomically."""
    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(out_dir, f"{prefix}.json"),
             os.path.join(out_dir, f"{prefix}_epochs.csv"),
             os.path.join(out_dir, f"{prefix}_updates.csv")]
    recorder.to_json(paths[0])
    recorder.to_csv(paths[1], table="epochs")
    recorder.to_csv(paths[2], table="updates")
    return paths


def summary_table(runs: dict[str, Recorder]) -> str:
    """A markdown table: final metrics per framework, and how far each
    run's per-update rates and losses are from the first run's."""
    names = list(runs)
    ref = runs[names[0]]
    lines = ["| framework | updates | final train loss | final train acc "
             "| final test acc | max lr diff vs " + names[0]
             + " | max loss diff (first 30 updates) | s/epoch |",
             "|---|---|---|---|---|---|---|---|"]
    for name, rec in runs.items():
        last = rec.epochs[-1]
        n = min(len(rec), len(ref))
        lr_diff = float(np.max(np.abs(rec.group_lrs[:n] - ref.group_lrs[:n]))
                        ) if n else float("nan")
        m = min(n, 30)
        loss_diff = float(np.max(np.abs(rec.losses[:m] - ref.losses[:m]))
                          ) if m else float("nan")
        times = rec.epoch_column("time")
        lines.append(
            f"| {name} | {len(rec)} | {last['train_loss']:.4f} | "
            f"{last['train_acc']:.4f} | {last['test_acc']:.4f} | "
            f"{lr_diff:.3g} | {loss_diff:.3g} | {np.nanmean(times):.1f} |")
    return "\n".join(lines)


def plot_runs(runs: dict[str, Recorder], path: str,
              title: str | None = None) -> None:
    """One figure: rate per update, train loss per update and per epoch,
    test accuracy per epoch, one line per framework."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plot import save_figure
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    # a style per run, repeating after three (a run is never left out)
    for (name, rec), style in zip(runs.items(), cycle(["-", "--", ":"])):
        axes[0].plot(rec.steps, rec.lrs, style, label=name)
        axes[1].plot(rec.steps, rec.losses, style, alpha=0.5,
                     label=f"{name} (update)")
        epochs = rec.epoch_column("epoch")
        per_epoch = len(rec) / max(len(epochs), 1)
        axes[1].plot(epochs * per_epoch, rec.epoch_column("train_loss"),
                     style, marker="o", label=f"{name} (epoch)")
        axes[2].plot(epochs, rec.epoch_column("test_acc"), style,
                     marker="o", label=name)
    axes[0].set(xlabel="update", ylabel="learning rate")
    axes[1].set(xlabel="update", ylabel="train loss")
    axes[2].set(xlabel="epoch", ylabel="test accuracy")
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    save_figure(fig, path)
    plt.close(fig)


def compare(frameworks: Sequence[str] | str, sched: Any, data: Dataset,
            num_epochs: int, out_dir: str, *,
            tensorboard: str | os.PathLike | None = None, **options: Any
            ) -> dict[str, Recorder]:
    """Train ``sched`` in each framework; write per-framework metrics,
    ``compare.png`` and ``summary.md`` into ``out_dir``.  With
    ``tensorboard``, framework ``fw`` logs into its subfolder
    ``tensorboard/fw``, so TensorBoard overlays the runs
    (:mod:`unisched.tools.tensorboard`)."""
    frameworks = check_frameworks(frameworks)
    runs = {}
    log = options.pop("log", print)
    for fw in frameworks:
        if log is not None:
            log(f"== {fw}")
        if tensorboard is not None:
            options["tensorboard"] = os.path.join(tensorboard, fw)
        runs[fw] = train(fw, sched, data, num_epochs, log=log, **options)
        write_run(runs[fw], out_dir, fw)
    spec = sched if isinstance(sched, str) else getattr(
        sched, "to_spec", lambda: repr(sched))()
    plot_runs(runs, os.path.join(out_dir, "compare.png"),
              f"{spec} on {data.name}")
    table = summary_table(runs)
    write_text(os.path.join(out_dir, "summary.md"),
                       f"# {spec} on {data.name}, {num_epochs} epoch(s)\n\n"
                       f"{table}\n")
    write_text(os.path.join(out_dir, "runs.json"), json.dumps(
        {fw: rec.to_dict() for fw, rec in runs.items()}))
    return runs
