"""MLflow store resolution and a real SQLite store."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.tracking import artifact_location, repo_root, run_tags, stage_run, tracking_uri


def _repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / ".dvc" / "tmp" / "exps" / "run1" / "stages").mkdir(parents=True)
    return root


def test_default_store_is_at_the_repository_root(tmp_path):
    root = _repo(tmp_path)
    assert repo_root({}, cwd=root) == root
    assert tracking_uri({}, cwd=root / ".dvc") == f"sqlite:///{root}/mlflow.db"


def test_queued_runs_use_dvc_root_not_their_temporary_copy(tmp_path):
    root = _repo(tmp_path)
    copy = root / ".dvc" / "tmp" / "exps" / "run1"
    (copy / ".dvc").mkdir()                         # the temporary copy is a DVC repo of its own
    assert repo_root({}, cwd=copy) == copy
    env = {"DVC_ROOT": str(root)}
    assert tracking_uri(env, cwd=copy) == f"sqlite:///{root}/mlflow.db"
    assert artifact_location("superres", env, cwd=copy) == (root / "mlartifacts" / "superres").as_uri()


def test_mlflow_tracking_uri_overrides(tmp_path):
    env = {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000", "DVC_ROOT": str(tmp_path)}
    assert tracking_uri(env) == "http://127.0.0.1:5000"
    assert artifact_location("superres", env) is None


def test_tags_name_stage_experiment_and_revision():
    tags = run_tags("superres_train@literal", {"DVC_EXP_NAME": "sharp-owl", "DVC_STAGE": "superres_train@literal"})
    assert tags["dvc.stage"] == "superres_train@literal" and tags["dvc.exp_name"] == "sharp-owl"
    assert "git.revision" in tags
    assert "dvc.exp_name" not in run_tags("x", {})


def test_stage_run_writes_params_epoch_metrics_and_artifacts_to_sqlite(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    root = _repo(tmp_path)
    copy = root / ".dvc" / "tmp" / "exps" / "run1"
    monkeypatch.chdir(copy)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(root))
    monkeypatch.setenv("DVC_EXP_NAME", "tidy-elm")
    monkeypatch.setenv("DVC_STAGE", "superres_train@literal")
    (copy / "history.csv").write_text("epoch,loss\n1,0.5\n")
    with stage_run("superres", "superres_train@literal", {"lr": 0.001, "hidden": (64, 128)}) as run:
        for epoch, loss in enumerate([0.5, 0.25, 0.125], start=1):
            run.log_epoch({"epoch": epoch, "train_loss": loss})
        run.log_metrics({"test_loss": 0.1})
        run.log_artifact(copy / "history.csv")
        run.log_artifact(copy / "history.csv", "tables")
    assert (root / "mlflow.db").exists() and not (copy / "mlflow.db").exists()
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    exp = client.get_experiment_by_name("superres")
    assert exp.artifact_location == (root / "mlartifacts" / "superres").as_uri()
    (r,) = client.search_runs([exp.experiment_id])
    assert r.info.status == "FINISHED" and r.info.run_name == "superres_train@literal"
    assert r.data.params == {"lr": "0.001", "hidden": "(64, 128)"}
    assert r.data.tags["dvc.exp_name"] == "tidy-elm" and r.data.tags["dvc.stage"] == "superres_train@literal"
    assert r.data.tags["mlflow.note.content"] == "DVC experiment tidy-elm: `superres_train@literal`"
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"     # MLflow 3 opens it on training runs
    steps = client.get_metric_history(r.info.run_id, "loss/train")      # curves grouped by quantity in the UI
    assert [(m.step, m.value) for m in steps] == [(1, 0.5), (2, 0.25), (3, 0.125)]
    assert r.data.metrics["test_loss"] == pytest.approx(0.1)
    arts = sorted(a.path for a in client.list_artifacts(r.info.run_id))
    assert arts == ["history.csv", "tables"]
    assert [a.path for a in client.list_artifacts(r.info.run_id, "tables")] == ["tables/history.csv"]
    assert (root / "mlartifacts" / "superres" / r.info.run_id / "artifacts" / "history.csv").exists()


def test_a_failing_stage_marks_its_run_failed(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    root = _repo(tmp_path)
    monkeypatch.chdir(root)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    with pytest.raises(RuntimeError):
        with stage_run("superres", "superres_evaluate", {}):
            raise RuntimeError("boom")
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    (r,) = client.search_runs([client.get_experiment_by_name("superres").experiment_id])
    assert r.info.status == "FAILED" and r.data.tags["error"] == "RuntimeError: boom"


def test_sizes_go_to_params_and_the_step_count_is_no_curve(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(_repo(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    with stage_run("emnist", "emnist_train@cnn", {"lr": 0.1}) as run:
        run.log_epoch({"epoch": 1, "step": 40, "train_loss": 0.5, "val_accuracy": 0.75})
        run.log_metrics({"test_accuracy": 0.8, "parameters": 20198, "test_samples": 512, "pretrained": False})
    client = MlflowClient(f"sqlite:///{Path.cwd()}/mlflow.db")
    (r,) = client.search_runs([client.get_experiment_by_name("emnist").experiment_id])
    assert set(r.data.metrics) == {"loss/train", "accuracy/val", "test_accuracy"}
    assert r.data.params == {"lr": "0.1", "parameters": "20198", "test_samples": "512", "pretrained": "False"}
    assert r.data.tags["mlflow.note.content"] == "workspace: `emnist_train@cnn`"


KILLED_STAGE = """
import os, signal, sys
from pipeline.tracking import stage_run
with stage_run("separable", "separable_train", {"lr": 0.01}) as run:
    print(run.run_id, flush=True)
    for epoch in (1, 2, 3):
        run.log_epoch({"epoch": epoch, "train_loss": 1.0 / epoch})
    os.kill(os.getpid(), signal.SIGKILL)        # as `kill -9` would, in the middle of the stage
