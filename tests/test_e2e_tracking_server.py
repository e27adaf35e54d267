"""A team's tracking server, end to end: a real PostgreSQL (a throwaway cluster) and a real
`mlflow server` on 127.0.0.1, both started by `python -m pipeline.scaleout.tracking_server
--local-postgres --auth` as a team starts them, users added with its `users add`. A stage process
signed in as an EDIT user logs to it exactly what it logs to the SQLite default; three queued
experiments under `dvc queue start -j 2` land one run each, with the server and with the SQLite
default alike; a stage the server refuses (no user, a wrong password, a READ user, a certificate it
does not trust) is one line before any compute; a stage outlives its server killed and restarted,
and its database restarted; what usually goes wrong is one line; no password shows in `ps` or in
what the servers print. The queue workers are children of `dvc queue start` and take its
environment, so MLFLOW_TRACKING_URI and the credentials are set there. One server and one cluster
serve the whole module; a second server (HTTPS) shares their database and auth folder.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
import yaml

from pipeline.scaleout.auth import AUTH_CACHE_SECONDS
from pipeline.scaleout.postgres import AUTH_DATABASE, LocalPostgres, ServerError, bin_dir, free_port
from tests.conftest import ROOT
from tests.e2e import copy_repo, dvc, env, sh, standalone_separable, wait_for_epochs

pytestmark = pytest.mark.e2e          # a real PostgreSQL, a real MLflow server, the real dvc queue

RATES = ("0.001", "0.005", "0.02")      # separable.train.lr of the queued experiments: under -j 2, one worker takes two
READY = "clients set MLFLOW_TRACKING_URI="
MODULE = (sys.executable, "-m", "pipeline.scaleout.tracking_server")
ADMIN, EDITOR, READER = (("admin", secrets.token_urlsafe(18)), ("ana", secrets.token_urlsafe(18)),
                         ("ben", secrets.token_urlsafe(18)))


def _creds(user: tuple[str, str]) -> dict[str, str]:
    return {"MLFLOW_TRACKING_USERNAME": user[0], "MLFLOW_TRACKING_PASSWORD": user[1]}


@contextlib.contextmanager
def _signed_in(user: tuple[str, str]) -> Iterator[None]:
    """This process's MLflow client signed in as `user` (MLflow reads the variables at each request)."""
    with mock.patch.dict(os.environ, _creds(user)):
        yield


def _start(log: Path, port: int, *args: str, extra: dict[str, str] | None = None) -> subprocess.Popen:
    """The module started as a user starts it, its output in `log`, once its address answers."""
    with log.open("a") as out:
        proc = subprocess.Popen([*MODULE, "--port", str(port), *args], cwd=ROOT, env=env(extra),
                                stdout=out, stderr=subprocess.STDOUT)
    deadline = time.time() + 180
    while log.read_text().count(READY) < 1 + _started.get(log, 0) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.3)
    assert log.read_text().count(READY) == 1 + _started.get(log, 0), log.read_text()[-3000:]
    _started[log] = _started.get(log, 0) + 1
    return proc


_started: dict[Path, int] = {}       # servers a log has seen start


