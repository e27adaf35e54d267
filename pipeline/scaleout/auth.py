"""The team server's lock: MLflow's basic-auth app, its secrets kept out of sight, and its users.

`mlflow server --app-name basic-auth` asks every request for a user name and password, and keeps
users and their permissions in a database of its own. What it needs, and where it comes from here:

- the admin's password, only at the first start (MLflow creates the admin then): from a file of
  mode 600 (`--admin-password-file`) or `MLFLOW_AUTH_ADMIN_PASSWORD`, never the command line;
- a Flask secret key that every worker and every restart share: generated once into the auth
  folder (mode 600, the folder 700);
- its settings file, written into the same folder (mode 600: it holds the auth database's URI
  with its password): the auth tables in the team's PostgreSQL, users without a grant see
  nothing (`default_permission = NO_PERMISSIONS`).

`python -m pipeline.scaleout.tracking_server users add|list|remove` then manages the team through
MLflow's own REST API (its `AuthServiceClient`), as an admin: MLFLOW_TRACKING_USERNAME and
MLFLOW_TRACKING_PASSWORD are the admin's. A user gets one grant on every experiment: READ (look),
EDIT (run stages: create runs, log) or MANAGE (also delete and grant). MLflow lets any signed-in
user create a new experiment of their own; READ keeps them out of everyone else's.
"""
from __future__ import annotations

import argparse
import getpass
import ipaddress
import os
import secrets
import stat
import sys
import warnings
from pathlib import Path

from pipeline.core.errors import PipelineError

ADMIN_PASSWORD_ENV = "MLFLOW_AUTH_ADMIN_PASSWORD"    # what MLflow itself reads at the first start
ADMIN_USERNAME_ENV = "MLFLOW_AUTH_ADMIN_USERNAME"
CONFIG_ENV = "MLFLOW_AUTH_CONFIG_PATH"
SECRET_ENV = "MLFLOW_FLASK_SERVER_SECRET_KEY"
USERNAME_ENV, PASSWORD_ENV = "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"
CERT_ENV = "MLFLOW_TRACKING_SERVER_CERT_PATH"
DATABASE_ENV = "MLFLOW_AUTH_DATABASE_URI"        # this module's own: keeps a password off the command line
PERMISSIONS = ("READ", "EDIT", "MANAGE")
MIN_PASSWORD = 12                                     # MLflow's own rule for every password
RESOURCE = ("experiment", "*")                        # a user's one grant: every experiment


class AuthError(PipelineError):
    """The server's lock cannot be set up, or a user cannot be managed: what is wrong and what to do."""


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach an address bound to `host`."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False                                  # a host name: another machine may resolve it


