"""The SQLite store: the embedded default, on the standard library's `sqlite3`.

`SQLiteStorage` opens a database file, migrates its schema forward (ST-3)
and gives each thread its own connection. Every unit of work starts with
``BEGIN IMMEDIATE``, so concurrent writers queue on the database's write
lock (up to ``busy_timeout``) instead of failing half way. A save is one
``UPDATE ... WHERE <key> AND version = ?``: it writes only over the version
the change was computed from. Starting or finishing a sign-in attempt is one
``INSERT ... ON CONFLICT ... DO UPDATE ... RETURNING`` on the one counter
row of its key (a user's id or an email's key, migration 5), which holds the
recorded failures and, as a JSON array, the start times of the attempts in
flight (migration 4). Writers take turns on the database's write lock, so
the audit log's ``seq`` order is its commit order, the order its forwarders
read it in (CX-2, migration 7). No rule of the portal
is in SQL: the core decides, the store remembers. The journal is WAL, and
``synchronous=FULL`` by default: a committed unit survives a power cut.
The repositories are `securepractice.storage._sql`'s, shared with the
PostgreSQL store; this module keeps the connections, the transactions,
SQLite's own statements and the translation of its errors.

Every `sqlite3` error is turned into the library's own at this boundary:
`~securepractice.errors.StorageError` with a code that says what happened
(``storage.busy``, ``storage.read_only``, ``storage.corrupt``, ...), raised
from the original. Nothing connects until a `SQLiteStorage` is built.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

from securepractice.errors import AlreadyExists, InvalidInput, StorageError
from securepractice.storage._codec import TEXT_COLUMNS
from securepractice.storage._secret import fingerprint_to_store
from securepractice.storage._sql import (
    Dialect,
    Feed,
    Parameters,
    Schema,
    SQLUnitOfWork,
    finishes,
    reference_missing,
)
from securepractice.storage._unit import ClosesOnExit, Held
from securepractice.storage.migrations import migrate

__all__ = ["SQLiteStorage", "SQLiteUnitOfWork"]

_SYNCHRONOUS = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})
#: The levels that flush every commit to disk: those a unit that need not be durable lowers.
_FLUSHING = frozenset({"FULL", "EXTRA"})
#: Names that SQLite reads as a private database of one connection, not a file.
_NOT_A_FILE = frozenset({"", ":memory:"})
_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
_READ_ONLY = 8
_CORRUPT = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
_CANT_OPEN = 14

#: What SQLite's message says before the columns of a taken key.
_UNIQUE = "UNIQUE constraint failed: "
_KEY_TAKEN = "a record with this key exists already"

#: The columns of a taken key, as SQLite's message names them -> (message, code) of the
#: `AlreadyExists` to raise.
_DUPLICATES: Mapping[str, tuple[str, str]] = {
    "users.email": ("this email address belongs to another user", "user.email_taken"),
    "users.id": ("a user with this id exists already", "user.exists"),
    "purchases.account_id": (
        "SecureMail for this account is paid for already",
        "securemail.already_paid",
    ),
    **{
        columns: (_KEY_TAKEN, code)
        for columns, code in (
            ("practices.id", "practice.exists"),
            ("credentials.user_id", "credential.exists"),
            ("challenges.id", "challenge.exists"),
            ("send_ledgers.user_id", "send_ledger.exists"),
            ("link_tokens.token_hash", "link_token.exists"),
            ("link_tokens.id", "link_token.exists"),
            ("sessions.token_hash", "session.exists"),
            ("audit_events.id", "audit.exists"),
            ("terms.user_id, terms.version", "terms.already_accepted"),
            ("purchases.id", "purchase.exists"),
            ("payments.id", "payment.exists"),
            ("invoices.id", "invoice.exists"),
        )
    },
}

#: Finish an attempt: take out one in flight that started at :started, if any.
_FINISH = (
    "INSERT INTO sign_in_failures (key, count, in_flight) VALUES (:key, {first}, '[]') "
    "ON CONFLICT (key) DO UPDATE SET count = {then}, in_flight = coalesce(json_remove(in_flight, "
    "(SELECT '$[' || min(json_each.key) || ']' FROM json_each(sign_in_failures.in_flight) "
    "WHERE value = :started)), in_flight) "
    "RETURNING count AS failures"
)

#: SQLite's SQL. Rows are ordered by ``rowid``; the counter keeps its attempts in flight as
#: a JSON array of start times, and ``count`` is the recorded failures.
_SQLITE = Dialect(
    mark="?",
    seq="rowid",
    columns=TEXT_COLUMNS,
    # Start an attempt: drop those in flight that started before :abandoned_before, add one.
    start=(
        "INSERT INTO sign_in_failures (key, count, in_flight) "
        "VALUES (:key, 0, json_array(:now)) "
        "ON CONFLICT (key) DO UPDATE SET in_flight = json_insert("
        "(SELECT json_group_array(value) FROM json_each(sign_in_failures.in_flight) "
        "WHERE value >= :abandoned_before), '$[#]', :now) "
        "RETURNING count + json_array_length(in_flight) AS counted"
    ),
    finish=finishes(_FINISH, "count"),
    count="SELECT count AS failures FROM sign_in_failures WHERE key = :key",
    reset="UPDATE sign_in_failures SET count = 0 WHERE key = :key",
    # Writers take turns (BEGIN IMMEDIATE), so the audit log's seq order is its commit order.
    feed=Feed(
        position="CAST(seq AS TEXT)",
        visible="1 = 1",
        after="seq > CAST({p} AS INTEGER)",
        order="seq",
        pattern="[0-9]{1,18}",
    ),
)


def _storage_error(error: sqlite3.Error) -> StorageError:
    """Say in plain words what went wrong with the database; never echo a value."""
    number = getattr(error, "sqlite_errorcode", None)
    primary = None if number is None else number & 0xFF
    text = str(error).lower()
    name = getattr(error, "sqlite_errorname", type(error).__name__)
    if primary in _BUSY or "locked" in text:
        message, code = (
            (
                "the database stayed locked by another connection for longer than the busy "
                "timeout; nothing was written"
            ),
            "storage.busy",
        )
    elif primary == _READ_ONLY or "readonly" in text:
        message, code = "the database is read-only; nothing was written", "storage.read_only"
    elif primary in _CORRUPT or "not a database" in text or "malformed" in text:
        message, code = "the database file is damaged or is not a database", "storage.corrupt"
    elif primary == _CANT_OPEN or "unable to open" in text:
        message, code = "the database file cannot be opened", "storage.cannot_open"
    else:
        message, code = "the database failed", "storage.unavailable"
    return StorageError(f"{message} ({name})", code=code)


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as error:
        raise _storage_error(error) from error


def _read_schema(connection: sqlite3.Connection) -> Schema:
    """Read the tables' columns from the open database, after migration."""

    def columns(table: str) -> list[str]:
        info = connection.execute("SELECT name FROM pragma_table_info(?)", (table,))
        return [row[0] for row in info]

    return Schema(_SQLITE, columns)


