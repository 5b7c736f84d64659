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
    >>> from unisched.app.data import load_dataset, iterate_batches
    >>> ds = load_dataset("digits", limit=100)
    >>> ds.x_train.shape, ds.x_train.dtype.name
    ((100, 1, 28, 28), 'float32')
    >>> xb, yb = next(iterate_batches(ds.x_train, ds.y_train, 32, seed=1))
    >>> xb.shape, yb.dtype.name
    ((32, 1, 28, 28), 'int64')
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .fashion import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_FILES,
    FASHION_MNIST_MIRRORS,
    FASHION_MNIST_SHA256,
    DatasetUnavailableError,
    data_dir,
    download_fashion_mnist,
    read_idx,
)

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
    "batch_indices",
    "check_data",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "num_batches",
    "read_idx",
    "resize_bilinear",
]

IMAGE_SIZE = 28

DIGITS_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))

#: Number of images of each digit held out for the digits test set.
DIGITS_TEST_PER_CLASS = 30

DATASET_NAMES: tuple[str, ...] = ("digits", "fashion-mnist")


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


def check_data(data: Any) -> Dataset:
    """``data`` must be a :class:`unisched.app.data.Dataset`."""
    if isinstance(data, Dataset):
        return data
    raise TypeError(f"data must be a unisched.app.data.Dataset (see "
                    f"unisched.app.data.load_dataset), got "
                    f"{type(data).__name__}")


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
                 **kwargs: Any) -> Dataset:
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
        return load_fashion_mnist(limit=limit, **kwargs)
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
    return ((x[idx], y[idx]) for idx in batch_indices(
        x.shape[0], batch_size, shuffle=shuffle, seed=seed, epoch=epoch,
        drop_last=drop_last))


def batch_indices(n: int, batch_size: int, *, shuffle: bool = True,
                  seed: int = 0, epoch: int = 0, drop_last: bool = False
                  ) -> Iterator[np.ndarray]:
    """The sample indices of each batch :func:`iterate_batches` yields
    (the one definition of the batch order), for a backend that gathers
    the samples itself (into memory of its own, say).

    >>> [i.tolist() for i in batch_indices(5, 2, shuffle=False)]
    [[0, 1], [2, 3], [4]]
    """
    batch_size = _check_int("batch_size", batch_size, 1)
    seed = _check_int("seed", seed, 0)
    epoch = _check_int("epoch", epoch, 0)
    shuffle = _check_bool("shuffle", shuffle)
    drop_last = _check_bool("drop_last", drop_last)
    order = (epoch_permutation(n, seed=seed, epoch=epoch) if shuffle
             else np.arange(n, dtype=np.int64))
    count = num_batches(n, batch_size, drop_last)
    return (order[b * batch_size:(b + 1) * batch_size]
            for b in range(count))