"""


def test_a_killed_stage_continues_its_own_run_and_ends_it_finished(tmp_path, monkeypatch):
    import subprocess
    import sys

    from mlflow.tracking import MlflowClient

    from tests.conftest import ROOT

    root = _repo(tmp_path)
    monkeypatch.chdir(root)
    for name in ("MLFLOW_TRACKING_URI", "DVC_ROOT", "DVC_EXP_NAME", "DVC_STAGE"):
        monkeypatch.delenv(name, raising=False)
    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", KILLED_STAGE], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -9, proc.stderr
    run_id = proc.stdout.split()[0]
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    assert client.get_run(run_id).info.status == "RUNNING"       # what the kill left behind
    with stage_run("separable", "separable_train", {"lr": 0.01}, run_id=run_id) as run:
        assert run.run_id == run_id
        for epoch in (3, 4, 5):          # resumed from epoch 2's checkpoint: epoch 3 reached the store, not its own
            run.log_epoch({"epoch": epoch, "train_loss": 1.0 / epoch})
    (r,) = client.search_runs([client.get_experiment_by_name("separable").experiment_id])
    assert r.info.run_id == run_id and r.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run_id, "loss/train")] == [1, 2, 3, 4, 5]    # each once
    # a run that failed is continued too, and no longer carries its error once it finishes
    with pytest.raises(RuntimeError):
        with stage_run("separable", "separable_train", {"lr": 0.01}) as failing:
            raise RuntimeError("out of memory")
    with stage_run("separable", "separable_train", {"lr": 0.01}, run_id=failing.run_id) as retried:
        assert retried.run_id == failing.run_id
    done = client.get_run(failing.run_id)
    assert done.info.status == "FINISHED" and "error" not in done.data.tags
    # a finished run is not continued: the next execution of the stage is a run of its own
    with stage_run("separable", "separable_train", {"lr": 0.01}, run_id=run_id) as again:
        assert again.run_id != run_id


def test_curves_are_named_so_one_quantity_s_splits_sit_together():
    from pipeline.tracking import curve_name

    assert [curve_name(k) for k in ("train_loss", "val_loss", "test_accuracy", "val_macro_recall")] == [
        "loss/train", "loss/val", "accuracy/test", "macro_recall/val"]
    assert [curve_name(k) for k in ("lr", "elapsed_seconds", "samples_per_second", "train")] == [
        "lr", "elapsed_seconds", "samples_per_second", "train"]


def test_a_training_stage_s_run_records_the_machine_s_load_in_system_metrics(tmp_path):
    """MLflow's system metrics in a real stage's run: CPU and memory samples over its training."""
    import subprocess
    import sys

    from mlflow.tracking import MlflowClient

    from tests.e2e import standalone_separable

    # a sample every 0.2 s: several within the second or so that 80 epochs, the figures and the model take
    env, uri = standalone_separable(tmp_path, 80, MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL="0.2")
    done = subprocess.run([sys.executable, "-m", "stages.separable", "train"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("separable").experiment_id])
    keys = set(run.data.metrics)
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= keys, sorted(keys)
    cpu = client.get_metric_history(run.info.run_id, "system/cpu_utilization_percentage")
    assert len(cpu) >= 2 and all(0 <= m.value <= 100 for m in cpu)
    assert [m.step for m in cpu] == list(range(len(cpu)))
    memory = client.get_metric_history(run.info.run_id, "system/system_memory_usage_megabytes")
    assert all(m.value > 0 for m in memory)


def test_the_retry_window_is_urllib3_s_backoff_over_mlflow_s_retries():
    """What a stage waits for a server that is down, as urllib3 (MLflow's retries) computes it."""
    from urllib3.exceptions import ConnectTimeoutError
    from urllib3.util.retry import Retry

    from pipeline.tracking import retry_window

    for retries, factor in ((7, 2), (1, 1), (3, 0.5), (10, 2)):
        retry, waited = Retry(total=retries, backoff_factor=factor, backoff_jitter=0.0), 0.0
        for _ in range(retries):
            retry = retry.increment(method="GET", url="/", error=ConnectTimeoutError())
            waited += retry.get_backoff_time()
        env = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(retries), "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": str(factor)}
        assert retry_window(env) == pytest.approx(waited)
    assert retry_window({}) == 244.0            # MLflow's defaults: 7 retries, factor 2


