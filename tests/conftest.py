"""Shared fixtures: a real HTTP server on 127.0.0.1 serving fixture files, and the repo root."""
from __future__ import annotations

import http.server
import socket
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files, with single-range `Range: bytes=N-` support and a request log."""

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        self.server.requests.append((self.path, self.headers.get("Range")))
        path = Path(self.translate_path(self.path))
        rng = self.headers.get("Range")
        if not rng or not path.is_file() or not self.server.ranges:
            return super().do_GET()
        start = int(rng.removeprefix("bytes=").split("-")[0])
        data = path.read_bytes()
        if start >= len(data):
            self.send_error(416)
            return
        self.send_response(206)
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        self.wfile.write(data[start:])


class LoopbackServer:
    def __init__(self, directory: Path, ranges: bool = True):
        handler = lambda *a, **k: _RangeHandler(*a, directory=str(directory), **k)  # noqa: E731
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.requests = []
        self.httpd.ranges = ranges
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def requests(self) -> list:
        return self.httpd.requests

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def loopback(tmp_path):
    """A real HTTP server on 127.0.0.1 serving tmp_path/'www'."""
    www = tmp_path / "www"
    www.mkdir()
    server = LoopbackServer(www)
    server.root = www
    yield server
    server.close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pytest_collection_modifyitems(config, items):
    """The two end-to-end modules first: with pytest-xdist (`--dist loadfile
    --no-loadscope-reorder`, pyproject.toml) each of the first two workers starts on one of them,
    and the quick unit modules fill in around them. The order is deterministic, as xdist needs."""
    items.sort(key=lambda item: 0 if item.path.name.startswith("test_e2e_") else 1)


def pytest_runtest_setup(item):
    """GPU checks skip, saying why, where no CUDA device is visible — so that a tier chosen with
    `-m` (which replaces pyproject's default `-m 'not slow and not gpu'`) still runs on a CPU."""
    if item.get_closest_marker("gpu") is not None:
        import torch

        if not torch.cuda.is_available():
            pytest.skip("needs a CUDA GPU (pytest -m gpu on a machine with one)")
