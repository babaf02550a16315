"""The SQLite store: the embedded default, on the standard library's `sqlite3`.

`SQLiteStorage` opens a database file, migrates its schema forward (ST-3)
and gives each thread its own connection. Every unit of work starts with
``BEGIN IMMEDIATE``, so concurrent writers queue on the database's write
lock (up to ``busy_timeout``) instead of failing half way. A save is one
``UPDATE ... WHERE <key> AND version = ?``: it writes only over the version
the change was computed from. Starting or finishing a sign-in attempt is one
``INSERT ... ON CONFLICT ... DO UPDATE ... RETURNING`` on the user's one
counter row, which holds the recorded failures and, as a JSON array, the
start times of the attempts in flight (migration 4). No rule of the portal
is in SQL: the core decides, the store remembers. The journal is WAL, and
``synchronous=FULL`` by default: a committed unit survives a power cut.

Every `sqlite3` error is turned into the library's own at this boundary:
`~securepractice.errors.StorageError` with a code that says what happened
(``storage.busy``, ``storage.read_only``, ``storage.corrupt``, ...), raised
from the original. Nothing connects until a `SQLiteStorage` is built.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Generic, TypeVar
from urllib.parse import quote

import attrs

from securepractice.errors import AlreadyExists, Conflict, InvalidInput, NotFound, StorageError
from securepractice.records import (
    AttemptOutcome,
    AuditEvent,
    CardOnFile,
    Challenge,
    Credential,
    Entitlement,
    Invoice,
    LinkToken,
    Practice,
    PracticeSubscription,
    Purpose,
    SecureMailPayment,
    SecureMailPurchase,
    SendLedger,
    Session,
    TermsAcceptance,
    TokenPurpose,
    User,
)
from securepractice.storage import ports
from securepractice.storage._codec import (
    field_types,
    from_column,
    from_json,
    time_text,
    to_column,
    to_json,
)
from securepractice.storage._secret import fingerprint_to_store
from securepractice.storage._unit import TransactionalUnit
from securepractice.storage.migrations import migrate

__all__ = ["SQLiteStorage", "SQLiteUnitOfWork"]

R = TypeVar("R", bound=attrs.AttrsInstance)

#: Constraint text found in SQLite's message -> (message, code) of the `AlreadyExists` to raise.
Conflicts = Mapping[str, tuple[str, str]]

_SYNCHRONOUS = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})
_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
_READ_ONLY = 8
_CORRUPT = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
_CANT_OPEN = 14


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


@attrs.frozen
class _Table(Generic[R]):
    """How one record type maps to one table: a column per field it has, JSON for the rest.

    ``thing`` names a record of the table in errors (``<thing>.not_found``).
    """

    name: str
    record: type[R]
    key: tuple[str, ...]
    columns: frozenset[str]
    thing: str = "record"

    def values(self, record: R) -> dict[str, object]:
        """Return the row for ``record``: column name to SQL value."""
        row: dict[str, object] = {}
        extra: dict[str, object] = {}
        for name, kind in field_types(self.record).items():
            value = getattr(record, name)
            if name in self.columns:
                row[name] = to_column(value, kind, field=name)
            else:
                extra[name] = to_json(value, kind, field=name)
        row["extra"] = json.dumps(extra, separators=(",", ":"))
        return row

    def decode(self, row: sqlite3.Row) -> R:
        """Build the record a row holds; `StorageError` if the row cannot make one."""
        extra = json.loads(row["extra"])
        fields: dict[str, object] = {}
        for name, kind in field_types(self.record).items():
            if name in self.columns:
                fields[name] = from_column(row[name], kind)
            elif name in extra:
                fields[name] = from_json(extra[name], kind)
        try:
            return self.record(**fields)
        except (TypeError, ValueError) as error:
            raise StorageError(
                f"a stored {self.record.__name__} does not fit the record's fields",
                code="storage.schema_mismatch",
            ) from error


class _Schema:
    """The tables of an open database, read from the database itself after migration."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        def table(name: str, record: type[R], key: tuple[str, ...], thing: str) -> _Table[R]:
            info = connection.execute("SELECT name FROM pragma_table_info(?)", (name,))
            columns = frozenset(row[0] for row in info) - {"extra"}
            return _Table(name, record, key, columns, thing)

        self.practices = table("practices", Practice, ("id",), "practice")
        self.users = table("users", User, ("id",), "user")
        self.credentials = table("credentials", Credential, ("user_id",), "credential")
        self.challenges = table("challenges", Challenge, ("id",), "challenge")
        self.send_ledgers = table("send_ledgers", SendLedger, ("user_id",), "send_ledger")
        self.link_tokens = table("link_tokens", LinkToken, ("token_hash",), "link_token")
        self.sessions = table("sessions", Session, ("token_hash",), "session")
        self.audit = table("audit_events", AuditEvent, ("id",), "audit_event")
        self.terms = table("terms", TermsAcceptance, ("user_id", "version"), "terms")
        self.entitlements = table(
            "entitlements", Entitlement, ("user_id", "product"), "entitlement"
        )
        self.subscriptions = table(
            "subscriptions", PracticeSubscription, ("practice_id", "product"), "subscription"
        )
        self.cards = table("cards", CardOnFile, ("user_id",), "card")
        self.purchases = table("purchases", SecureMailPurchase, ("id",), "purchase")
        self.payments = table("payments", SecureMailPayment, ("id",), "payment")
        self.invoices = table("invoices", Invoice, ("id",), "invoice")