def _stop(proc: subprocess.Popen) -> None:
    """As by Ctrl-C: the server, then a cluster it started."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def _running(log: Path, *args: str, extra: dict[str, str] | None = None) -> Iterator[str]:
    proc = _start(log, free_port(), *args, extra=extra)
    try:
        yield log.read_text().split(READY)[-1].split()[0]
    finally:
        _stop(proc)


class Team:
    """The module's server: started with --auth on a cluster of its own, restartable."""

    def __init__(self, folder: Path):
        self.folder, self.port, self.pg_port, self.log = folder, free_port(), free_port(), folder / "server.log"
        (folder / "admin-password").write_text(ADMIN[1] + "\n")
        (folder / "admin-password").chmod(0o600)
        self.args = ("--auth", "--local-postgres", str(folder / "server"), "--postgres-port", str(self.pg_port),
                     "--admin-password-file", str(folder / "admin-password"), "--workers", "2")
        self.proc = _start(self.log, self.port, *self.args)
        said = self.log.read_text()
        self.url = said.split(READY)[1].split()[0]
        self.pg_password = (folder / "server" / "postgres" / "password").read_text().strip()
        base = f"postgresql://mlflow:{self.pg_password}@127.0.0.1:{self.pg_port}"
        self.database, self.auth_database = f"{base}/mlflow", f"{base}/{AUTH_DATABASE}"

    def kill_server(self, restart: bool = True) -> float:
        """SIGKILL the MLflow server (its process group: the server and its workers), as a crash does;
        the module then stops its cluster and exits, and (`restart`) is started again, as a supervisor
        does. Returns the seconds the server was away."""
        import psutil

        (server,) = [c for c in psutil.Process(self.proc.pid).children() if "mlflow" in " ".join(c.cmdline())]
        began = time.monotonic()
        os.killpg(server.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)
        if restart:
            self.start()
        return time.monotonic() - began

    def start(self) -> None:
        self.proc = _start(self.log, self.port, *self.args)

    def restart_postgres(self) -> float:
        """PostgreSQL stopped (fast: its connections closed) and started again under the running server."""
        began = time.monotonic()
        cluster = LocalPostgres(self.folder / "server", self.pg_port)
        cluster.stop()
        cluster.start()
        return time.monotonic() - began


@pytest.fixture(scope="module")
def server():
    """The team's server with two users: EDITOR (EDIT) and READER (READ), added by `users add`. The
    cluster lives in a folder of its own under /tmp: pytest's tmp folders are root's alone, and the
    server runs as `postgres`."""
    try:
        bin_dir()
    except ServerError:
        pytest.skip("no PostgreSQL server here (initdb, pg_ctl): apt-get install postgresql")
    folder = Path(tempfile.mkdtemp(prefix="dlrepro-tracking-"))
    folder.chmod(0o755)
    team = None
    try:
        team = Team(folder)
        for (name, password), permission in ((EDITOR, "EDIT"), (READER, "READ")):
            done = subprocess.run([*MODULE, "users", "add", name, "--permission", permission], cwd=ROOT,
                                  env=env({"MLFLOW_TRACKING_URI": team.url, **_creds(ADMIN)}), input=password + "\n",
                                  capture_output=True, text=True, timeout=120, check=False)
            assert done.returncode == 0 and f"user {name} created with {permission}" in done.stdout, done.stderr
        yield team
    finally:
        if team is not None:
            _stop(team.proc)
        LocalPostgres(folder / "server").stop()   # a no-op when the module stopped it
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def https(server):
    """A second server on the team's database and auth folder, serving HTTPS with a self-signed
    certificate made here (no admin password: the admin exists)."""
    cert, key = server.folder / "cert.pem", server.folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   capture_output=True, check=True)
    log = server.folder / "https.log"
    with _running(log, "--auth", "--auth-dir", str(server.folder / "server" / "auth"), "--artifacts-destination",
                  str(server.folder / "server" / "artifacts"), "--certfile", str(cert), "--keyfile", str(key),
                  "--workers", "1", extra={"MLFLOW_BACKEND_STORE_URI": server.database,
                                           "MLFLOW_AUTH_DATABASE_URI": server.auth_database}) as url:
        yield SimpleNamespace(url=url, cert=str(cert), log=log)


def _serve(*args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*MODULE, *args], cwd=ROOT, env=env(extra),
                          capture_output=True, text=True, timeout=60, check=False)


