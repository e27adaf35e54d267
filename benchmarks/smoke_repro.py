"""The real `dvc repro` of every stage at scale smoke on one device, in a temporary copy of the
repository, its datasets the tests' format-faithful fixture files served from 127.0.0.1; then, at
`--scale full`, full scale of what needs no download (superres, separable, theory; batch_size and
autoencoder on Fashion-MNIST with --fashion-mnist). `make gpu-check`, step 6.

    python -m benchmarks.smoke_repro [--device cuda] [--scale full|smoke] [--fashion-mnist DIR]
                                     [--jobs N] [--seconds S] --json PATH

Each experiment's report is one run in a repository copy of its own, `--jobs` runs side by side
(half the cores, at most 8; each run's torch gets its share of the cores): one after another, the
smoke runs of every stage took longer than a 540 s check leaves them on an H200 (stopped after
223 s, 2026-12-04). After `--seconds` every run still going is stopped and said to be; the JSON is
rewritten after every run, so a run stopped from outside keeps what had finished.

At `--scale smoke` (checking this script on a CPU) only separable runs (its training and its
report), at scale smoke, in one copy.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pipeline.data.download import CHECKSUMS_ENV
from pipeline.data.mnist import FILES
from tests.conftest import LoopbackServer
from tests.e2e import REPO_ENV, REPORTS, copy_repo, env, ran
from tests.fixtures import (cifar_images, digit_images, fer_faces, write_cifar_archive, write_emnist_zip,
                            write_fer_csv, write_mnist_files)


def serve_fixtures(www: Path) -> tuple[LoopbackServer, Path, str]:
    """Every downloaded dataset's fixture at its official URL path: (server, checksum table, FER sha256)."""
    write_mnist_files(www / "mnist")
    images, labels = digit_images()
    write_emnist_zip(www / "cs_links/EMNIST/gzip.zip", images[:400], labels[:400], n_train=300)
    faces, expressions = fer_faces(70)
    write_fer_csv(www / "fer/fer2013.csv", faces, expressions,
                  ["Training"] * 42 + ["PublicTest"] * 14 + ["PrivateTest"] * 14)
    cifar, cifar_labels = cifar_images(30)
    write_cifar_archive(www / "~kriz/cifar-10-python.tar.gz", cifar, cifar_labels, 60)
    served = [www / "mnist" / f for f in FILES] + [www / "cs_links/EMNIST/gzip.zip", www / "~kriz/cifar-10-python.tar.gz"]
    table = www.parent / "checksums.json"
    table.write_text(json.dumps({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in served}))
    return LoopbackServer(www), table, hashlib.sha256((www / "fer/fer2013.csv").read_bytes()).hexdigest()


def smoke_edit(url: str, fer_sha: str, device: str):
    from tests.test_e2e_data import FER_SHA256, _smoke_data
    from tests.test_e2e_vision import _smoke_vision

    FER_SHA256[:] = [fer_sha]           # what the tests' data server fixture records

    def edit(params: dict) -> None:
        _smoke_data(url)(params)
        _smoke_vision(url)(params)
        params["device"] = device
    return edit


