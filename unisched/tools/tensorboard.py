"""TensorBoard event files from a :class:`~unisched.tools.Recorder`.

Written with TensorBoard's own event writer
(``tensorboard.summary.writer.event_file_writer.EventFileWriter``, the
one ``torch.utils.tensorboard`` uses), imported only when a writer is
made: ``import unisched`` imports neither tensorboard nor a framework.
(That writer opens its file through ``tf.io.gfile``, so where
TensorFlow is installed the first writer of a process imports it, as
PyTorch's ``SummaryWriter`` does.)

One folder is one run; the frameworks of one ``compare`` write into
subfolders of one folder, so TensorBoard overlays them.  Tags:

==========================  ===================================  ========
tag                         value                                x axis
==========================  ===================================  ========
``lr``                      the rate (one parameter group)       update k
``lr/group_<i>``            the rate of group i (several)        update k
``momentum``                momentum / beta1, where recorded     update k
``loss``                    the batch loss                       update k
``epoch/train_loss``        mean training loss of the epoch      epoch
``epoch/train_acc``         training accuracy                    epoch
``epoch/test_acc``          test accuracy                        epoch
==========================  ===================================  ========

Values are stored as float32 (TensorBoard's scalar format).  Nothing is
written per update: :meth:`TensorBoardWriter.write` sends what a recorder
holds beyond what was already sent, then flushes once (the trainers call
it once per epoch).
"""
from __future__ import annotations

import os
import time
from typing import Any

from .recorder import Recorder

#: per-epoch fields written, under ``epoch/<field>``
EPOCH_TAGS = ("train_loss", "train_acc", "test_acc")


def _event_writer() -> tuple[Any, Any, Any]:
    """TensorBoard's ``EventFileWriter``, ``Event`` and ``Summary``,
    imported now; an ImportError that says what to install."""
    try:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.summary.writer.event_file_writer import (
            EventFileWriter,
        )
    except ImportError as err:
        raise ImportError(
            f"TensorBoard logging needs the tensorboard package (pip "
            f"install tensorboard, or unisched[integrations]): {err}"
        ) from err
    return EventFileWriter, Event, Summary


def require_tensorboard() -> None:
    """Raise the :func:`_event_writer` ImportError now if tensorboard is
    missing (a command line checks before training)."""
    _event_writer()


class TensorBoardWriter:
    """Streams one :class:`Recorder` into TensorBoard event files in
    ``logdir`` (created if needed; a new event file per writer).

    Example:
        >>> import tempfile
        >>> rec = Recorder()
        >>> rec.record_update(0, lr=0.1, loss=2.0)
        >>> with TensorBoardWriter(tempfile.mkdtemp()) as board:
        ...     board.write(rec)
        >>> board.updates_written
        1
    """

    def __init__(self, logdir: str | os.PathLike[str]) -> None:
        if not isinstance(logdir, (str, os.PathLike)):
            raise TypeError(f"logdir must be a folder path, got "
                            f"{logdir!r}")
        writer_cls, self._event, self._summary = _event_writer()
        self.logdir = os.fspath(logdir)
        self._writer = writer_cls(self.logdir)
        self.updates_written = self.epochs_written = 0
        self.closed = False

    def _emit(self, step: int, values: list[tuple[str, float]]) -> None:
        summary = self._summary(value=[
            self._summary.Value(tag=tag, simple_value=value)
            for tag, value in values])
        self._writer.add_event(self._event(wall_time=time.time(),
                                           step=step, summary=summary))

    def write(self, recorder: Recorder) -> None:
        """Write the updates and epochs ``recorder`` holds beyond those
        this writer wrote already, then flush (the file is complete up to
        here for TensorBoard to read)."""
        if not isinstance(recorder, Recorder):
            raise TypeError(f"recorder must be a unisched.tools.Recorder, "
                            f"got {type(recorder).__name__}")
        if self.closed:
            raise ValueError(f"this TensorBoardWriter ({self.logdir}) is "
                             f"closed")
        groups = recorder.n_groups or 1
        names = ["lr"] if groups == 1 else [f"lr/group_{i}"
                                            for i in range(groups)]
        for step, rates, momentum, loss in recorder.iter_updates(
                self.updates_written):
            values = list(zip(names, rates, strict=True))
            values += [(tag, v) for tag, v in (("momentum", momentum),
                                               ("loss", loss))
                       if v is not None]
            self._emit(step, values)
            self.updates_written += 1
        for row in recorder.epochs[self.epochs_written:]:
            self._emit(row["epoch"], [
                (f"epoch/{key}", row[key]) for key in EPOCH_TAGS
                if row[key] is not None])
            self.epochs_written += 1
        self._writer.flush()

    def close(self, recorder: Recorder | None = None) -> None:
        """:meth:`write` ``recorder`` (if given), then flush and close
        the event file; closing again does nothing."""
        if self.closed:
            return
        try:
            if recorder is not None:
                self.write(recorder)
        finally:
            self.closed = True
            self._writer.close()

    def __enter__(self) -> TensorBoardWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"TensorBoardWriter({self.logdir!r}, updates_written="
                f"{self.updates_written}, epochs_written="
                f"{self.epochs_written}"
                f"{', closed' if self.closed else ''})")