def test_only_a_server_that_stopped_answering_counts_as_lost():
    import requests
    from mlflow.exceptions import MlflowException

    from pipeline.tracking import lost

    def raised_while(cause: BaseException) -> MlflowException:
        try:
            try:
                raise cause
            except Exception as exc:  # noqa: BLE001
                raise MlflowException(f"API request failed with exception {exc}")   # as MLflow's rest_utils
        except MlflowException as exc:
            return exc

    gone = raised_while(requests.ConnectionError("Max retries exceeded"))
    assert lost("http://127.0.0.1:5000", gone) and lost("https://mlflow.team", requests.ConnectionError())
    assert not lost("sqlite:///mlflow.db", gone)                          # no server to lose
    assert not lost("http://127.0.0.1:5000", MlflowException("RESOURCE_DOES_NOT_EXIST"))
    assert not lost("http://127.0.0.1:5000", raised_while(ValueError("a bug of the stage's own")))
    assert not lost("http://127.0.0.1:5000", RuntimeError("diverged"))


OPEN_AT = """
import sys, time
from pathlib import Path
from mlflow.tracking import MlflowClient
from pipeline.tracking import ready_store
uri, folder, name = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
(folder / f"ready-{name}").touch()              # past the imports
while not (folder / "go").exists():
    time.sleep(0.01)
time.sleep(max(0.0, float((folder / "go").read_text()) - time.time()))   # all open the new store at one instant
ready_store(uri)
MlflowClient(uri).create_experiment(name)
"""


def test_processes_that_open_a_new_sqlite_store_at_once_all_get_it(tmp_path):
    """MLflow makes a new SQLite store's tables without a lock: two processes at once collide ("table
    experiments already exists"; 5 collisions in 5 tries on 2 cores without ready_store's lock)."""
    import subprocess
    import sys
    import time

    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"
    procs = [subprocess.Popen([sys.executable, "-c", OPEN_AT, uri, str(tmp_path), f"e{i}"], cwd=Path.cwd(),
                              stderr=subprocess.PIPE, text=True) for i in range(3)]
    deadline = time.time() + 120
    while len(list(tmp_path.glob("ready-*"))) < 3 and time.time() < deadline and all(p.poll() is None for p in procs):
        time.sleep(0.05)
    (tmp_path / "go.tmp").write_text(str(time.time() + 0.5))
    (tmp_path / "go.tmp").rename(tmp_path / "go")     # whole, at once: the time every process waits for
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [e[-600:] for e in errors]
    names = {e.name for e in MlflowClient(uri).search_experiments()}
    assert {"e0", "e1", "e2"} <= names