def private_text(path: Path, what: str) -> str:
    """The first line of a secret's file, which must be the owner's alone (mode 600 or stricter)."""
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except OSError as exc:
        raise AuthError(f"{what} {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AuthError(f"{what} {path} is readable by others (mode {stat.S_IMODE(mode):o}): chmod 600 {path}")
    lines = text.strip().splitlines()
    if not lines:
        raise AuthError(f"{what} {path} is empty")
    return lines[0].strip()


def check_password(password: str, whose: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"{whose} password is shorter than {MIN_PASSWORD} characters (MLflow's rule): choose a "
                        "longer one")
    return password


def admin_password(file: Path | None) -> str | None:
    """The admin's password: from `file`, else MLFLOW_AUTH_ADMIN_PASSWORD, else None."""
    if file is not None:
        return check_password(private_text(file, "admin password file"), "the admin's")
    if os.environ.get(ADMIN_PASSWORD_ENV):
        return check_password(os.environ[ADMIN_PASSWORD_ENV], f"${ADMIN_PASSWORD_ENV}: the admin's")
    return None


def _private_write(path: Path, text: str) -> None:
    """`text` into `path`, created with mode 600 (never readable by others, not even for a moment)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


# Seconds a worker of the server keeps a user's checked password (MLflow's auth_cache_ttl_seconds,
# off by default in MLflow). Every request carries the password, and checking it against its scrypt
# hash costs ~70 ms of server CPU (2-core reference machine): a stage logs every epoch and samples
# system metrics every 5 s, so without the cache the hash is most of the server's work. The price:
# a user removed, or a password changed, on one worker is still accepted by the others for up to
# this long. 0 turns the cache off.
AUTH_CACHE_SECONDS = 60


class AuthFolder:
    """The server's auth state: `secret_key` (generated once) and `basic_auth.ini` (rewritten at
    every start from the options given), both mode 600 in a folder of mode 700."""

    def __init__(self, folder: Path):
        self.path = Path(folder).resolve()

    def prepare(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.path.chmod(0o700)

    def secret_key(self) -> str:
        key = self.path / "secret_key"
        if not key.exists():
            _private_write(key, secrets.token_hex(32) + "\n")
        return private_text(key, "the server's secret key")

    def config(self, database_uri: str, admin: str, cache_seconds: int = AUTH_CACHE_SECONDS) -> Path:
        ini = self.path / "basic_auth.ini"
        _private_write(ini, "\n".join([
            "[mlflow]",
            "# written by python -m pipeline.scaleout.tracking_server at every start",
            "default_permission = NO_PERMISSIONS",
            f"database_uri = {database_uri}",
            f"admin_username = {admin}",
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
            f"auth_cache_ttl_seconds = {cache_seconds}",
            "",
        ]))
        return ini


def admin_exists(database_uri: str, admin: str) -> bool:
    """Whether the auth database already holds the admin (so no password is needed to start)."""
    import psycopg2

    libpq = database_uri.replace("postgresql+psycopg2://", "postgresql://", 1)
    with psycopg2.connect(libpq, connect_timeout=10) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('public.users') IS NOT NULL")
        if not cur.fetchone()[0]:
            return False
        cur.execute("SELECT 1 FROM users WHERE username = %s AND is_admin", (admin,))
        found = cur.fetchone() is not None
    conn.close()
    return found


def server_environment(folder: AuthFolder, database_uri: str, password_file: Path | None,
                       cache_seconds: int = AUTH_CACHE_SECONDS) -> dict[str, str]:
    """What `mlflow server --app-name basic-auth` needs in its environment (never on its command line)."""
    folder.prepare()
    admin = os.environ.get(ADMIN_USERNAME_ENV) or "admin"
    password = admin_password(password_file)
    if password is None and not admin_exists(database_uri, admin):
        raise AuthError(f"the first start with authentication creates the admin `{admin}` and needs a password: "
                        f"--admin-password-file FILE (mode 600) or ${ADMIN_PASSWORD_ENV}; or --no-auth")
    env = {CONFIG_ENV: str(folder.config(database_uri, admin, cache_seconds)), SECRET_ENV: folder.secret_key()}
    if password is not None:
        env[ADMIN_PASSWORD_ENV] = password
    return env


# ---- users: python -m pipeline.scaleout.tracking_server users add|list|remove ----

def users_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.scaleout.tracking_server users", allow_abbrev=False,
        description="Manage the team server's users through MLflow's auth API, as its admin "
                    f"(${USERNAME_ENV} and ${PASSWORD_ENV} are the admin's).")
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"),
                        help="the server (default $MLFLOW_TRACKING_URI)")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="create a user with one permission on every experiment")
    add.add_argument("name")
    add.add_argument("--permission", choices=PERMISSIONS, required=True,
                     help="READ: look; EDIT: run stages (create runs, log); MANAGE: also delete and grant")
    add.add_argument("--password-file", type=Path,
                     help="the user's password, first line of a file of mode 600 (default: asked for, "
                          "or one line on standard input)")
    commands.add_parser("list", help="every user, whether admin, and their permission")
    remove = commands.add_parser("remove", help="delete a user")
    remove.add_argument("name")
    args = parser.parse_args(argv)
    client = _admin_client(args.tracking_uri)
    if args.command == "add":
        password = _new_password(args.password_file, args.name)
        _call(client.create_user, args.name, password, doing=f"create user {args.name}")
        _call(client.grant_user_permission, args.name, *RESOURCE, args.permission,
              doing=f"grant {args.permission} to {args.name}")
        print(f"user {args.name} created with {args.permission} on every experiment; they set "
              f"MLFLOW_TRACKING_URI={args.tracking_uri}, {USERNAME_ENV}={args.name} and {PASSWORD_ENV}")
    elif args.command == "list":
        for name, admin, permission in list_users(client):
            print(f"{name:24} {'admin' if admin else permission}")
    else:
        _call(client.delete_user, args.name, doing=f"remove user {args.name}")
        print(f"user {args.name} removed")
    return 0


def _admin_client(uri: str | None):
    if not uri or not uri.startswith(("http://", "https://")):
        raise AuthError("no tracking server: pass --tracking-uri https://host:port (or set MLFLOW_TRACKING_URI)")
    if not (os.environ.get(USERNAME_ENV) and os.environ.get(PASSWORD_ENV)):
        raise AuthError(f"managing users needs the admin's credentials: set {USERNAME_ENV} and {PASSWORD_ENV}")
    with warnings.catch_warnings():     # MLflow's server package imports starlette's deprecated WSGI bridge
        warnings.filterwarnings("ignore", message="starlette.middleware.wsgi")
        from mlflow.server.auth.client import AuthServiceClient

    return AuthServiceClient(uri)


def _new_password(file: Path | None, name: str) -> str:
    whose = f"{name}'s"
    if file is not None:
        return check_password(private_text(file, "password file"), whose)
    if sys.stdin.isatty():
        first = getpass.getpass(f"password for {name}: ")
        if getpass.getpass("again: ") != first:
            raise AuthError("the two passwords differ")
        return check_password(first, whose)
    return check_password(sys.stdin.readline().strip(), whose)


def _call(function, *args, doing: str):
    """An auth API call; a refusal is one line naming the status and what to do."""
    from mlflow.exceptions import MlflowException

    try:
        return function(*args)
    except MlflowException as exc:
        raise AuthError(f"could not {doing}: {refusal(exc)}") from None
    except OSError as exc:          # requests' connection and SSL errors are OSErrors
        raise AuthError(f"could not {doing}: {unreachable(exc)}") from None


def refusal(exc) -> str:
    """What an MlflowException from a tracking server means for the person who got it."""
    code = getattr(exc, "error_code", "")
    user = os.environ.get(USERNAME_ENV)
    if code == "UNAUTHENTICATED":
        who = f"user {user}" if user else f"no user (${USERNAME_ENV} unset)"
        return f"the server refused {who} (401: missing or wrong credentials): set {USERNAME_ENV} and {PASSWORD_ENV}"
    if code == "PERMISSION_DENIED":
        return (f"user {user} lacks the permission (403): an admin grants it with `python -m "
                f"pipeline.scaleout.tracking_server users add` (EDIT to run stages)")
    if code == "RESOURCE_ALREADY_EXISTS":
        return "it exists already"
    if code == "RESOURCE_DOES_NOT_EXIST":
        return "no such user"
    message = (getattr(exc, "message", None) or str(exc)).strip().splitlines()
    return message[0][:300] if message else code


def unreachable(exc: BaseException) -> str:
    """A connection or certificate failure, in one line with what to set."""
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSLError" in type(exc).__name__ or "SSLError" in text:
        return (f"its TLS certificate is not trusted: set {CERT_ENV} to the CA certificate that signed it "
                "(for a self-signed one, the certificate itself)")
    said = text.strip().splitlines()
    return f"cannot reach it ({said[-1][:200] if said else type(exc).__name__})"


def list_users(client) -> list[tuple[str, bool, str]]:
    """(name, is admin, permission on every experiment) of every user, through the admin API."""
    from mlflow.server.auth.routes import LIST_USERS

    users = _call(client._request, LIST_USERS, "GET", doing="list users")["users"]
    found = []
    for user in users:
        grant = "-"
        for role in user.get("roles", []):
            for perm in _call(client.list_role_permissions, role["id"], doing="list permissions"):
                if (perm.resource_type, perm.resource_pattern) == RESOURCE:
                    grant = perm.permission
        found.append((user["username"], user["is_admin"], grant))
    return sorted(found)
