"""A disk that fills under a real training stage (a small tmpfs mounted over one of its folders):
one line naming the file, the bytes it needs and what is free, exit 2; nothing half-written; the
MLflow run FAILED with the error; and a stage whose resume checkpoint clearly cannot fit stops
before its first epoch."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e import standalone_separable

pytestmark = pytest.mark.e2e          # real stage processes on real (small) filesystems

STAGE = [sys.executable, "-m", "stages.separable", "train"]


def _stage(folder, epochs: int = 3) -> tuple[subprocess.CompletedProcess, str]:
    env, uri = standalone_separable(folder, epochs)
    return subprocess.run(STAGE, cwd=folder, env=env, capture_output=True, text=True, timeout=300, check=False), uri


def _runs(uri: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    return client.search_runs([client.get_experiment_by_name("separable").experiment_id])


def test_a_full_disk_under_a_stage_is_one_line_and_leaves_nothing_half_written(small_disk, tmp_path):
    figures = small_disk(tmp_path / "figures" / "separable", 12)       # the PNGs take more than 12 KB
    done, uri = _stage(tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert lines[-1].startswith("error: no space for figures/separable/"), lines[-1]
    assert " free; free space there (or move figures/ to a larger disk) and run again" in lines[-1]
    assert lines[-1].endswith("nothing was half-written")
    assert not [p for p in figures.iterdir() if ".tmp" in p.name]          # no temporary left behind
    (run,) = _runs(uri)
    assert run.info.status == "FAILED" and run.data.tags["error"].startswith("DiskFullError: no space for figures/")


def test_a_stage_whose_checkpoint_cannot_fit_stops_before_training(small_disk, tmp_path):
    small_disk(tmp_path / ".cache" / "resume", 4)
    done, uri = _stage(tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no space for this training's resume checkpoint: it needs "), last
    assert last.endswith("nothing was trained")
    assert not (tmp_path / "models").exists() and not (tmp_path / "figures").exists()
    (run,) = _runs(uri)
    assert run.info.status == "FAILED"
    from mlflow.tracking import MlflowClient

    assert MlflowClient(uri).get_metric_history(run.info.run_id, "loss/train") == []      # no epoch ran
