"""The real `dvc repro` of every stage at scale smoke on one device, in a temporary copy of the
repository, its datasets the tests' format-faithful fixture files served from 127.0.0.1; then, at
`--scale full`, full scale of what needs no download (superres, separable, theory; batch_size and
autoencoder on Fashion-MNIST with --fashion-mnist). `make gpu-check`, step 6.

    python -m benchmarks.smoke_repro [--device cuda] [--scale full|smoke] [--fashion-mnist DIR] [--json PATH]

At `--scale smoke` (checking this script on a CPU) only separable and theory run, at scale smoke.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

from pipeline.data.download import CHECKSUMS_ENV
from pipeline.data.mnist import FILES
from tests.conftest import LoopbackServer
from tests.e2e import REPORTS, copy_repo, dvc, ran
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


def repro(repo: Path, targets: tuple[str, ...], env: dict) -> dict:
    t0 = time.monotonic()
    try:
        out = dvc(repo, "repro", *targets, timeout=3600, extra_env=env)
        return {"stages": sorted(ran(out)), "seconds": round(time.monotonic() - t0, 1), "failed": 0}
    except AssertionError as exc:
        return {"stages": [], "seconds": round(time.monotonic() - t0, 1), "failed": 1,
                "reason": str(exc).strip().splitlines()[-1][:300]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--scale", choices=("full", "smoke"), default="full")
    ap.add_argument("--fashion-mnist", default="")
    ap.add_argument("--json", required=True)
    a = ap.parse_args(argv)
    result: dict = {"runs": {}}
    with tempfile.TemporaryDirectory(prefix="smoke-repro-") as folder:
        root = Path(folder)
        (root / "www").mkdir()
        server, table, fer_sha = serve_fixtures(root / "www")
        try:
            env = {CHECKSUMS_ENV: str(table)}
            smoke = copy_repo(root / "smoke", smoke_edit(server.url, fer_sha, a.device), env)
            targets = ("separable_report", "theory_report") if a.scale == "smoke" else tuple(t for ts in REPORTS.values() for t in ts)
            result["runs"]["smoke"] = repro(smoke, targets, env)
        finally:
            server.close()
        if a.scale == "full":
            def full(params: dict) -> None:
                params.update(scale="full", device=a.device)
                if a.fashion_mnist:
                    params["mnist"].update(dataset="fashion_mnist", source=a.fashion_mnist)
            repo = copy_repo(root / "full", full)
            targets = REPORTS["core"] + (("batch_size_report", "autoencoder_report") if a.fashion_mnist else ())
            result["runs"]["full"] = repro(repo, targets, {})
            if result["runs"]["full"]["failed"] == 0:
                metrics = {str(p.relative_to(repo)): json.loads(p.read_text()) for p in (repo / "metrics").rglob("*.json")}
                result["runs"]["full"]["metrics"] = metrics
    result["failed"] = sum(r["failed"] for r in result["runs"].values())
    Path(a.json).write_text(json.dumps(result, indent=2) + "\n")
    for name, r in result["runs"].items():
        print(f"{name}: {len(r['stages'])} stages in {r['seconds']:.0f} s" + (f", failed: {r['reason']}" if r["failed"] else ""))
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
