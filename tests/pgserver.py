"""A throwaway PostgreSQL server for the tests: initdb into a temporary folder, a unix socket only.

`server()` starts one server per test process on first use (``initdb`` and
``pg_ctl`` found on PATH or under ``/usr/lib/postgresql/*/bin``), listening
on no TCP address at all (``listen_addresses=''``): only on a unix socket in
its own folder. It is stopped with ``pg_ctl stop -m fast`` by `stop` (the
session fixture calls it) or, failing that, when the interpreter exits.
`throwaway_storage` gives a store on a new database of its own, dropped when
the store is closed.

PostgreSQL refuses to run as root; as root, the server runs as the system
user ``postgres`` (Debian's package makes it; it is made here if missing),
and its folder is theirs. Without the binaries a test is skipped, but when
the ``CI`` environment variable is set it fails: CI must run PostgreSQL.
The server trades durability for speed (``fsync=off``) unless built with
``durable=True``: these tests prove behaviour, not crash safety.
"""

from __future__ import annotations

import atexit
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import pytest

if TYPE_CHECKING:
    from securepractice.storage.postgres import PostgresStorage

__all__ = [
    "PostgresServer",
    "missing",
    "open_when_released",
    "server",
    "stop",
    "throwaway_storage",
]

#: How long starting or stopping the server may take, in seconds.
_START_SECONDS = 60
_PORT = 5432
_RUN_AS = "postgres"
_BINARIES = ("initdb", "pg_ctl", "postgres")


def _bin_dir() -> Path | None:
    """Return the folder holding initdb, pg_ctl and postgres, or None."""
    found = shutil.which("pg_ctl")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for folder in candidates:
        if all((folder / name).is_file() for name in _BINARIES):
            return folder
    return None


