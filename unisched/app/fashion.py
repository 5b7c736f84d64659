"""Fashion-MNIST: the official IDX files, downloaded once from a mirror,
checked against pinned SHA-256 digests and cached atomically; and the IDX
reader.  :func:`unisched.app.data.load_fashion_mnist` builds the dataset.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import os
import re
import socket
import struct
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_path

FASHION_MNIST_FILES: tuple[str, ...] = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

# SHA-256 of the official .gz files, copied from TensorFlow Datasets'
# tensorflow_datasets/url_checksums/fashion_mnist.txt (commit 333639b3),
# which also records the sizes 26421880, 29515, 4422102 and 5148 bytes.
# The same digests appear in batchup (Britefury/batchup, fashion_mnist.py).
# Older copies of batchup pinned a different set (08dc20ab..., for files
# since re-uploaded by Zalando); do not "fix" these to match it.
FASHION_MNIST_SHA256: Mapping[str, str] = {
    "train-images-idx3-ubyte.gz":
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte.gz":
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte.gz":
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz":
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}

#: The files' sizes in bytes (from the same record); a mirror that sends
#: more is cut off there instead of filling the disk.
FASHION_MNIST_SIZES: Mapping[str, int] = {
    "train-images-idx3-ubyte.gz": 26421880,
    "train-labels-idx1-ubyte.gz": 29515,
    "t10k-images-idx3-ubyte.gz": 4422102,
    "t10k-labels-idx1-ubyte.gz": 5148,
}

#: HTTPS first; the plain-HTTP bucket is the fallback (the checksums guard
#: either way).
FASHION_MNIST_MIRRORS: tuple[str, ...] = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/"
    "master/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "t-shirt", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
)


_FASHION_SUBDIR = "fashion-mnist"
_CHUNK = 1 << 16
_SHA256_RE = re.compile(r"[0-9a-f]{64}")

# IDX type code -> big-endian numpy dtype (the IDX format is big-endian).
_IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class DatasetUnavailableError(OSError):
    """Dataset files are missing and could not be downloaded.

    Attributes:
        missing: names of the files that are still missing.
        directory: the directory where those files are expected.
    """

    def __init__(self, message: str, missing: Sequence[str],
                 directory: Path) -> None:
        super().__init__(message)
        self.missing = tuple(missing)
        self.directory = Path(directory)



# ---------------------------------------------------------------- paths


def data_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """Return the root directory of the dataset cache.

    Precedence: the ``root`` argument, then ``$UNISCHED_DATA``, then
    ``$XDG_CACHE_HOME/unisched``, then ``~/.cache/unisched``.  The
    directory is not created.

    Args:
        root: explicit directory; overrides the environment.

    Returns:
        The cache root.  Fashion-MNIST lives in its
        ``fashion-mnist`` subdirectory.

    Example:
        >>> data_dir("/tmp/x")
        PosixPath('/tmp/x')
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("UNISCHED_DATA")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "unisched"


