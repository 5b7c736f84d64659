"""Tests for unisched.app.data: downloads, IDX parsing, loaders, batching.

Downloads are exercised against a real HTTP server on 127.0.0.1 that
serves small generated IDX files; nothing here touches the internet.
"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import numpy as np
import pytest

from unisched.app import data, fashion
from unisched.app.data import (
    FASHION_MNIST_FILES,
    Dataset,
    DatasetUnavailableError,
    data_dir,
    download_fashion_mnist,
    epoch_permutation,
    iterate_batches,
    load_dataset,
    load_digits,
    load_fashion_mnist,
    num_batches,
    read_idx,
    resize_bilinear,
)

# The server and its fixtures are shared with tests/faults.
from idx_server import (  # noqa: F401 (fixtures are used by name)
    GOOD,
    GOOD_SHA,
    TEST_LABELS,
    TRAIN_LABELS,
    IdxServer,
    _hermetic_env,
    dead_url,
    gz,
    idx_bytes,
    make_files,
    make_images,
    pixel,
    server,
    sha_of,
)


def fetch(root, mirrors, sha=None, **kw):
    return load_fashion_mnist(root, mirrors=mirrors,
                              sha256=GOOD_SHA if sha is None else sha,
                              timeout=5, **kw)


def cache_listing(root: Path) -> list[str]:
    folder = root / "fashion-mnist"
    return sorted(os.listdir(folder)) if folder.exists() else []


# --------------------------------------------------------- fashion-mnist


def test_download_parses_and_reuses_cache(server, tmp_path):
    url = server.add("m1", GOOD)
    ds = fetch(tmp_path, [url])

    assert ds.name == "fashion-mnist"
    assert ds.x_train.shape == (7, 1, 28, 28)
    assert ds.x_test.shape == (3, 1, 28, 28)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.y_train.tolist() == TRAIN_LABELS
    assert ds.y_test.tolist() == TEST_LABELS
    assert ds.x_train[3, 0, 5, 7] == np.float32(pixel(3, 5, 7) / 255)
    assert ds.x_test[2, 0, 27, 1] == np.float32(pixel(2, 27, 1) / 255)
    assert ds.classes[0] == "t-shirt" and ds.classes[9] == "ankle boot"
    assert server.requests == [f"/m1/{n}" for n in FASHION_MNIST_FILES]
    assert cache_listing(tmp_path) == sorted(FASHION_MNIST_FILES)
    for name, body in GOOD.items():
        assert (tmp_path / "fashion-mnist" / name).read_bytes() == body

    again = fetch(tmp_path, [url])
    assert len(server.requests) == 4, "second load must use the cache"
    np.testing.assert_array_equal(again.x_train, ds.x_train)


def test_first_mirror_refused_second_used(server, dead_url, tmp_path):
    url = server.add("m2", GOOD)
    ds = fetch(tmp_path, [dead_url, url])
    assert ds.y_test.tolist() == TEST_LABELS
    assert server.requests == [f"/m2/{n}" for n in FASHION_MNIST_FILES]


def test_404_on_first_mirror_falls_through(server, tmp_path):
    partial = {n: b for n, b in GOOD.items() if "train" in n}
    first = server.add("half", partial)
    second = server.add("full", GOOD)
    ds = fetch(tmp_path, [first, second])
    assert ds.y_train.tolist() == TRAIN_LABELS
    # An HTTP error is not an unreachable host: the first mirror stays
    # in use for the files it has.
    assert server.requests == [
        "/half/train-images-idx3-ubyte.gz",
        "/half/train-labels-idx1-ubyte.gz",
        "/half/t10k-images-idx3-ubyte.gz",
        "/full/t10k-images-idx3-ubyte.gz",
        "/half/t10k-labels-idx1-ubyte.gz",
        "/full/t10k-labels-idx1-ubyte.gz",
    ]


def flip_last_byte(b: bytes) -> bytes:
    return b[:-1] + bytes([b[-1] ^ 0xFF])


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    bad = {n: flip_last_byte(b) for n, b in GOOD.items()}
    url = server.add("bad", bad)
    with pytest.raises(DatasetUnavailableError) as info:
        fetch(tmp_path, [url])
    msg = str(info.value)
    want = GOOD_SHA["t10k-labels-idx1-ubyte.gz"]
    got = hashlib.sha256(bad["t10k-labels-idx1-ubyte.gz"]).hexdigest()
    assert f"expected {want}, got {got}" in msg
    assert info.value.missing == FASHION_MNIST_FILES
    assert info.value.directory == tmp_path / "fashion-mnist"
    assert isinstance(info.value, OSError)
    # No corrupt file and no leftover temporary file.
    assert cache_listing(tmp_path) == []


def test_checksum_mismatch_then_good_mirror(server, tmp_path):
    bad = server.add("bad", {n: flip_last_byte(b) for n, b in GOOD.items()})
    good = server.add("good", GOOD)
    ds = fetch(tmp_path, [bad, good])
    assert ds.y_train.tolist() == TRAIN_LABELS
    assert cache_listing(tmp_path) == sorted(FASHION_MNIST_FILES)


@pytest.mark.parametrize("honest_length", [True, False])
def test_truncated_download(server, tmp_path, honest_length):
    cut = {n: b[: len(b) // 2] for n, b in GOOD.items()}
    # honest_length: a short file served as complete (caught by the
    # checksum); otherwise the connection drops mid-body.
    declared = None if honest_length else {
        n: len(b) for n, b in GOOD.items()}
    url = server.add("cut", cut, declared)
    with pytest.raises(DatasetUnavailableError) as info:
        fetch(tmp_path, [url])
    msg = str(info.value)
    if honest_length:
        assert msg.count("SHA-256 mismatch") == 4
    else:
        size = len(GOOD["t10k-labels-idx1-ubyte.gz"])
        assert f"connection closed after {size // 2} of {size} bytes" in msg
        assert msg.count("connection closed after") == 4
    assert cache_listing(tmp_path) == []


def test_all_mirrors_down_gives_instructions(tmp_path, dead_url):
    other = socket.socket()
    other.bind(("127.0.0.1", 0))
    second = f"http://127.0.0.1:{other.getsockname()[1]}/x/"
    try:
        with pytest.raises(DatasetUnavailableError) as info:
            fetch(tmp_path, [dead_url, second])
    finally:
        other.close()
    msg = str(info.value)
    folder = tmp_path / "fashion-mnist"
    assert f"4 of 4 files missing from {folder}" in msg
    assert f"Put these files, unchanged (still gzipped), in {folder}" in msg
    for name in FASHION_MNIST_FILES:
        assert f"\n  {name}\n" in msg + "\n"
    assert dead_url in msg and second in msg
    assert "ConnectionRefusedError" in msg
    # Each dead host is tried once, then skipped for the other files.
    assert msg.count("skipped, host unreachable earlier") == 6
    assert info.value.missing == FASHION_MNIST_FILES
    assert cache_listing(tmp_path) == []


def test_download_false_never_connects(server, tmp_path):
    url = server.add("m1", GOOD)
    with pytest.raises(DatasetUnavailableError, match="download=False"):
        fetch(tmp_path, [url], download=False)
    assert server.requests == []


def test_corrupt_cached_file_is_replaced(server, tmp_path):
    url = server.add("m1", GOOD)
    fetch(tmp_path, [url])
    victim = tmp_path / "fashion-mnist" / "train-labels-idx1-ubyte.gz"
    victim.write_bytes(b"garbage")
    ds = fetch(tmp_path, [url])
    assert ds.y_train.tolist() == TRAIN_LABELS
    assert victim.read_bytes() == GOOD["train-labels-idx1-ubyte.gz"]
    assert server.requests[4:] == ["/m1/train-labels-idx1-ubyte.gz"]


def test_corrupt_cached_file_removed_when_offline(server, tmp_path):
    url = server.add("m1", GOOD)
    fetch(tmp_path, [url])
    victim = tmp_path / "fashion-mnist" / "t10k-images-idx3-ubyte.gz"
    victim.write_bytes(GOOD["t10k-images-idx3-ubyte.gz"][:-3])
    with pytest.raises(DatasetUnavailableError) as info:
        fetch(tmp_path, [url], download=False)
    assert info.value.missing == ("t10k-images-idx3-ubyte.gz",)
    assert "deleted it" in str(info.value)
    assert not victim.exists()


def test_cache_location_from_environment(server, monkeypatch, tmp_path):
    assert data_dir() == tmp_path / "xdg" / "unisched"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data_dir() == tmp_path / "home" / ".cache" / "unisched"
    monkeypatch.setenv("UNISCHED_DATA", str(tmp_path / "env"))
    assert data_dir() == tmp_path / "env"
    assert data_dir(tmp_path / "arg") == tmp_path / "arg"

    url = server.add("m1", GOOD)
    load_fashion_mnist(mirrors=[url], sha256=GOOD_SHA, timeout=5)
    assert cache_listing(tmp_path / "env") == sorted(FASHION_MNIST_FILES)


def test_limit_and_load_dataset_route(server, tmp_path):
    url = server.add("m1", GOOD)
    ds = load_dataset("Fashion_MNIST", limit=2, root=tmp_path,
                      mirrors=url, sha256=GOOD_SHA, timeout=5)
    assert ds.y_train.tolist() == [3, 1]
    assert ds.y_test.tolist() == [6, 5]
    assert ds.x_train.shape == (2, 1, 28, 28)


@pytest.mark.parametrize("kwargs, bad_file, fragment", [
    ({"train_images": make_images(7, size=27)},
     "train-images-idx3-ubyte.gz", "(7, 27, 27)"),
    ({"test_labels": [6, 5]}, "t10k-labels-idx1-ubyte.gz", "(2,)"),
    ({"train_labels": [3, 1, 4, 1, 5, 10, 2]},
     "train-labels-idx1-ubyte.gz", "label 10 out of range"),
])
def test_loader_rejects_inconsistent_files(server, tmp_path, kwargs,
                                           bad_file, fragment):
    files = make_files(**kwargs)
    url = server.add("odd", files)
    with pytest.raises(ValueError) as info:
        fetch(tmp_path, [url], sha=sha_of(files))
    assert bad_file in str(info.value) and fragment in str(info.value)


# The official files: SHA-256 and size in bytes, as recorded by TensorFlow
# Datasets (url_checksums/fashion_mnist.txt), written out here by hand so
# that an edit to any constant in unisched/app/fashion.py fails a test.
OFFICIAL = {
    "train-images-idx3-ubyte.gz": (
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        26421880),
    "train-labels-idx1-ubyte.gz": (
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        29515),
    "t10k-images-idx3-ubyte.gz": (
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        4422102),
    "t10k-labels-idx1-ubyte.gz": (
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        5148),
}


def test_default_digests_and_sizes():
    assert tuple(OFFICIAL) == FASHION_MNIST_FILES
    assert dict(fashion.FASHION_MNIST_SHA256) == {
        name: sha for name, (sha, _) in OFFICIAL.items()}
    assert dict(fashion.FASHION_MNIST_SIZES) == {
        name: size for name, (_, size) in OFFICIAL.items()}
    assert data.FASHION_MNIST_SHA256 is fashion.FASHION_MNIST_SHA256


def test_default_path_checks_the_official_digests(server, tmp_path):
    # No sha256 argument: the generated files are not the official ones,
    # so every one is rejected against the pinned digest, named in full.
    url = server.add("m1", GOOD)
    with pytest.raises(DatasetUnavailableError) as info:
        download_fashion_mnist(tmp_path, mirrors=[url], timeout=5)
    assert list(info.value.missing) == list(FASHION_MNIST_FILES)
    msg = str(info.value)
    for name, (sha, _) in OFFICIAL.items():
        assert (f"{url}{name}: SHA-256 mismatch: expected {sha}, "
                f"got {GOOD_SHA[name]}") in msg
    assert cache_listing(tmp_path) == []


def test_default_path_uses_the_module_constants(server, monkeypatch,
                                                 tmp_path):
    # With the module constant set to the generated files' digests the
    # same call (no sha256 argument) accepts them ...
    url = server.add("m1", GOOD)
    monkeypatch.setattr(fashion, "FASHION_MNIST_SHA256", dict(GOOD_SHA))
    folder = download_fashion_mnist(tmp_path, mirrors=[url], timeout=5)
    assert sorted(os.listdir(folder)) == sorted(FASHION_MNIST_FILES)
    # ... and one wrong default digest makes its correct file be rejected,
    # also when it is already in the cache.
    name = "train-labels-idx1-ubyte.gz"
    wrong = OFFICIAL[name][0]
    monkeypatch.setattr(fashion, "FASHION_MNIST_SHA256",
                        dict(GOOD_SHA, **{name: wrong}))
    with pytest.raises(DatasetUnavailableError) as info:
        download_fashion_mnist(tmp_path, mirrors=[url], timeout=5)
    assert list(info.value.missing) == [name]
    msg = str(info.value)
    assert (f"cached copy had SHA-256 {GOOD_SHA[name]}, expected "
            f"{wrong}; deleted it") in msg
    assert f"SHA-256 mismatch: expected {wrong}, got {GOOD_SHA[name]}" in msg
    assert name not in cache_listing(tmp_path)


def test_default_constants():
    assert data.FASHION_MNIST_MIRRORS == (
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/"
        "master/data/fashion/",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/")
    assert data.FASHION_MNIST_CLASSES == (
        "t-shirt", "trouser", "pullover", "dress", "coat", "sandal",
        "shirt", "sneaker", "bag", "ankle boot")


@pytest.mark.parametrize("kwargs, exc, fragment", [
    ({"mirrors": []}, ValueError, "at least one URL"),
    ({"mirrors": ["ftp://h/"]}, ValueError, "'ftp://h/'"),
    ({"mirrors": [3]}, TypeError, "got 3"),
    ({"sha256": {}}, ValueError, "'train-images-idx3-ubyte.gz'"),
    ({"sha256": dict(GOOD_SHA, **{"t10k-labels-idx1-ubyte.gz": "abc"})},
     ValueError, "got 'abc'"),
    ({"timeout": 0}, ValueError, "got 0"),
    ({"timeout": "5"}, ValueError, "got '5'"),
])
def test_download_argument_errors(tmp_path, kwargs, exc, fragment):
    args = {"mirrors": ["http://127.0.0.1:9/"], "sha256": GOOD_SHA}
    args.update(kwargs)
    with pytest.raises(exc) as info:
        download_fashion_mnist(tmp_path, **args)
    assert fragment in str(info.value)
    assert not (tmp_path / "fashion-mnist").exists()


# ------------------------------------------------------------ IDX parser


def test_read_idx_raw_and_gzip(tmp_path):
    arr = np.array([[1, -2, 70000], [0, 5, -70000]], dtype=np.int32)
    raw = tmp_path / "ints.idx"
    raw.write_bytes(idx_bytes(arr, code=0x0C))
    zipped = tmp_path / "ints.bin"  # gzip is sniffed, not taken from name
    zipped.write_bytes(gz(idx_bytes(arr, code=0x0C)))
    for path in (raw, zipped):
        out = read_idx(path)
        assert out.dtype == np.int32 and out.dtype.isnative
        assert out.tolist() == [[1, -2, 70000], [0, 5, -70000]]
        out[0, 0] = 9  # must be a writable copy


GOOD_LABELS = idx_bytes(np.array([7, 8, 9], dtype=np.uint8))


@pytest.mark.parametrize("payload, fragment", [
    (b"\x00\x01\x08\x01" + GOOD_LABELS[4:], "bad IDX magic number 0x00010801"),
    (b"\x00\x00\x07\x01" + GOOD_LABELS[4:], "bad IDX magic number 0x00000701"),
    (b"\x00\x00\x08\x00", "bad IDX magic number 0x00000800"),
    (b"\x00\x00", "too short"),
    (GOOD_LABELS[:6], "truncated IDX header (6 of 8 bytes)"),
    (GOOD_LABELS[:-1], "truncated: dims (3,) need 3 bytes of data, file "
                       "has 2"),
    (GOOD_LABELS + b"\x00", "trailing bytes"),
    (gz(GOOD_LABELS)[:-5], "not a valid gzip file"),
    (b"\x1f\x8bjunkjunkjunk", "not a valid gzip file"),
])
def test_read_idx_rejects_bad_files(tmp_path, payload, fragment):
    path = tmp_path / "bad-labels-idx1-ubyte.gz"
    path.write_bytes(payload)
    with pytest.raises(ValueError) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


# ----------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def naive_bilinear(img: np.ndarray, i: int, j: int, out: int) -> float:
    """Textbook bilinear sample with half-pixel centres and edge clamp."""
    n = img.shape[0]

    def coord(k: int) -> tuple[int, int, float]:
        s = min(max((k + 0.5) * n / out - 0.5, 0.0), n - 1.0)
        lo = int(np.floor(s))
        return lo, min(lo + 1, n - 1), s - lo

    r0, r1, fr = coord(i)
    c0, c1, fc = coord(j)
    top = img[r0, c0] * (1 - fc) + img[r0, c1] * fc
    bottom = img[r1, c0] * (1 - fc) + img[r1, c1] * fc
    return top * (1 - fr) + bottom * fr


def test_digits_shapes_split_and_balance(digits):
    assert digits.name == "digits"
    assert digits.x_train.shape == (1497, 1, 28, 28)
    assert digits.x_test.shape == (300, 1, 28, 28)
    assert digits.x_train.dtype == np.float32
    assert digits.y_train.dtype == np.int64
    assert digits.x_train.min() == 0.0 and digits.x_train.max() == 1.0
    assert 0.0 <= digits.x_test.min() and digits.x_test.max() <= 1.0
    assert np.bincount(digits.y_test).tolist() == [30] * 10
    assert np.bincount(digits.y_train).tolist() == [
        148, 152, 147, 153, 151, 152, 151, 149, 144, 150]
    assert digits.y_train[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
                                            0, 1]
    assert digits.y_test[:20].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
                                           5, 0, 7, 8, 2, 3, 6, 9, 1, 4]
    assert digits.classes == tuple("0123456789")


def test_digits_pixels_match_sklearn(digits):
    from sklearn.datasets import load_digits as sk_digits

    sk = sk_digits()
    test_idx = data._digits_split(sk.target)
    assert test_idx.sum() == 300
    # The rule puts the first image of each digit in the test set; the
    # first 10 images of sklearn are the digits 0..9 in order.
    assert np.flatnonzero(test_idx)[:10].tolist() == list(range(10))
    src = sk.images[0] / 16
    got = digits.x_test[0, 0]
    assert got[0, 0] == np.float32(src[0, 0])
    assert got[27, 27] == np.float32(src[7, 7])
    for i, j in [(14, 10), (3, 20), (27, 0), (13, 13)]:
        assert got[i, j] == pytest.approx(naive_bilinear(src, i, j, 28),
                                          abs=1e-6)
    # First training image is sklearn's image 10 (a zero).
    src10 = sk.images[10] / 16
    assert digits.x_train[0, 0, 14, 10] == pytest.approx(
        naive_bilinear(src10, 14, 10, 28), abs=1e-6)
    assert digits.x_train[0, 0, 14, 10] == pytest.approx(0.625)


def test_digits_deterministic_and_limited(digits):
    again = load_digits()
    np.testing.assert_array_equal(again.x_train, digits.x_train)
    np.testing.assert_array_equal(again.y_test, digits.y_test)
    small = load_dataset("digits", limit=50)
    np.testing.assert_array_equal(small.x_train, digits.x_train[:50])
    np.testing.assert_array_equal(small.y_test, digits.y_test[:50])


def test_resize_keeps_constants_and_range():
    flat = np.full((2, 8, 8), 0.25)
    np.testing.assert_allclose(resize_bilinear(flat, 28), 0.25, atol=1e-15)
    ramp = np.tile(np.arange(8.0), (1, 8, 1))
    out = resize_bilinear(ramp, 28)[0]
    assert out[:, 0].tolist() == [0.0] * 28 and out[0, -1] == 7.0
    assert np.all(np.diff(out[0]) >= 0)
    with pytest.raises(ValueError, match=r"\(8, 8\)"):
        resize_bilinear(np.zeros((8, 8)), 28)


def test_load_dataset_errors():
    with pytest.raises(ValueError) as info:
        load_dataset("mnist")
    assert "'mnist'" in str(info.value)
    assert "digits, fashion-mnist" in str(info.value)
    with pytest.raises(TypeError, match="root"):
        load_dataset("digits", root="/tmp")
    with pytest.raises(TypeError, match="got 3"):
        load_dataset(3)
    with pytest.raises(ValueError, match="limit must be >= 1, got 0"):
        load_dataset("digits", limit=0)
    with pytest.raises(TypeError, match="got 2.5"):
        load_digits(limit=2.5)


def test_dataset_validates_arrays():
    x = np.zeros((2, 1, 28, 28), np.float32)
    y = np.zeros(2, np.int64)
    Dataset("t", x, y, x, y, ("a",))
    with pytest.raises(ValueError, match="x_test must be float32"):
        Dataset("t", x, y, x.astype(np.float64), y, ("a",))
    with pytest.raises(ValueError, match=r"y_train must be int64 of shape "
                                         r"\(2,\), got int32"):
        Dataset("t", x, y.astype(np.int32), x, y, ("a",))


# -------------------------------------------------------------- batching


def collect(*args, **kwargs):
    return [(xb.copy(), yb.copy())
            for xb, yb in iterate_batches(*args, **kwargs)]


def test_permutation_is_pinned():
    # Pinned so that a change of seeding scheme (which would silently
    # change every experiment's batch order) fails loudly.
    assert epoch_permutation(10).tolist() == [4, 6, 2, 7, 3, 5, 9, 0, 8, 1]
    assert epoch_permutation(10, epoch=1).tolist() == [
        9, 1, 3, 8, 7, 6, 0, 4, 2, 5]
    assert epoch_permutation(10, seed=1).tolist() == [
        8, 4, 7, 0, 1, 2, 5, 9, 6, 3]


def test_batches_follow_permutation_and_cover_once():
    x = np.arange(10) * 10
    y = np.arange(10)
    batches = collect(x, y, 4, seed=0, epoch=0)
    assert [b[1].tolist() for b in batches] == [
        [4, 6, 2, 7], [3, 5, 9, 0], [8, 1]]
    for xb, yb in batches:
        np.testing.assert_array_equal(xb, yb * 10)
    seen = np.concatenate([yb for _, yb in batches])
    assert sorted(seen.tolist()) == list(range(10))


def test_same_seed_same_batches_other_epoch_other_order():
    rng = np.random.default_rng(123)
    x = rng.random((103, 1, 4, 4)).astype(np.float32)
    y = np.arange(103)
    a = collect(x, y, 16, seed=7, epoch=3)
    b = collect(x, y, 16, seed=7, epoch=3)
    assert len(a) == 7 == num_batches(103, 16)
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    order_a = np.concatenate([yb for _, yb in a])
    order_e = np.concatenate([yb for _, yb in collect(x, y, 16, seed=7,
                                                      epoch=4)])
    order_s = np.concatenate([yb for _, yb in collect(x, y, 16, seed=8,
                                                      epoch=3)])
    assert not np.array_equal(order_a, order_e)
    assert not np.array_equal(order_a, order_s)
    for order in (order_a, order_e, order_s):
        assert np.array_equal(np.sort(order), y)
    assert [len(yb) for _, yb in a] == [16] * 6 + [7]


def test_drop_last_and_no_shuffle():
    x = np.arange(10)
    kept = collect(x, x, 4, drop_last=True)
    assert [yb.tolist() for _, yb in kept] == [[4, 6, 2, 7], [3, 5, 9, 0]]
    assert num_batches(10, 4, drop_last=True) == 2
    plain = collect(x, x, 3, shuffle=False, seed=99, epoch=5)
    assert [yb.tolist() for _, yb in plain] == [
        [0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    exact = collect(x, x, 5, drop_last=True, shuffle=False)
    assert [yb.tolist() for _, yb in exact] == [[0, 1, 2, 3, 4],
                                                [5, 6, 7, 8, 9]]
    assert collect(np.zeros(0), np.zeros(0), 4) == []
    assert collect(x[:3], x[:3], 4, drop_last=True) == []


def test_batches_are_copies():
    x = np.arange(6.0)
    xb, _ = next(iterate_batches(x, x, 3, shuffle=False))
    xb[:] = -1
    assert x.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_num_batches_values():
    assert [num_batches(n, 4) for n in (0, 1, 4, 5, 8, 9)] == [
        0, 1, 1, 2, 2, 3]
    assert [num_batches(n, 4, True) for n in (0, 3, 4, 7, 8)] == [
        0, 0, 1, 1, 2]
    assert num_batches(np.int64(10), np.int32(3)) == 4


@pytest.mark.parametrize("kwargs, exc, fragment", [
    ({"batch_size": 0}, ValueError, "batch_size must be >= 1, got 0"),
    ({"batch_size": -3}, ValueError, "batch_size must be >= 1, got -3"),
    ({"batch_size": 2.5}, TypeError, "batch_size must be an int, got "
                                     "float 2.5"),
    ({"batch_size": True}, TypeError, "batch_size must be an int"),
    ({"seed": -1}, ValueError, "seed must be >= 0, got -1"),
    ({"epoch": "1"}, TypeError, "epoch must be an int, got str '1'"),
    ({"shuffle": "yes"}, TypeError, "shuffle must be a bool, got 'yes'"),
    ({"drop_last": 1}, TypeError, "drop_last must be a bool, got 1"),
    ({"y": np.arange(4)}, ValueError, "same length, got 5 and 4"),
    ({"x": [1, 2, 3, 4, 5]}, TypeError, "x must be a numpy array"),
    ({"y": np.float64(1)}, TypeError, "y must be a numpy array"),
])
def test_iterate_batches_argument_errors(kwargs, exc, fragment):
    args = {"x": np.arange(5), "y": np.arange(5), "batch_size": 2}
    args.update(kwargs)
    # Raised by the call itself, before any next().
    with pytest.raises(exc) as info:
        iterate_batches(**args)
    assert fragment in str(info.value)


def test_num_batches_argument_errors():
    with pytest.raises(ValueError, match="n must be >= 0, got -1"):
        num_batches(-1, 2)
    with pytest.raises(TypeError, match="batch_size must be an int"):
        num_batches(10, None)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        num_batches(10, 0)
