"""What only the SQLite store has: pragmas, schema versions, and its failures (ST-2, ST-3, LK-8)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import attrs
import pytest

from securepractice import FakeClock
from securepractice.errors import InvalidInput, StorageError
from securepractice.records import AuditEvent, Practice, User
from securepractice.storage import migrations
from securepractice.storage.sqlite import SQLiteStorage, _storage_error, _Table


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "portal.sqlite"


@pytest.fixture
def now(clock: FakeClock) -> datetime:
    return clock.now()


@pytest.fixture
def store(path: Path) -> Iterator[SQLiteStorage]:
    opened = SQLiteStorage(path)
    yield opened
    opened.close()


def _add_user(store: SQLiteStorage, now: datetime) -> User:
    user = User(id="u1", practice_id="p1", email="ada@example.com", created_at=now)
    with store.unit_of_work() as uow:
        uow.practices.add(Practice(id="p1", name="Smile Dental", created_at=now))
        uow.users.add(user)
    return user


def test_connection_settings_put_durability_first(store: SQLiteStorage) -> None:
    """WAL, synchronous=FULL, foreign keys on, a busy timeout, STRICT tables where possible."""
    connection = store.connection()
    pragma = {
        name: connection.execute(f"PRAGMA {name}").fetchone()[0]
        for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
    }
    assert pragma == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1,
                      "busy_timeout": 5000}  # fmt: skip
    tables = connection.execute("SELECT sql FROM sqlite_schema WHERE type = 'table'").fetchall()
    assert len(tables) == 16
    assert all(row[0].endswith("STRICT") for row in tables)


def test_options_are_configurable_and_checked(path: Path) -> None:
    relaxed = SQLiteStorage(path, synchronous="normal", busy_timeout=timedelta(seconds=1))
    assert relaxed.connection().execute("PRAGMA synchronous").fetchone()[0] == 1
    assert "synchronous='NORMAL'" in repr(relaxed)
    relaxed.close()
    with pytest.raises(InvalidInput) as bad_sync:
        SQLiteStorage(path, synchronous="SOMETIMES")
    with pytest.raises(InvalidInput) as bad_wait:
        SQLiteStorage(path, busy_timeout=timedelta(seconds=-1))
    assert (bad_sync.value.field, bad_wait.value.field) == ("synchronous", "busy_timeout")


def test_each_thread_has_its_own_connection(store: SQLiteStorage) -> None:
    mine = store.connection()
    theirs: list[sqlite3.Connection] = []
    thread = threading.Thread(target=lambda: theirs.append(store.connection()))
    thread.start()
    thread.join()
    assert store.connection() is mine
    assert theirs[0] is not mine


def test_new_database_is_at_the_latest_schema_version(store: SQLiteStorage) -> None:
    """ST-3: the schema is versioned with PRAGMA user_version."""
    assert migrations.schema_version(store.connection()) == migrations.LATEST_VERSION == 2


def test_older_database_migrates_forward_and_keeps_its_data(path: Path, now: datetime) -> None:
    """ST-3: a version-1 database opened by this version gains the later tables, data intact."""
    old = sqlite3.connect(path, isolation_level=None)
    assert migrations.migrate(old, target=1) == 1
    old.execute(
        "INSERT INTO practices (id, name, address, phone, created_at) VALUES (?, ?, ?, ?, ?)",
        ("p1", "Smile Dental", "", "", now.isoformat()),
    )
    tables = {row[0] for row in old.execute("SELECT name FROM sqlite_schema")}
    assert "purchases" not in tables
    old.close()
    store = SQLiteStorage(path)
    try:
        assert migrations.schema_version(store.connection()) == 2
        with store.unit_of_work() as uow:
            assert uow.practices.get("p1") == Practice(id="p1", name="Smile Dental",
                                                       created_at=now)  # fmt: skip
            assert uow.securemail.active_purchase("u1") is None
        assert migrations.migrate(store.connection()) == 2
    finally:
        store.close()


def test_migration_without_strict_tables(tmp_path: Path) -> None:
    """Older SQLite (before 3.37) gets the same schema without STRICT."""
    connection = sqlite3.connect(tmp_path / "plain.sqlite", isolation_level=None)
    migrations.migrate(connection, strict=False)
    sql = [row[0] for row in connection.execute("SELECT sql FROM sqlite_schema WHERE type='table'")]
    connection.close()
    assert sql
    assert not any(s.endswith("STRICT") for s in sql)


def test_newer_database_is_refused(path: Path) -> None:
    """ST-3: a schema from a newer securepractice is refused with a clear error."""
    newer = sqlite3.connect(path)
    newer.execute(f"PRAGMA user_version = {migrations.LATEST_VERSION + 1}")
    newer.close()
    with pytest.raises(StorageError) as refused:
        SQLiteStorage(path)
    assert refused.value.code == "storage.schema_too_new"
    assert "newer" in refused.value.message


def test_failed_migration_changes_nothing(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ST-2, ST-3: a step that fails half way rolls the whole migration back."""

    def broken(_strict: bool) -> list[str]:
        return ["CREATE TABLE half (id TEXT)", "THIS IS NOT SQL"]

    monkeypatch.setattr(migrations, "MIGRATIONS", (*migrations.MIGRATIONS, broken))
    monkeypatch.setattr(migrations, "LATEST_VERSION", 3)
    connection = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError):
        migrations.migrate(connection, target=3)
    assert migrations.schema_version(connection) == 0
    assert connection.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0] == 0
    connection.close()


