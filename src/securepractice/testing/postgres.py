"""A throwaway PostgreSQL server for tests and benchmarks: initdb into a temporary folder.

`PostgresServer` makes a cluster with ``initdb`` and runs it with ``pg_ctl``
(both found on PATH or under ``/usr/lib/postgresql/*/bin``), listening on no
TCP address at all (``listen_addresses=''``): only on a unix socket in its
own folder. Starting and stopping are bounded in time; the folder is removed
when it stops. Use it as a context manager::

    with PostgresServer() as server:
        name = server.create_database()
        store = PostgresStorage(server.dsn(name))

PostgreSQL refuses to run as root; as root, the server runs as the system
user ``postgres`` (Debian's package makes it; it is made here if missing),
and its folder is theirs. Without the binaries, or as root without a way to
make that user, building a `PostgresServer` raises `PostgresUnavailable`.
By default the server trades durability for speed (``fsync=off``): tests
prove behaviour, not crash safety. ``durable=True`` keeps PostgreSQL's
defaults (``fsync=on``, ``synchronous_commit=on``), for measurements that
should hold on a real server. Creating and dropping databases needs the
``postgres`` extra (psycopg).
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
from types import TracebackType
from typing import TYPE_CHECKING

from typing_extensions import Self

if TYPE_CHECKING:
    from psycopg import sql

__all__ = ["PostgresServer", "PostgresUnavailable", "find_binaries"]

#: How long starting or stopping the server may take, in seconds.
START_SECONDS = 60
_PORT = 5432
_RUN_AS = "postgres"
_BINARIES = ("initdb", "pg_ctl", "postgres")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be made here: its binaries, or a user to run it as, are missing."""


def find_binaries() -> Path | None:
    """Return the folder holding initdb, pg_ctl and postgres, or None if there is none."""
    found = shutil.which("pg_ctl")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for folder in candidates:
        if all((folder / name).is_file() for name in _BINARIES):
            return folder
    return None  # pragma: no cover - a machine without PostgreSQL


def _system_user() -> pwd.struct_passwd:
    """Return the unprivileged user the server runs as when we are root; make it if missing."""
    try:
        return pwd.getpwnam(_RUN_AS)
    except KeyError:  # pragma: no cover - a machine whose root has no postgres user yet
        useradd = shutil.which("useradd")
        if useradd is None:
            msg = f"running as root, and there is no {_RUN_AS!r} user nor useradd to make one"
            raise PostgresUnavailable(msg) from None
        subprocess.run(  # noqa: S603 - a system tool, fixed arguments
            [useradd, "--system", "--user-group", "--no-create-home", _RUN_AS],
            check=True,
            capture_output=True,
            timeout=START_SECONDS,
        )
        return pwd.getpwnam(_RUN_AS)


class PostgresServer:
    """One PostgreSQL cluster in a temporary folder, reached through its unix socket only.

    Building it finds the binaries (`PostgresUnavailable` if there are none)
    and runs nothing; `start` makes and starts the cluster, `stop` stops it
    and removes its folder. ``with PostgresServer() as server:`` does both.
    A server still running when the interpreter exits is stopped then.
    """

    def __init__(self, *, durable: bool = False) -> None:
        folder = find_binaries()
        if folder is None:  # pragma: no cover - a machine without PostgreSQL
            msg = "initdb, pg_ctl and postgres are neither on PATH nor in /usr/lib/postgresql"
            raise PostgresUnavailable(msg)
        self.bin = folder
        self.durable = durable
        self._user = _system_user() if os.geteuid() == 0 else None
        self.root = Path(tempfile.mkdtemp(prefix="securepractice-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root
        self.log = self.root / "server.log"
        self._names = itertools.count(1)
        self._lock = threading.Lock()
        self._owner = os.getpid()
        self.running = False

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- running the server's own tools ------------------------------------------------------

    def _run(self, tool: str, *arguments: str) -> None:
        """Run one of the server's tools as the server's user; raise with its output on failure."""
        user = self._user
        done = subprocess.run(  # noqa: S603 - the server's own binaries, arguments built here
            [str(self.bin / tool), *arguments],
            capture_output=True,
            text=True,
            check=False,
            timeout=START_SECONDS,
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
        """Make the cluster and start it; return once it accepts connections.

        If it cannot (a tool fails or runs past `START_SECONDS`), whatever was
        made is stopped and removed before the error propagates.
        """
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
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
        atexit.register(self._stop_at_exit)
        self._run(
            "pg_ctl",
            "start",
            "--pgdata",
            str(self.data),
            "--log",
            str(self.log),
            "--wait",
            "--timeout",
            str(START_SECONDS),
        )
        self.running = True

    def stop(self) -> None:
        """Stop the server (``-m fast``: end sessions, no waiting) and remove its folder."""
        atexit.unregister(self._stop_at_exit)
        try:
            # The pid file, not `running`: a start that timed out may have left a server up.
            if (self.data / "postmaster.pid").exists():
                self._run(
                    "pg_ctl",
                    "stop",
                    "--pgdata",
                    str(self.data),
                    "--mode",
                    "fast",
                    "--wait",
                    "--timeout",
                    str(START_SECONDS),
                )
        finally:
            self.running = False
            shutil.rmtree(self.root, ignore_errors=True)

    def _stop_at_exit(self) -> None:  # pragma: no cover - runs only as the interpreter exits
        """Stop the server when the interpreter that started it exits, not in a forked child."""
        if os.getpid() == self._owner:
            self.stop()

    # --- databases ---------------------------------------------------------------------------

    def dsn(self, database: str = "postgres") -> str:
        """Return the connection string for ``database`` on this server, as its superuser."""
        return f"host={self.socket_dir} port={_PORT} user=postgres dbname={database}"

    def admin(self, statement: str | sql.Composed) -> None:
        """Run one statement outside a transaction (CREATE or DROP DATABASE) as the superuser."""
        import psycopg  # noqa: PLC0415 - the driver is needed only once a server runs

        query = statement.encode() if isinstance(statement, str) else statement
        with psycopg.connect(self.dsn(), autocommit=True) as connection:
            connection.execute(query)

    def create_database(self) -> str:
        """Make a new, empty database; return its name."""
        with self._lock:
            name = f"test_{os.getpid()}_{next(self._names)}"
        self.admin(f"CREATE DATABASE {name} TEMPLATE template0")
        return name

    def drop_database(self, name: str) -> None:
        """Remove a database, ending any session still connected to it."""
        from psycopg import sql  # noqa: PLC0415 - the driver is needed only once a server runs

        self.admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