class SQLiteStorage(ClosesOnExit):
    """A store in one SQLite database file, safe to share between threads.

    ``synchronous`` is SQLite's durability setting, in any case: ``FULL``
    (the default, for production: a committed unit survives a power cut),
    ``EXTRA`` (FULL and more), ``NORMAL`` (faster; a power cut may lose the
    last units, never corrupt the file) or ``OFF`` (fastest; a crash of the
    machine may corrupt the file: only for tests that do not test
    durability); anything else is `InvalidInput`. ``busy_timeout`` is how
    long a unit waits for another connection's write lock before failing
    with ``storage.busy``. ``read_only`` opens the file with ``mode=ro``:
    reads work, writes fail with ``storage.read_only``. Opening migrates the
    schema forward (ST-3). It is `persistent`, and it remembers the portal
    secret's fingerprint in the database, for every process that opens it.
    ``":memory:"`` and ``""``, which SQLite takes for a private database of
    one connection, are refused: each thread would see a database of its
    own. `MemoryStorage` is the store in memory. It is a context manager
    that closes it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "FULL",
        busy_timeout: timedelta = timedelta(seconds=5),
        read_only: bool = False,
    ) -> None:
        if str(path) in _NOT_A_FILE:
            raise InvalidInput(
                "SQLiteStorage keeps its records in a database file that every worker opens;"
                " give a file path, or use MemoryStorage for a store in memory",
                field="path",
                code="storage.bad_option",
            )
        if synchronous.upper() not in _SYNCHRONOUS:
            raise InvalidInput(
                f"synchronous must be one of {', '.join(sorted(_SYNCHRONOUS))}",
                field="synchronous",
                code="storage.bad_option",
            )
        if busy_timeout < timedelta(0):
            raise InvalidInput(
                "busy_timeout must not be negative", field="busy_timeout", code="storage.bad_option"
            )
        self.path = Path(path)
        self._synchronous = synchronous.upper()
        self._busy_ms = int(busy_timeout / timedelta(milliseconds=1))
        self._read_only = read_only
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: set[sqlite3.Connection] = set()
        self._closed = False
        connection = self.connection()
        try:
            with _translated():
                if not read_only:
                    connection.execute("PRAGMA journal_mode = WAL").fetchone()
                migrate(connection)
                self._schema = _read_schema(connection)
        except BaseException:
            self.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        uri = "file:" + quote(str(self.path.absolute())) + ("?mode=ro" if self._read_only else "")
        with _translated():
            connection = sqlite3.connect(
                uri,
                uri=True,
                timeout=self._busy_ms / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            try:
                connection.row_factory = sqlite3.Row
                # PRAGMAs take no parameters; both values are checked numbers or names.
                connection.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
                connection.execute(f"PRAGMA synchronous = {self._synchronous}")
                connection.execute("PRAGMA foreign_keys = ON")
            except BaseException:
                connection.close()
                raise
        return connection

    def connection(self) -> sqlite3.Connection:
        """Return this thread's connection, opening it on first use.

        For tools and tests that need raw SQL; services use `unit_of_work`.
        """
        if self._closed:
            raise StorageError("the store is closed", code="storage.closed")
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
            with self._lock:
                self._connections.add(connection)
        return connection

    def discard(self, connection: sqlite3.Connection) -> None:
        """Close a connection left in an unknown state; the thread gets a new one next time."""
        with self._lock:
            self._connections.discard(connection)
        if getattr(self._local, "connection", None) is connection:
            self._local.connection = None
        connection.close()

    @property
    def synchronous(self) -> str:
        """SQLite's durability level for every unit that must survive a power cut."""
        return self._synchronous

    @property
    def persistent(self) -> bool:
        """True: records live in the database file, shared by every process that opens it."""
        return True

    def remember_secret(self, fingerprint: str, *, replacing: str | None = None) -> None:
        """Keep the portal secret's fingerprint in the database; refuse another one (DP-2).

        One ``BEGIN IMMEDIATE`` transaction: processes starting at once with
        one secret store it once, and a different one is refused.
        """
        with self._transaction() as db:
            row = db.run("SELECT fingerprint FROM secret_fingerprint").fetchone()
            if fingerprint_to_store(None if row is None else row[0], fingerprint, replacing):
                db.run(
                    "INSERT INTO secret_fingerprint (id, fingerprint) VALUES (1, ?) "
                    "ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint",
                    (fingerprint,),
                )

    @contextmanager
    def _transaction(self) -> Iterator[_Database]:
        """Run the block in one transaction of its own, outside any unit of work."""
        db = _Database(self, self._schema)
        db.begin()
        try:
            yield db
        except BaseException:
            db.end(commit=False)
            raise
        db.end(commit=True)

    def unit_of_work(self, *, durable: bool = True) -> SQLiteUnitOfWork:
        """Return a new unit of work on this store; one not ``durable`` commits without fsync."""
        return SQLiteUnitOfWork(self, self._schema, durable=durable)

    def close(self) -> None:
        """Close every thread's connection; later units fail with ``storage.closed``."""
        self._closed = True
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            connection.close()

    def __repr__(self) -> str:
        return f"SQLiteStorage({str(self.path)!r}, synchronous={self._synchronous!r})"