def test_corrupt_file_gives_a_storage_error(path: Path) -> None:
    """LK-8: a damaged database is a clear StorageError, never a raw sqlite3 exception."""
    path.write_bytes(b"this is not a database, only junk bytes " * 200)
    with pytest.raises(StorageError) as corrupt:
        SQLiteStorage(path)
    assert corrupt.value.code == "storage.corrupt"
    assert isinstance(corrupt.value.__cause__, sqlite3.DatabaseError)


def test_read_only_database_reads_but_refuses_writes(path: Path, now: datetime) -> None:
    """LK-8, ST-2: a read-only database fails closed on write, with nothing written."""
    writer = SQLiteStorage(path)
    user = _add_user(writer, now)
    reader = SQLiteStorage(path, read_only=True)
    try:
        with reader.unit_of_work() as uow:
            assert uow.users.get("u1") == user
        with pytest.raises(StorageError) as refused, reader.unit_of_work() as uow:
            uow.sign_in_failures.increment("u1")
        assert refused.value.code == "storage.read_only"
    finally:
        reader.close()
    with writer.unit_of_work() as uow:
        assert uow.sign_in_failures.count("u1") == 0
    writer.close()


def test_missing_read_only_database_cannot_be_opened(path: Path) -> None:
    with pytest.raises(StorageError) as missing:
        SQLiteStorage(path, read_only=True)
    assert missing.value.code == "storage.cannot_open"


def test_database_locked_beyond_the_timeout_gives_a_storage_error(
    path: Path, now: datetime
) -> None:
    """LK-8: a writer that holds the lock too long makes units fail closed, count intact."""
    store = SQLiteStorage(path, busy_timeout=timedelta(milliseconds=20))
    _add_user(store, now)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StorageError) as busy, store.unit_of_work() as uow:
            uow.sign_in_failures.increment("u1")
        assert busy.value.code == "storage.busy"
        assert "busy timeout" in busy.value.message
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with store.unit_of_work() as uow:
        assert uow.sign_in_failures.count("u1") == 0
        assert uow.sign_in_failures.increment("u1") == 1
    store.close()


def test_audit_table_refuses_update_and_delete(store: SQLiteStorage, now: datetime) -> None:
    """AU-1: even raw SQL cannot change or remove an audit event."""
    event = AuditEvent(id="e1", at=now, action="sign_in", outcome="ok")
    with store.unit_of_work() as uow:
        uow.audit.append(event)
    connection = store.connection()
    for statement in ("UPDATE audit_events SET outcome = 'forged'", "DELETE FROM audit_events"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            connection.execute(statement)
    with store.unit_of_work() as uow:
        assert list(uow.audit.events()) == [event]


def test_sqlite_errors_map_to_clear_codes() -> None:
    """LK-8: every driver error becomes a StorageError that names the kind of failure."""
    cases = {
        "database is locked": "storage.busy",
        "attempt to write a readonly database": "storage.read_only",
        "database disk image is malformed": "storage.corrupt",
        "unable to open database file": "storage.cannot_open",
        "disk I/O error": "storage.unavailable",
    }
    for text, code in cases.items():
        assert _storage_error(sqlite3.OperationalError(text)).code == code


def test_failed_commit_is_a_storage_error(store: SQLiteStorage, now: datetime) -> None:
    """ST-2: a commit the database refuses rolls back and reports a StorageError."""
    _add_user(store, now)
    with pytest.raises(StorageError), store.unit_of_work() as uow:  # noqa: PT012 - fails at commit
        uow.sign_in_failures.increment("u1")
        store.connection().close()
    with store.unit_of_work() as uow:
        assert uow.sign_in_failures.count("u1") == 0


@attrs.frozen(kw_only=True)
class _Grown:
    """A record that gained a field after its table was made."""

    id: str
    name: str
    created_at: datetime
    address: str = ""
    phone: str = ""
    tags: tuple[str, ...] = ()
    rank: int | None = None


def test_fields_without_a_column_are_kept_in_extra(store: SQLiteStorage, now: datetime) -> None:
    """Records may gain fields without a migration: the adapter maps by attrs fields."""
    table = _Table("practices", _Grown, ("id",), store._schema.practices.columns)
    grown = _Grown(id="p1", name="Smile", created_at=now, tags=("a", "b"), rank=3)
    with store.unit_of_work() as uow:
        uow._tx.insert(table, grown, {})  # type: ignore[attr-defined]
        assert uow._tx.one(table, "id = ?", ("p1",)) == grown  # type: ignore[attr-defined]
        plain = uow.practices.get("p1")
    assert plain == Practice(id="p1", name="Smile", created_at=now)


def test_row_that_does_not_fit_the_record_is_a_storage_error(
    store: SQLiteStorage, now: datetime
) -> None:
    @attrs.frozen(kw_only=True)
    class Needy:
        id: str
        must_have: str

    table: _Table[Needy] = _Table("practices", Needy, ("id",), frozenset({"id"}))
    with store.unit_of_work() as uow:
        uow.practices.add(Practice(id="p1", name="Smile", created_at=now))
        with pytest.raises(StorageError) as mismatch:
            uow._tx.one(table, "id = ?", ("p1",))  # type: ignore[attr-defined]
    assert mismatch.value.code == "storage.schema_mismatch"


def test_closing_a_store_closes_its_connections(path: Path) -> None:
    store = SQLiteStorage(path)
    connection = store.connection()
    store.close()
    with pytest.raises(sqlite3.ProgrammingError):
        connection.execute("SELECT 1")
    with pytest.raises(StorageError) as closed:
        store.connection()
    assert closed.value.code == "storage.closed"
