"""A team's tracking server, end to end: a real PostgreSQL (a throwaway cluster) and a real
`mlflow server` on 127.0.0.1, both started by `python -m pipeline.scaleout.tracking_server
--local-postgres` as a user starts them. A stage process logs to it exactly what it logs to the
SQLite default; four queued experiments under `dvc queue start -j 2` land one run each, with the
server and with the SQLite default alike; what usually goes wrong is one line. The queue workers
are children of `dvc queue start` and take its environment, so MLFLOW_TRACKING_URI is set there.
"""
from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from pipeline.scaleout.postgres import LocalPostgres, ServerError, bin_dir, free_port
from tests.conftest import ROOT
from tests.e2e import copy_repo, dvc, env

pytestmark = pytest.mark.e2e          # a real PostgreSQL, a real MLflow server, the real dvc queue

RATES = ("0.001", "0.002", "0.005", "0.02")         # separable.train.lr of the four queued experiments
READY = "clients set MLFLOW_TRACKING_URI="


MODULE = (sys.executable, "-m", "pipeline.scaleout.tracking_server")


@contextlib.contextmanager
def _running(log: Path, *args: str, extra: dict[str, str] | None = None) -> Iterator[str]:
    """The module started as a user starts it, its output in `log`; its address once it answers.
    Stopped as by Ctrl-C on leaving: the server, then a cluster it started."""
    with log.open("w") as out:
        proc = subprocess.Popen([*MODULE, "--port", str(free_port()), *args], cwd=ROOT, env=env(extra),
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 180
        while READY not in log.read_text() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.5)
        assert READY in log.read_text(), log.read_text()[-3000:]
        yield log.read_text().split(READY)[1].split()[0]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def server():
    """The tracking server's address (`url`) and its database's URI. The cluster lives in a folder
    of its own under /tmp: pytest's tmp folders are root's alone, and the server runs as `postgres`."""
    try:
        bin_dir()
    except ServerError:
        pytest.skip("no PostgreSQL server here (initdb, pg_ctl): apt-get install postgresql")
    folder = Path(tempfile.mkdtemp(prefix="dlrepro-tracking-"))
    folder.chmod(0o755)
    try:
        with _running(folder / "server.log", "--local-postgres", str(folder / "server"), "--workers", "2") as url:
            said = (folder / "server.log").read_text()
            port = said.split("PostgreSQL running in ")[1].split()[2].rsplit(":", 1)[1]
            password = (folder / "server" / "postgres" / "password").read_text().strip()
            yield SimpleNamespace(url=url, database=f"postgresql://mlflow:{password}@127.0.0.1:{port}/mlflow")
    finally:
        LocalPostgres(folder / "server").stop()   # a no-op when the module stopped it
        shutil.rmtree(folder, ignore_errors=True)


def _serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*MODULE, *args], cwd=ROOT, env=env(),
                          capture_output=True, text=True, timeout=60, check=False)


def test_what_usually_goes_wrong_is_one_line_and_status_2(server, closed_port):
    taken = server.url.rsplit(":", 1)[1]                                # the running server's port
    free = str(closed_port)
    cases = {(taken, "postgresql://u:secret@127.0.0.1/db"): "cannot listen on",
             (free, f"postgresql://u:secret@127.0.0.1:{free}/db"): "cannot reach the database postgresql://u:***@",
             (free, "sqlite:///mlflow.db"): "--backend-store-uri must be a postgresql://"}
    for (port, uri), said in cases.items():
        done = _serve("--port", port, "--backend-store-uri", uri)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith(f"error: {said}") and "secret" not in done.stderr, done.stderr


def test_the_make_target_runs_the_module():
    out = subprocess.run(["make", "-s", "-n", "tracking-server", "ARGS=--local-postgres /srv/mlflow"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1].endswith("python -m pipeline.scaleout.tracking_server --local-postgres /srv/mlflow")


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri)


def _artifacts(client, run_id: str, folder: str | None = None) -> set[str]:
    """Every artifact file of a run, recursively."""
    found = set()
    for item in client.list_artifacts(run_id, folder):
        found |= _artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return found


