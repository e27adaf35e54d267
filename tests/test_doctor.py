"""`python -m pipeline.doctor`: each finding produced by its real cause, simulated here (a host that
refuses connections, a GPU the driver reports that torch cannot use, a disk threshold, a tracking
server that is down or refuses the credentials, a DVC remote folder that is missing), the table
and the exit status."""
from __future__ import annotations

import base64
import json
import http.server
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading

import pytest
import torch

from pipeline import doctor
from pipeline.doctor import Dataset
from tests.conftest import ROOT, LoopbackServer


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]          # nothing listens once it is closed


def test_each_dataset_is_present_from_a_source_reachable_unreachable_or_by_hand(tmp_path):
    served = tmp_path / "www"
    served.mkdir()
    (served / "file.gz").write_bytes(b"x")
    server = LoopbackServer(served)
    try:
        (tmp_path / "data/raw/here").mkdir(parents=True)
        (tmp_path / "data/raw/here/a.gz").write_bytes(b"x")
        (tmp_path / "copy.csv").write_text("emotion,pixels\n")
        found = [Dataset("here", "data/raw/here", f"http://127.0.0.1:{_closed_port()}/a.gz", "here.source"),
                 Dataset("up", "data/raw/up", f"{server.url}/file.gz", "up.source"),
                 Dataset("down", "data/raw/down", f"http://127.0.0.1:{_closed_port()}/b.gz", "down.source"),
                 Dataset("given", "data/raw/given", "", "given.source", "get it by hand"),
                 Dataset("hand", "data/raw/hand", "", "hand.source", "get it by hand")]
        params = {"given": {"source": str(tmp_path / "copy.csv")}}
        rows = {r.item: r for r in doctor.dataset_rows(tmp_path, params, True, found)}
    finally:
        server.close()
    assert rows["here"].value == "present in data/raw/here" and not rows["here"].problem
    assert rows["up"].value == "not present; 127.0.0.1:%s reachable (dvc repro downloads it)" % server.url.rsplit(":", 1)[1]
    assert not rows["up"].problem
    assert rows["down"].problem.startswith("down: not present and 127.0.0.1:") and "is unreachable (offline?)" in \
        rows["down"].problem and rows["down"].problem.endswith("set data.mirror or down.source to a copy")
    assert "ConnectionRefusedError" in rows["down"].value
    assert rows["given"].value == f"given.source: {tmp_path / 'copy.csv'}" and not rows["given"].problem
    assert rows["hand"].problem == "hand: get it by hand; then set hand.source or put it in data/raw/hand/"
    mirrored = {r.item: r for r in doctor.dataset_rows(tmp_path, {"data": {"mirror": "http://127.0.0.1:9"}}, True,
                                                       found[2:3])}
    assert mirrored["down"].value == "from the mirror http://127.0.0.1:9" and not mirrored["down"].problem


def test_the_real_datasets_list_names_every_official_host():
    names = {d.name: d for d in doctor.datasets({"mnist": {"dataset": "fashion_mnist"}})}
    assert list(names) == ["fashion_mnist", "emnist", "cifar10", "resnet50", "fer"]
    assert names["cifar10"].url.startswith("https://www.cs.toronto.edu/") and names["fer"].by_hand.startswith("FER-2013")