def test_what_usually_goes_wrong_is_one_line_and_status_2(server, closed_port, tmp_path):
    taken, free = str(server.port), str(closed_port)
    loose = tmp_path / "loose-password"
    loose.write_text(ADMIN[1])
    loose.chmod(0o644)
    cases = [(("--port", taken, "--backend-store-uri", "postgresql://u:s3cr3t@127.0.0.1/db"), "cannot listen on"),
             (("--port", free, "--backend-store-uri", f"postgresql://u:s3cr3t@127.0.0.1:{free}/db"),
              "cannot reach the database postgresql://u:***@"),
             (("--port", free, "--backend-store-uri", "sqlite:///mlflow.db"),
              "--backend-store-uri must be a postgresql://"),
             # other machines could reach it: locked, or refused without what the lock needs, unless --no-auth
             (("--host", "0.0.0.0", "--port", free, "--backend-store-uri", server.database),
              "0.0.0.0 lets other machines in, so the server asks for passwords"),
             (("--host", "0.0.0.0", "--port", free, "--auth-dir", str(tmp_path / "auth"), "--backend-store-uri",
               server.database), "the first start with authentication creates the admin `admin` and needs a password"),
             (("--port", free, "--auth", "--admin-password-file", str(loose), "--backend-store-uri", server.database),
              f"admin password file {loose} is readable by others (mode 644): chmod 600"),
             (("--port", free, "--certfile", str(loose), "--backend-store-uri", server.database),
              "HTTPS needs both --certfile and --keyfile"),
             (("--port", free, "--auth-cache-seconds", "-1", "--backend-store-uri", server.database),
              "--auth-cache-seconds -1: seconds, 0 or more")]
    for args, said in cases:
        done = _serve(*args)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith(f"error: {said}"), done.stderr
        assert "s3cr3t" not in done.stderr and server.pg_password not in done.stderr, done.stderr
    assert not (tmp_path / "auth").exists() or not any((tmp_path / "auth").iterdir())