def _run_stage(folder: Path, extra: dict[str, str]) -> subprocess.Popen:
    """`python -m stages.separable train` in `folder` (no .dvc: the SQLite default is folder/mlflow.db)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["scale"] = "smoke"
    folder.mkdir()
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return subprocess.Popen([sys.executable, "-m", "stages.separable", "train"], cwd=folder,
                            env=env({"PYTHONPATH": str(ROOT), **extra}), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_a_stage_logs_to_the_server_what_it_logs_to_the_sqlite_store(server, tmp_path):
    stages = {"server": _run_stage(tmp_path / "server", {"MLFLOW_TRACKING_URI": server.url}),
              "sqlite": _run_stage(tmp_path / "sqlite", {})}
    for proc in stages.values():
        out = proc.communicate(timeout=300)[0]
        assert proc.returncode == 0, out[-3000:]
    assert not (tmp_path / "server" / "mlflow.db").exists()        # nothing fell back to the default store
    seen = {}
    for store, uri in (("server", server.url), ("sqlite", f"sqlite:///{tmp_path / 'sqlite' / 'mlflow.db'}")):
        client = _client(uri)
        (run,) = client.search_runs([client.get_experiment_by_name("separable").experiment_id])
        assert run.info.status == "FINISHED"
        curves = {key: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]
                  for key in ("loss/train", "loss/val", "accuracy/val")}
        seen[store] = {"params": run.data.params, "metrics": set(run.data.metrics), "curves": curves,
                       "tags": {k for k in run.data.tags if not k.startswith("mlflow.source")},
                       "files": _artifacts(client, run.info.run_id)}
    ours, sqlite = seen["server"], seen["sqlite"]
    assert {"loss.png", "boundary.png", "model/mlp.pt"} <= ours["files"] and len(ours["curves"]["loss/train"]) == 5
    assert ours["params"]["train.lr"] == "0.01" and "final_train_loss" in ours["metrics"]
    assert ours["params"] == sqlite["params"] and ours["metrics"] == sqlite["metrics"]
    assert ours["curves"] == sqlite["curves"]                      # CPU runs are bit-reproducible
    assert ours["tags"] == sqlite["tags"] and ours["files"] == sqlite["files"]


def test_a_second_server_on_the_same_database_sees_the_same_runs(server, tmp_path):
    """The team's way: a database that exists (here the cluster above), given by its URI."""
    with _running(tmp_path / "log", "--workers", "1", extra={"MLFLOW_BACKEND_STORE_URI": server.database}) as url:
        runs = {}
        for address in (server.url, url):
            client = _client(address)
            runs[address] = [r.info.run_id for r in client.search_runs(
                [client.get_experiment_by_name("separable").experiment_id])]
    assert runs[server.url] and runs[server.url] == runs[url]
    password = server.database.split("@")[0].rsplit(":", 1)[1]
    assert password not in (tmp_path / "log").read_text()          # the URI is shown without it


def _queued_sweep(repo: Path, extra: dict[str, str]) -> dict:
    """`dvc repro`, then one queued experiment per rate run by `dvc queue start -j 2` with `extra` in
    its environment (not in that of `dvc exp run --queue`: the workers are its children); the
    experiments' names, the queue's last status and the store's runs of `separable`."""
    dvc(repo, "repro", "separable_train", extra_env=extra)
    out = dvc(repo, "exp", "run", "--queue", "separable_train", "-S", f"separable.train.lr={','.join(RATES)}")
    names = [part.split("'")[0] for part in out.split("Queued experiment '")[1:]]
    # returns when the workers leave (they hold its output), 10 s after the queue empties
    dvc(repo, "queue", "start", "-j", "2", extra_env=extra)
    deadline, status = time.time() + 400, ""
    while time.time() < deadline:
        status = dvc(repo, "queue", "status")
        if all(n in status for n in names) and not any(s in status for s in ("Queued", "Running")):
            break
        time.sleep(2)
    client = _client(extra.get("MLFLOW_TRACKING_URI", f"sqlite:///{repo / 'mlflow.db'}"))
    runs = client.search_runs([client.get_experiment_by_name("separable").experiment_id], max_results=100)
    return {"names": names, "status": status, "runs": runs, "sqlite_store": (repo / "mlflow.db").exists(),
            "workspace_stores": list((repo / ".dvc" / "tmp" / "exps").rglob("mlflow.db"))}


@pytest.fixture(scope="module")
def sweeps(server, tmp_path_factory) -> dict[str, dict]:
    """Both sweeps side by side, each in a repository copy of its own (four workers at once)."""
    from concurrent.futures import ThreadPoolExecutor

    stores = {"server": {"MLFLOW_TRACKING_URI": server.url}, "sqlite": {}}
    repos = {store: copy_repo(tmp_path_factory.mktemp(f"tracking-{store}")) for store in stores}
    try:
        with ThreadPoolExecutor(2) as pool:
            futures = {store: pool.submit(_queued_sweep, repos[store], extra) for store, extra in stores.items()}
            yield {store: future.result() for store, future in futures.items()}
    finally:
        for repo in repos.values():       # workers that outlived their queue
            subprocess.run([sys.executable, "-m", "dvc", "queue", "stop"], cwd=repo, env=env(),
                           capture_output=True, check=False)


@pytest.mark.parametrize("store", ["server", "sqlite"])
def test_every_queued_experiment_lands_exactly_one_finished_run(sweeps, store):
    names, runs = sweeps[store]["names"], sweeps[store]["runs"]
    assert len(names) == len(RATES) and sweeps[store]["status"].count("Success") == len(RATES), sweeps[store]["status"]
    tagged = [r for r in runs if "dvc.exp_name" in r.data.tags]
    landed = {n: sum(r.data.tags["dvc.exp_name"] == n for r in tagged) for n in names}
    print(f"{store}: {sum(v == 1 for v in landed.values())} of {len(names)} queued experiments landed one run "
          f"under dvc queue start -j 2 ({len(tagged)} experiment runs in the store)")
    assert list(landed.values()) == [1] * len(names) and len(tagged) == len(names), landed     # none lost, none twice
    assert all(r.info.status == "FINISHED" and r.info.run_name == "separable_train" for r in tagged)
    assert sorted(r.data.params["train.lr"] for r in tagged) == sorted(RATES)    # each its own parameters
    # the server's copy wrote no SQLite store: its workers had the server's address; and no worker
    # made a store of its own in its temporary workspace: every run is in the repository's
    assert sweeps[store]["sqlite_store"] == (store == "sqlite") and sweeps[store]["workspace_stores"] == []
