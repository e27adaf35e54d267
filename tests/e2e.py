"""Helpers of the end-to-end modules (test_e2e_*.py): a copy of this repository at smoke scale,
the real `dvc` and `git` run in it, and its SQLite MLflow store read back.

The end-to-end suite is split in three modules, each with its own repository copy, so that
pytest-xdist runs them side by side (see pyproject.toml): `test_e2e_core.py` (superres,
separable, theory, experiments and the queue), `test_e2e_data.py` (the downloaded datasets:
MNIST family, EMNIST and FER-2013, served from loopback) and `test_e2e_vision.py` (CIFAR-10 from
loopback: distill and colourize). `test_every_stage_is_covered` in the core module checks that together they
run every stage of dvc.yaml.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

SUPERRES = ("superres_features", "superres_train@literal", "superres_train@subpixel",
            "superres_train@subpixel4x", "superres_train@refine", "superres_evaluate", "superres_report")
CORE = SUPERRES + ("separable_train", "separable_report", "theory_compute", "theory_report")
MNIST = ("mnist_download", "mnist_prepare", "batch_size_train@64", "batch_size_train@256",
         "batch_size_train@1024", "batch_size_accumulation", "batch_size_report", "autoencoder_train",
         "autoencoder_codes", "autoencoder_classify@literal", "autoencoder_classify@logits", "autoencoder_report")
EMNIST = ("emnist_download", "emnist_prepare", "emnist_train@mlp", "emnist_train@cnn", "emnist_train@factorised",
          "emnist_report")
FER = ("fer_download", "fer_prepare", "fer_train", "fer_inspect", "fer_report")
DATA = MNIST + EMNIST + FER
DISTILL = ("cifar10_download", "cifar10_prepare", "resnet50_weights", "distill_features", "distill_teacher",
           "distill_logits", "distill_student", "distill_scratch", "distill_finetune", "distill_logits_d",
           "distill_student_d", "distill_report")
COLOURIZE = ("colourize_palette", "colourize_train@cnn", "colourize_train@unet", "colourize_train@residual",
             "colourize_report")
REPORTS = {"core": ("superres_report", "separable_report", "theory_report"),
           "data": ("batch_size_report", "autoencoder_report", "emnist_report", "fer_report"),
           "vision": ("distill_report", "colourize_report")}


def grid_stages(params: dict) -> tuple[str, ...]:
    """The distill_grid matrix's stage names for params' α and τ lists, as dvc names them."""
    grid = params["distill"]["grid"]
    return tuple(f"distill_grid@{a}-{t}" for a in grid["alpha"] for t in grid["tau"])


def sweep_stages(params: dict) -> tuple[str, ...]:
    """The colourize sweeps' stage names (dvc.yaml foreach) for params' value lists."""
    def name(v) -> str:
        return repr(v) if isinstance(v, float) else str(v)     # as dvc writes them: 1e-05, 10.0
    col = params["colourize"]
    return tuple(f"colourize_sweep_{m}_{k}@{name(v)}" for m in ("cnn", "unet") for k in ("filters", "lr", "kernel")
                 for v in col[f"sweep_{m}"][k])


def env(extra: dict[str, str] | None = None) -> dict:
    out = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "DLREPRO_MIRROR", "DVC_ROOT", "DVC_EXP_NAME", "DVC_STAGE",
                        "PYTEST_XDIST_WORKER", "PYTEST_XDIST_TESTRUNUID", "PYTEST_XDIST_WORKER_COUNT")}
    out["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{out.get('PATH', '')}"
    return {**out, **(extra or {})}


def sh(repo: Path, *args: str, timeout: int = 600, extra_env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(args, cwd=repo, env=env(extra_env), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


REPO_ENV: dict[Path, dict[str, str]] = {}      # environment a repository copy's commands run with


def dvc(repo: Path, *args: str, timeout: int = 900, extra_env: dict[str, str] | None = None) -> str:
    """The real dvc in `repo`, with the environment `copy_repo` registered for it."""
    return sh(repo, sys.executable, "-m", "dvc", *args, timeout=timeout,
              extra_env={**REPO_ENV.get(repo, {}), **(extra_env or {})})


def stale(repo: Path, *targets: str) -> set[str]:
    """The stages `dvc status --with-deps` finds out of date: `targets` and every stage they need.
    DVC's own status, called in this process as `dvc status` calls it (under the repository lock):
    the same answer without a new interpreter importing dvc for every question (~1.5 s each)."""
    from contextlib import chdir

    from dvc.repo import Repo, lock_repo

    with chdir(repo), Repo(str(repo)) as dvc_repo, lock_repo(dvc_repo):      # targets resolve from the cwd
        return set(dvc_repo.status(targets=list(targets), with_deps=True))


def would_run(repo: Path, *targets: str) -> set[str]:
    """The stages `dvc repro --dry targets` names as running: DVC's own reproduce, called in this
    process with dry=True as that command calls it (it takes the repository lock itself)."""
    from contextlib import chdir

    from dvc.repo import Repo

    with chdir(repo), Repo(str(repo)) as dvc_repo:
        return {stage.addressing for stage in dvc_repo.reproduce(targets=list(targets), dry=True)}


def ran(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")}


def copy_repo(dest: Path, edit=None, extra_env: dict[str, str] | None = None) -> Path:
    """This repository's tracked and untracked-but-not-ignored files in a fresh git repo at
    `dest`, at `scale: smoke`; `edit(params)` may change params.yaml further; `extra_env` is
    set for every `dvc` command run in it."""
    REPO_ENV[dest] = dict(extra_env or {})
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params["scale"] = "smoke"
    if edit is not None:
        edit(params)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "ci@example.org"],
                ["git", "config", "user.name", "ci"], ["git", "add", "-A"], ["git", "commit", "-qm", "copy"]):
        sh(dest, *cmd)
    return dest


def mlflow_runs(repo: Path, experiment: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    return client, client.search_runs([exp.experiment_id], max_results=500)


def repo_fixtures(name: str, targets: tuple[str, ...], server: str | None = None, edit=None):
    """A module's two fixtures: `repo`, its repository copy (made with the loopback server fixture
    `server` when given: `edit(url)` changes params.yaml, the server's `env` reaches every dvc
    command), and `first_repro`, the output of `dvc repro` of `targets` in it."""
    @pytest.fixture(scope="module")
    def repo(tmp_path_factory, request):
        served = request.getfixturevalue(server) if server else None
        return copy_repo(tmp_path_factory.mktemp(name), edit(served.url) if edit else None,
                         served.env if served else None)

    @pytest.fixture(scope="module")
    def first_repro(repo):
        return dvc(repo, "repro", *targets)

    return repo, first_repro


def standalone_separable(folder: Path, epochs: int, **extra: str) -> tuple[dict[str, str], str]:
    """`folder` made ready for `python -m stages.separable train` outside dvc: params.yaml with
    `epochs`, and the environment to run it with (the repository on PYTHONPATH, an SQLite store of
    its own, `extra`); returns (environment, the store's URI)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["separable"]["train"]["epochs"] = epochs
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    out = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "MLFLOW_"))}
    out.update({"PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": uri, **extra})     # extra may name the store
    return out, uri


