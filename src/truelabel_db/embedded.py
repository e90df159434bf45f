"""A private PostgreSQL cluster, for the demo and for tests.

The server binaries are found on the machine (``TRUELABEL_PG_BINDIR``, ``pg_config``, Debian's
versioned folder, ``PATH``, or the ``pgserver`` package's bundled build). PostgreSQL refuses to
run as root, so when we are root the cluster runs as a dedicated system user,
``truelabel-pg``, created on first use; the data directory is owned by it. That user must be
able to reach the cluster's folder: a folder under a private home (mode 0700, as ``/root`` is)
is refused with a message naming a place that works. :func:`scratch_cluster_dir` gives such a
place whatever the working directory: a fresh folder under a per-user home in the system's
temporary folder, owned by the server's user, mode 0700, removed afterwards. The cluster
listens on 127.0.0.1 only, with trust authentication, on a free port, and its settings live in
``truelabel.conf`` beside the data.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import pq, sql

from truelabel_db.errors import EmbeddedClusterError

CLUSTER_USER = "truelabel-pg"
HOME_PREFIX = "truelabel-db-"   # <temporary folder>/truelabel-db-<user>: where scratch clusters live
OWNER_FILE = "owner.pid"        # in each scratch folder: the process that made it (gone: the folder is litter)
BINDIR_ENV = "TRUELABEL_PG_BINDIR"
INSTALL_HINT = ("install PostgreSQL's server (Debian: apt-get install postgresql-15), "
                f"or `pip install pgserver`, or point {BINDIR_ENV} at a folder holding `postgres`")


def find_server_binaries(explicit: Path | None = None) -> Path:
    """The folder holding ``postgres``, ``initdb`` and ``pg_ctl``."""
    override = explicit or (Path(os.environ[BINDIR_ENV]) if os.environ.get(BINDIR_ENV) else None)
    if override is not None:
        if _has_server(override):
            return override
        raise EmbeddedClusterError(f"no PostgreSQL server binaries in {override}: {INSTALL_HINT}")
    for candidate in _candidates():
        if _has_server(candidate):
            return candidate
    raise EmbeddedClusterError(f"no PostgreSQL server binaries found: {INSTALL_HINT}")


def _has_server(folder: Path) -> bool:
    return all((folder / name).is_file() for name in ("postgres", "initdb", "pg_ctl"))


def _candidates() -> list[Path]:
    found: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if result.returncode == 0:
            found.append(Path(result.stdout.strip()))
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                    key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    found += debian
    on_path = shutil.which("postgres")
    if on_path:
        found.append(Path(on_path).parent)
    try:
        import pgserver  # type: ignore[import-not-found]

        found += [p.parent for p in Path(pgserver.__file__).parent.rglob("postgres") if p.is_file()]
    except ImportError:
        pass
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedCluster:
    """A PostgreSQL cluster of our own: ``with EmbeddedCluster(dir) as c: c.url``."""

    def __init__(self, base_dir: Path, *, port: int | None = None,
                 settings: Mapping[str, str] | None = None, superuser: str = "postgres",
                 bindir: Path | None = None) -> None:
        self.base_dir = base_dir.resolve()
        self.port = port or free_port()
        self.settings = dict(settings or {})
        self.superuser = superuser
        self.bindir = find_server_binaries(bindir)
        self._user = _cluster_user()
        self._socket_dir: Path | None = None

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "postgresql.log"

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, dbname: str) -> str:
        return f"postgresql://{self.superuser}@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> "EmbeddedCluster":
        self._prepare_dirs()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self._write_settings()
        deadline = time.monotonic() + 20
        while True:
            self._clear_stale_pid()
            result = self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file),
                               "-w", "-t", "60", "start")
            if result.returncode == 0:
                break
            if time.monotonic() > deadline:  # a killed server's children may take a moment to go
                raise EmbeddedClusterError(
                    f"the private PostgreSQL cluster did not start: {self._log_tail()}")
            time.sleep(0.5)
        self._wait_ready()
        return self

    def _clear_stale_pid(self) -> None:
        """Remove postmaster.pid when its server is gone (a zombie counts as gone)."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        if not _alive(pid):
            pid_file.unlink(missing_ok=True)

    def stop(self) -> None:
        if not (self.data_dir / "postmaster.pid").exists():
            return
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60", "stop")

    def restart(self, settings: Mapping[str, str] | None = None) -> None:
        self.stop()
        if settings:
            self.settings.update(settings)
        self.start()

    def run_tool(self, program: str, *args: str,
                 env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run one of the server's programs (``pg_basebackup``, ...) as the cluster's user, from
        the base folder, which is created and handed to that user first; ``env`` replaces the
        default environment (ours without its secrets)."""
        self._prepare_dirs()
        return self._run(program, *args, env=env)

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def __enter__(self) -> "EmbeddedCluster":
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def _prepare_dirs(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            _check_reachable(self.base_dir, self._user)
            os.chown(self.base_dir, self._user.pw_uid, self._user.pw_gid)
            if self.log_file.exists():
                os.chown(self.log_file, self._user.pw_uid, self._user.pw_gid)
        socket_dir = self.base_dir / "run"
        if len(str(socket_dir)) > 90:  # unix socket paths are limited to ~107 bytes
            socket_dir = Path(tempfile.mkdtemp(prefix="tl-pg-"))
        socket_dir.mkdir(exist_ok=True)
        if self._user is not None:
            os.chown(socket_dir, self._user.pw_uid, self._user.pw_gid)
        self._socket_dir = socket_dir

    def _initdb(self) -> None:
        result = self._run("initdb", "-D", str(self.data_dir), "-U", self.superuser, "-E", "UTF8",
                           "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=trust")
        if result.returncode != 0:
            raise EmbeddedClusterError("initdb failed: " + _last_line(result.stderr or result.stdout))
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write("\ninclude_if_exists = 'truelabel.conf'\n")

    def _write_settings(self) -> None:
        base = {"port": str(self.port), "listen_addresses": "127.0.0.1",
                "unix_socket_directories": str(self._socket_dir)}
        lines = [f"{key} = '{str(value).replace(chr(39), chr(39) * 2)}'"
                 for key, value in {**base, **self.settings}.items()]
        target = self.data_dir / "truelabel.conf"
        target.write_text("\n".join(lines) + "\n")
        if self._user is not None:
            os.chown(target, self._user.pw_uid, self._user.pw_gid)

    def _run(self, program: str, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """The server and its tools never inherit our secrets (the backup key, passwords)."""
        from truelabel_db.hooks import scrubbed_environment

        kwargs: dict[str, object] = {}
        if self._user is not None:
            kwargs = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        done: subprocess.CompletedProcess[str] = subprocess.run(
            [str(self.bindir / program), *args], capture_output=True, text=True,
                              cwd=str(self.base_dir), stdin=subprocess.DEVNULL,
                              env=dict(env) if env is not None else scrubbed_environment(),
            **kwargs)  # type: ignore[call-overload]
        return done

    def _wait_ready(self) -> None:
        """Until the server accepts connections (a ping: a replica may demand passwords we lack)."""
        deadline = time.monotonic() + 30
        while pq.PGconn.ping(f"{self.url}?connect_timeout=2".encode()) != pq.Ping.OK:
            if time.monotonic() > deadline:
                raise EmbeddedClusterError(f"the private cluster does not accept connections: {self._log_tail()}")
            time.sleep(0.1)

    def _log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no server log"
        return " | ".join(lines[-3:]) or "empty server log"


def cluster_home(base: Path | None = None) -> Path:
    """The calling user's folder for scratch clusters: ``<base>/truelabel-db-<user>``.

    ``base`` defaults to the system's temporary folder (``TMPDIR`` or ``/tmp``), which every user
    can traverse. The folder belongs to the user the server runs as (``truelabel-pg`` under root,
    else the caller) and has mode 0700: the server can enter it and no other user can. An
    existing folder is checked, not trusted: a symbolic link, or a folder of another owner, is
    refused (someone may have planted it in a world-writable place).
    """
    server = _cluster_user()
    uid = server.pw_uid if server is not None else os.geteuid()
    gid = server.pw_gid if server is not None else os.getegid()
    home = (base or Path(tempfile.gettempdir())).resolve() / f"{HOME_PREFIX}{_caller_name()}"
    try:
        home.mkdir(mode=0o700)
        os.chown(home, uid, gid)
    except FileExistsError:
        pass
    info = home.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid:
        raise EmbeddedClusterError(
            f"{home} is not a folder of the PostgreSQL server's user ({_user_name(uid)}); "
            f"remove it, or set TMPDIR to another folder")
    if info.st_mode & 0o077:
        home.chmod(0o700)
    if server is not None:
        _check_reachable(home, server)
    return home


@contextmanager
def scratch_cluster_dir(prefix: str = "cluster-", *, base: Path | None = None) -> Iterator[Path]:
    """A fresh folder for a throwaway cluster, inside :func:`cluster_home`; removed on exit.

    Folders left by a process that died before it could remove its own (``kill -9``) are
    removed on the way in: each records the process that made it.
    """
    home = cluster_home(base)
    _sweep(home)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=home))
    (folder / OWNER_FILE).write_text(str(os.getpid()))
    owner = home.stat()
    os.chown(folder, owner.st_uid, owner.st_gid)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _sweep(home: Path) -> None:
    """Remove scratch folders whose maker is gone and whose server, if any, is not running."""
    for folder in home.iterdir():
        try:
            owner = int((folder / OWNER_FILE).read_text())
            servers = [int(p.read_text().split()[0]) for p in folder.glob("*/data/postmaster.pid")]
        except (OSError, ValueError, IndexError):
            continue   # not one of ours, still being made, or a server writing its pid file
        if not _alive(owner) and not any(_alive(pid) for pid in servers):
            shutil.rmtree(folder, ignore_errors=True)


def _caller_name() -> str:
    return _user_name(os.geteuid())


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    state = next((line.split()[1] for line in status.splitlines() if line.startswith("State:")), "")
    return state not in ("Z", "X")


def _cluster_user() -> pwd.struct_passwd | None:
    """None when we are not root; else the unprivileged user the server runs as."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(CLUSTER_USER)
    except KeyError:
        result = subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                                 "/usr/sbin/nologin", CLUSTER_USER], capture_output=True, text=True)
        if result.returncode != 0:
            raise EmbeddedClusterError(f"cannot create system user {CLUSTER_USER}: "
                                       + _last_line(result.stderr)) from None
        return pwd.getpwnam(CLUSTER_USER)


def _check_reachable(folder: Path, user: pwd.struct_passwd) -> None:
    """Every parent of ``folder`` must let the cluster user through."""
    for parent in list(folder.parents)[::-1]:
        mode = parent.stat()
        if parent.owner() != user.pw_name and not (mode.st_mode & 0o001):
            raise EmbeddedClusterError(
                f"the PostgreSQL user {user.pw_name} cannot enter {parent} (mode "
                f"{oct(mode.st_mode & 0o777)}); choose a folder outside it, e.g. under /srv or /tmp "
                "(the demo's and the tests' clusters go under TMPDIR)")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