def missing(reason: str) -> NoReturn:
    """Skip the test, or fail it under CI, where a missing server must never pass unseen."""
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required in CI: {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL server for this test: {reason}", allow_module_level=True)


def _system_user() -> pwd.struct_passwd:
    """Return the unprivileged user the server runs as when we are root; make it if missing."""
    try:
        return pwd.getpwnam(_RUN_AS)
    except KeyError:
        useradd = shutil.which("useradd")
        if useradd is None:
            missing(f"running as root, and there is no {_RUN_AS!r} user nor useradd to make one")
        subprocess.run(  # noqa: S603 - a system tool, fixed arguments
            [useradd, "--system", "--user-group", "--no-create-home", _RUN_AS],
            check=True,
            capture_output=True,
            timeout=_START_SECONDS,
        )
        return pwd.getpwnam(_RUN_AS)


class PostgresServer:
    """One PostgreSQL cluster in a temporary folder, reached through its unix socket only."""

    def __init__(self, *, durable: bool = False) -> None:
        folder = _bin_dir()
        if folder is None:
            missing("initdb, pg_ctl and postgres are neither on PATH nor in /usr/lib/postgresql")
        self.bin = folder
        self.durable = durable
        self.root = Path(tempfile.mkdtemp(prefix="securepractice-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root
        self.log = self.root / "server.log"
        self._user = _system_user() if os.geteuid() == 0 else None
        self._names = itertools.count(1)
        self._lock = threading.Lock()
        self.running = False

    # --- running the server's own tools ------------------------------------------------------

    def _run(self, tool: str, *arguments: str) -> None:
        """Run one of the server's tools as the server's user; raise with its output on failure."""
        user = self._user
        done = subprocess.run(  # noqa: S603 - the server's own binaries, arguments built here
            [str(self.bin / tool), *arguments],
            capture_output=True,
            text=True,
            check=False,
            timeout=_START_SECONDS,
            cwd=self.root,
            env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "TZ": "UTC"},
            user=None if user is None else user.pw_uid,
            group=None if user is None else user.pw_gid,
            extra_groups=None if user is None else [],
        )
        if done.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            msg = f"{tool} failed ({done.returncode}): {done.stdout}{done.stderr}{log}"
            raise RuntimeError(msg)

    def start(self) -> None:
        """Make the cluster and start it; return once it accepts connections."""
        if self._user is not None:
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
        self._run(
            "initdb",
            "--pgdata",
            str(self.data),
            "--username",
            "postgres",
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--no-instructions",
            *([] if self.durable else ["--no-sync"]),
        )
        settings = {
            "listen_addresses": "''",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "port": str(_PORT),
            "max_connections": "300",
            "shared_buffers": "64MB",
            "timezone": "'UTC'",
            **({} if self.durable else {"fsync": "off", "full_page_writes": "off"}),
        }
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        self._run(
            "pg_ctl",
            "start",
            "--pgdata",
            str(self.data),
            "--log",
            str(self.log),
            "--wait",
            "--timeout",
            str(_START_SECONDS),
        )
        self.running = True

    def stop(self) -> None:
        """Stop the server (``-m fast``: end sessions, no waiting) and remove its folder."""
        try:
            if self.running:
                self._run("pg_ctl", "stop", "--pgdata", str(self.data), "--mode", "fast", "--wait")
        finally:
            self.running = False
            shutil.rmtree(self.root, ignore_errors=True)

    # --- databases ---------------------------------------------------------------------------

    def dsn(self, database: str = "postgres") -> str:
        """Return the connection string for ``database`` on this server."""
        return f"host={self.socket_dir} port={_PORT} user=postgres dbname={database}"

    def admin(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE or DROP DATABASE) as the superuser."""
        import psycopg  # noqa: PLC0415 - the driver is needed only once a server runs

        with psycopg.connect(self.dsn(), autocommit=True) as connection:
            connection.execute(sql.encode())

    def create_database(self) -> str:
        """Make a new, empty database; return its name."""
        with self._lock:
            name = f"test_{os.getpid()}_{next(self._names)}"
        self.admin(f"CREATE DATABASE {name} TEMPLATE template0")
        return name

    def drop_database(self, name: str) -> None:
        """Remove a database, ending any session still connected to it."""
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class BarrierLike(Protocol):
    """What `open_when_released` waits at: a threading or multiprocessing barrier."""

    def wait(self, timeout: float | None = None) -> int:
        """Wait until every party has come."""
        ...


_server: PostgresServer | None = None
_server_lock = threading.Lock()


def server() -> PostgresServer:
    """Return this process's server, starting it on first use; skip or fail if impossible."""
    global _server  # noqa: PLW0603 - one server per test process, made on first use
    with _server_lock:
        if _server is None:
            try:
                import psycopg  # noqa: F401, PLC0415 - only whether the driver is there
            except ImportError as error:
                missing(f"the postgres extra is not installed ({error})")
            started = PostgresServer()
            try:
                started.start()
            except BaseException:
                started.stop()
                raise
            _server = started
            atexit.register(stop)
        return _server


def stop() -> None:
    """Stop this process's server if it was started."""
    global _server
    with _server_lock:
        running, _server = _server, None
    if running is not None:
        running.stop()


def throwaway_storage(**options: Any) -> PostgresStorage:
    """Return a store on a new database of this process's server; closing it drops the database.

    For `STORES` in tests/conftest.py, whose factories have no teardown of their own.
    """
    from securepractice.storage.postgres import PostgresStorage  # noqa: PLC0415 - needs the extra

    running = server()
    name = running.create_database()

    class Throwaway(PostgresStorage):
        def close(self) -> None:
            try:
                super().close()
            finally:
                running.drop_database(name)

    return Throwaway(running.dsn(name), **options)


def open_when_released(dsn: str, barrier: BarrierLike) -> str:
    """Wait at ``barrier``, then open (and so migrate) a store on ``dsn``: for other processes.

    Return "ok" or the error's code, so that a parent sees what each process met.
    """
    from securepractice.errors import StorageError  # noqa: PLC0415 - in the child process
    from securepractice.storage.postgres import PostgresStorage  # noqa: PLC0415

    barrier.wait()
    try:
        PostgresStorage(dsn, min_size=0).close()
    except StorageError as error:
        return error.code
    return "ok"