def plan(scale: str, fashion_mnist: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """(run name, "smoke" or "full", targets): each run in a repository copy of its own, so that runs
    go side by side; the longest first (full scale, then the smoke chains with the most stages)."""
    if scale == "smoke":                        # a CPU check of this script: one copy, one experiment
        return [("smoke", "smoke", ("separable_report",))]
    full = REPORTS["core"] + (("batch_size_report", "autoencoder_report") if fashion_mnist else ())
    smoke = ("distill_report", "colourize_report", "autoencoder_report", "batch_size_report", "emnist_report",
             "superres_report", "fer_report", "separable_report", "theory_report")
    assert sorted(smoke) == sorted(t for ts in REPORTS.values() for t in ts), "a report is missing from the plan"
    return [(f"full {t.removesuffix('_report')}", "full", (t,)) for t in full] + \
           [(f"smoke {t.removesuffix('_report')}", "smoke", (t,)) for t in smoke]


def repro(repo: Path, targets: tuple[str, ...], deadline: float, threads: int) -> dict:
    """The real `dvc repro` of `targets` in `repo`; at `deadline` (time.monotonic) it is stopped with
    its stages (its own process group), and the result says so."""
    t0 = time.monotonic()
    extra = {**REPO_ENV.get(repo, {}), "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", *targets], cwd=repo, env=env(extra),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)         # dvc and the stage it runs
        except ProcessLookupError:
            pass
        try:
            out, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            out = ""
        return {"stages": sorted(ran(out or "")), "seconds": round(time.monotonic() - t0, 1), "failed": 1,
                "reason": "stopped: the time budget ran out"}
    seconds = round(time.monotonic() - t0, 1)
    if proc.returncode != 0:
        lines = [ln for ln in out.strip().splitlines() if ln.strip()]
        return {"stages": sorted(ran(out)), "seconds": seconds, "failed": 1,
                "reason": (lines[-1] if lines else f"exit {proc.returncode}")[:300]}
    return {"stages": sorted(ran(out)), "seconds": seconds, "failed": 0}


def write(result: dict, path: Path) -> None:
    part = path.with_name(f".{path.name}.part")
    part.write_text(json.dumps(result, indent=2) + "\n")
    part.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--scale", choices=("full", "smoke"), default="full")
    ap.add_argument("--fashion-mnist", default="")
    ap.add_argument("--jobs", type=int, default=0, help="runs side by side (default: half the cores, at most 8)")
    ap.add_argument("--seconds", type=float, default=3600.0, help="stop every run still going after this long")
    ap.add_argument("--json", required=True)
    a = ap.parse_args(argv)
    deadline = time.monotonic() + a.seconds
    runs = plan(a.scale, a.fashion_mnist)
    jobs = a.jobs or max(1, min(8, len(runs), (os.cpu_count() or 2) // 2))
    threads = max(1, (os.cpu_count() or 2) // jobs)
    result: dict = {"jobs": jobs, "runs": {name: {"status": "pending", "targets": list(t)} for name, _, t in runs},
                    "failed": 0}
    out, lock = Path(a.json), threading.Lock()
    with tempfile.TemporaryDirectory(prefix="smoke-repro-") as folder:
        root = Path(folder)
        (root / "www").mkdir()
        server, table, fer_sha = serve_fixtures(root / "www")
        smoke_env = {CHECKSUMS_ENV: str(table)}

        def full(params: dict) -> None:
            params.update(scale="full", device=a.device)
            if a.fashion_mnist:
                params["mnist"].update(dataset="fashion_mnist", source=a.fashion_mnist)

        def one(number: int, name: str, kind: str, targets: tuple[str, ...]) -> None:
            if time.monotonic() >= deadline:
                r = {"stages": [], "seconds": 0.0, "failed": 1, "reason": "not started: the time budget ran out"}
            else:
                copy = root / f"run{number}"
                repo = copy_repo(copy, smoke_edit(server.url, fer_sha, a.device), smoke_env) if kind == "smoke" \
                    else copy_repo(copy, full)
                r = repro(repo, targets, deadline, threads)
                if kind == "full" and not r["failed"]:
                    r["metrics"] = {str(p.relative_to(repo)): json.loads(p.read_text())
                                    for p in (repo / "metrics").rglob("*.json")}
            with lock:
                status = "ok" if not r["failed"] else "stopped" if "time budget" in r["reason"] else "failed"
                result["runs"][name] = {"status": status, "targets": list(targets), **r}
                result["failed"] = sum(1 for v in result["runs"].values() if v["status"] != "ok")
                write(result, out)               # after every run: a stopped step keeps what had finished
            print(f"{name}: {len(r['stages'])} stages in {r['seconds']:.0f} s" +
                  (f", failed: {r['reason']}" if r["failed"] else ""), flush=True)

        write(result, out)
        try:
            with ThreadPoolExecutor(jobs) as pool:
                for future in [pool.submit(one, i, *run) for i, run in enumerate(runs)]:
                    future.result()
        finally:
            server.close()
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