class SQLiteStorage:
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
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "FULL",
        busy_timeout: timedelta = timedelta(seconds=5),
        read_only: bool = False,
    ) -> None:
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
                self._schema = _Schema(connection)
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
    def persistent(self) -> bool:
        """True: records live in the database file, shared by every process that opens it."""
        return True

    def remember_secret(self, fingerprint: str, *, replacing: str | None = None) -> None:
        """Keep the portal secret's fingerprint in the database; refuse another one (DP-2).

        One ``BEGIN IMMEDIATE`` transaction: processes starting at once with
        one secret store it once, and a different one is refused.
        """
        with self._transaction() as db:
            row = db.execute("SELECT fingerprint FROM secret_fingerprint").fetchone()
            if fingerprint_to_store(None if row is None else row[0], fingerprint, replacing):
                db.execute(
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

    def unit_of_work(self) -> SQLiteUnitOfWork:
        """Return a new unit of work on this store."""
        return SQLiteUnitOfWork(self, self._schema)

    def close(self) -> None:
        """Close every thread's connection; later units fail with ``storage.closed``."""
        self._closed = True
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            connection.close()

    def __repr__(self) -> str:
        return f"SQLiteStorage({str(self.path)!r}, synchronous={self._synchronous!r})"


class _Database:
    """One unit of work's transaction on this thread's connection."""

    def __init__(self, storage: SQLiteStorage, schema: _Schema) -> None:
        self.storage = storage
        self.schema = schema
        self.stage = "new"
        self._connection: sqlite3.Connection | None = None

    def begin(self) -> None:
        if self.stage != "new":
            raise StorageError("a unit of work can be used only once", code="storage.unit_reused")
        connection = self.storage.connection()
        if connection.in_transaction:
            raise StorageError("units of work do not nest", code="storage.nested_unit")
        with _translated():
            connection.execute("BEGIN IMMEDIATE")
        self._connection = connection
        self.stage = "active"

    def end(self, *, commit: bool) -> None:
        connection = self._connection
        self.stage = "done"
        self._connection = None
        if connection is None:
            return
        try:
            if commit:
                connection.execute("COMMIT")
            elif connection.in_transaction:
                connection.execute("ROLLBACK")
        except sqlite3.Error as error:
            self.storage.discard(connection)
            if commit:
                raise _storage_error(error) from error

    def execute(
        self,
        sql: str,
        parameters: Sequence[object] = (),
        *,
        on_conflict: Conflicts | None = None,
    ) -> sqlite3.Cursor:
        """Run one parameterised statement; map a constraint failure to the library's errors."""
        connection = self._connection
        if self.stage != "active" or connection is None:
            raise StorageError(
                "storage is reached only inside an active unit of work", code="storage.no_unit"
            )
        try:
            return connection.execute(sql, parameters)
        except sqlite3.IntegrityError as error:
            text = str(error)
            if "FOREIGN KEY" in text:
                raise NotFound(
                    "the record refers to another record that does not exist",
                    code="storage.reference_missing",
                ) from error
            for needle, (message, code) in (on_conflict or {}).items():
                if needle in text:
                    raise AlreadyExists(message, code=code) from error
            raise _storage_error(error) from error
        except sqlite3.Error as error:
            raise _storage_error(error) from error

    def insert(self, table: _Table[R], record: R, conflicts: Conflicts) -> None:
        row = table.values(record)
        names = ", ".join(row)
        marks = ", ".join("?" * len(row))
        self.execute(
            f"INSERT INTO {table.name} ({names}) VALUES ({marks})",  # noqa: S608 - names from code
            list(row.values()),
            on_conflict=conflicts,
        )

    def upsert(self, table: _Table[R], record: R) -> None:
        row = table.values(record)
        names = ", ".join(row)
        marks = ", ".join("?" * len(row))
        changes = ", ".join(f"{name} = excluded.{name}" for name in row if name not in table.key)
        self.execute(
            f"INSERT INTO {table.name} ({names}) VALUES ({marks}) "  # noqa: S608
            f"ON CONFLICT ({', '.join(table.key)}) DO UPDATE SET {changes}",
            list(row.values()),
        )

    def save(
        self,
        table: _Table[R],
        record: R,
        expected_version: int,
        conflicts: Conflicts | None = None,
    ) -> None:
        """Replace the row of ``record``'s key if its version is ``expected_version``.

        `NotFound` if there is no such row, `Conflict` if its version moved.
        """
        row = table.values(record)
        changes = ", ".join(f"{name} = ?" for name in row if name not in table.key)
        where = " AND ".join(f"{name} = ?" for name in table.key)
        keys = [row[name] for name in table.key]
        cursor = self.execute(
            f"UPDATE {table.name} SET {changes} WHERE {where} AND version = ?",  # noqa: S608
            [*(v for n, v in row.items() if n not in table.key), *keys, expected_version],
            on_conflict=conflicts,
        )
        if cursor.rowcount == 1:
            return
        if self.execute(f"SELECT 1 FROM {table.name} WHERE {where}", keys).fetchone() is None:  # noqa: S608
            raise NotFound(f"no such {table.thing}", code=f"{table.thing}.not_found")
        raise Conflict(f"the {table.thing} changed since it was read; nothing was saved")

    def one(self, table: _Table[R], where: str, parameters: Sequence[object]) -> R | None:
        cursor = self.execute(f"SELECT * FROM {table.name} WHERE {where}", parameters)  # noqa: S608
        row = cursor.fetchone()
        return None if row is None else table.decode(row)

    def many(self, table: _Table[R], where: str, parameters: Sequence[object]) -> list[R]:
        cursor = self.execute(f"SELECT * FROM {table.name} WHERE {where}", parameters)  # noqa: S608
        return [table.decode(row) for row in cursor.fetchall()]


def _exists(code: str, *needles: str) -> Conflicts:
    return dict.fromkeys(needles, ("a record with this key exists already", code))


class SQLiteUnitOfWork(TransactionalUnit):
    """One unit of work on a `SQLiteStorage`; see `securepractice.storage.ports.UnitOfWork`."""

    def __init__(self, storage: SQLiteStorage, schema: _Schema) -> None:
        self._tx = db = _Database(storage, schema)
        self.practices: ports.Practices = _Practices(db)
        self.users: ports.Users = _Users(db)
        self.credentials: ports.Credentials = _Credentials(db)
        self.sign_in_failures: ports.SignInFailures = _SignInFailures(db)
        self.challenges: ports.Challenges = _Challenges(db)
        self.code_sends: ports.CodeSends = _CodeSends(db)
        self.link_tokens: ports.LinkTokens = _LinkTokens(db)
        self.sessions: ports.Sessions = _Sessions(db)
        self.audit: ports.AuditLog = _AuditLog(db)
        self.terms: ports.TermsAcceptances = _TermsAcceptances(db)
        self.subscriptions: ports.Subscriptions = _Subscriptions(db)
        self.entitlements: ports.Entitlements = _Entitlements(db)
        self.cards: ports.Cards = _Cards(db)
        self.securemail: ports.SecureMailBilling = _SecureMailBilling(db)


class _Repository:
    def __init__(self, db: _Database) -> None:
        self._db = db
        self._schema = db.schema


class _Practices(_Repository):
    def add(self, practice: Practice) -> None:
        self._db.insert(self._schema.practices, practice, _exists("practice.exists", "practices"))

    def get(self, practice_id: str) -> Practice | None:
        return self._db.one(self._schema.practices, "id = ?", (practice_id,))

    def save(self, practice: Practice, *, expected_version: int) -> None:
        self._db.save(self._schema.practices, practice, expected_version)


_USER_CONFLICTS: Conflicts = {
    "users.email": ("this email address belongs to another user", "user.email_taken"),
    "users.id": ("a user with this id exists already", "user.exists"),
}


class _Users(_Repository):
    def add(self, user: User) -> None:
        self._db.insert(self._schema.users, user, _USER_CONFLICTS)

    def get(self, user_id: str) -> User | None:
        return self._db.one(self._schema.users, "id = ?", (user_id,))

    def get_by_email(self, email: str) -> User | None:
        return self._db.one(self._schema.users, "email = ?", (email,))

    def save(self, user: User, *, expected_version: int) -> None:
        self._db.save(self._schema.users, user, expected_version, _USER_CONFLICTS)

    def list_for_practice(self, practice_id: str) -> Sequence[User]:
        return self._db.many(
            self._schema.users, "practice_id = ? ORDER BY email, id", (practice_id,)
        )


class _Credentials(_Repository):
    def get(self, user_id: str) -> Credential | None:
        return self._db.one(self._schema.credentials, "user_id = ?", (user_id,))

    def add(self, credential: Credential) -> None:
        self._db.insert(
            self._schema.credentials, credential, _exists("credential.exists", "credentials")
        )

    def save(self, credential: Credential, *, expected_version: int) -> None:
        self._db.save(self._schema.credentials, credential, expected_version)


#: What each outcome makes of the recorded failures: (the value of a new row, the new value).
_RECORDED: dict[AttemptOutcome, tuple[int, str]] = {
    AttemptOutcome.WRONG: (1, "count + 1"),
    AttemptOutcome.RIGHT: (0, "0"),
    AttemptOutcome.NOT_COUNTED: (0, "count"),
}

#: Start an attempt: drop those in flight that started before ?3, add one started at ?2.
_START = (
    "INSERT INTO sign_in_failures (user_id, count, in_flight) VALUES (?1, 0, json_array(?2)) "
    "ON CONFLICT (user_id) DO UPDATE SET in_flight = json_insert("
    "(SELECT json_group_array(value) FROM json_each(sign_in_failures.in_flight) "
    "WHERE value >= ?3), '$[#]', ?2) "
    "RETURNING count + json_array_length(in_flight)"
)

#: Finish an attempt: take out one in flight that started at ?2, if any; {0}: the new count.
_FINISH = (
    "INSERT INTO sign_in_failures (user_id, count, in_flight) VALUES (?1, ?3, '[]') "
    "ON CONFLICT (user_id) DO UPDATE SET count = {0}, in_flight = coalesce(json_remove("
    "in_flight, (SELECT '$[' || min(key) || ']' FROM json_each(sign_in_failures.in_flight) "
    "WHERE value = ?2)), in_flight) "
    "RETURNING count"
)


class _SignInFailures(_Repository):
    """Each start and finish is one statement on the user's row, so it is atomic by itself."""

    def start(self, user_id: str, *, now: datetime, abandoned_before: datetime) -> int:
        row = self._db.execute(
            _START,
            (
                user_id,
                time_text(now, field="now"),
                time_text(abandoned_before, field="abandoned_before"),
            ),
        ).fetchone()
        return int(row[0])

    def finish(self, user_id: str, *, started: datetime, outcome: AttemptOutcome) -> int:
        first, changed = _RECORDED[outcome]
        row = self._db.execute(
            _FINISH.format(changed), (user_id, time_text(started, field="started"), first)
        ).fetchone()
        return int(row[0])

    def count(self, user_id: str) -> int:
        row = self._db.execute(
            "SELECT count FROM sign_in_failures WHERE user_id = ?", (user_id,)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def reset(self, user_id: str) -> None:
        self._db.execute("UPDATE sign_in_failures SET count = 0 WHERE user_id = ?", (user_id,))


class _Challenges(_Repository):
    def add(self, challenge: Challenge) -> None:
        self._db.insert(
            self._schema.challenges, challenge, _exists("challenge.exists", "challenges")
        )

    def get(self, challenge_id: str) -> Challenge | None:
        return self._db.one(self._schema.challenges, "id = ?", (challenge_id,))

    def save(self, challenge: Challenge, *, expected_version: int) -> None:
        self._db.save(self._schema.challenges, challenge, expected_version)

    def latest(self, user_id: str, purpose: Purpose) -> Challenge | None:
        # Challenges are never deleted, so the largest rowid is the one added last.
        return self._db.one(
            self._schema.challenges,
            "user_id = ? AND purpose = ? ORDER BY rowid DESC LIMIT 1",
            (user_id, purpose.value),
        )


class _CodeSends(_Repository):
    def get(self, user_id: str) -> SendLedger | None:
        return self._db.one(self._schema.send_ledgers, "user_id = ?", (user_id,))

    def add(self, ledger: SendLedger) -> None:
        self._db.insert(
            self._schema.send_ledgers, ledger, _exists("send_ledger.exists", "send_ledgers")
        )

    def save(self, ledger: SendLedger, *, expected_version: int) -> None:
        self._db.save(self._schema.send_ledgers, ledger, expected_version)


_TOKEN_CONFLICTS = _exists("link_token.exists", "link_tokens")


class _LinkTokens(_Repository):
    def add(self, token: LinkToken) -> None:
        self._db.insert(self._schema.link_tokens, token, _TOKEN_CONFLICTS)

    def get(self, token_hash: bytes) -> LinkToken | None:
        return self._db.one(self._schema.link_tokens, "token_hash = ?", (token_hash,))

    def save(self, token: LinkToken, *, expected_version: int) -> None:
        self._db.save(self._schema.link_tokens, token, expected_version, _TOKEN_CONFLICTS)

    def list_for_user(self, user_id: str, purpose: TokenPurpose) -> Sequence[LinkToken]:
        return self._db.many(
            self._schema.link_tokens,
            "user_id = ? AND purpose = ? ORDER BY created_at, rowid",
            (user_id, purpose.value),
        )


class _Sessions(_Repository):
    def add(self, session: Session) -> None:
        self._db.insert(self._schema.sessions, session, _exists("session.exists", "sessions"))

    def get(self, token_hash: bytes) -> Session | None:
        return self._db.one(self._schema.sessions, "token_hash = ?", (token_hash,))

    def save(self, session: Session, *, expected_version: int) -> None:
        self._db.save(self._schema.sessions, session, expected_version)

    def list_for_user(self, user_id: str) -> Sequence[Session]:
        return self._db.many(
            self._schema.sessions, "user_id = ? ORDER BY created_at, rowid", (user_id,)
        )


class _AuditLog(_Repository):
    def append(self, event: AuditEvent) -> None:
        self._db.insert(self._schema.audit, event, _exists("audit.exists", "audit_events.id"))

    def events(
        self,
        *,
        subject_id: str | None = None,
        practice_id: str | None = None,
        since: datetime | None = None,
    ) -> Sequence[AuditEvent]:
        clauses = ["1 = 1"]
        parameters: list[object] = []
        for clause, value in (
            ("subject_id = ?", subject_id),
            ("practice_id = ?", practice_id),
            ("at >= ?", None if since is None else time_text(since, field="since")),
        ):
            if value is not None:
                clauses.append(clause)
                parameters.append(value)
        return self._db.many(
            self._schema.audit, " AND ".join(clauses) + " ORDER BY at, seq", parameters
        )


class _TermsAcceptances(_Repository):
    def add(self, acceptance: TermsAcceptance) -> None:
        self._db.insert(self._schema.terms, acceptance, _exists("terms.already_accepted", "terms."))

    def list_for_user(self, user_id: str) -> Sequence[TermsAcceptance]:
        return self._db.many(
            self._schema.terms, "user_id = ? ORDER BY accepted_at, rowid", (user_id,)
        )


class _Subscriptions(_Repository):
    def subscribe(self, subscription: PracticeSubscription) -> bool:
        return _insert_new(self._db, self._schema.subscriptions, subscription)

    def list_for_practice(self, practice_id: str) -> Sequence[PracticeSubscription]:
        return self._db.many(
            self._schema.subscriptions, "practice_id = ? ORDER BY product", (practice_id,)
        )


class _Entitlements(_Repository):
    def grant(self, entitlement: Entitlement) -> bool:
        return _insert_new(self._db, self._schema.entitlements, entitlement)

    def revoke(self, user_id: str, product: str) -> bool:
        return (
            self._db.execute(
                "DELETE FROM entitlements WHERE user_id = ? AND product = ?", (user_id, product)
            ).rowcount
            == 1
        )

    def list_for_user(self, user_id: str) -> Sequence[Entitlement]:
        return self._db.many(self._schema.entitlements, "user_id = ? ORDER BY product", (user_id,))


def _insert_new(db: _Database, table: _Table[R], record: R) -> bool:
    """Insert ``record`` unless its key exists; return whether it was inserted."""
    row = table.values(record)
    marks = ", ".join("?" * len(row))
    cursor = db.execute(
        f"INSERT INTO {table.name} ({', '.join(row)}) VALUES ({marks}) "  # noqa: S608
        "ON CONFLICT DO NOTHING",
        list(row.values()),
    )
    return cursor.rowcount == 1


class _Cards(_Repository):
    def put(self, card: CardOnFile) -> None:
        self._db.upsert(self._schema.cards, card)

    def get(self, user_id: str) -> CardOnFile | None:
        return self._db.one(self._schema.cards, "user_id = ?", (user_id,))


_PURCHASE_CONFLICTS: Conflicts = {
    "purchases.account_id": (
        "SecureMail for this account is paid for already",
        "securemail.already_paid",
    ),
    **_exists("purchase.exists", "purchases.id"),
}


class _SecureMailBilling(_Repository):
    def add_purchase(self, purchase: SecureMailPurchase) -> None:
        self._db.insert(self._schema.purchases, purchase, _PURCHASE_CONFLICTS)

    def active_purchase(self, account_id: str) -> SecureMailPurchase | None:
        return self._db.one(
            self._schema.purchases, "account_id = ? AND ended_at IS NULL", (account_id,)
        )

    def active_purchases(self) -> Sequence[SecureMailPurchase]:
        return self._db.many(
            self._schema.purchases, "ended_at IS NULL ORDER BY purchased_at, rowid", ()
        )

    def purchases_paid_by(self, payer_id: str) -> Sequence[SecureMailPurchase]:
        return self._db.many(
            self._schema.purchases, "payer_id = ? ORDER BY purchased_at, rowid", (payer_id,)
        )

    def save_purchase(self, purchase: SecureMailPurchase, *, expected_version: int) -> None:
        self._db.save(self._schema.purchases, purchase, expected_version, _PURCHASE_CONFLICTS)

    def add_payment(self, payment: SecureMailPayment) -> None:
        self._db.insert(self._schema.payments, payment, _exists("payment.exists", "payments"))

    def payments_for(self, account_id: str) -> Sequence[SecureMailPayment]:
        return self._db.many(
            self._schema.payments, "account_id = ? ORDER BY paid_at, rowid", (account_id,)
        )

    def add_invoice(self, invoice: Invoice) -> None:
        self._db.insert(self._schema.invoices, invoice, _exists("invoice.exists", "invoices"))

    def invoices_for(self, account_id: str) -> Sequence[Invoice]:
        return self._db.many(
            self._schema.invoices, "account_id = ? ORDER BY issued_at, rowid", (account_id,)
        )
