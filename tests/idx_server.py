"""A local HTTP server on 127.0.0.1 serving generated Fashion-MNIST-style
IDX files, and the fixtures the download tests share (no test ever
reaches the internet)."""
from __future__ import annotations

import gzip
import hashlib
import http.server
import socket
import struct
import threading

import numpy as np
import pytest

# ------------------------------------------------------- generated files

TRAIN_LABELS = [3, 1, 4, 1, 5, 9, 2]
TEST_LABELS = [6, 5, 3]


def pixel(i: int, r: int, c: int) -> int:
    """Known pixel value of generated image ``i`` at row r, column c."""
    return (i * 31 + r * 7 + c * 3) % 256


def make_images(n: int, size: int = 28) -> np.ndarray:
    i, r, c = np.meshgrid(np.arange(n), np.arange(size), np.arange(size),
                          indexing="ij")
    return pixel(i, r, c).astype(np.uint8)


def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    head = struct.pack(">HBB", 0, code, arr.ndim)
    head += struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def gz(raw: bytes) -> bytes:
    # mtime=0 keeps the bytes, hence the checksums, reproducible.
    return gzip.compress(raw, mtime=0)


def make_files(train_images=None, train_labels=None, test_images=None,
               test_labels=None) -> dict[str, bytes]:
    arrays = {
        "train-images-idx3-ubyte.gz": (
            make_images(len(TRAIN_LABELS)) if train_images is None
            else train_images),
        "train-labels-idx1-ubyte.gz": np.array(
            TRAIN_LABELS if train_labels is None else train_labels,
            dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": (
            make_images(len(TEST_LABELS)) if test_images is None
            else test_images),
        "t10k-labels-idx1-ubyte.gz": np.array(
            TEST_LABELS if test_labels is None else test_labels,
            dtype=np.uint8),
    }
    return {name: gz(idx_bytes(a)) for name, a in arrays.items()}


def sha_of(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha256(b).hexdigest() for name, b in files.items()}


GOOD = make_files()
GOOD_SHA = sha_of(GOOD)


# ------------------------------------------------------------ the server


class IdxServer:
    """HTTP server on 127.0.0.1 with per-mirror file sets.

    ``mirrors[prefix][name] = (body, declared_length)`` is served at
    ``/prefix/name``; a declared length larger than the body makes the
    server close the connection early, like a dropped download.
    """

    def __init__(self) -> None:
        self.mirrors: dict[str, dict[str, tuple[bytes, int]]] = {}
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                _, prefix, name = self.path.split("/", 2)
                entry = server.mirrors.get(prefix, {}).get(name)
                if entry is None:
                    self.send_error(404)
                    return
                body, length = entry
                self.send_response(200)
                self.send_header("Content-Type", "application/gzip")
                if length is not None:   # None: read until the close
                    self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     Handler)
        self.port = self.httpd.server_address[1]
        # A short poll interval keeps shutdown() (run per test) fast.
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       args=(0.02,), daemon=True)
        self.thread.start()

    def add(self, prefix: str, files: dict[str, bytes],
            declared: dict[str, int] | None = None) -> str:
        declared = declared or {}
        self.mirrors[prefix] = {
            n: (b, declared[n] if n in declared else len(b))
            for n, b in files.items()}
        return f"http://127.0.0.1:{self.port}/{prefix}/"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch, tmp_path):
    # A proxy from the environment would swallow 127.0.0.1 requests, and
    # a real cache in $HOME must never be read or written by the tests.
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY",
                "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("UNISCHED_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def server():
    srv = IdxServer()
    yield srv
    srv.close()


@pytest.fixture
def dead_url():
    """URL of a port that refuses connections.

    The socket stays bound (but never listens) for the whole test, so
    no other process can grab the port in the meantime.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/dead/"
    sock.close()