def test_the_make_target_runs_the_module():
    out = subprocess.run(["make", "-s", "-n", "tracking-server", "ARGS=--local-postgres /srv/mlflow"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1].endswith("python -m pipeline.scaleout.tracking_server --local-postgres /srv/mlflow")


def test_the_server_asks_every_request_for_a_valid_user(server):
    import requests

    search = f"{server.url}/api/2.0/mlflow/experiments/search"
    assert requests.get(f"{server.url}/health", timeout=30).status_code == 200      # the health check stays open
    assert requests.post(search, json={"max_results": 1}, timeout=30).status_code == 401
    assert requests.post(search, json={"max_results": 1}, auth=(EDITOR[0], "wrong-" + EDITOR[1]),
                         timeout=30).status_code == 401
    assert requests.post(search, json={"max_results": 1}, auth=EDITOR, timeout=30).status_code == 200
    listed = subprocess.run([*MODULE, "users", "list"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env=env({"MLFLOW_TRACKING_URI": server.url, **_creds(ADMIN)}), check=False)
    assert listed.returncode == 0, listed.stderr
    rows = {tuple(line.split()) for line in listed.stdout.splitlines()}
    assert rows == {("admin", "admin"), (EDITOR[0], "EDIT"), (READER[0], "READ")}
    # any member may read the roster (MLflow's rule); only the admin changes it
    refused = subprocess.run([*MODULE, "users", "remove", READER[0]], cwd=ROOT, capture_output=True, text=True,
                             timeout=120, env=env({"MLFLOW_TRACKING_URI": server.url, **_creds(EDITOR)}), check=False)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and refused.stderr.startswith(
        f"error: could not remove user {READER[0]}: user {EDITOR[0]} lacks the permission (403)"), refused.stderr
    assert requests.post(search, json={"max_results": 1}, auth=READER, timeout=30).status_code == 200


def test_no_password_shows_in_ps_or_in_what_the_servers_print(server, https):
    secrets_ = (ADMIN[1], EDITOR[1], READER[1], server.pg_password)
    args = subprocess.run(["ps", "-ewwo", "args"], capture_output=True, text=True, check=True).stdout
    assert "--app-name basic-auth" in args and "--ssl-certfile" in args      # both servers are in the list
    printed = server.log.read_text() + https.log.read_text()
    assert READY in printed
    for secret in secrets_:
        assert secret not in args and secret not in printed
    auth = server.folder / "server" / "auth"
    for path in (auth, auth / "secret_key", auth / "basic_auth.ini"):
        assert path.stat().st_mode & 0o077 == 0, path                   # the owner's alone
    from mlflow.server.auth.config import read_auth_config

    with mock.patch.dict(os.environ, {"MLFLOW_AUTH_CONFIG_PATH": str(auth / "basic_auth.ini")}):
        read = read_auth_config()                   # as the server's workers read it
    assert read.auth_cache_ttl_seconds == AUTH_CACHE_SECONDS and read.default_permission == "NO_PERMISSIONS"


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


@pytest.fixture(scope="module")
def stages(server, https, tmp_path_factory) -> dict[str, SimpleNamespace]:
    """`stages.separable train` at smoke scale, side by side: signed in as the EDIT user on the
    server and on its HTTPS twin (trusting its certificate), on the SQLite default, and the ones
    the server refuses: no user, a wrong password, the READ user, HTTPS without the certificate."""
    root = tmp_path_factory.mktemp("stages")
    with _signed_in(EDITOR):          # the experiment exists (the EDIT user's), as on a team's server
        client = _client(server.url)
        if client.get_experiment_by_name("separable") is None:
            client.create_experiment("separable")
    https_env = {"MLFLOW_TRACKING_URI": https.url, **_creds(EDITOR)}
    cases = {"server": {"MLFLOW_TRACKING_URI": server.url, **_creds(EDITOR)},
             "https": {**https_env, "MLFLOW_TRACKING_SERVER_CERT_PATH": https.cert},
             "sqlite": {},
             "no user": {"MLFLOW_TRACKING_URI": server.url},
             "wrong password": {"MLFLOW_TRACKING_URI": server.url, **_creds((EDITOR[0], "wrong-" + EDITOR[1]))},
             "reader": {"MLFLOW_TRACKING_URI": server.url, **_creds(READER)},
             "untrusted": https_env}
    # each run named after its case (DVC_STAGE names a stage's run), so the two servers' runs are told apart
    procs = {case: _run_stage(root / case.replace(" ", "-"), {**extra, "DVC_STAGE": f"separable_train {case}"})
             for case, extra in cases.items()}
    return {case: SimpleNamespace(out=proc.communicate(timeout=300)[0], code=proc.returncode,
                                  folder=root / case.replace(" ", "-")) for case, proc in procs.items()}


def test_a_stage_logs_to_the_server_what_it_logs_to_the_sqlite_store(server, https, stages):
    for case in ("server", "https", "sqlite"):
        assert stages[case].code == 0, stages[case].out[-3000:]
    assert not (stages["server"].folder / "mlflow.db").exists()     # nothing fell back to the default store
    seen = {}
    for store, uri, case in (("server", server.url, "server"), ("https", https.url, "https"),
                             ("sqlite", f"sqlite:///{stages['sqlite'].folder / 'mlflow.db'}", "sqlite")):
        with _signed_in(EDITOR), mock.patch.dict(os.environ, {"MLFLOW_TRACKING_SERVER_CERT_PATH": https.cert}):
            client = _client(uri)
            runs = client.search_runs([client.get_experiment_by_name("separable").experiment_id])
            (run,) = [r for r in runs if r.info.run_name == f"separable_train {case}"]
            assert run.info.status == "FINISHED"
            curves = {key: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]
                      for key in ("loss/train", "loss/val", "accuracy/val")}
            # system metrics (the machine's load) are sampled by time: which ones a short run gets varies
            metrics = {key for key in run.data.metrics if not key.startswith("system/")}
            seen[store] = {"params": run.data.params, "metrics": metrics, "curves": curves,
                           "tags": {k for k in run.data.tags if not k.startswith("mlflow.source")},
                           "files": _artifacts(client, run.info.run_id), "values": list(run.data.tags.values()),
                           "ids": {r.info.run_id for r in runs}}
    ours, sqlite = seen["server"], seen["sqlite"]
    assert {"loss.png", "boundary.png", "model/mlp.pt"} <= ours["files"] and len(ours["curves"]["loss/train"]) == 5
    assert ours["params"]["train.lr"] == "0.01" and "final_train_loss" in ours["metrics"]
    for other in (seen["https"], sqlite):
        assert ours["params"] == other["params"] and ours["metrics"] == other["metrics"]
        assert ours["curves"] == other["curves"]                    # CPU runs are bit-reproducible
        assert ours["tags"] == other["tags"] and ours["files"] == other["files"]
    assert ours["ids"] == seen["https"]["ids"]          # the two servers on one database see the same runs
    for secret in (ADMIN[1], EDITOR[1], READER[1], server.pg_password):
        assert all(secret not in str(v) for v in [*ours["params"].values(), *ours["values"]])


@pytest.mark.parametrize("case, said", [
    ("no user", "refused a request without a user (MLFLOW_TRACKING_USERNAME unset) (401"),
    ("wrong password", f"refused user {EDITOR[0]} (401: missing or wrong credentials)"),
    ("reader", f"does not let user {READER[0]} record runs (403: READ only)"),
    ("untrusted", "has a certificate this machine does not trust: set MLFLOW_TRACKING_SERVER_CERT_PATH")])
def test_a_stage_the_server_refuses_stops_before_compute_with_one_line(server, https, stages, case, said):
    got = stages[case]
    lines = got.out.strip().splitlines()
    assert got.code == 2 and lines[-1].startswith("error: the tracking server http") and said in lines[-1], got.out
    assert (https.url if case == "untrusted" else server.url) in lines[-1] and lines[-1].endswith("nothing was trained")
    assert not (got.folder / "models").exists() and not (got.folder / "mlflow.db").exists()   # nothing written
    assert "Traceback" not in got.out


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
    signed_in = {k: v for k, v in extra.items() if k.startswith("MLFLOW_TRACKING_")}
    # only the server's sweep signs this process in (the other thread's environment is left alone)
    with mock.patch.dict(os.environ, signed_in) if signed_in else contextlib.nullcontext():
        client = _client(extra.get("MLFLOW_TRACKING_URI", f"sqlite:///{repo / 'mlflow.db'}"))
        runs = client.search_runs([client.get_experiment_by_name("separable").experiment_id], max_results=100)
    return {"names": names, "status": status, "runs": runs, "sqlite_store": (repo / "mlflow.db").exists(),
            "workspace_stores": list((repo / ".dvc" / "tmp" / "exps").rglob("mlflow.db"))}


@pytest.fixture(scope="module")
def sweeps(server, tmp_path_factory) -> dict[str, dict]:
    """Both sweeps side by side, each in a repository copy of its own (four workers at once)."""
    from concurrent.futures import ThreadPoolExecutor

    stores = {"server": {"MLFLOW_TRACKING_URI": server.url, **_creds(EDITOR)}, "sqlite": {}}
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


DISTURBED = 60        # epochs of a stage whose server is killed, and whose database is restarted
STAGE = [sys.executable, "-m", "stages.separable", "train"]


def _separable(folder: Path, **extra: str) -> subprocess.Popen:
    folder.mkdir()
    run_env, _ = standalone_separable(folder, DISTURBED, **extra)
    return subprocess.Popen(STAGE, cwd=folder, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory) -> Iterator:
    """The same stage on the SQLite default, undisturbed, started at once (it runs beside the
    disturbed ones); called: the sha256 of the model it wrote."""
    folder = tmp_path_factory.mktemp("quiet") / "quiet"
    proc = _separable(folder)

    def digest() -> str:
        out = proc.communicate(timeout=600)[0]
        assert proc.returncode == 0, out[-3000:]
        return hashlib.sha256((folder / MODEL).read_bytes()).hexdigest()
    yield digest
    if proc.poll() is None:
        proc.kill()


def _the_run(server, name: str):
    """The one run called `name` on the server, and the epochs of its loss/train curve."""
    with _signed_in(EDITOR):
        client = _client(server.url)
        runs = client.search_runs([client.get_experiment_by_name("separable").experiment_id], max_results=500)
        (run,) = [r for r in runs if r.info.run_name == name]
        return run, [m.step for m in client.get_metric_history(run.info.run_id, "loss/train")]


MODEL = Path("models/separable/mlp.pt")


def test_a_stage_outlives_its_server_killed_and_its_database_restarted(server, undisturbed, tmp_path):
    """Both within MLflow's own HTTP retries (7, exponential backoff: about four minutes): the stage
    waits at its next log call and goes on; one run holds every epoch; the model is the bytes an
    undisturbed run (the SQLite default, side by side) writes."""
    team = _separable(tmp_path / "team", MLFLOW_TRACKING_URI=server.url, **_creds(EDITOR),
                      DVC_STAGE="separable_train disturbed")
    with _signed_in(EDITOR):
        _, logged = wait_for_epochs(team, server.url, 5, timeout=180, run_name="separable_train disturbed")
        assert team.poll() is None and logged >= 5, "the stage finished or stalled before its server was killed"
        away = server.kill_server()
        _, then = wait_for_epochs(team, server.url, logged + 5, timeout=300, run_name="separable_train disturbed")
        assert team.poll() is None, "the stage finished before its database could be restarted"
        down = server.restart_postgres()
    out = team.communicate(timeout=600)[0]
    assert team.returncode == 0, out[-3000:]
    run, steps = _the_run(server, "separable_train disturbed")
    print(f"server killed at epoch {logged} and back after {away:.1f} s; PostgreSQL restarted at epoch {then} "
          f"in {down:.1f} s; the run holds {len(set(steps))} of {DISTURBED} epochs ({len(steps)} records)")
    assert run.info.status == "FINISHED" and sorted(set(steps)) == list(range(1, DISTURBED + 1))
    assert len(steps) == DISTURBED                                  # none twice
    assert hashlib.sha256((tmp_path / "team" / MODEL).read_bytes()).hexdigest() == undisturbed()


def test_a_server_gone_past_the_retries_is_one_line_and_the_rerun_continues_its_run(server, undisturbed, tmp_path):
    """MLflow's retries cut to one (a window of about no time): the server killed and left down, the
    stage stops at its next log call with one line naming the run; the server back, the same command
    continues from the resume checkpoint into that run, which ends FINISHED with every epoch once
    and the undisturbed model's bytes."""
    extra = {"MLFLOW_TRACKING_URI": server.url, **_creds(EDITOR), "DVC_STAGE": "separable_train gone",
             "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
    folder = tmp_path / "gone"
    first = _separable(folder, **extra)
    with _signed_in(EDITOR):
        run_id, logged = wait_for_epochs(first, server.url, 5, timeout=180, run_name="separable_train gone")
    assert first.poll() is None and logged >= 5, "the stage finished or stalled before its server was killed"
    server.kill_server(restart=False)
    try:
        out = first.communicate(timeout=300)[0]
    finally:
        server.start()
    lines = out.strip().splitlines()
    assert first.returncode == 2 and "Traceback" not in out, out[-3000:]
    assert lines[-1].startswith(f"error: the tracking server {server.url} stopped answering after epoch "), out[-3000:]
    assert lines[-1].endswith(f"continues from its resume checkpoint into run {run_id}"), lines[-1]
    stopped = int(lines[-1].split("after epoch ")[1].split()[0])
    # the epoch the stage last heard the store take: the server may have taken one more and been killed
    # before it answered (the rerun then records that epoch no second time, checked below)
    assert stopped >= logged - 1 and not (folder / MODEL).exists()    # the outputs are the finished stage's alone
    rerun, _ = standalone_separable(folder, DISTURBED, **extra)
    again = subprocess.run(STAGE, cwd=folder, env=rerun, capture_output=True, text=True, timeout=600, check=False)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    run, steps = _the_run(server, "separable_train gone")
    print(f"server gone past the retries after epoch {stopped}; the rerun continued run {run.info.run_id}: "
          f"{len(set(steps))} of {DISTURBED} epochs ({len(steps)} records)")
    assert run.info.run_id == run_id and run.info.status == "FINISHED"
    assert sorted(steps) == list(range(1, DISTURBED + 1))                  # every epoch, once
    assert hashlib.sha256((folder / MODEL).read_bytes()).hexdigest() == undisturbed()


def test_a_remote_credential_set_with_local_stays_out_of_git(tmp_path):
    """The team's DVC remote in .dvc/config (committed), its secret in .dvc/config.local (DVC's own
    .dvc/.gitignore keeps it out of git)."""
    repo = copy_repo(tmp_path / "repo")
    secret = "s" + secrets.token_urlsafe(12)       # one starting with "-" would read as an option
    dvc(repo, "remote", "add", "team", "s3://team-bucket/dvc")
    dvc(repo, "remote", "modify", "--local", "team", "secret_access_key", secret)
    assert secret in (repo / ".dvc" / "config.local").read_text()
    status = sh(repo, "git", "status", "--porcelain", "--untracked-files=all")
    assert ".dvc/config" in status and "config.local" not in status and secret not in status
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "the team's remote")
    committed = sh(repo, "git", "log", "-p", "--all")
    assert "s3://team-bucket/dvc" in committed and secret not in committed
