"""Datasets and a deterministic batch iterator shared by every backend.

Everything here is plain numpy so that the PyTorch, Keras and MXNet
trainers see byte-identical inputs and batch orders.  Two datasets are
provided:

``"digits"`` (the default, no download)
    scikit-learn's bundled ``load_digits`` (1,797 8x8 images, values
    0..16) bilinearly resized to 28x28 with numpy.  Fixed split: 30
    images of each digit (300 in total) go to the test set, the other
    1,497 to the training set.  See :func:`load_digits`.

``"fashion-mnist"``
    The official Fashion-MNIST IDX files (60,000 train / 10,000 test),
    downloaded once, checked against pinned SHA-256 digests and cached.
    See :func:`load_fashion_mnist`.

Both come back as a :class:`Dataset`: float32 images of shape
``(N, 1, 28, 28)`` (NCHW) in ``[0, 1]`` and int64 labels of shape
``(N,)``.

Example:
    >>> from unisched.data import load_dataset, iterate_batches
    >>> ds = load_dataset("digits", limit=100)
    >>> ds.x_train.shape, ds.x_train.dtype.name
    ((100, 1, 28, 28), 'float32')
    >>> xb, yb = next(iterate_batches(ds.x_train, ds.y_train, 32, seed=1))
    >>> xb.shape, yb.dtype.name
    ((32, 1, 28, 28), 'int64')
"""

from __future__ import annotations

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
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from ._io import atomic_path

__all__ = [
    "DIGITS_CLASSES",
    "DIGITS_TEST_PER_CLASS",
    "DatasetUnavailableError",
    "Dataset",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_FILES",
    "FASHION_MNIST_MIRRORS",
    "FASHION_MNIST_SHA256",
    "DATASET_NAMES",
    "data_dir",
    "download_fashion_mnist",
    "epoch_permutation",
    "iterate_batches",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "num_batches",
    "read_idx",
    "resize_bilinear",
]

IMAGE_SIZE = 28

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

FASHION_MNIST_MIRRORS: tuple[str, ...] = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/"
    "master/data/fashion/",
)

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "t-shirt", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
)

DIGITS_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))

#: Number of images of each digit held out for the digits test set.
DIGITS_TEST_PER_CLASS = 30

DATASET_NAMES: tuple[str, ...] = ("digits", "fashion-mnist")

_FASHION_SUBDIR = "fashion-mnist"
_CHUNK = 1 << 16
_SHA256_RE = re.compile(r"[0-9a-f]{64}")

