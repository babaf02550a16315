"""Storage benchmarks: failure-counter increments and user create + get, SQLite on disk.

The SQLite store runs at its default ``synchronous=FULL`` in a temporary
folder. Each increment is its own unit of work (its own transaction), as in
a sign-in. The baseline is raw `sqlite3` with one ``UPDATE ... RETURNING``
statement per increment in its own transaction, same settings.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from _timing import in_threads

from securepractice.records import AttemptOutcome, Practice, User
from securepractice.storage.sqlite import SQLiteStorage

NOW = datetime(2026, 1, 5, tzinfo=timezone.utc)
INCREMENTS = 2000


def adapter_increments(folder: Path, threads: int) -> float:
    store = SQLiteStorage(folder / f"adapter-{threads}.sqlite")
    with store.unit_of_work() as uow:
        uow.practices.add(Practice(id="p1", name="Bench", created_at=NOW))
        uow.users.add(User(id="u1", practice_id="p1", email="a@example.com", created_at=NOW))
    each = INCREMENTS // threads

    def work() -> None:
        for _ in range(each):
            with store.unit_of_work() as uow:
                failures = uow.sign_in_failures
                failures.start("u1", now=NOW, abandoned_before=NOW)
                failures.finish("u1", started=NOW, outcome=AttemptOutcome.WRONG)

    elapsed = in_threads(threads, work)
    with store.unit_of_work() as uow:
        assert uow.sign_in_failures.count("u1") == each * threads
    store.close()
    return each * threads / elapsed


def raw_increments(folder: Path, threads: int) -> float:
    path = folder / f"raw-{threads}.sqlite"
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode = WAL")
    setup.execute("CREATE TABLE counters (id TEXT PRIMARY KEY, count INTEGER NOT NULL)")
    setup.execute("INSERT INTO counters VALUES ('u1', 0)")
    setup.close()
    each = INCREMENTS // threads

    def work() -> None:
        connection = sqlite3.connect(path, isolation_level=None, timeout=30)
        connection.execute("PRAGMA synchronous = FULL")
        for _ in range(each):
            connection.execute(
                "UPDATE counters SET count = count + 1 WHERE id = ? RETURNING count", ("u1",)
            ).fetchone()
        connection.close()

    elapsed = in_threads(threads, work)
    return each * threads / elapsed


def users_create_and_get(folder: Path, count: int = 1000) -> float:
    store = SQLiteStorage(folder / "users.sqlite")
    with store.unit_of_work() as uow:
        uow.practices.add(Practice(id="p1", name="Bench", created_at=NOW))
    start = time.perf_counter()
    for n in range(count):
        with store.unit_of_work() as uow:
            uow.users.add(User(id=f"u{n}", practice_id="p1", email=f"u{n}@example.com",
                               created_at=NOW))  # fmt: skip
        with store.unit_of_work() as uow:
            assert uow.users.get_by_email(f"u{n}@example.com") is not None
    elapsed = time.perf_counter() - start
    store.close()
    return count / elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        print(f"sqlite {sqlite3.sqlite_version}, synchronous=FULL, {INCREMENTS} increments each")
        for threads in (1, 8):
            adapter = adapter_increments(folder, threads)
            raw = raw_increments(folder, threads)
            print(f"counter increments, {threads} thread(s): adapter {adapter:,.0f}/s, "
                  f"raw sqlite3 {raw:,.0f}/s, raw/adapter {raw / adapter:.2f}x")  # fmt: skip
        print(f"user create + get by email: {users_create_and_get(folder):,.0f} pairs/s")


if __name__ == "__main__":
    main()
