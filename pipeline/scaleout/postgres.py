"""A PostgreSQL cluster of its own in one folder, for a person who wants a tracking server on one box.

Debian's server binaries (`initdb`, `pg_ctl`) make the cluster; its superuser `mlflow` gets a
random password kept beside the data (mode 600), it listens on 127.0.0.1 only (no Unix socket),
the database `mlflow` holds MLflow's tables and `mlflow_auth` its auth app's users. PostgreSQL
refuses to run as root, so under root every server command runs as the `postgres` user, which
then owns the cluster's folder.
A team with a managed or shared PostgreSQL needs none of this: it passes that database's URI.
"""
from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
from pathlib import Path

from pipeline.core.errors import PipelineError

USER = DATABASE = "mlflow"      # the cluster's superuser and MLflow's database
AUTH_DATABASE = "mlflow_auth"   # the basic-auth app's users and permissions
OWNER = "postgres"              # who runs the server when we are root
INSTALL = "install PostgreSQL's server (Debian/Ubuntu: apt-get install postgresql)"


class ServerError(PipelineError):
    """The tracking server or its database cannot start: what is wrong and what to do."""


def bin_dir() -> Path:
    """Where `initdb` and `pg_ctl` are: $PG_BIN, else Debian's newest /usr/lib/postgresql/<v>/bin,
    else the PATH (they are not on Debian's PATH)."""
    def version(folder: str) -> int:
        name = Path(folder).parent.name
        return int(name) if name.isdigit() else 0

    found = [os.environ.get("PG_BIN", "")] + sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    for folder in filter(None, found):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    if shutil.which("initdb") and shutil.which("pg_ctl"):
        return Path(shutil.which("initdb")).parent
    raise ServerError(f"no PostgreSQL server binaries (initdb, pg_ctl) found: {INSTALL}, set PG_BIN to "
                      "their folder, or pass --backend-store-uri of a running PostgreSQL")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class LocalPostgres:
    """The cluster in `folder/postgres/`: `start()` creates it the first time (and the database),
    starts it on `port` (a free one when 0) and returns its URI; `stop()` stops it (fast mode:
    open connections are closed, nothing committed is lost)."""

    def __init__(self, folder: Path, port: int = 0):
        self.home = Path(folder).resolve() / "postgres"
        self.data, self.password_file = self.home / "data", self.home / "password"
        self.port = port or free_port()
        self.bin = bin_dir()
        self.as_owner = os.geteuid() == 0

    @property
    def uri(self) -> str:
        return self.uri_of(DATABASE)

    def uri_of(self, database: str) -> str:
        password = self.password_file.read_text().strip()
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{database}"

    def start(self) -> str:
        if not (self.data / "PG_VERSION").exists():
            self._init()
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories=''"
        self._run("pg_ctl", "start", "-D", self.data, "-l", self.home / "server.log", "-w", "-t", "60",
                  "-o", options, what="start")
        self._create_databases()
        return self.uri

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-D", self.data, "-m", "fast", "-w", what="stop")

    def _init(self) -> None:
        """initdb with a random password for `mlflow`; the folder belongs to the server's user."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.password_file.write_text(secrets.token_urlsafe(24) + "\n")
        self.password_file.chmod(0o600)
        if self.as_owner:
            try:
                owner = pwd.getpwnam(OWNER)
            except KeyError:
                raise ServerError(f"running as root and there is no `{OWNER}` user to run PostgreSQL as: "
                                  f"{INSTALL}, or run this as an ordinary user") from None
            for path in (self.home, self.password_file):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            if subprocess.run(self._command("test", "-w", self.home), check=False).returncode != 0:
                raise ServerError(f"the `{OWNER}` user cannot write to {self.home}: make every folder above it "
                                  "traversable (chmod o+x) or choose a folder outside root's home")
        self._run("initdb", "-D", self.data, "-U", USER, f"--pwfile={self.password_file}", "--auth=scram-sha-256",
                  "-E", "UTF8", "--no-instructions", what="create")

    def _create_databases(self) -> None:
        import psycopg2

        try:
            conn = psycopg2.connect(self.uri.rsplit("/", 1)[0] + "/postgres", connect_timeout=10)
        except psycopg2.Error as exc:
            said = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
            raise ServerError(f"PostgreSQL in {self.data} started but refuses a connection ({said}); "
                              f"see {self.home / 'server.log'}") from None
        conn.autocommit = True                       # CREATE DATABASE cannot run in a transaction
        try:
            with conn.cursor() as cur:
                for name in (DATABASE, AUTH_DATABASE):
                    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                    if cur.fetchone() is None:
                        cur.execute(f"CREATE DATABASE {name}")
        finally:
            conn.close()

    def _command(self, program: str, *args) -> list[str]:
        exe = str(self.bin / program) if (self.bin / program).exists() else program
        cmd = [exe, *map(str, args)]
        return ["runuser", "-u", OWNER, "--", *cmd] if self.as_owner else cmd

    def _run(self, program: str, *args, what: str) -> None:
        done = subprocess.run(self._command(program, *args), capture_output=True, text=True, check=False)
        if done.returncode != 0:              # the server's own complaint is in its log, pg_ctl's on stderr
            log = self.home / "server.log"
            logged = [line for line in (log.read_text() if log.exists() else "").splitlines()
                      if "FATAL" in line or "ERROR" in line]
            said = logged or done.stderr.strip().splitlines()
            raise ServerError(f"could not {what} PostgreSQL in {self.data} ({program}: "
                              f"{said[-1] if said else f'status {done.returncode}'}); see {log}")
