"""The tests' throwaway PostgreSQL server: `securepractice.testing.postgres`, under pytest's rules.

`server()` starts one `PostgresServer` per test process on first use (a
unix socket only, ``fsync=off``); it is stopped by `stop` (the session
fixture calls it) or, failing that, when the interpreter exits.
`throwaway_storage` gives a store on a new database of its own, dropped when
the store is closed. Without the binaries or the ``postgres`` extra a test
is skipped, but when the ``CI`` environment variable is set it fails: CI
must run PostgreSQL.
"""

from __future__ import annotations

import os
import threading
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import pytest

from securepractice.testing.postgres import PostgresServer, PostgresUnavailable

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


def missing(reason: str) -> NoReturn:
    """Skip the test, or fail it under CI, where a missing server must never pass unseen."""
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required in CI: {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL server for this test: {reason}", allow_module_level=True)


class BarrierLike(Protocol):
    """What `open_when_released` waits at: a threading or multiprocessing barrier."""

    def wait(self, timeout: float | None = None) -> int:
        """Wait until every party has come."""
        ...


_server: PostgresServer | None = None
_server_lock = threading.Lock()
_running = ExitStack()


def server() -> PostgresServer:
    """Return this process's server, starting it on first use; skip or fail if impossible."""
    global _server  # noqa: PLW0603 - one server per test process, made on first use
    with _server_lock:
        if _server is None:
            try:
                import psycopg  # noqa: F401, PLC0415 - only whether the driver is there
            except ImportError as error:
                missing(f"the postgres extra is not installed ({error})")
            try:
                started = PostgresServer()
            except PostgresUnavailable as error:
                missing(str(error))
            # Stopped by `stop`, or failing that as the interpreter exits.
            _server = _running.enter_context(started)
        return _server


def stop() -> None:
    """Stop this process's server if it was started."""
    global _server  # noqa: PLW0603 - the one server of this test process
    with _server_lock:
        _server = None
        _running.close()


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
