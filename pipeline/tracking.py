"""MLflow: where the store is, and one run per stage execution.

Default store: an SQLite file `mlflow.db` at the repository root, artifacts in
`mlartifacts/` beside it; `MLFLOW_TRACKING_URI` overrides. Queued DVC
experiments run in a temporary copy under `.dvc/tmp/exps/` with `DVC_ROOT`
pointing at the real repository, so the root comes from `DVC_ROOT` first, or
those runs would vanish with their temporary copy.
"""
from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from pathlib import Path
from typing import Iterator, Mapping

from pipeline.core.errors import PipelineError

STORE_FILE = "mlflow.db"
ARTIFACT_DIR = "mlartifacts"
# MLflow's system metrics (CPU, memory, disk, network; per GPU utilisation and memory through
# NVML) sampled every this many seconds in a background thread of every stage's run: a sample is a
# few psutil/NVML calls (benchmarks.system_metrics_cost: no measurable cost to training).
# MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL overrides it.
SYSTEM_METRICS_INTERVAL = 5


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


def store_file(uri: str) -> Path | None:
    """The SQLite file behind a `sqlite:///` store URI; None for any other store."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def artifact_location(experiment: str, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> str | None:
    """Artifacts beside the default store; a user-set tracking URI keeps its server's default."""
    env = os.environ if env is None else env
    if env.get("MLFLOW_TRACKING_URI"):
        return None
    return (repo_root(env, cwd) / ARTIFACT_DIR / experiment).as_uri()


def ui_address(env: Mapping[str, str] | None = None) -> str:
    """Where a person opens the runs: the tracking server itself, or `mlflow ui`'s default address."""
    uri = tracking_uri(env)
    return uri.rstrip("/") if uri.startswith(("http://", "https://")) else "http://127.0.0.1:5000"


def experiment_ids(names: list[str], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The MLflow experiment id of each name that exists in the store; {} when there is no store yet
    (a missing SQLite file is not created) or it cannot be reached."""
    uri = tracking_uri(env)
    path = store_file(uri)
    if path is not None and not path.exists():
        return {}
    try:
        from mlflow.tracking import MlflowClient

        ready_store(uri)
        client = MlflowClient(tracking_uri=uri)
        found = {n: client.get_experiment_by_name(n) for n in names}
    except Exception:  # noqa: BLE001 - links are a convenience; an unreachable store only loses them
        return {}
    return {n: e.experiment_id for n, e in found.items() if e is not None}


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


EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}  # MLflow 3 opens these on training runs
CONSTANTS = ("parameters", "_samples")     # a run's sizes: recorded as params, not as one-point metrics


@contextlib.contextmanager
def stage_run(experiment: str, stage: str, params: Mapping[str, object],
              run_id: str | None = None) -> Iterator["StageRun"]:
    """One MLflow run for one stage execution. `run_id`: the run an interrupted execution of this
    stage left behind (its resume checkpoint keeps the id): continued, so the stage ends as one
    run holding every epoch. A stage that raises ends its run FAILED with the error as a tag."""
    import mlflow
    from mlflow.tracking import MlflowClient

    # resolve both before set_tracking_uri, which writes MLFLOW_TRACKING_URI into os.environ
    uri, location = tracking_uri(), artifact_location(experiment)
    with refusals(uri):               # a server that refuses this user stops the stage before any compute
        reachable(uri)
        ready_store(uri)
        # what set_tracking_uri leaves (the variable, for the stage's children too), without its reset
        # of MLflow's tracing, which loads OpenTelemetry's SDK (0.3 s of every stage) for traces no stage makes
        os.environ["MLFLOW_TRACKING_URI"] = uri
        if mlflow.get_tracking_uri() != uri:        # a process that chose another store itself
            mlflow.set_tracking_uri(uri)
        found = mlflow.get_experiment_by_name(experiment)
        exp_id = found.experiment_id if found else mlflow.create_experiment(experiment, artifact_location=location)
        if found is None or found.tags.get("mlflow.experimentKind") != EXPERIMENT_KIND["mlflow.experimentKind"]:
            for key, value in EXPERIMENT_KIND.items():
                MlflowClient().set_experiment_tag(exp_id, key, value)
        mlflow.set_experiment(experiment_id=exp_id)
        resumed = run_id is not None and _continuable(MlflowClient(), run_id, exp_id)
        if not os.environ.get("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"):
            mlflow.set_system_metrics_sampling_interval(SYSTEM_METRICS_INTERVAL)
        tags = {**run_tags(stage), "mlflow.note.content": _description(stage)}
        start = dict(run_id=run_id) if resumed else dict(run_name=os.environ.get("DVC_STAGE", stage), tags=tags)
        active = mlflow.start_run(**start, log_system_metrics=True)
        try:
            if not resumed:
                mlflow.log_params({k: _param_text(v) for k, v in params.items()})
            elif "error" in MlflowClient().get_run(run_id).data.tags:
                MlflowClient().delete_tag(run_id, "error")        # an earlier failure this execution gets past
        except BaseException:
            mlflow.end_run("FAILED")
            raise
    with active as run:
        tracker = StageRun(run.info.run_id, continued=resumed)
        try:
            yield tracker
        except BaseException as exc:
            if lost(uri, exc):        # past MLflow's retries: asking the server again would only wait again
                _let_go(run.info.run_id)
                raise TrackingError(_gone(uri, tracker)) from None
            mlflow.set_tag("error", f"{type(exc).__name__}: {exc}"[:5000])
            raise


def ready_store(uri: str) -> None:
    """An SQLite store's tables made once, under an exclusive `flock` on its file. MLflow makes them
    on first use with no lock: two processes opening a new store at once (the first stages of two
    queued experiments, a script that reads a stage's store as it starts) both make them and one
    fails ("table experiments already exists"); every opener in this project comes through here.
    SQLite's own locks are POSIX record locks, which `flock` leaves alone. A server's store is its
    server's business."""
    path = store_file(uri)
    if path is None:
        return
    from mlflow.tracking import MlflowClient

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as handle:          # an empty file is an empty SQLite database
        with contextlib.suppress(ImportError, OSError):   # no flock here (Windows, some NFS): MLflow's own way
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX)   # released when the file closes
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)


