"""PgBouncer in transaction mode between the service's workers and PostgreSQL.

Every worker keeps a pool of client connections; without a pooler each is a PostgreSQL backend
(a process, ~10 MB, and a slot of ``max_connections``), so backends grow with workers and
instances. In transaction mode PgBouncer lends a server connection to a client for one
transaction only, so thousands of client connections share ``pool_size`` backends.

What transaction mode takes away, and how the service copes: a server connection is not the
same from one transaction to the next, so no session state may be relied on. The hot paths are
single statements in autocommit (or pipelines of them) and use transaction-scoped advisory
locks only; server-side prepared statements, which psycopg makes after a statement's fifth
run, live in one server session, so pools opened for PgBouncer switch them off
(``prepare_threshold=None``; PgBouncer 1.18, Debian 12's, cannot carry them). ``LISTEN`` needs a
session: anything that listens must connect to PostgreSQL directly.

``PgBouncer(upstream_url).start()`` writes its configuration into a private folder and runs the
``pgbouncer`` binary (Debian package ``pgbouncer``) in the foreground, as an unprivileged
system user when we are root (PgBouncer refuses to run as root). It listens on a Unix socket
only, in that folder (mode 0700): only its owner and root can connect, so trusting who connects
gives nobody more than the service already has. ``url`` is the connection string through it.
The upstream password, if the URL carries one, is written to the configuration file (mode
0600), never to a command line, and its environment is a minimal one of its own
(``pooler_environment``): nothing of ``serve``'s (the admin token, ``TRUELABEL_TARGET_URL``)
reaches it. When the process that started it dies, PgBouncer is sent
SIGTERM (Linux's parent-death signal): ``serve --pgbouncer`` killed leaves no pooler behind.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from truelabel_db.embedded import free_port
from truelabel_db.errors import ConfigError, TargetError
from truelabel_db.postgres import describe, redact

POOLER_USER = "truelabel-pgbouncer"
INSTALL_HINT = "install PgBouncer (Debian: apt-get install pgbouncer)"


@dataclass(frozen=True)
class PoolerSettings:
    pool_size: int = 20            # server connections (PostgreSQL backends) at most
    max_client_conn: int = 10_000  # client connections accepted at most
    port: int | None = None        # the socket's number (a free one when None)


class PgBouncer:
    def __init__(self, upstream_url: str, work_dir: Path | None = None,
                 settings: PoolerSettings = PoolerSettings()) -> None:
        self.upstream = conninfo_to_dict(upstream_url)
        if not self.upstream.get("dbname"):
            raise ConfigError(f"PgBouncer needs a database name in the URL: {describe(upstream_url)}")
        self.settings = settings
        self.port = settings.port or free_port()
        self._owns_dir = work_dir is None
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="tl-pgbouncer-"))
        self.binary = _binary()
        self._user = _pooler_user()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def user(self) -> str:
        return str(self.upstream.get("user") or pwd.getpwuid(os.getuid()).pw_name)

    @property
    def url(self) -> str:
        """The connection string through the pooler (no password: the socket is private)."""
        return make_conninfo(host=str(self.work_dir), port=str(self.port), dbname=self.upstream["dbname"],
                             user=self.user)

    @property
    def admin_url(self) -> str:
        return make_conninfo(host=str(self.work_dir), port=str(self.port), dbname="pgbouncer", user=self.user)

    # -- configuration ---------------------------------------------------------------------
    def config_text(self) -> str:
        server = {k: v for k, v in self.upstream.items() if k in ("host", "port", "dbname", "user", "password")}
        server.setdefault("host", "127.0.0.1")
        entry = " ".join(f"{k}={_quote(str(v))}" for k, v in server.items())
        settings = {
            "listen_port": self.port, "unix_socket_dir": self.work_dir, "unix_socket_mode": "0700",
            "auth_type": "trust", "auth_file": self.work_dir / "userlist.txt",
            "pool_mode": "transaction", "default_pool_size": self.settings.pool_size,
            "max_db_connections": self.settings.pool_size, "max_client_conn": self.settings.max_client_conn,
            "reserve_pool_size": 0, "server_lifetime": 3600, "ignore_startup_parameters": "extra_float_digits",
            "log_connections": 0, "log_disconnections": 0,   # thousands of clients: log what goes wrong only
            "admin_users": self.user, "stats_users": self.user,
            "logfile": self.work_dir / "pgbouncer.log", "pidfile": self.work_dir / "pgbouncer.pid",
        }
        lines = ["[databases]", f"{self.upstream['dbname']} = {entry}", "", "[pgbouncer]"]
        return "\n".join(lines + [f"{k} = {v}" for k, v in settings.items()]) + "\n"

    def _write_config(self) -> Path:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir.chmod(0o700)
        files = {"pgbouncer.ini": self.config_text(), "userlist.txt": f'"{self.user}" ""\n'}
        for name, text in files.items():
            path = self.work_dir / name
            path.write_text(text)
            path.chmod(0o600)
        if self._user is not None:
            for path in (self.work_dir, *self.work_dir.iterdir()):
                os.chown(path, self._user.pw_uid, self._user.pw_gid)
        return self.work_dir / "pgbouncer.ini"

    # -- running ---------------------------------------------------------------------------
    def start(self, timeout: float = 15.0) -> "PgBouncer":
        config = self._write_config()
        user = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []} if self._user else {}
        # Its log goes to the file only: a pipe nobody reads fills up and stops PgBouncer mid-write.
        self._process = subprocess.Popen([self.binary, "--quiet", str(config)], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         env=pooler_environment(),
                                         preexec_fn=_child_setup, **user)  # type: ignore[call-overload]
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise TargetError(f"PgBouncer exited at start: {self._log_tail()}")
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=2, prepare_threshold=None) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.Error as exc:
                if time.monotonic() > deadline:
                    self.stop()
                    reason = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
                    where = describe(make_conninfo("", **self.upstream))
                    raise TargetError(f"PgBouncer cannot reach PostgreSQL {where}: {reason}") from exc
                time.sleep(0.1)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._owns_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def pools(self) -> list[dict[str, Any]]:
        """PgBouncer's ``SHOW POOLS``: client and server connections per pool, live."""
        with psycopg.connect(self.admin_url, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
            cursor = conn.execute("SHOW POOLS")
            names = [c.name for c in cursor.description or ()]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def _log_tail(self) -> str:
        try:
            lines = (self.work_dir / "pgbouncer.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            lines = []
        return redact(lines[-1]) if lines else "no log"

    def __enter__(self) -> "PgBouncer":
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


def pooler_environment() -> dict[str, str]:
    """PgBouncer's whole environment: what any program needs (the path, the locale, the time
    zone) and nothing else of ours; its configuration file says everything it needs to know."""
    kept = {name: os.environ[name] for name in ("PATH", "LANG", "LC_ALL", "TZ") if name in os.environ}
    return {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", **kept}


def _binary() -> str:
    found = shutil.which("pgbouncer") or next((p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")
                                                if os.access(p, os.X_OK)), None)
    if found is None:
        raise ConfigError(f"pgbouncer not found: {INSTALL_HINT}")
    return found


def _quote(value: str) -> str:
    """A libpq connection-string value: quoted, with quotes and backslashes escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _child_setup() -> None:
    """In the child, before exec: die with the parent, and have file descriptors for every client."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _pooler_user() -> pwd.struct_passwd | None:
    """None when we are not root; else the unprivileged system user PgBouncer runs as."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(POOLER_USER)
    except KeyError:
        result = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                                 POOLER_USER], capture_output=True, text=True)
        if result.returncode != 0:
            raise ConfigError(f"cannot create system user {POOLER_USER}: {result.stderr.strip()}") from None
        return pwd.getpwnam(POOLER_USER)
