"""Shared fixtures: a real HTTP server on 127.0.0.1 serving fixture files, and the repo root."""
from __future__ import annotations

import http.server
import os
import socket
import subprocess
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


@pytest.fixture
def small_disk(tmp_path):
    """small_disk(folder, kb): a real filesystem of `kb` KB (tmpfs) mounted over `folder`, as a full
    disk; unmounted afterwards. Needs root (as on this project's machines and CI)."""
    mounted = []

    def mount(folder: Path, kb: int) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kb}k", "tmpfs", str(folder)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.strip()}")
        mounted.append(folder)
        return folder
    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def pytest_configure(config):
    """One share of the cores per pytest-xdist worker for every torch in it and in the processes it
    starts (stages, dvc, papermill kernels): without it each of them runs as many threads as there
    are cores, and on 2 cores two workers' torch processes spin against each other (measured: two
    concurrent feature stages 12.6 s with 2 threads each, 5.7 s with 1). A value the caller set wins."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))


# The modules that take longest, longest first (seconds of one worker on 2 cores, measured on a
# fresh clone): pytest-xdist (`--dist loadfile --no-loadscope-reorder`, pyproject.toml) hands each
# worker a module as it runs low, so the long ones start early and the quick unit modules fill in
# around them instead of one long module running alone at the end.
LONGEST_FIRST = ("test_e2e_vision.py",            # 250
                 "test_e2e_data.py",              # 207
                 "test_e2e_tracking_server.py",   # 183
                 "test_e2e_core.py",              # 146
                 "test_gpu_check.py",             # 113
                 "test_e2e_remote.py",            # 61
                 "test_tracking.py",              # 32
                 "test_distributed.py",           # 28
                 "test_doctor.py",                # 22
                 "test_runtime.py")               # 18


def pytest_collection_modifyitems(config, items):
    """The longest modules first (LONGEST_FIRST), then every other end-to-end module, then the
    rest. The order is deterministic, as xdist needs."""
    def rank(item) -> tuple[int, int]:
        name = item.path.name
        if name in LONGEST_FIRST:
            return (0, LONGEST_FIRST.index(name))
        return (1 if name.startswith("test_e2e_") else 2, 0)
    items.sort(key=rank)


def pytest_runtest_setup(item):
    """GPU checks skip, saying why, where no CUDA device is visible — so that a tier chosen with
    `-m` (which replaces pyproject's default `-m 'not slow and not gpu'`) still runs on a CPU."""
    if item.get_closest_marker("gpu") is not None:
        import torch

        if not torch.cuda.is_available():
            pytest.skip("needs a CUDA GPU (pytest -m gpu on a machine with one)")