# ----------------------------------------------------------- downloading


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_sha256_map(sha256: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for name in FASHION_MNIST_FILES:
        if name not in sha256:
            raise ValueError(f"sha256 has no entry for {name!r}; "
                             f"got keys {sorted(sha256)}")
        value = sha256[name]
        if not isinstance(value, str) or not _SHA256_RE.fullmatch(
                value.lower()):
            raise ValueError(f"sha256[{name!r}] must be 64 hex digits, "
                             f"got {value!r}")
        out[name] = value.lower()
    return out


def _check_mirrors(mirrors: Sequence[str]) -> list[str]:
    if isinstance(mirrors, str):
        # A bare string would otherwise be iterated letter by letter.
        mirrors = [mirrors]
    out = []
    for url in mirrors:
        if not isinstance(url, str):
            raise TypeError(f"mirrors must be URL strings, got {url!r}")
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in ("http", "https", "file"):
            raise ValueError(f"mirror URL must be http(s) or file, "
                             f"got {url!r}")
        out.append(url if url.endswith("/") else url + "/")
    if not out:
        raise ValueError("mirrors must list at least one URL, got none")
    return out


class _BadDownload(Exception):
    """A mirror answered, but with the wrong bytes (short or altered)."""


def _fetch(url: str, dest: Path, expected: str, limit: int,
           timeout: float) -> None:
    """Download ``url`` to ``dest`` atomically, verifying its SHA-256 and
    reading at most ``limit`` bytes.

    The bytes go to a hidden temporary file in the destination directory
    (``unisched._io.atomic_path``: an atomic rename on the same
    filesystem) and only a file with the right digest is ever renamed into
    place; any error removes it.
    """
    with atomic_path(dest) as tmp:
        digest = hashlib.sha256()
        size = 0
        with open(tmp, "wb") as out, \
                urllib.request.urlopen(url, timeout=timeout) as resp:
            declared = resp.headers.get("Content-Length")
            if declared is not None and declared.isdigit() \
                    and int(declared) > limit:
                raise _BadDownload(f"announced {declared} bytes, the file "
                                   f"has {limit}")
            for chunk in iter(lambda: resp.read(_CHUNK), b""):
                size += len(chunk)
                if size > limit:
                    raise _BadDownload(f"sent more than the file's {limit} "
                                       f"bytes; stopped reading")
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        # http.client's read(amt) returns b"" on a dropped connection
        # instead of raising IncompleteRead; say so rather than leave it
        # to a puzzling checksum mismatch.
        if declared is not None and declared.isdigit() \
                and size < int(declared):
            raise _BadDownload(f"connection closed after {size} of "
                               f"{declared} bytes")
        got = digest.hexdigest()
        if got != expected:
            raise _BadDownload(
                f"SHA-256 mismatch: expected {expected}, got {got}")


def _unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` means the host itself cannot be reached.

    Such a mirror is skipped for the remaining files so that an offline
    machine fails after one attempt per mirror, not one per file.
    """
    down = (ConnectionError, socket.gaierror, TimeoutError, socket.timeout)
    if isinstance(exc, urllib.error.HTTPError):
        return False
    if isinstance(exc, urllib.error.URLError):
        return isinstance(exc.reason, down)
    return isinstance(exc, down)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError) and \
            isinstance(exc.reason, BaseException):
        exc = exc.reason
    return f"{type(exc).__name__}: {exc}"


def _manual_instructions(directory: Path, missing: Sequence[str],
                         mirrors: Sequence[str]) -> str:
    lines = [f"Put these files, unchanged (still gzipped), in "
             f"{directory}{os.sep}:"]
    lines += [f"  {name}" for name in missing]
    lines.append("They are available from any of:")
    lines += [f"  {m}" for m in mirrors]
    lines.append("Alternatively set UNISCHED_DATA to a directory whose "
                 f"'{_FASHION_SUBDIR}' subdirectory holds all four files.")
    return "\n".join(lines)


def download_fashion_mnist(
        root: str | os.PathLike[str] | None = None, *,
        mirrors: Sequence[str] | None = None,
        sha256: Mapping[str, str] | None = None,
        sizes: Mapping[str, int] | None = None,
        timeout: float = 30.0,
        download: bool = True) -> Path:
    """Make sure the four Fashion-MNIST ``.gz`` files are cached.

    Each file already in the cache is checked against its SHA-256; a
    file that fails the check is deleted and downloaded again.  Missing
    files are fetched from the mirrors in order (urllib, one ``timeout``
    per request).  A download is written to a temporary file next to its
    destination, verified, then renamed, so the cache never holds a
    partial or corrupt file under its real name.  Processes sharing the
    cache take turns (a lock file in the cache folder), so one never
    deletes a copy another has just verified.

    Args:
        root: cache root (see :func:`data_dir`); files go into its
            ``fashion-mnist`` subdirectory.
        mirrors: base URLs tried in order, each joined with the file
            name.  Defaults to :data:`FASHION_MNIST_MIRRORS`.
        sha256: file name -> expected hex SHA-256 for all four files.
            Defaults to :data:`FASHION_MNIST_SHA256`.
        sizes: file name -> the most bytes a download may have.
            Defaults to :data:`FASHION_MNIST_SIZES`.
        timeout: socket timeout per request, in seconds.
        download: if False, never touch the network; missing files
            raise immediately.

    Returns:
        The directory holding the four verified files.

    Raises:
        DatasetUnavailableError: some files are missing and no mirror
            delivered them; the message names the files, what went wrong
            with each mirror and the directory to put them in by hand.
        ValueError: bad ``mirrors``, ``sha256`` or ``timeout``.

    Example (needs the network, so not run as a doctest)::

        folder = download_fashion_mnist()
        sorted(p.name for p in folder.glob("*.gz"))
        # ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz', ...]
    """
    expected = _check_sha256_map(
        FASHION_MNIST_SHA256 if sha256 is None else sha256)
    urls = _check_mirrors(
        FASHION_MNIST_MIRRORS if mirrors is None else mirrors)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, "
                         f"got {timeout!r}")
    limits = _check_sizes(FASHION_MNIST_SIZES if sizes is None else sizes)
    directory = data_dir(root) / _FASHION_SUBDIR
    with _cache_lock(directory, create=download):
        _repair(directory, expected, limits, urls, timeout, download)
    return directory


def _check_sizes(sizes: Mapping[str, int]) -> dict[str, int]:
    out = {}
    for name in FASHION_MNIST_FILES:
        value = sizes.get(name) if isinstance(sizes, Mapping) else None
        if isinstance(value, bool) or not isinstance(value, int) \
                or value < 1:
            raise ValueError(f"sizes[{name!r}] must be a positive number "
                             f"of bytes, got {value!r}")
        out[name] = value
    return out


@contextlib.contextmanager
def _cache_lock(directory: Path, create: bool) -> Iterator[None]:
    """Hold a lock file beside ``directory`` (``.fashion-mnist.lock``)
    while the cache is checked and repaired (POSIX ``flock``; elsewhere
    the atomic renames alone protect it)."""
    if not directory.is_dir() and not create:
        yield
        return
    directory.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(directory.parent / f".{directory.name}.lock", "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _repair(directory: Path, expected: dict[str, str],
            limits: dict[str, int], urls: list[str], timeout: float,
            download: bool) -> None:
    """Verify the cached files, fetch the missing ones; raise
    DatasetUnavailableError for what is still missing."""
    missing: list[str] = []
    notes: dict[str, list[str]] = {}
    for name in FASHION_MNIST_FILES:
        path = directory / name
        if path.is_file():
            got = _sha256_of(path)
            if got == expected[name]:
                continue
            # A stale or damaged copy must not survive: remove it even if
            # the re-download below fails.
            path.unlink()
            notes[name] = [f"cached copy had SHA-256 {got}, expected "
                           f"{expected[name]}; deleted it"]
        missing.append(name)

    if missing and download:
        directory.mkdir(parents=True, exist_ok=True)
        dead: set[str] = set()
        still_missing = []
        for name in missing:
            log = notes.setdefault(name, [])
            for base in urls:
                url = base + name
                if base in dead:
                    log.append(f"{url}: skipped, host unreachable earlier")
                    continue
                try:
                    _fetch(url, directory / name, expected[name],
                           limits[name], timeout)
                except _BadDownload as exc:
                    log.append(f"{url}: {exc}")
                except (OSError, http.client.HTTPException) as exc:
                    # URLError, HTTPError, timeouts and http.client
                    # protocol errors all land here.
                    log.append(f"{url}: {_describe(exc)}")
                    if _unreachable(exc):
                        dead.add(base)
                else:
                    break
            else:
                still_missing.append(name)
        missing = still_missing

    if missing:
        head = (f"Fashion-MNIST: {len(missing)} of 4 files missing from "
                f"{directory}")
        head += "." if download else " and download=False."
        details = []
        for name in missing:
            for entry in notes.get(name, []):
                details.append(f"  {name}: {entry}")
        parts = [head]
        if details:
            parts.append("What went wrong:\n" + "\n".join(details))
        parts.append(_manual_instructions(directory, missing, urls))
        raise DatasetUnavailableError("\n".join(parts), missing, directory)


# ------------------------------------------------------------ IDX parsing


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (gzipped or not) into a numpy array.

    The header is validated: two zero bytes, a known type code, a
    dimension count of 1..4, and a payload whose size matches the
    dimensions exactly (no truncation, no trailing bytes).

    Args:
        path: the ``.gz`` or raw IDX file; gzip is detected from the
            content, not the name.

    Returns:
        An array in native byte order with the dimensions of the file,
        e.g. ``uint8`` ``(60000, 28, 28)`` for Fashion-MNIST images.

    Raises:
        ValueError: the file is not valid (bad gzip stream, wrong magic,
            truncated, extra bytes); the message names the file.

    Example (needs the file, so not run as a doctest)::

        read_idx("t10k-labels-idx1-ubyte.gz").shape  # (10000,)
    """
    path = Path(path)
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{path}: not a valid gzip file "
                             f"({type(exc).__name__}: {exc})") from None
    if len(raw) < 4:
        raise ValueError(f"{path}: {len(raw)} bytes is too short for an "
                         f"IDX header")
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    magic = raw[:4].hex()
    if zero != 0 or code not in _IDX_DTYPES or not 1 <= ndim <= 4:
        raise ValueError(f"{path}: bad IDX magic number 0x{magic} (want "
                         f"0x0000TTNN with a known type TT, 1<=NN<=4)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} of "
                         f"{header} bytes)")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _IDX_DTYPES[code]
    want = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header
    if got != want:
        what = "truncated" if got < want else "has trailing bytes"
        raise ValueError(f"{path}: IDX data {what}: dims {dims} need "
                         f"{want} bytes of data, file has {got}")
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))

