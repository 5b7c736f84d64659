"""The Recorder: every rate, momentum and loss a run applied, per-epoch
metrics, atomic JSON/CSV files and fastai's plots."""
from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .. import _validate as check
from .._io import write_text
from ._common import (
    Floats,
    _decode_float,
    _encode_float,
    _encode_floats,
    _loss,
    _pyplot,
)

# ----------------------------------------------------------------- Recorder

EPOCH_FIELDS = ("epoch", "train_loss", "train_acc", "test_acc", "time")


def _optional(name: str, value: Any) -> float | None:
    return None if value is None else _loss(name, value)


class Recorder:
    """What a training run did: per update the step, the learning rate
    (one per parameter group, or one), the momentum and the loss; per
    epoch the train loss, train accuracy, test accuracy and time.

    Files are written atomically (:meth:`to_json`, :meth:`to_csv`); plots
    are fastai's ``plot_sched`` and the d2l chapter's three curves.

    >>> rec = Recorder()
    >>> rec.record_update(0, lr=0.1, momentum=0.9, loss=2.3)
    >>> rec.record_epoch(1, train_loss=0.5123, train_acc=0.8119,
    ...                  test_acc=0.803)
    >>> rec.summary_line(1)
    'epoch 1: train loss 0.512, train acc 0.812, test acc 0.803'
    """

    def __init__(self) -> None:
        self._steps: list[int] = []
        self._lrs: list[list[float]] = []
        self._moms: list[float | None] = []
        self._losses: list[float | None] = []
        self._epochs: list[dict[str, Any]] = []

    # -- recording ----------------------------------------------------------
    def record_update(self, step: int, lr: float | Sequence[float],
                      momentum: float | None = None,
                      loss: float | None = None) -> None:
        """Record update ``step`` (0 for the first; strictly increasing).

        Args:
            step: the update's index.
            lr: the rate used, or one rate per parameter group (the same
                number of groups on every call).
            momentum: momentum / Adam beta1 used, if any.
            loss: the batch loss (NaN allowed: a diverging run is data).
        """
        step = check.step(step)
        if self._steps and step <= self._steps[-1]:
            raise ValueError(f"step must increase, got {step} after "
                             f"{self._steps[-1]}")
        if isinstance(lr, (list, tuple, np.ndarray)):
            rates = [check.rate(f"lr[{i}]", v) for i, v in enumerate(lr)]
            if not rates:
                raise ValueError("lr must hold at least one rate, got []")
        else:
            rates = [check.rate("lr", lr)]
        if self._lrs and len(rates) != len(self._lrs[0]):
            raise ValueError(f"lr has {len(rates)} group rate(s), earlier "
                             f"updates had {len(self._lrs[0])}")
        momentum = None if momentum is None else \
            check.rate("momentum", momentum)
        loss = _optional("loss", loss)
        self._steps.append(step)
        self._lrs.append(rates)
        self._moms.append(momentum)
        self._losses.append(loss)

    def record_epoch(self, epoch: int, train_loss: float | None = None,
                     train_acc: float | None = None,
                     test_acc: float | None = None,
                     time: float | None = None) -> None:
        """Record the metrics of ``epoch`` (numbered by the caller,
        strictly increasing; the d2l chapter counts from 1).

        Args:
            epoch: the epoch number.
            train_loss: mean training loss over the epoch.
            train_acc, test_acc: accuracies in [0, 1].
            time: wall time of the epoch, seconds.
        """
        epoch = check.integer("epoch", epoch, 0)
        if self._epochs and epoch <= self._epochs[-1]["epoch"]:
            raise ValueError(f"epoch must increase, got {epoch} after "
                             f"{self._epochs[-1]['epoch']}")
        row = {"epoch": epoch, "train_loss": _optional("train_loss",
                                                       train_loss)}
        for name, value in (("train_acc", train_acc),
                            ("test_acc", test_acc)):
            row[name] = None if value is None else \
                check.in_range(name, value, 0.0, 1.0)
        row["time"] = None if time is None else check.rate("time", time)
        self._epochs.append(row)

    # -- reading ------------------------------------------------------------
    @property
    def steps(self) -> np.ndarray[Any, np.dtype[np.int64]]:
        return np.array(self._steps, dtype=np.int64)

    @property
    def n_groups(self) -> int | None:
        """Parameter groups recorded per update (None before any)."""
        return len(self._lrs[0]) if self._lrs else None

    @property
    def group_lrs(self) -> Floats:
        """Rates, shape ``(updates, groups)``."""
        return np.array(self._lrs, dtype=np.float64).reshape(
            len(self._lrs), self.n_groups or 0)

    @property
    def lrs(self) -> Floats:
        """The last group's rate per update (what fastai records)."""
        return self.group_lrs[:, -1] if self._lrs else np.zeros(0)

    @property
    def momentums(self) -> Floats:
        """Momentum per update, NaN where none was recorded."""
        return np.array([math.nan if m is None else m for m in self._moms],
                        dtype=np.float64)

    @property
    def losses(self) -> Floats:
        """Loss per update, NaN where none was recorded."""
        return np.array([math.nan if v is None else v
                         for v in self._losses], dtype=np.float64)

    @property
    def epochs(self) -> list[dict[str, Any]]:
        """One dict per epoch with keys ``EPOCH_FIELDS`` (None = not
        recorded)."""
        return [dict(row) for row in self._epochs]

    def epoch_column(self, name: str) -> Floats:
        """One ``EPOCH_FIELDS`` column as floats (NaN = not recorded)."""
        check.choice("name", name, EPOCH_FIELDS)
        return np.array([math.nan if r[name] is None else r[name]
                         for r in self._epochs], dtype=np.float64)

    def iter_updates(self, start: int = 0) -> Iterator[
            tuple[int, list[float], float | None, float | None]]:
        """``(step, rates, momentum, loss)`` of each update from the
        ``start``-th recorded on (None: not recorded)."""
        return ((s, list(r), m, v) for s, r, m, v in zip(
            self._steps[start:], self._lrs[start:], self._moms[start:],
            self._losses[start:], strict=True))

    def summary_line(self, epoch: int | None = None) -> str:
        """The chapter's progress line for ``epoch`` (default: the last
        one), e.g. ``'epoch 3: train loss 0.512, train acc 0.812, test
        acc 0.803'``; metrics not recorded are left out."""
        if not self._epochs:
            raise ValueError("no epoch recorded yet")
        if epoch is None:
            row = self._epochs[-1]
        else:
            rows = [r for r in self._epochs if r["epoch"] == epoch]
            if not rows:
                raise ValueError(f"epoch {epoch!r} was not recorded; "
                                 f"recorded: "
                                 f"{[r['epoch'] for r in self._epochs]}")
            row = rows[0]
        parts = [f"{label} {row[key]:.3f}" for key, label in
                 (("train_loss", "train loss"), ("train_acc", "train acc"),
                  ("test_acc", "test acc")) if row[key] is not None]
        return f"epoch {row['epoch']}: " + ", ".join(parts)

    # -- serialization ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; NaN and infinities are the strings ``'NaN'``,
        ``'Infinity'``, ``'-Infinity'``, missing values are None."""
        return {
            "updates": {
                "step": list(self._steps),
                "lr": [list(r) for r in self._lrs],
                "momentum": _encode_floats(self._moms),
                "loss": _encode_floats(self._losses),
            },
            "epochs": [{k: (_encode_float(v) if k != "epoch" else v)
                        for k, v in row.items()} for row in self._epochs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recorder:
        """Rebuild a recorder from :meth:`to_dict` output (validated as
        if recorded again)."""
        if not isinstance(data, Mapping):
            raise TypeError(f"data must be a dict, got {data!r}")
        rec = cls()
        updates = data.get("updates", {})
        steps = updates.get("step", [])
        columns = {k: updates.get(k, [None] * len(steps))
                   for k in ("lr", "momentum", "loss")}
        for k, column in columns.items():
            if len(column) != len(steps):
                raise ValueError(f"updates.{k} has {len(column)} values "
                                 f"for {len(steps)} steps")
        for i, step in enumerate(steps):
            rec.record_update(step, columns["lr"][i],
                              _decode_float(columns["momentum"][i]),
                              _decode_float(columns["loss"][i]))
        for row in data.get("epochs", []):
            unknown = set(row) - set(EPOCH_FIELDS)
            if unknown:
                raise ValueError(f"unknown epoch field(s) {sorted(unknown)}"
                                 f"; valid: {', '.join(EPOCH_FIELDS)}")
            rec.record_epoch(row.get("epoch"), **{
                k: _decode_float(row.get(k)) for k in EPOCH_FIELDS[1:]})
        return rec

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """The JSON text; also written atomically to ``path`` if given."""
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        if path is not None:
            write_text(path, text + "\n")
        return text

    def to_tensorboard(self, logdir: str | os.PathLike[str]) -> str:
        """Write every update and epoch as TensorBoard event files in
        ``logdir`` (tags: :mod:`unisched.tools.tensorboard`); returns
        ``logdir``.  Needs the ``tensorboard`` package."""
        from .tensorboard import TensorBoardWriter
        with TensorBoardWriter(logdir) as board:
            board.write(self)
        return board.logdir

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> Recorder:
        """Read a file written by :meth:`to_json`."""
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    def _update_rows(self) -> tuple[list[str], list[list[Any]]]:
        groups = self.n_groups or 1
        lr_cols = ["lr"] if groups == 1 else [f"lr_{i}"
                                             for i in range(groups)]
        header = ["step", *lr_cols, "momentum", "loss"]
        rows = [[s, *r, m, v] for s, r, m, v in self.iter_updates()]
        return header, rows

    def _epoch_rows(self) -> tuple[list[str], list[list[Any]]]:
        return list(EPOCH_FIELDS), [[r[k] for k in EPOCH_FIELDS]
                                    for r in self._epochs]

    def to_csv(self, path: str | os.PathLike[str], table: str = "epochs"
               ) -> None:
        """Write one table atomically: ``'epochs'`` (epoch, train_loss,
        train_acc, test_acc, time) or ``'updates'`` (step, lr or lr_0 ..
        lr_<n-1> per group, momentum, loss).  Floats are written with
        ``repr`` (exact round trip), missing values as empty cells."""
        check.choice("table", table, ("epochs", "updates"))
        header, rows = (self._epoch_rows() if table == "epochs"
                        else self._update_rows())
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if v is None else repr(v) for v in row])
        write_text(path, buf.getvalue())

    @classmethod
    def from_csv(cls, updates: str | os.PathLike[str] | None = None,
                 epochs: str | os.PathLike[str] | None = None) -> Recorder:
        """Rebuild a recorder from the files :meth:`to_csv` wrote."""
        rec = cls()

        def read(path: str | os.PathLike[str]) -> list[dict[str, str]]:
            with open(path, encoding="utf-8", newline="") as f:
                return list(csv.DictReader(f))

        def cell(value: str) -> float | None:
            return None if value == "" else float(value)

        if updates is not None:
            for row in read(updates):
                if "lr" in row:
                    lr: Any = cell(row["lr"])
                else:
                    keys = sorted((k for k in row if k.startswith("lr_")),
                                  key=lambda k: int(k[3:]))
                    if not keys:
                        raise ValueError(f"{updates}: no lr column")
                    lr = [cell(row[k]) for k in keys]
                rec.record_update(int(row["step"]), lr,
                                  cell(row["momentum"]), cell(row["loss"]))
        if epochs is not None:
            for row in read(epochs):
                rec.record_epoch(int(row["epoch"]), **{
                    k: cell(row[k]) for k in EPOCH_FIELDS[1:]})
        return rec

    # -- plots --------------------------------------------------------------
    def plot_sched(self, ax: Any = None) -> list[Any]:
        """fastai's ``plot_sched``: the learning rate and (if recorded)
        the momentum per update, one panel each, side by side.  ``ax``:
        None (new figure) or one axes per panel.  Returns the axes."""
        if not self._steps:
            raise ValueError("no update recorded yet")
        moms = self.momentums
        panels = ["lr"] + (["mom"] if np.isfinite(moms).any() else [])
        if ax is None:
            _, axes = _pyplot().subplots(1, len(panels),
                                         figsize=(6 * len(panels), 4))
            axes = list(np.atleast_1d(axes))
        else:
            axes = list(ax) if isinstance(ax, (list, tuple, np.ndarray)) \
                else [ax]
            if len(axes) != len(panels):
                raise ValueError(f"ax must hold {len(panels)} axes (for "
                                 f"{', '.join(panels)}), got {len(axes)}")
        steps = self.steps
        lrs = self.group_lrs
        for g in range(lrs.shape[1]):
            label = f"group {g}" if lrs.shape[1] > 1 else None
            axes[0].plot(steps, lrs[:, g], label=label)
        if lrs.shape[1] > 1:
            axes[0].legend(fontsize="small")
        axes[0].set_ylabel("lr")
        if len(panels) == 2:
            axes[1].plot(steps, moms)
            axes[1].set_ylabel("mom")
        for a in axes:
            a.set_xlabel("update")
        return axes

    def plot_metrics(self, ax: Any = None) -> Any:
        """The d2l chapter's figure: train loss, train acc and test acc
        per epoch on one axes (metrics never recorded are left out).
        Returns the axes."""
        if not self._epochs:
            raise ValueError("no epoch recorded yet")
        if ax is None:
            _, ax = _pyplot().subplots(figsize=(3.5, 2.5))
        epochs = self.epoch_column("epoch")
        for key, label, style in (("train_loss", "train loss", "-"),
                                  ("train_acc", "train acc", "m--"),
                                  ("test_acc", "test acc", "g-.")):
            values = self.epoch_column(key)
            if np.isfinite(values).any():
                ax.plot(epochs, values, style, label=label)
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
        return ax

    def __len__(self) -> int:
        return len(self._steps)

    def __repr__(self) -> str:
        return (f"Recorder(updates={len(self._steps)}, "
                f"epochs={len(self._epochs)})")
