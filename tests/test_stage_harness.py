"""The stage harness around a real stage process: killed with SIGKILL in the middle of training
and run again, the stage resumes from its checkpoint into the same MLflow run, which ends
FINISHED holding every epoch."""
from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests.e2e import standalone_separable, wait_for_epochs

pytestmark = pytest.mark.e2e          # a real stage process, killed and run again (about half a minute)

EPOCHS = 200


def test_a_stage_killed_mid_training_continues_its_run_and_ends_it_finished(tmp_path):
    from mlflow.tracking import MlflowClient

    volume = tmp_path / "volume"         # $DLREPRO_RESUME_ROOT: checkpoints on a disk that outlives the job
    env, uri = standalone_separable(tmp_path, EPOCHS, DLREPRO_RESUME_ROOT=str(volume))
    cmd = [sys.executable, "-m", "stages.separable", "train"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run_id, logged = wait_for_epochs(proc, uri, 10, timeout=180)
    client = MlflowClient(uri)          # after the store is made: a client makes a new store's tables with no lock
    assert proc.poll() is None and logged >= 10, "the stage finished or stalled before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert client.get_run(run_id).info.status == "RUNNING"          # what a kill leaves behind
    assert not (tmp_path / ".cache").exists()
    (folder,) = volume.iterdir()
    assert (folder / "last.pt").exists() and (folder / "mlflow_run_id").read_text() == run_id
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    (run,) = client.search_runs([client.get_experiment_by_name("separable").experiment_id])
    assert run.info.run_id == run_id and run.info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(run_id, "loss/train")]
    # every epoch once, the one the kill may have caught between its record and its checkpoint too
    assert sorted(steps) == list(range(1, EPOCHS + 1))
    assert run.data.params["parameters"] == "42" and "final_train_loss" in run.data.metrics
    files = {a.path for a in client.list_artifacts(run_id)} | {a.path for a in client.list_artifacts(run_id, "model")}
    assert {"loss.png", "boundary.png", "model/mlp.pt"} <= files       # its figures and the model it trained
    assert not volume.exists() or not any(volume.iterdir())
