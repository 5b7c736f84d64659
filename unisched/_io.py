"""Atomic file writes: every file unisched writes goes through here.

Temporary names carry the writer's process id (``.name.<pid>.*``), so a
later write cleans up what a killed writer left behind without touching
the files of a writer that is still running.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator

#: the file listing one run's outputs inside an output folder
MANIFEST = ".unisched-run.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _remove_stale(directory: str, base: str) -> None:
    """Remove ``.base.<pid>.*`` leftovers of writers that are gone."""
    prefix = f".{base}."
    with contextlib.suppress(FileNotFoundError):
        for entry in os.listdir(directory):
            if not entry.startswith(prefix):
                continue
            pid = entry[len(prefix):].split(".", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() \
                    and not _alive(int(pid)):
                _remove(os.path.join(directory, entry))


def _remove(path: str) -> None:
    """Remove a file or a folder, if it is there."""
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _default_mode(path: str) -> int:
    """Keep an existing file's mode; else 0666 less the umask (mkstemp's
    0600 would hide a shared cache or report from other users)."""
    if os.path.exists(path):
        return os.stat(path).st_mode & 0o777
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temporary path beside ``path`` to write to; on success it
    is renamed over ``path`` (readers see the old file or the new one,
    never half of one), on any error it is removed and ``path`` is left
    as it was.  The temporary name keeps ``path``'s extension, so writers
    that go by it (matplotlib's ``savefig``) pick the right format.

    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "note.txt")
    >>> with atomic_path(target) as tmp:
    ...     with open(tmp, "w") as f:
    ...         _ = f.write("done")
    >>> open(target).read(), os.listdir(os.path.dirname(target))
    ('done', ['note.txt'])
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    base = os.path.basename(path)
    _remove_stale(directory, base)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.{os.getpid()}.",
                               suffix=f".tmp{os.path.splitext(base)[1]}",
                               dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _default_mode(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, flushed to disk."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def check_output_dir(path: str | os.PathLike[str]) -> str:
    """``path`` as an absolute output folder, checked before any work
    starts: it is created if needed and must take a file (a file in its
    place, or a folder that cannot be written, raises ``ValueError``)."""
    out = os.path.abspath(os.fspath(path))
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out {os.fspath(path)!r} is a file, not a "
                         f"folder")
    try:
        os.makedirs(out, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".probe.{os.getpid()}.",
                                     dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ValueError(f"--out {os.fspath(path)!r} cannot be written: "
                         f"{err.strerror or err}") from None
    return out


@contextlib.contextmanager
def output_set(path: str | os.PathLike[str]) -> Iterator[str]:
    """One run's outputs as a consistent set.

    Yields a fresh staging folder beside ``path`` (checked first with
    :func:`check_output_dir`).  When the block succeeds, the previous
    run's files (listed in ``path``'s :data:`MANIFEST`) are removed, the
    new ones moved in and the manifest rewritten; files the user put in
    the folder are never touched.  When it fails, or the process is
    killed, ``path`` keeps the previous set and the staging folder goes
    (at once, or on the next run)."""
    out = check_output_dir(path)
    parent, name = os.path.split(out)
    _remove_stale(parent, name)
    stage = tempfile.mkdtemp(prefix=f".{name}.{os.getpid()}.",
                             suffix=".partial", dir=parent)
    try:
        yield stage
        new = sorted(os.listdir(stage))
        manifest = os.path.join(out, MANIFEST)
        old = []
        with contextlib.suppress(FileNotFoundError, ValueError):
            with open(manifest, encoding="utf-8") as handle:
                old = json.load(handle)["files"]
        for entry in old:
            if isinstance(entry, str) and os.path.basename(entry) == entry:
                _remove(os.path.join(out, entry))
        for entry in new:
            os.replace(os.path.join(stage, entry), os.path.join(out, entry))
        write_text(manifest, json.dumps({"files": new}, indent=1) + "\n")
    finally:
        shutil.rmtree(stage, ignore_errors=True)
