"""The Fashion-MNIST cache under several processes and hostile mirrors
(issue: reliability), against the local server of ``idx_server``."""
import os
import subprocess
import sys
import textwrap

import pytest

from unisched.app import fashion

from idx_server import GOOD, GOOD_SHA, _hermetic_env, server  # noqa: F401 (fixtures are used by name)


def test_processes_repairing_one_corrupt_cache_all_succeed(server,
                                                           tmp_path):
    """15 processes load a cache whose file is corrupt.  They used to race
    on deleting it (4 of 15 died with FileNotFoundError) and could delete
    a copy another had just verified; they now take turns."""
    url = server.add("m", GOOD)
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    for name, body in GOOD.items():
        (folder / name).write_bytes(body)
    name = "train-images-idx3-ubyte.gz"
    (folder / name).write_bytes(b"corrupt")
    script = textwrap.dedent(f"""
        from unisched.app.fashion import download_fashion_mnist
        download_fashion_mnist({str(tmp_path)!r}, mirrors=[{url!r}],
                               sha256={GOOD_SHA!r}, timeout=20)
        print("ok")
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(15)]
    results = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        results.append((proc.returncode, out.strip(), err[-300:]))
    assert [r[:2] for r in results] == [(0, "ok")] * 15, results
    assert (folder / name).read_bytes() == GOOD[name]
    assert sorted(os.listdir(folder)) == sorted(GOOD)
    # one process repaired it; the others found it verified
    assert server.requests.count(f"/m/{name}") == 1


LABELS = "t10k-labels-idx1-ubyte.gz"
SIZES = {n: len(b) for n, b in GOOD.items()}


def _refusal(url, root) -> str:
    """The error of a download from ``url`` capped at the files' sizes."""
    with pytest.raises(fashion.DatasetUnavailableError) as err:
        fashion.download_fashion_mnist(root, mirrors=[url], sha256=GOOD_SHA,
                                       sizes=SIZES, timeout=20)
    return str(err.value)


def test_a_mirror_streaming_too_much_is_cut_off(server, tmp_path):
    """A mirror that streams 64 MB for the 1.5 KB labels file used to fill
    the disk before the checksum could reject it: each file is now read
    up to its known size."""
    flood = {**GOOD, LABELS: b"\0" * (64 << 20)}
    url = server.add("flood", flood, declared={LABELS: None})
    message = _refusal(url, tmp_path)
    assert f"sent more than the file's {SIZES[LABELS]} bytes" in message
    assert sorted(os.listdir(tmp_path / "fashion-mnist")) == sorted(
        set(GOOD) - {LABELS})


def test_an_announced_oversize_is_refused_before_reading(server, tmp_path):
    url = server.add("big", GOOD, declared={LABELS: 10 ** 9})
    assert f"announced 1000000000 bytes, the file has {SIZES[LABELS]}" \
        in _refusal(url, tmp_path)


def test_the_https_mirror_comes_first():
    assert [m.split(":")[0] for m in fashion.FASHION_MNIST_MIRRORS] == [
        "https", "http"]