# IDX type code -> big-endian numpy dtype (the IDX format is big-endian).
_IDX_DTYPES = {
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


@dataclass(frozen=True, eq=False)
class Dataset:
    """An image-classification dataset held in memory.

    Attributes:
        name: dataset name as accepted by :func:`load_dataset`.
        x_train: float32 images, shape ``(N, 1, 28, 28)``, in ``[0, 1]``.
        y_train: int64 labels, shape ``(N,)``, in ``[0, len(classes))``.
        x_test: float32 images, shape ``(M, 1, 28, 28)``.
        y_test: int64 labels, shape ``(M,)``.
        classes: human-readable class names, indexed by label.

    Example:
        >>> ds = load_dataset("digits")
        >>> ds.num_classes, ds.classes[int(ds.y_train[0])]
        (10, '0')
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x = getattr(self, f"x_{split}")
            y = getattr(self, f"y_{split}")
            if x.dtype != np.float32 or x.ndim != 4 or x.shape[1] != 1:
                raise ValueError(
                    f"x_{split} must be float32 of shape (N, 1, H, W), "
                    f"got {x.dtype} {x.shape}")
            if y.dtype != np.int64 or y.shape != (x.shape[0],):
                raise ValueError(
                    f"y_{split} must be int64 of shape ({x.shape[0]},), "
                    f"got {y.dtype} {y.shape}")

    @property
    def num_classes(self) -> int:
        """Number of classes (``len(classes)``)."""
        return len(self.classes)

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, "
                f"train={self.x_train.shape[0]}, "
                f"test={self.x_test.shape[0]}, "
                f"classes={self.num_classes})")


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


def _fetch(url: str, dest: Path, expected: str, timeout: float) -> None:
    """Download ``url`` to ``dest`` atomically, verifying its SHA-256.

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
            for chunk in iter(lambda: resp.read(_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
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
        timeout: float = 30.0,
        download: bool = True) -> Path:
    """Make sure the four Fashion-MNIST ``.gz`` files are cached.

    Each file already in the cache is checked against its SHA-256; a
    file that fails the check is deleted and downloaded again.  Missing
    files are fetched from the mirrors in order (urllib, one ``timeout``
    per request).  A download is written to a temporary file next to its
    destination, verified, then renamed, so the cache never holds a
    partial or corrupt file under its real name.

    Args:
        root: cache root (see :func:`data_dir`); files go into its
            ``fashion-mnist`` subdirectory.
        mirrors: base URLs tried in order, each joined with the file
            name.  Defaults to :data:`FASHION_MNIST_MIRRORS`.
        sha256: file name -> expected hex SHA-256 for all four files.
            Defaults to :data:`FASHION_MNIST_SHA256`.
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
    directory = data_dir(root) / _FASHION_SUBDIR

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
                    _fetch(url, directory / name, expected[name], timeout)
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
    return directory


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


# ---------------------------------------------------------------- loaders


def _check_limit(limit: int | None) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)):
        raise TypeError(f"limit must be an int or None, got {limit!r}")
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    return int(limit)


def _take(arr: np.ndarray, limit: int | None) -> np.ndarray:
    return arr if limit is None else arr[:limit]


def load_fashion_mnist(
        root: str | os.PathLike[str] | None = None, *,
        limit: int | None = None,
        mirrors: Sequence[str] | None = None,
        sha256: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        download: bool = True) -> Dataset:
    """Load Fashion-MNIST, downloading and caching it on first use.

    Args:
        root: cache root (see :func:`data_dir`).
        limit: keep only the first ``limit`` training and the first
            ``limit`` test examples (for quick runs).
        mirrors, sha256, timeout, download: as for
            :func:`download_fashion_mnist`.

    Returns:
        A :class:`Dataset` named ``"fashion-mnist"`` with pixel values
        ``uint8 / 255`` and :data:`FASHION_MNIST_CLASSES`.

    Raises:
        DatasetUnavailableError: the files are missing and cannot be
            downloaded.
        ValueError: a file is not valid IDX or the files disagree.

    Example (needs the network or the cached files)::

        ds = load_fashion_mnist(limit=1000)
        ds.x_train.shape  # (1000, 1, 28, 28)
    """
    limit = _check_limit(limit)
    folder = download_fashion_mnist(root, mirrors=mirrors, sha256=sha256,
                                    timeout=timeout, download=download)
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        img_path = folder / f"{prefix}-images-idx3-ubyte.gz"
        lab_path = folder / f"{prefix}-labels-idx1-ubyte.gz"
        images = read_idx(img_path)
        labels = read_idx(lab_path)
        if images.dtype != np.uint8 or images.ndim != 3 \
                or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"{img_path}: expected uint8 images of shape "
                             f"(N, 28, 28), got {images.dtype} "
                             f"{images.shape}")
        if labels.dtype != np.uint8 or labels.shape != images.shape[:1]:
            raise ValueError(f"{lab_path}: expected {images.shape[0]} "
                             f"uint8 labels to match {img_path.name}, got "
                             f"{labels.dtype} {labels.shape}")
        if labels.size and labels.max() >= len(FASHION_MNIST_CLASSES):
            raise ValueError(f"{lab_path}: label {labels.max()} out of "
                             f"range 0..9")
        images = _take(images, limit)
        x = images[:, None].astype(np.float32) / np.float32(255)
        arrays[f"x_{split}"] = x
        arrays[f"y_{split}"] = _take(labels, limit).astype(np.int64)
    return Dataset(name="fashion-mnist", classes=FASHION_MNIST_CLASSES,
                   **arrays)


def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Row-stochastic ``(n_out, n_in)`` bilinear interpolation weights.

    Pixel centres are aligned (``align_corners=False``, as in PIL and
    OpenCV), and samples beyond the outer centres are clamped to the
    edge pixel, so constant images stay constant.
    """
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    weights = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(weights, (rows, lo), 1.0 - frac)
    np.add.at(weights, (rows, hi), frac)
    return weights


def resize_bilinear(images: np.ndarray, size: int) -> np.ndarray:
    """Resize square images ``(N, H, H)`` to ``(N, size, size)``.

    Separable bilinear interpolation in float64 (see
    :func:`_bilinear_matrix`); the result is a convex combination of
    input pixels, so the value range is preserved.

    Args:
        images: array of shape ``(N, H, W)``.
        size: output height and width in pixels.

    Example:
        >>> resize_bilinear(np.ones((1, 8, 8)), 28).shape
        (1, 28, 28)
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W), got "
                         f"{images.shape}")
    rows = _bilinear_matrix(images.shape[1], size)
    cols = _bilinear_matrix(images.shape[2], size)
    return np.einsum("ih,nhw,jw->nij", rows, images, cols, optimize=True)


def _digits_split(target: np.ndarray) -> np.ndarray:
    """Boolean test mask: 30 evenly spaced images of each digit.

    A pure integer rule (no RNG) so the split is identical on every
    machine and numpy version; spacing the picks through each class
    spreads them over the writers, since the data is grouped by writer.
    """
    test = np.zeros(target.shape[0], dtype=bool)
    k = DIGITS_TEST_PER_CLASS
    for c in range(10):
        idx = np.flatnonzero(target == c)
        test[idx[(np.arange(k) * idx.size) // k]] = True
    return test


def load_digits(*, limit: int | None = None) -> Dataset:
    """Load scikit-learn's bundled digits, resized to 28x28.

    The 1,797 8x8 images (values 0..16) are scaled to ``[0, 1]`` by
    dividing by 16 and bilinearly resized to 28x28 with numpy.  Split:
    for each digit, the images at positions ``(k * n_c) // 30``,
    ``k = 0..29``, within that digit's images (in scikit-learn's order)
    form the test set, 300 images in all; the remaining 1,497 form the
    training set.  Both keep scikit-learn's order.  No randomness is
    involved, so the result is the same everywhere.

    Args:
        limit: keep only the first ``limit`` training and the first
            ``limit`` test examples.

    Returns:
        A :class:`Dataset` named ``"digits"`` with classes ``"0".."9"``.

    Example:
        >>> ds = load_digits()
        >>> ds.x_train.shape, ds.x_test.shape
        ((1497, 1, 28, 28), (300, 1, 28, 28))
    """
    limit = _check_limit(limit)
    # Imported here so that the rest of unisched does not need sklearn.
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    images = np.asarray(bunch.images, dtype=np.float64) / 16.0
    target = np.asarray(bunch.target, dtype=np.int64)
    big = resize_bilinear(images, IMAGE_SIZE)
    # Rounding can stray by an ulp outside [0, 1]; the contract is strict.
    x = np.clip(big, 0.0, 1.0).astype(np.float32)[:, None]
    test = _digits_split(target)
    return Dataset(
        name="digits",
        x_train=_take(x[~test], limit), y_train=_take(target[~test], limit),
        x_test=_take(x[test], limit), y_test=_take(target[test], limit),
        classes=DIGITS_CLASSES)


def load_dataset(name: str = "digits", *, limit: int | None = None,
                 **kwargs: object) -> Dataset:
    """Load a dataset by name.

    Args:
        name: ``"digits"`` (default, bundled, no download) or
            ``"fashion-mnist"`` (``"fashion_mnist"`` is also accepted;
            case-insensitive).
        limit: keep only the first ``limit`` training and test examples.
        **kwargs: passed to :func:`load_fashion_mnist` (``root``,
            ``mirrors``, ``sha256``, ``timeout``, ``download``); the
            digits loader takes none.

    Raises:
        ValueError: unknown name (the message lists the valid ones).
        TypeError: keyword arguments the loader does not accept.

    Example:
        >>> load_dataset("digits", limit=10).x_test.shape
        (10, 1, 28, 28)
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {name!r}")
    key = name.strip().lower().replace("_", "-")
    if key == "digits":
        if kwargs:
            raise TypeError(f"load_dataset('digits') takes no extra "
                            f"arguments, got {sorted(kwargs)}")
        return load_digits(limit=limit)
    if key == "fashion-mnist":
        return load_fashion_mnist(limit=limit, **kwargs)  # type: ignore
    raise ValueError(f"unknown dataset {name!r}; valid names: "
                     f"{', '.join(DATASET_NAMES)}")


# -------------------------------------------------------------- batching


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got "
                        f"{type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """Number of batches :func:`iterate_batches` yields per epoch.

    Args:
        n: number of samples.
        batch_size: samples per batch.
        drop_last: whether a final partial batch is dropped.

    Example:
        >>> num_batches(10, 4), num_batches(10, 4, drop_last=True)
        (3, 2)
    """
    n = _check_int("n", n, 0)
    batch_size = _check_int("batch_size", batch_size, 1)
    drop_last = _check_bool("drop_last", drop_last)
    return n // batch_size if drop_last else -(-n // batch_size)


def epoch_permutation(n: int, *, seed: int = 0, epoch: int = 0
                      ) -> np.ndarray:
    """The sample order used by :func:`iterate_batches` for one epoch.

    It depends only on ``(seed, epoch)``: the generator is
    ``np.random.default_rng(np.random.SeedSequence([seed, epoch]))``, so
    every framework (and every resumed run) sees the same order.

    Args:
        n: number of samples.
        seed: non-negative int, the run's data seed.
        epoch: non-negative int, the 0-based epoch index.

    Returns:
        An int64 permutation of ``range(n)``.

    Example:
        >>> sorted(epoch_permutation(5, seed=3, epoch=1))
        [0, 1, 2, 3, 4]
    """
    n = _check_int("n", n, 0)
    seed = _check_int("seed", seed, 0)
    epoch = _check_int("epoch", epoch, 0)
    rng = np.random.default_rng(np.random.SeedSequence([seed, epoch]))
    return rng.permutation(n).astype(np.int64)


def iterate_batches(x: np.ndarray, y: np.ndarray, batch_size: int, *,
                    shuffle: bool = True, seed: int = 0, epoch: int = 0,
                    drop_last: bool = False
                    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(x_batch, y_batch)`` numpy pairs covering one epoch.

    With ``shuffle=True`` the order is :func:`epoch_permutation` of
    ``(seed, epoch)``; otherwise the data order.  Every sample appears
    exactly once per epoch; the last batch is smaller when ``batch_size``
    does not divide ``len(x)``, unless ``drop_last=True`` drops it.
    Arguments are checked when this function is called, not on the
    first ``next()``.

    Args:
        x: inputs, indexed along axis 0.
        y: targets, same length as ``x`` along axis 0.
        batch_size: samples per batch (positive int).
        shuffle: whether to permute the samples.
        seed: non-negative int, the run's data seed.
        epoch: non-negative int, the 0-based epoch index.
        drop_last: drop a final batch smaller than ``batch_size``.

    Returns:
        An iterator of ``num_batches(len(x), batch_size, drop_last)``
        pairs; batches are copies, safe to modify.

    Raises:
        TypeError: non-int ``batch_size``/``seed``/``epoch``, non-bool
            flags, or ``x``/``y`` that are not arrays.
        ValueError: non-positive ``batch_size``, negative ``seed`` or
            ``epoch``, or ``len(x) != len(y)``.

    Example:
        >>> x = np.arange(5)
        >>> [b.tolist() for b, _ in iterate_batches(x, x, 2, shuffle=False)]
        [[0, 1], [2, 3], [4]]
    """
    for arg_name, arr in (("x", x), ("y", y)):
        if not isinstance(arr, np.ndarray) or arr.ndim < 1:
            raise TypeError(f"{arg_name} must be a numpy array with at "
                            f"least one dimension, got "
                            f"{type(arr).__name__}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same length, got "
                         f"{x.shape[0]} and {y.shape[0]}")
    batch_size = _check_int("batch_size", batch_size, 1)
    seed = _check_int("seed", seed, 0)
    epoch = _check_int("epoch", epoch, 0)
    shuffle = _check_bool("shuffle", shuffle)
    drop_last = _check_bool("drop_last", drop_last)
    n = x.shape[0]
    order = (epoch_permutation(n, seed=seed, epoch=epoch) if shuffle
             else np.arange(n, dtype=np.int64))
    count = num_batches(n, batch_size, drop_last)
    return _batches(x, y, order, batch_size, count)


def _batches(x: np.ndarray, y: np.ndarray, order: np.ndarray,
             batch_size: int, count: int
             ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for b in range(count):
        idx = order[b * batch_size:(b + 1) * batch_size]
        yield x[idx], y[idx]
