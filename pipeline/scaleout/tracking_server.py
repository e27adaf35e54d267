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

Locked beyond loopback: bound to an address other machines reach, it serves MLflow's basic-auth
app (users, passwords, permissions: `pipeline.scaleout.auth`) or refuses to start, unless told
`--no-auth`; `--auth` locks a loopback server too. `--certfile`/`--keyfile` serve HTTPS (uvicorn's
TLS); clients trust a private CA through MLflow's MLFLOW_TRACKING_SERVER_CERT_PATH.

    python -m pipeline.scaleout.tracking_server --host 0.0.0.0 --local-postgres ~/mlflow-server \
        --admin-password-file ~/mlflow-admin-password --certfile cert.pem --keyfile key.pem
    python -m pipeline.scaleout.tracking_server users add ana --permission EDIT
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import shlex
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from pipeline.core.errors import PipelineError
from pipeline.scaleout import auth
from pipeline.scaleout.postgres import AUTH_DATABASE, LocalPostgres, ServerError

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
    lock = parser.add_argument_group("authentication (MLflow's basic-auth app) and TLS")
    on_off = lock.add_mutually_exclusive_group()
    on_off.add_argument("--auth", action="store_true", default=None,
                        help="users and passwords (the default on any address but loopback)")
    on_off.add_argument("--no-auth", dest="auth", action="store_false",
                        help="serve every request unchecked, even to other machines")
    lock.add_argument("--admin-password-file", type=Path, metavar="FILE",
                      help=f"the admin's password (first line; mode 600), needed at the first start "
                           f"(default ${auth.ADMIN_PASSWORD_ENV})")
    lock.add_argument("--auth-dir", type=Path, metavar="FOLDER",
                      help="where the server keeps its secret key and auth settings (mode 700; default "
                           "FOLDER/auth with --local-postgres, else the admin password file's folder)")
    lock.add_argument("--auth-database-uri", metavar="URI", default=os.environ.get(auth.DATABASE_ENV),
                      help=f"the auth app's database (default ${auth.DATABASE_ENV}, else the local cluster's "
                           "mlflow_auth, else the backend store's own database, where its tables stay apart)")
    lock.add_argument("--auth-cache-seconds", type=int, default=auth.AUTH_CACHE_SECONDS, metavar="S",
                      help=f"how long each worker keeps a checked password (default {auth.AUTH_CACHE_SECONDS}; "
                           "a removed user or changed password holds on other workers for as long; 0: off)")
    lock.add_argument("--certfile", type=Path, help="serve HTTPS with this certificate (PEM; with --keyfile)")
    lock.add_argument("--keyfile", type=Path, help="the certificate's private key (PEM)")
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


def client_address(host: str, port: int, tls: bool = False) -> str:
    """Where clients on this machine reach a server bound to `host`."""
    local = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}
    shown = local.get(host, f"[{host}]" if ":" in host else host)
    return f"{'https' if tls else 'http'}://{shown}:{port}"


def wait_until_ready(server: subprocess.Popen, address: str) -> None:
    # its own child's health on this machine: the certificate (made for the host's name) is the
    # clients' to check, not this probe's
    probe = ssl._create_unverified_context() if address.startswith("https") else None
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise ServerError(f"mlflow server stopped with status {server.returncode} before it answered "
                              "(its messages are above)")
        try:
            with urllib.request.urlopen(f"{address}/health", timeout=5, context=probe) as reply:
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


def lock_options(args: argparse.Namespace) -> bool:
    """Whether the server asks for passwords: by default exactly when other machines can reach it
    (an open server for them is `--no-auth`, said explicitly)."""
    locked = args.auth if args.auth is not None else not auth.is_loopback(args.host)
    if bool(args.certfile) != bool(args.keyfile):
        raise ServerError("HTTPS needs both --certfile and --keyfile")
    if args.auth_cache_seconds < 0:
        raise ServerError(f"--auth-cache-seconds {args.auth_cache_seconds}: seconds, 0 or more (0 turns the cache off)")
    for path in filter(None, (args.certfile, args.keyfile)):
        if not path.is_file():
            raise ServerError(f"{path}: no such file (--certfile/--keyfile: PEM files)")
    if locked and args.auth_dir is None and args.local_postgres is None and args.admin_password_file is None:
        raise auth.AuthError(f"{args.host} lets other machines in, so the server asks for passwords and keeps its "
                             "secret key in a folder of its own: pass --auth-dir FOLDER (or --admin-password-file, "
                             "whose folder it then uses), or --no-auth to leave it open"
                             if not auth.is_loopback(args.host) else
                             "--auth keeps the server's secret key in a folder of its own: pass --auth-dir FOLDER "
                             "(or --admin-password-file, whose folder it then uses)")
    return locked


def tls_options(args: argparse.Namespace, mlflow_options: list[str]) -> list[str]:
    """`mlflow server` options with uvicorn's TLS options added to any --uvicorn-opts given."""
    if not args.certfile:
        return mlflow_options
    tls = f"--ssl-certfile {shlex.quote(str(args.certfile.resolve()))} " \
          f"--ssl-keyfile {shlex.quote(str(args.keyfile.resolve()))}"
    options = list(mlflow_options)
    for i, option in enumerate(options):
        if option == "--uvicorn-opts" and i + 1 < len(options):
            options[i + 1] = f"{options[i + 1]} {tls}"
            return options
        if option.startswith("--uvicorn-opts="):
            options[i] = f"{option} {tls}"
            return options
    return [*options, "--uvicorn-opts", tls]


def serve(args: argparse.Namespace, mlflow_options: list[str]) -> int:
    locked = lock_options(args)
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
        # every secret through the environment, which `ps` does not show to other users; the
        # server in a process group of its own, so that it is stopped with its workers
        env = {**os.environ, DATABASE_ENV: uri, JOBS_ENV: os.environ.get(JOBS_ENV, "false")}
        lock = []
        if locked:
            auth_uri = postgres_uri(args.auth_database_uri or (local.uri_of(AUTH_DATABASE) if local else uri))
            if args.auth_database_uri:
                check_database(auth_uri)
            folder = args.auth_dir or (args.local_postgres / "auth" if local else args.admin_password_file.parent)
            env.update(auth.server_environment(auth.AuthFolder(folder), auth_uri, args.admin_password_file,
                                               args.auth_cache_seconds))
            lock = ["--app-name", "basic-auth"]
        cmd = [sys.executable, "-m", "mlflow", "server", "--serve-artifacts", "--artifacts-destination", artifacts,
               "--host", args.host, "--port", str(args.port), *lock, *tls_options(args, mlflow_options)]
        server = subprocess.Popen(cmd, env=env, start_new_session=True)
        address = client_address(args.host, args.port, tls=bool(args.certfile))
        wait_until_ready(server, address)
        locked_as = (f"users and passwords (admin {os.environ.get(auth.ADMIN_USERNAME_ENV) or 'admin'}; "
                     "add users with `python -m pipeline.scaleout.tracking_server users add`)" if locked
                     else "no authentication")
        print(f"MLflow tracking server at {address} (database {redact(uri)}, artifacts {artifacts}, {locked_as}); "
              f"clients set MLFLOW_TRACKING_URI={address}", flush=True)
        return server.wait()
    finally:
        if server is not None:
            stop(server)
        if local is not None:
            local.stop()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["users"]:
            sys.exit(auth.users_main(argv[1:]))
        args, mlflow_options = parse_args(argv)
        sys.exit(serve(args, mlflow_options))
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