class _Database(Held[sqlite3.Connection]):
    """One unit of work's transaction on this thread's connection."""

    def __init__(self, storage: SQLiteStorage, schema: Schema, *, durable: bool = True) -> None:
        super().__init__()
        self.storage = storage
        self.schema = schema
        # SQLite sets its durability per connection, and not inside a transaction: a
        # unit that need not survive a power cut lowers it around itself (WAL mode
        # then commits without fsync, and a later durable commit flushes it too).
        self._relax = not durable and storage.synchronous in _FLUSHING

    def begin(self) -> None:
        self.check_unused()
        connection = self.storage.connection()
        if connection.in_transaction:
            raise StorageError("units of work do not nest", code="storage.nested_unit")
        with _translated():
            if self._relax:
                connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute("BEGIN IMMEDIATE")
        self.hold(connection)

    def end(self, *, commit: bool) -> None:
        connection = self.let_go()
        if connection is None:
            return
        try:
            if commit:
                connection.execute("COMMIT")
            elif connection.in_transaction:
                connection.execute("ROLLBACK")
            if self._relax:
                connection.execute(f"PRAGMA synchronous = {self.storage.synchronous}")
        except sqlite3.Error as error:
            self.storage.discard(connection)
            if commit:
                raise _storage_error(error) from error

    def run(self, sql: str, parameters: Parameters = ()) -> sqlite3.Cursor:
        """Run one parameterised statement; map a constraint failure to the library's errors."""
        connection = self.active()
        try:
            return connection.execute(sql, parameters)
        except sqlite3.IntegrityError as error:
            text = str(error)
            if "FOREIGN KEY" in text:
                raise reference_missing() from error
            taken = _DUPLICATES.get(text.removeprefix(_UNIQUE))
            if taken is not None:
                message, code = taken
                raise AlreadyExists(message, code=code) from error
            raise _storage_error(error) from error
        except sqlite3.Error as error:
            raise _storage_error(error) from error

    def write(
        self,
        sql: str,
        parameters: Parameters,
        *,
        lock_user: str | None = None,  # noqa: ARG002 - BEGIN IMMEDIATE holds every write lock
    ) -> sqlite3.Cursor:
        """Run one statement a constraint may refuse: a refused one changes nothing."""
        return self.run(sql, parameters)

    def lock_user(self, user_id: str) -> None:
        """Nothing to take: ``BEGIN IMMEDIATE`` holds the database's write lock for the unit."""


class SQLiteUnitOfWork(SQLUnitOfWork):
    """One unit of work on a `SQLiteStorage`; see `securepractice.storage.ports.UnitOfWork`."""

    def __init__(self, storage: SQLiteStorage, schema: Schema, *, durable: bool = True) -> None:
        super().__init__(_Database(storage, schema, durable=durable))