def test_a_disk_below_the_estimate_is_a_problem_naming_both_figures(tmp_path):
    free = shutil.disk_usage(tmp_path).free
    (ok,) = doctor.disk_rows(tmp_path, need_bytes=free // 2)
    (full,) = doctor.disk_rows(tmp_path, need_bytes=free + 10**15)
    assert not ok.problem and full.problem.startswith(f"disk: {free / 1e9:.1f} GB free under {tmp_path}")
    assert f"needs about {(free + 10**15) / 1e9:.1f} GB" in full.problem
    (default,) = doctor.disk_rows(tmp_path)
    assert f"needs about {sum(doctor.DISK_ESTIMATE_GB.values()) * 2:.1f} GB" in default.value


class _Tracking(http.server.BaseHTTPRequestHandler):
    """An MLflow-like endpoint: 200 for alice:right, 403 for bob, 401 otherwise."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        auth = self.headers.get("Authorization", "")
        user = base64.b64decode(auth.removeprefix("Basic ")).decode() if auth else ""
        code = 200 if user == "alice:right" else 403 if user.startswith("bob:") else 401
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


def test_the_tracking_store_reachable_refused_or_down(tmp_path):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Tracking)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        good = doctor.tracking_row(tmp_path, {"MLFLOW_TRACKING_URI": uri, "MLFLOW_TRACKING_USERNAME": "alice",
                                              "MLFLOW_TRACKING_PASSWORD": "right"})
        wrong = doctor.tracking_row(tmp_path, {"MLFLOW_TRACKING_URI": uri, "MLFLOW_TRACKING_USERNAME": "alice",
                                               "MLFLOW_TRACKING_PASSWORD": "wrong"})
        reader = doctor.tracking_row(tmp_path, {"MLFLOW_TRACKING_URI": uri, "MLFLOW_TRACKING_USERNAME": "bob",
                                                "MLFLOW_TRACKING_PASSWORD": "x"})
        anonymous = doctor.tracking_row(tmp_path, {"MLFLOW_TRACKING_URI": uri})
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert good.value == f"{uri}: reachable as alice" and not good.problem
    assert wrong.problem.startswith(f"mlflow: {uri} refuses user alice (HTTP 401)")
    assert "refuses user bob (HTTP 403)" in reader.problem and "MLFLOW_TRACKING_PASSWORD" in reader.problem
    assert "refuses anonymous access (HTTP 401)" in anonymous.problem
    down = doctor.tracking_row(tmp_path, {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{_closed_port()}"})
    assert "is unreachable (ConnectionRefusedError" in down.problem and "make tracking-server" in down.problem
    local = doctor.tracking_row(tmp_path, {})
    assert local.value == f"sqlite:///{tmp_path / 'mlflow.db'} (made by the first stage)" and not local.problem


def test_the_dvc_remote_is_read_from_the_config_and_a_missing_folder_is_a_problem(tmp_path):
    (tmp_path / ".dvc").mkdir()
    assert doctor.remote_row(tmp_path).value.startswith("none configured")
    (tmp_path / ".dvc/config").write_text('[core]\n    remote = team\n')
    (tmp_path / ".dvc/config.local").write_text(f"['remote \"team\"']\n    url = {tmp_path / 'store'}\n")
    assert doctor.remote_row(tmp_path).problem.startswith(f"dvc: remote 'team' folder {tmp_path / 'store'} does not exist")
    (tmp_path / "store").mkdir()
    row = doctor.remote_row(tmp_path)
    assert row.value == f"team: {tmp_path / 'store'}" and not row.problem


def _repo_like(folder, fer_source: bool):
    shutil.copy(ROOT / "params.yaml", folder / "params.yaml")
    for name in ("mnist", "emnist", "cifar10", "resnet50") + (() if fer_source else ("fer",)):
        (folder / "data/raw" / name).mkdir(parents=True)
        (folder / "data/raw" / name / "file").write_bytes(b"x")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DLREPRO_"))}
    return {**env, "PYTHONPATH": str(ROOT)}


@pytest.mark.skipif(torch.cuda.is_available(), reason="simulates a GPU torch cannot use")
def test_the_doctor_exits_1_with_one_line_per_problem_and_0_without(tmp_path):
    env = _repo_like(tmp_path, fer_source=False)
    cmd = [sys.executable, "-m", "pipeline.doctor", "--no-network", "--json", str(tmp_path / "rows.json")]
    clean = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout.strip().endswith("no problems found")
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert [r["item"] for r in rows if r["area"] != "gpu"] == [
        "python", "torch", "nvidia driver", "device: auto", "precision: auto", "torch.compile", "repository",
        "mnist", "emnist", "cifar10", "resnet50", "fer", "store", "remote", "plots page"]
    table = clean.stdout.splitlines()
    for r in rows:          # one table line per row: area, item, status, value
        assert any(line.split()[:1] == [r["area"]] and r["item"] in line and f" {r['status']} " in line
                   and line.rstrip().endswith(r["value"]) for line in table), r
    assert {r["item"]: r["value"] for r in rows}["precision: auto"] == "fp32"
    assert {r["item"]: r["value"] for r in rows}["nvidia driver"] == "none found (no nvidia-smi, no kernel module)"
    smi = tmp_path / "bin" / "nvidia-smi"
    smi.parent.mkdir()
    smi.write_text("#!/bin/sh\necho 'Tesla T4, 535.104.05, 15360, 7.5'\n")
    smi.chmod(smi.stat().st_mode | stat.S_IXUSR)
    shutil.rmtree(tmp_path / "data/raw/fer")
    env["PATH"] = f"{smi.parent}:{env['PATH']}"
    sick = subprocess.run(cmd + ["--require-gpu"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert sick.returncode == 1
    problems = [line for line in sick.stderr.splitlines() if line.startswith("problem: ")]
    assert len(problems) == 2, sick.stderr
    assert problems[0].startswith("problem: Tesla T4 (driver 535.104.05) is here but torch") and \
        "make env TORCH_BACKEND=cu126" in problems[0]
    assert problems[1].startswith("problem: fer: FER-2013 has no official download")
    assert "Tesla T4" in sick.stdout and sick.stdout.strip().endswith("2 problem(s)")
    assert "stops: device: auto: Tesla T4" in sick.stdout


def test_the_plots_page_row_says_whether_dvc_plots_show_draws_offline_and_is_never_a_problem(tmp_path):
    (tmp_path / ".dvc").mkdir()
    row = doctor.plots_row(tmp_path)
    assert row.value.startswith("CDN page (plots.html_template is not set") and not row.problem
    (tmp_path / ".dvc/config.local").write_text("[plots]\n    html_template = plots_page.html\n")
    row = doctor.plots_row(tmp_path)
    assert row.value.startswith("CDN page (.dvc/plots_page.html is missing") and not row.problem
    (tmp_path / ".dvc/plots_page.html").write_text("{plot_divs}")
    assert doctor.plots_row(tmp_path).value == ".dvc/plots_page.html: Vega inlined, draws offline"
