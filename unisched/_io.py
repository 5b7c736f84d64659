"""Atomic file writes: every file unisched writes goes through here."""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator


def _default_mode(path: str) -> int:
    """Keep an existing file's mode; else 0666 less the umask (mkstemp's
    0600 would hide a shared cache or report from other users)."""
    if os.path.exists(path):
        return os.stat(path).st_mode & 0o777
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
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
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.",
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


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, flushed to disk."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
