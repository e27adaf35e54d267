"""MLflow: where the store is, and one run per stage execution.

Default store: an SQLite file `mlflow.db` at the repository root, artifacts in
`mlartifacts/` beside it; `MLFLOW_TRACKING_URI` overrides. Queued DVC
experiments run in a temporary copy under `.dvc/tmp/exps/` with `DVC_ROOT`
pointing at the real repository, so the root comes from `DVC_ROOT` first, or
those runs would vanish with their temporary copy.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import Iterator, Mapping

STORE_FILE = "mlflow.db"
ARTIFACT_DIR = "mlartifacts"


def repo_root(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Path:
    """The real repository: $DVC_ROOT, else the nearest folder above cwd holding `.dvc/`."""
    env = os.environ if env is None else env
    if env.get("DVC_ROOT"):
        return Path(env["DVC_ROOT"]).resolve()
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".dvc").is_dir():
            return folder
    return here


def tracking_uri(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> str:
    env = os.environ if env is None else env
    if env.get("MLFLOW_TRACKING_URI"):
        return env["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{repo_root(env, cwd) / STORE_FILE}"


def artifact_location(experiment: str, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> str | None:
    """Artifacts beside the default store; a user-set tracking URI keeps its server's default."""
    env = os.environ if env is None else env
    if env.get("MLFLOW_TRACKING_URI"):
        return None
    return (repo_root(env, cwd) / ARTIFACT_DIR / experiment).as_uri()


def run_tags(stage: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if env is None else env
    tags = {"dvc.stage": env.get("DVC_STAGE", stage), "git.revision": _git_revision()}
    if env.get("DVC_EXP_NAME"):
        tags["dvc.exp_name"] = env["DVC_EXP_NAME"]
    if env.get("DVC_EXP_BASELINE_REV"):
        tags["dvc.exp_baseline_rev"] = env["DVC_EXP_BASELINE_REV"]
    return tags


def _git_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@contextlib.contextmanager
def stage_run(experiment: str, stage: str, params: Mapping[str, object]) -> Iterator["StageRun"]:
    """One MLflow run for one stage execution; closed as FAILED if the stage raises."""
    import mlflow

    # resolve both before set_tracking_uri, which writes MLFLOW_TRACKING_URI into os.environ
    uri, location = tracking_uri(), artifact_location(experiment)
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        mlflow.create_experiment(experiment, artifact_location=location)
    mlflow.set_experiment(experiment)
    run_name = os.environ.get("DVC_STAGE", stage)
    with mlflow.start_run(run_name=run_name, tags=run_tags(stage)) as run:
        mlflow.log_params({k: _param_text(v) for k, v in params.items()})
        yield StageRun(run.info.run_id)


def _param_text(value) -> str:
    text = str(value)
    return text if len(text) <= 6000 else text[:5997] + "..."


class StageRun:
    """What a stage logs to its run: per-epoch metrics, final metrics, files, figures."""

    def __init__(self, run_id: str):
        self.run_id = run_id

    def log_epoch(self, record: Mapping[str, float]) -> None:
        import mlflow

        mlflow.log_metrics({k: float(v) for k, v in record.items() if k != "epoch"}, step=int(record["epoch"]))

    def log_metrics(self, metrics: Mapping[str, float], prefix: str = "") -> None:
        import mlflow

        mlflow.log_metrics({prefix + k: float(v) for k, v in metrics.items()})

    def log_artifact(self, path: str | Path, folder: str | None = None) -> None:
        import mlflow

        mlflow.log_artifact(str(path), artifact_path=folder)

    def log_figure(self, figure, name: str) -> None:
        import mlflow

        mlflow.log_figure(figure, name)