class TrackingError(PipelineError):
    """The tracking server cannot be reached or refuses this user: which server, which user, what to set."""


HEALTH_TIMEOUT = 10     # s: a server that does not answer its health check at a stage's start


def reachable(uri: str) -> None:
    """A tracking server that is down or untrusted is one line at once (MLflow's own client would
    retry for minutes first); a store that is no server is not asked."""
    if not uri.startswith(("http://", "https://")):
        return
    import requests

    verify = os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or \
        os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() not in ("true", "1")
    try:
        requests.get(f"{uri.rstrip('/')}/health", timeout=HEALTH_TIMEOUT, verify=verify)
    except requests.RequestException as exc:
        raise TrackingError(_unreachable(uri, exc)) from None


@contextlib.contextmanager
def refusals(uri: str) -> Iterator[None]:
    """MLflow's refusals (401, 403, an untrusted certificate) as one line naming the server, the
    user and what to set."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        if exc.error_code == "UNAUTHENTICATED":
            who = f"user {user}" if user else "a request without a user (MLFLOW_TRACKING_USERNAME unset)"
            raise TrackingError(f"the tracking server {uri} refused {who} (401: missing or wrong credentials): set "
                                "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to your account on it; "
                                "nothing was trained") from None
        if exc.error_code == "PERMISSION_DENIED":
            raise TrackingError(f"the tracking server {uri} does not let user {user} record runs (403: READ only): "
                                "ask its admin for EDIT (`python -m pipeline.scaleout.tracking_server users add`), "
                                "or log as another user; nothing was trained") from None
        raise
    except OSError as exc:                 # requests' connection and TLS errors, after MLflow's retries
        raise TrackingError(_unreachable(uri, exc)) from None


def _unreachable(uri: str, exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if "SSL" in text or "CERTIFICATE" in text:
        cert = os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH")
        now = f" (now {cert})" if cert else ""
        return (f"the tracking server {uri} has a certificate this machine does not trust: set "
                f"MLFLOW_TRACKING_SERVER_CERT_PATH{now} to the CA certificate that signed it (for a self-signed "
                "one, the certificate itself); nothing was trained")
    return (f"cannot reach the tracking server {uri} ({type(exc).__name__}): start it, or fix MLFLOW_TRACKING_URI "
            "(unset, the stages use the SQLite mlflow.db); nothing was trained")


def retry_window(env: Mapping[str, str] | None = None) -> float:
    """Seconds MLflow's client keeps retrying a request to a server that is down: its retries
    (MLFLOW_HTTP_REQUEST_MAX_RETRIES, 7) with urllib3's exponential backoff (no wait before the first,
    then factor × 2^(n-1), at most 120 s; MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR, 2): 244 s by default."""
    env = os.environ if env is None else env
    retries = int(env.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES") or 7)
    factor = float(env.get("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR") or 2)
    return sum(min(120.0, factor * 2 ** (n - 1)) for n in range(2, retries + 1))


def lost(uri: str, exc: BaseException) -> bool:
    """Whether `exc` is a tracking server that stopped answering (a connection or HTTP-retry failure
    that outlasted MLflow's retries), not an error of the stage's own."""
    if not uri.startswith(("http://", "https://")):
        return False
    import requests
    from mlflow.exceptions import MlflowException

    if not isinstance(exc, (MlflowException, requests.RequestException)):
        return False
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, requests.RequestException):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _let_go(run_id: str) -> None:
    """Forget `run_id` in this process without asking the server that is gone: off MLflow's stack of
    active runs (so neither the `with` nor exit ends it: it stays RUNNING, and a rerun continues it)
    and its system-metrics thread told to stop (a daemon: not waited for)."""
    from mlflow.tracking import fluent

    stack = fluent._active_run_stack.get()
    stack[:] = [r for r in stack if r.info.run_id != run_id]
    os.environ.pop("MLFLOW_RUN_ID", None)
    monitor = getattr(fluent, "run_id_to_system_metrics_monitor", {}).pop(run_id, None)
    if monitor is not None and getattr(monitor, "_shutdown_event", None) is not None:
        monitor._shutdown_event.set()
        logging.getLogger("mlflow.system_metrics").setLevel(logging.CRITICAL)   # its last try says it again


def _gone(uri: str, tracker: "StageRun") -> str:
    done = f"after epoch {tracker.epochs}" if tracker.epochs else "before its first epoch was recorded"
    return (f"the tracking server {uri} stopped answering {done} and was not back within MLflow's retries "
            f"(about {retry_window():.0f} s; MLFLOW_HTTP_REQUEST_MAX_RETRIES sets them): the stage stopped; start the "
            f"server and run the stage again: a training stage continues from its resume checkpoint into run "
            f"{tracker.run_id}")


def _continuable(client, run_id: str, experiment_id: str) -> bool:
    """Whether `run_id` names a run of this experiment that did not finish (left RUNNING by a
    killed process, or FAILED)."""
    try:
        info = client.get_run(run_id).info
    except Exception:  # noqa: BLE001 - a run id from another store or a deleted run: start afresh
        return False
    return info.experiment_id == experiment_id and info.status != "FINISHED" and info.lifecycle_stage == "active"


def _description(stage: str, env: Mapping[str, str] | None = None) -> str:
    """The run's description: which DVC experiment it belongs to, or the workspace."""
    env = os.environ if env is None else env
    where = f"DVC experiment {env['DVC_EXP_NAME']}" if env.get("DVC_EXP_NAME") else "workspace"
    return f"{where}: `{env.get('DVC_STAGE', stage)}`"


def _param_text(value) -> str:
    text = str(value)
    return text if len(text) <= 6000 else text[:5997] + "..."


SPLITS = ("train", "val", "test")


def curve_name(key: str) -> str:
    """A history key as an MLflow curve: `val_loss` -> `loss/val`, so the UI's chart sections (the part
    before "/") hold the training, validation and test curves of one quantity side by side."""
    split, _, quantity = key.partition("_")
    return f"{quantity}/{split}" if split in SPLITS and quantity else key


class StageRun:
    """What a stage logs to its run: per-epoch metrics, final metrics, files, figures."""

    def __init__(self, run_id: str, continued: bool = False):
        self.run_id = run_id
        self.epochs = 0            # the last epoch the store has taken
        # the last epoch an interrupted execution of this run recorded (None: not asked yet). A stage
        # resumes from its last checkpoint, which may be an epoch behind what reached the store (killed
        # between the two, or a server that took the record and died before it answered)
        self._recorded: int | None = None if continued else 0

    def log_epoch(self, record: Mapping[str, float]) -> None:
        """One epoch's history record; `epoch` is the step, and the optimiser step count is no curve.
        An epoch the run already holds is not recorded again: every epoch once."""
        import mlflow

        metrics = {curve_name(k): float(v) for k, v in record.items() if k not in ("epoch", "step")}
        epoch = int(record["epoch"])
        if self._recorded is None:        # one key suffices: a record goes to the store in one batch
            from mlflow.tracking import MlflowClient

            history = MlflowClient().get_metric_history(self.run_id, next(iter(metrics))) if metrics else []
            self._recorded = max((m.step for m in history), default=0)
        if epoch > self._recorded:
            mlflow.log_metrics(metrics, step=epoch)
        self.epochs = epoch

    def log_metrics(self, metrics: Mapping[str, float], prefix: str = "") -> None:
        """Final metrics; sizes (parameter and sample counts) and flags go to the params."""
        import mlflow

        constant = {k: v for k, v in metrics.items() if k.endswith(CONSTANTS) or isinstance(v, bool)}
        mlflow.log_metrics({prefix + k: float(v) for k, v in metrics.items() if k not in constant})
        if constant:
            mlflow.log_params({prefix + k: _param_text(v) for k, v in constant.items()})

    def log_artifact(self, path: str | Path, folder: str | None = None) -> None:
        import mlflow

        mlflow.log_artifact(str(path), artifact_path=folder)
