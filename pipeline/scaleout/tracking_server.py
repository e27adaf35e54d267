"""A team's MLflow tracking server on PostgreSQL: `python -m pipeline.scaleout.tracking_server`.

One person keeps the default store (an SQLite `mlflow.db` at the repository root). A team runs
one `mlflow server` whose backend store is PostgreSQL — MLflow's documentation recommends a
server database for concurrent writers, and `dvc queue start -j N` or several machines are
exactly that — with artifacts proxied by the server (`--artifacts-destination`), so clients need
no access to the artifact storage. Every client then sets one thing:
`MLFLOW_TRACKING_URI=http://<host>:<port>`.

    python -m pipeline.scaleout.tracking_server --backend-store-uri postgresql://user:pw@db:5432/mlflow
    python -m pipeline.scaleout.tracking_server --local-postgres ~/mlflow-server   # a cluster of its own

It binds to 127.0.0.1:5000 unless told otherwise; options it does not know (`--workers 2`,
`--allowed-hosts mlflow.example.org`, ...) go to `mlflow server` unchanged. Before starting it
checks what usually goes wrong — psycopg2 missing, the port taken, the database unreachable — and
says so in one line (exit status 2). It prints the address once the server answers, and on
Ctrl-C or SIGTERM stops the server and, with `--local-postgres`, the cluster it started.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from pipeline.core.errors import PipelineError
from pipeline.scaleout.postgres import LocalPostgres, ServerError

DATABASE_ENV = "MLFLOW_BACKEND_STORE_URI"      # the variable `mlflow server` itself reads
# MLflow 3's job runner (GenAI evaluation and optimisation jobs, seven more processes that take
# ~20 s of CPU to start) serves nothing the stages log: off unless this variable turns it on.
JOBS_ENV = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"
READY_TIMEOUT = 180                            # s: the first start creates MLflow's tables


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.scaleout.tracking_server", allow_abbrev=False,
        description="Start `mlflow server` on a PostgreSQL backend store, artifacts proxied by the server. "
                    "Unknown options are passed to `mlflow server`.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to bind (default 127.0.0.1; 0.0.0.0 for other machines, with "
                             "--allowed-hosts <name> so MLflow accepts their requests)")
    parser.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--backend-store-uri", default=os.environ.get(DATABASE_ENV),
                       help=f"postgresql://user:password@host:port/database (default ${DATABASE_ENV})")
    where.add_argument("--local-postgres", type=Path, metavar="FOLDER",
                       help="create (first time) and start a PostgreSQL cluster of its own in FOLDER instead")
    parser.add_argument("--postgres-port", type=int, default=0,
                        help="with --local-postgres: the cluster's port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--artifacts-destination",
                        help="folder or URI (s3://, gs://, ...) where the server keeps artifacts "
                             "(default FOLDER/artifacts with --local-postgres, else ./mlartifacts)")
    return parser.parse_known_args(argv)


def require_psycopg2() -> None:
    """MLflow reaches PostgreSQL through SQLAlchemy's psycopg2 driver, which is an extra here."""
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        raise ServerError("psycopg2 is not installed (MLflow's PostgreSQL driver): pip install psycopg2-binary, "
                          "or install this project with its `server` extra") from None


def postgres_uri(uri: str | None) -> str:
    """The database URI, checked, naming its driver for SQLAlchemy: `postgresql+psycopg2://`
    (SQLAlchemy 2.1 reads a bare `postgresql://` as psycopg 3, which this project does not install)."""
    if not uri:
        raise ServerError(f"no database: pass --backend-store-uri postgresql://user:password@host:port/db (or set "
                          f"${DATABASE_ENV}), or --local-postgres <folder> for a PostgreSQL of its own")
    if not re.match(r"postgresql(\+psycopg2)?://", uri):
        raise ServerError(f"--backend-store-uri must be a postgresql:// URI, not {redact(uri)} (one person "
                          "needs no server: the stages write to the SQLite mlflow.db by default)")
    return re.sub(r"^postgresql://", "postgresql+psycopg2://", uri)


def check_database(uri: str) -> None:
    """Connect once, so an unreachable database is one line here, not a traceback from MLflow."""
    import psycopg2

    libpq = uri.replace("postgresql+psycopg2://", "postgresql://", 1)
    try:
        psycopg2.connect(libpq, connect_timeout=10).close()
    except psycopg2.Error as exc:
        said = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ServerError(f"cannot reach the database {redact(libpq)} ({said}): start PostgreSQL, create the "
                          "database, or fix the URI") from None


def check_port(host: str, port: int) -> None:
    """Bind the port the way uvicorn will (SO_REUSEADDR), so a taken port is one line here."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise ServerError(f"cannot listen on {host}:{port} ({exc.strerror}): another server holds it? "
                              "pass --port <another>") from None


def redact(uri: str) -> str:
    """The URI without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", uri)


def client_address(host: str, port: int) -> str:
    """Where clients on this machine reach a server bound to `host`."""
    local = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}
    shown = local.get(host, f"[{host}]" if ":" in host else host)
    return f"http://{shown}:{port}"


def wait_until_ready(server: subprocess.Popen, address: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise ServerError(f"mlflow server stopped with status {server.returncode} before it answered "
                              "(its messages are above)")
        try:
            with urllib.request.urlopen(f"{address}/health", timeout=5) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise ServerError(f"mlflow server did not answer at {address}/health within {READY_TIMEOUT} s")


def stop(server: subprocess.Popen) -> None:
    """The server and its workers (one process group of their own): SIGTERM, then SIGKILL."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    try:
        os.killpg(server.pid, signal.SIGKILL)      # workers that outlived their parent
    except ProcessLookupError:
        pass


def serve(args: argparse.Namespace, mlflow_options: list[str]) -> int:
    check_port(args.host, args.port)
    uri = None if args.local_postgres else postgres_uri(args.backend_store_uri)
    require_psycopg2()
    local = LocalPostgres(args.local_postgres, args.postgres_port) if args.local_postgres else None
    artifacts = args.artifacts_destination or str((args.local_postgres / "artifacts" if local
                                                   else Path("mlartifacts")).resolve())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))     # stop as on Ctrl-C: the finally below
    server = None
    try:
        if local is not None:
            uri = postgres_uri(local.start())
            print(f"PostgreSQL running in {local.data} on 127.0.0.1:{local.port}", flush=True)
        else:
            check_database(uri)
        cmd = [sys.executable, "-m", "mlflow", "server", "--serve-artifacts", "--artifacts-destination", artifacts,
               "--host", args.host, "--port", str(args.port), *mlflow_options]
        # the URI (its password) through the environment, which `ps` does not show to other users;
        # the server in a process group of its own, so that it is stopped with its workers
        env = {**os.environ, DATABASE_ENV: uri, JOBS_ENV: os.environ.get(JOBS_ENV, "false")}
        server = subprocess.Popen(cmd, env=env, start_new_session=True)
        address = client_address(args.host, args.port)
        wait_until_ready(server, address)
        print(f"MLflow tracking server at {address} (database {redact(uri)}, artifacts {artifacts}); "
              f"clients set MLFLOW_TRACKING_URI={address}", flush=True)
        return server.wait()
    finally:
        if server is not None:
            stop(server)
        if local is not None:
            local.stop()


def main(argv: list[str] | None = None) -> None:
    args, mlflow_options = parse_args(argv)
    try:
        sys.exit(serve(args, mlflow_options))
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