def wait_for_epochs(proc: subprocess.Popen, uri: str, epochs: int, timeout: float,
                    run_name: str | None = None) -> tuple[str | None, int]:
    """Poll the separable run in `uri` (the newest, or the one called `run_name`) until it has logged
    `epochs` epochs of `loss/train` or `timeout` seconds have passed: (the run's id, epochs logged).
    A process that ends before is a failed check showing what it printed."""
    from mlflow.tracking import MlflowClient

    from pipeline.tracking import ready_store

    ready_store(uri)        # as the stage makes a new store: under its lock, or the two collide making its tables
    client, deadline, run_id, logged = MlflowClient(uri), time.time() + timeout, None, 0
    while logged < epochs and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
        try:
            exp = client.get_experiment_by_name("separable")
            runs = client.search_runs([exp.experiment_id]) if exp else []
            runs = [r for r in runs if run_name in (None, r.info.run_name)]
            if runs:
                run_id = runs[0].info.run_id
                logged = len(client.get_metric_history(run_id, "loss/train"))
        except Exception:  # noqa: BLE001 - a server being restarted: ask again
            continue
    if proc.poll() is not None and logged < epochs:     # what it said is what a failed check needs
        said = "".join(o if isinstance(o, str) else o.decode(errors="replace") for o in proc.communicate() if o)
        raise AssertionError(f"the stage ended (exit {proc.returncode}) after {logged} of {epochs} epochs:\n"
                             f"{said[-3000:]}")
    return run_id, logged
