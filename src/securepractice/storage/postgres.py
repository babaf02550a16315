"""The PostgreSQL store: for portals on several servers, on psycopg 3 and psycopg_pool (DP-4).

`PostgresStorage` connects to one database, migrates its schema forward
(ST-3, `securepractice.storage.postgres_schema`) and keeps a pool of
connections. A unit of work takes one connection from the pool for its
whole life and is one transaction on it, committed when its block ends
normally and rolled back when it raises (ST-2); the connection goes back
to the pool either way. Units do not nest in one thread: the inner one
would be another connection and another transaction, committing apart
from the outer one and possibly waiting for its locks.

**Isolation: READ COMMITTED**, set on every transaction whatever the
server's default. It is enough for every rule because no rule rests on a
read staying true until commit; each write that depends on a read says
what it read, and the database checks it:

- A save is ``UPDATE ... WHERE <key> AND version = %s``. Units saving one
  record queue on its row lock; the next one re-reads the row the first
  committed, finds another version, updates nothing and raises
  `~securepractice.errors.Conflict`. Of N simultaneous uses of one link or
  one code exactly one is saved (RS-5, VF-7), and the send ledger takes no
  send past the limit (VF-8). The unit that lost rolls back; the service
  reloads and asks the core again.
- An add under a taken key waits for the unit that took it, then raises
  `~securepractice.errors.AlreadyExists`.
- The sign-in counter's `start` and `finish` are each one ``INSERT ... ON
  CONFLICT DO UPDATE ... RETURNING``, which keeps the user's counter row
  locked until commit: N simultaneous attempts get N different numbers
  (LK-4), and no count is lost or invented (LK-8, DP-5).
- Listing a user's link tokens or sessions, and adding one, first take a
  transaction-scoped advisory lock on that user, so that "list, supersede,
  add" runs as if alone: of two re-invitations at once, the second sees
  and supersedes the first one's link (RG-4).

Every write that a constraint may refuse (an add, a save) runs under a
savepoint, sent with the statement in one round trip (pipeline mode), so a
refused write (a duplicate key, a missing reference) leaves the unit usable,
as it does in the other stores. The counter's statements cannot be refused
(a missing user makes no row, not an error) and run as they are: a sign-in
costs no savepoint. Every
psycopg error becomes the library's own here, raised from the original,
with a message that never echoes a value: ``storage.busy`` for a lock not
had within ``lock_timeout`` or a deadlock, ``storage.unavailable`` when the
server cannot be reached or no pooled connection came free within
``pool_timeout``, ``storage.read_only`` on a standby, ``storage.value_refused``
for a value PostgreSQL cannot keep, ``storage.schema_mismatch`` for tables
that are not the ones migrated. ``storage.conflict`` is only ever a save
over a moved version.

This module imports psycopg; nothing imports it until a `PostgresStorage`
is wanted (``pip install 'securepractice[postgres]'``).
"""

from __future__ import annotations

import threading
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any, Generic, TypeVar

import attrs

from securepractice.clock import require_utc
from securepractice.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    NotFound,
    SecurePracticeError,
    StorageError,
)
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
from securepractice.storage._codec import field_types, from_json, to_json
from securepractice.storage._secret import fingerprint_to_store
from securepractice.storage._unit import TransactionalUnit

try:
    import psycopg
    from psycopg import pq
    from psycopg.conninfo import conninfo_to_dict
    from psycopg.rows import DictRow, TupleRow, dict_row
    from psycopg.types.json import Json
    from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout
except ImportError as missing:  # pragma: no cover - the test environment has the extra
    raise ImportError(
        "PostgresStorage needs the postgres extra: pip install 'securepractice[postgres]' "
        "(psycopg then needs libpq on the machine, or add psycopg[binary])"
    ) from missing

from securepractice.storage.postgres_schema import migrate

__all__ = ["PostgresStorage", "PostgresUnitOfWork"]

R = TypeVar("R", bound=attrs.AttrsInstance)
Connection = psycopg.Connection[TupleRow]
Parameters = Sequence[object] | Mapping[str, object]

#: Constraint name -> (message, code) of the `AlreadyExists` its violation raises.
_DUPLICATES: Mapping[str, tuple[str, str]] = {
    "practices_pkey": ("a practice with this id exists already", "practice.exists"),
    "users_pkey": ("a user with this id exists already", "user.exists"),
    "users_email_key": ("this email address belongs to another user", "user.email_taken"),
    "credentials_pkey": ("the user has a credential already", "credential.exists"),
    "challenges_pkey": ("a verification with this id exists already", "challenge.exists"),
    "send_ledgers_pkey": ("the user has a send ledger already", "send_ledger.exists"),
    "link_tokens_pkey": ("a link token with this hash exists already", "link_token.exists"),
    "link_tokens_id_key": ("a link token with this id exists already", "link_token.exists"),
    "sessions_pkey": ("a session with this token exists already", "session.exists"),
    "audit_events_id_key": ("an audit event with this id exists already", "audit.exists"),
    "terms_pkey": ("the user accepted this version already", "terms.already_accepted"),
    "purchases_pkey": ("a purchase with this id exists already", "purchase.exists"),
    "purchases_one_active": (
        "SecureMail for this account is paid for already",
        "securemail.already_paid",
    ),
    "payments_pkey": ("a payment with this id exists already", "payment.exists"),
    "invoices_pkey": ("an invoice with this id exists already", "invoice.exists"),
}

#: SQLSTATE -> (message, code) of the `StorageError` for what the database could not do.
_STATES: Mapping[str, tuple[str, str]] = {
    "55P03": ("a lock was not had within the lock timeout", "storage.busy"),
    "40P01": ("two units waited for each other; this one was chosen to fail", "storage.busy"),
    "40001": ("the unit could not be serialized with a simultaneous one", "storage.busy"),
    "57014": ("a statement was cancelled or ran past its timeout", "storage.busy"),
    "25006": ("the database is read-only (a standby?)", "storage.read_only"),
    "42P01": ("a table the store needs is missing", "storage.schema_mismatch"),
    "42703": ("a column the store needs is missing", "storage.schema_mismatch"),
}

#: The SQLSTATE classes of connection failures and of a server shutting down or starting.
_UNREACHABLE = ("08", "57P")

_SAVEPOINT = "SAVEPOINT securepractice_write"
_RELEASE = "RELEASE SAVEPOINT securepractice_write"
_UNDO = "ROLLBACK TO SAVEPOINT securepractice_write"

#: The first key of the advisory lock on one user's link tokens and sessions; the second
#: is the hash of the user's id.
_USER_LOCK = 0x5EC1
_LOCK_USER = "SELECT pg_advisory_xact_lock(%s, hashtext(%s))"


def _storage_error(error: psycopg.Error) -> StorageError:
    """Say in plain words what the database could not do; never echo a value."""
    state = error.sqlstate or ""
    name = type(error).__name__
    if state in _STATES:
        message, code = _STATES[state]
        if code == "storage.busy":
            message += "; nothing of the unit was kept"
    elif state.startswith("22") or isinstance(error, psycopg.DataError):
        message, code = (
            "the database cannot keep a value of the record; nothing was written",
            "storage.value_refused",
        )
    elif state.startswith(_UNREACHABLE) or isinstance(
        error, (psycopg.OperationalError, psycopg.InterfaceError)
    ):
        message, code = "the database server cannot be reached", "storage.unavailable"
    else:
        message, code = "the database failed", "storage.unavailable"
    return StorageError(f"{message} ({name})", code=code)


def _translated_error(error: psycopg.Error) -> SecurePracticeError:
    """Map a refused write to `AlreadyExists` or `NotFound`, anything else to `StorageError`."""
    if isinstance(error, psycopg.errors.ForeignKeyViolation):
        return NotFound(
            "the record refers to another record that does not exist",
            code="storage.reference_missing",
        )
    if isinstance(error, psycopg.errors.UniqueViolation):
        constraint = error.diag.constraint_name or ""
        if constraint in _DUPLICATES:
            message, code = _DUPLICATES[constraint]
            return AlreadyExists(message, code=code)
    return _storage_error(error)


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except psycopg.Error as error:
        raise _translated_error(error) from error
    except PoolTimeout as error:
        raise StorageError(
            "no database connection came free within the pool timeout: the server is "
            "unreachable or every connection is in use",
            code="storage.unavailable",
        ) from error
    except PoolClosed as error:
        raise StorageError("the store is closed", code="storage.closed") from error


def _plain(kind: Any) -> Any:  # noqa: ANN401 - any type expression
    """Return ``kind`` without ``| None``."""
    if typing.get_origin(kind) in {typing.Union, types.UnionType}:
        (kind,) = (arg for arg in typing.get_args(kind) if arg is not type(None))
    return kind


def _to_column(value: object, name: str) -> object:
    """Return a field's value as psycopg adapts it to its column's type."""
    if isinstance(value, datetime):
        return require_utc(value, field=name)
    if isinstance(value, Enum):
        return value.value
    return value


def _from_column(raw: object, kind: Any) -> object:  # noqa: ANN401 - any type expression
    """Return a column's value as the field's type."""
    if raw is None:
        return None
    kind = _plain(kind)
    if isinstance(raw, datetime):
        return raw.astimezone(timezone.utc)
    if isinstance(kind, type) and issubclass(kind, Enum):
        return kind(raw)
    return raw


@attrs.frozen
class _Table(Generic[R]):
    """How one record type maps to one table: a column per field it has, JSON ``data`` for the rest.

    ``thing`` names a record of the table in errors (``<thing>.not_found``).
    """

    name: str
    record: type[R]
    key: tuple[str, ...]
    columns: frozenset[str]
    thing: str

    def values(self, record: R) -> dict[str, object]:
        """Return the row for ``record``: column name to the value psycopg sends."""
        row: dict[str, object] = {}
        data: dict[str, object] = {}
        for name, kind in field_types(self.record).items():
            value = getattr(record, name)
            if name in self.columns:
                row[name] = _to_column(value, name)
            else:
                data[name] = to_json(value, kind, field=name)
        row["data"] = Json(data)
        return row

    def decode(self, row: DictRow) -> R:
        """Build the record a row holds; `StorageError` if the row cannot make one."""
        data = row["data"]
        fields: dict[str, object] = {}
        try:
            for name, kind in field_types(self.record).items():
                if name in self.columns:
                    fields[name] = _from_column(row[name], kind)
                elif name in data:
                    fields[name] = from_json(data[name], kind)
            return self.record(**fields)
        except (TypeError, ValueError, KeyError) as error:
            raise StorageError(
                f"a stored {self.record.__name__} does not fit the record's fields",
                code="storage.schema_mismatch",
            ) from error


class _Schema:
    """The tables of the database, read from the database itself after migration."""

    def __init__(self, connection: Connection) -> None:
        found: dict[str, set[str]] = {}
        for table_name, column_name in connection.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema()"
        ):
            found.setdefault(str(table_name), set()).add(str(column_name))

        def table(name: str, record: type[R], key: tuple[str, ...], thing: str) -> _Table[R]:
            columns = frozenset(found.get(name, set()) - {"data", "seq"})
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


def _milliseconds(value: timedelta, name: str) -> int:
    if value <= timedelta(0):
        raise InvalidInput(f"{name} must be positive", field=name, code="storage.bad_option")
    return max(1, int(value / timedelta(milliseconds=1)))


class PostgresStorage:
    """A store in one PostgreSQL database, shared by threads, processes and servers.

    ``conninfo`` is a libpq connection string or URL (``"postgresql://
    portal@db.internal/portal"``); its password, if any, is never shown.
    ``min_size`` and ``max_size`` bound the pool's connections. A unit
    waits up to ``lock_timeout`` for a row another unit holds before
    failing with ``storage.busy``, and up to ``pool_timeout`` for a free
    connection before failing with ``storage.unavailable``. Opening
    connects once, migrates the schema forward (ST-3) and opens the pool;
    an unreachable server is ``storage.unavailable`` at once. The tables
    live in the connection's current schema (the first of ``search_path``).
    """

    def __init__(
        self,
        conninfo: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        lock_timeout: timedelta = timedelta(seconds=5),
        pool_timeout: timedelta = timedelta(seconds=30),
    ) -> None:
        if not 0 <= min_size <= max_size or max_size < 1:
            raise InvalidInput(
                "the pool needs 0 <= min_size <= max_size and max_size >= 1",
                field="max_size",
                code="storage.bad_option",
            )
        self._lock_ms = _milliseconds(lock_timeout, "lock_timeout")
        wait = _milliseconds(pool_timeout, "pool_timeout") / 1000
        parameters = conninfo_to_dict(conninfo)
        self._where = {k: parameters[k] for k in ("host", "port", "dbname") if k in parameters}
        self._local = threading.local()
        self._closed = False
        self._pipelined = psycopg.Pipeline.is_supported()
        with _translated(), psycopg.connect(conninfo, autocommit=True) as connection:
            self._configure(connection)
            migrate(connection)
            self._schema = _Schema(connection)
        self._pool: ConnectionPool[Connection] = ConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            timeout=wait,
            configure=self._configure,
            name="securepractice",
            open=False,
        )
        with _translated():
            self._pool.open(wait=False)

    def _configure(self, connection: Connection) -> None:
        """Set what every connection of the store works under: UTC, the lock timeout, isolation."""
        # Session settings rather than BEGIN ISOLATION LEVEL: the same guarantee, a cheaper BEGIN.
        connection.execute(
            "SELECT set_config('default_transaction_isolation', 'read committed', false), "
            "set_config('TimeZone', 'UTC', false), set_config('lock_timeout', %s, false)",
            (f"{self._lock_ms}ms",),
        )
        if not connection.autocommit:
            connection.commit()

    @property
    def persistent(self) -> bool:
        """True: what the store keeps is on the server, shared by every process (DP-2)."""
        return True

    def remember_secret(self, fingerprint: str, *, replacing: str | None = None) -> None:
        """Keep the portal secret's fingerprint in the database; refuse another one (DP-2).

        One transaction that locks the one-row table first: servers starting
        at once with one secret store it once, and a different one is refused.
        """
        if self._closed:
            raise StorageError("the store is closed", code="storage.closed")
        with _translated(), self._pool.connection() as connection:
            connection.execute("LOCK TABLE portal_secret IN EXCLUSIVE MODE")
            row = connection.execute("SELECT fingerprint FROM portal_secret").fetchone()
            if fingerprint_to_store(None if row is None else str(row[0]), fingerprint, replacing):
                connection.execute(
                    "INSERT INTO portal_secret (fingerprint) VALUES (%s) ON CONFLICT (only_row) "
                    "DO UPDATE SET fingerprint = excluded.fingerprint",
                    (fingerprint,),
                )

    def unit_of_work(self) -> PostgresUnitOfWork:
        """Return a new unit of work on this store."""
        return PostgresUnitOfWork(_Transaction(self, self._schema))

    def close(self) -> None:
        """Close the pool and its connections; later units fail with ``storage.closed``."""
        self._closed = True
        self._pool.close()

    def __repr__(self) -> str:
        where = ", ".join(f"{name}={value!r}" for name, value in self._where.items())
        return f"PostgresStorage({where})"


class _Transaction:
    """One unit of work's transaction, on one connection of the pool."""

    def __init__(self, storage: PostgresStorage, schema: _Schema) -> None:
        self.storage = storage
        self.schema = schema
        self.stage = "new"
        self._connection: Connection | None = None

    def begin(self) -> None:
        storage = self.storage
        if self.stage != "new":
            raise StorageError("a unit of work can be used only once", code="storage.unit_reused")
        if storage._closed:  # noqa: SLF001 - the store's own unit
            raise StorageError("the store is closed", code="storage.closed")
        if getattr(storage._local, "active", False):  # noqa: SLF001
            raise StorageError("units of work do not nest", code="storage.nested_unit")
        with _translated():
            self._connection = storage._pool.getconn()  # noqa: SLF001
        storage._local.active = True  # noqa: SLF001
        self.stage = "active"

    def end(self, *, commit: bool) -> None:
        connection = self._connection
        self.stage = "done"
        self._connection = None
        if connection is None:
            return
        storage = self.storage
        try:
            if commit:
                self._commit(connection)
            else:
                self._roll_back(connection)
        finally:
            storage._local.active = False  # noqa: SLF001
            storage._pool.putconn(connection)  # noqa: SLF001

    @staticmethod
    def _commit(connection: Connection) -> None:
        if connection.info.transaction_status == pq.TransactionStatus.INERROR:
            _Transaction._roll_back(connection)
            raise StorageError(
                "a statement of this unit failed, so nothing of the unit was kept",
                code="storage.unavailable",
            )
        with _translated():
            connection.commit()

    @staticmethod
    def _roll_back(connection: Connection) -> None:
        """Roll back; a broken connection has nothing to roll back and leaves the pool."""
        try:
            connection.rollback()
        except psycopg.Error:
            return

    def active(self) -> Connection:
        connection = self._connection
        if self.stage != "active" or connection is None:
            raise StorageError(
                "storage is reached only inside an active unit of work", code="storage.no_unit"
            )
        return connection

    def run(self, sql: str, parameters: Parameters = ()) -> psycopg.Cursor[DictRow]:
        """Run one statement that no constraint can refuse (a read, the counter): no savepoint."""
        cursor = self.active().cursor(row_factory=dict_row)
        with _translated():
            cursor.execute(sql, parameters)
        return cursor

    def write(
        self, sql: str, parameters: Parameters, *, lock_user: str | None = None
    ) -> psycopg.Cursor[DictRow]:
        """Run one statement under a savepoint, after the user's lock when ``lock_user`` is set.

        A refused statement is rolled back to the savepoint, so the unit
        stays usable, and raises the library's error for it.
        """
        connection = self.active()
        cursor = connection.cursor(row_factory=dict_row)
        try:
            if self.storage._pipelined:  # noqa: SLF001
                with connection.pipeline():
                    self._guarded(connection, cursor, sql, parameters, lock_user)
            else:  # pragma: no cover - libpq older than 14 has no pipeline mode
                self._guarded(connection, cursor, sql, parameters, lock_user)
        except psycopg.Error as error:
            if connection.info.transaction_status == pq.TransactionStatus.INERROR:
                # If even this fails, the connection is gone and the unit fails at commit.
                with suppress(psycopg.Error):
                    connection.execute(_UNDO)
            raise _translated_error(error) from error
        return cursor

    @staticmethod
    def _guarded(
        connection: Connection,
        cursor: psycopg.Cursor[DictRow],
        sql: str,
        parameters: Parameters,
        lock_user: str | None,
    ) -> None:
        # Nothing here is prepared: psycopg would take a statement prepared in a pipeline
        # that a refused write aborted as prepared still, and fail on its next use.
        connection.execute(_SAVEPOINT, prepare=False)
        if lock_user is not None:
            connection.execute(_LOCK_USER, (_USER_LOCK, lock_user), prepare=False)
        cursor.execute(sql, parameters, prepare=False)
        connection.execute(_RELEASE, prepare=False)

    def lock_user(self, user_id: str) -> None:
        """Wait for, then hold until the unit ends, the lock on the user's tokens and sessions."""
        connection = self.active()
        with _translated():
            connection.execute(_LOCK_USER, (_USER_LOCK, user_id))

    # --- what the repositories share ---------------------------------------------------------

    def insert(self, table: _Table[R], record: R, *, lock_user: str | None = None) -> None:
        row = table.values(record)
        self.write(
            f"INSERT INTO {table.name} ({', '.join(row)}) "  # noqa: S608 - names from code
            f"VALUES ({', '.join(['%s'] * len(row))})",
            list(row.values()),
            lock_user=lock_user,
        )

    def insert_new(self, table: _Table[R], record: R) -> bool:
        """Insert ``record`` unless its key exists; return whether it was inserted."""
        row = table.values(record)
        cursor = self.write(
            f"INSERT INTO {table.name} ({', '.join(row)}) "  # noqa: S608 - names from code
            f"VALUES ({', '.join(['%s'] * len(row))}) ON CONFLICT DO NOTHING",
            list(row.values()),
        )
        return cursor.rowcount == 1

    def upsert(self, table: _Table[R], record: R) -> None:
        row = table.values(record)
        changes = ", ".join(f"{name} = excluded.{name}" for name in row if name not in table.key)
        self.write(
            f"INSERT INTO {table.name} ({', '.join(row)}) "  # noqa: S608 - names from code
            f"VALUES ({', '.join(['%s'] * len(row))}) "
            f"ON CONFLICT ({', '.join(table.key)}) DO UPDATE SET {changes}",
            list(row.values()),
        )

    def save(self, table: _Table[R], record: R, expected_version: int) -> None:
        """Replace the row of ``record``'s key if its version is ``expected_version``.

        `NotFound` if there is no such row, `Conflict` if its version moved.
        """
        row = table.values(record)
        changes = ", ".join(f"{name} = %s" for name in row if name not in table.key)
        where = " AND ".join(f"{name} = %s" for name in table.key)
        keys = [row[name] for name in table.key]
        cursor = self.write(
            f"UPDATE {table.name} SET {changes} WHERE {where} AND version = %s",  # noqa: S608
            [*(v for n, v in row.items() if n not in table.key), *keys, expected_version],
        )
        if cursor.rowcount == 1:
            return
        if self.run(f"SELECT 1 FROM {table.name} WHERE {where}", keys).fetchone() is None:  # noqa: S608
            raise NotFound(f"no such {table.thing}", code=f"{table.thing}.not_found")
        raise Conflict(f"the {table.thing} changed since it was read; nothing was saved")

    def one(self, table: _Table[R], where: str, parameters: Sequence[object]) -> R | None:
        row = self.run(f"SELECT * FROM {table.name} WHERE {where}", parameters).fetchone()  # noqa: S608
        return None if row is None else table.decode(row)

    def many(self, table: _Table[R], where: str, parameters: Sequence[object]) -> list[R]:
        cursor = self.run(f"SELECT * FROM {table.name} WHERE {where}", parameters)  # noqa: S608
        return [table.decode(row) for row in cursor.fetchall()]


class PostgresUnitOfWork(TransactionalUnit):
    """One unit of work on a `PostgresStorage`; see `securepractice.storage.ports.UnitOfWork`."""

    _tx: _Transaction

    def __init__(self, transaction: _Transaction) -> None:
        self._tx = db = transaction
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
    def __init__(self, db: _Transaction) -> None:
        self._db = db
        self._schema = db.schema


class _Practices(_Repository):
    def add(self, practice: Practice) -> None:
        self._db.insert(self._schema.practices, practice)

    def get(self, practice_id: str) -> Practice | None:
        return self._db.one(self._schema.practices, "id = %s", (practice_id,))

    def save(self, practice: Practice, *, expected_version: int) -> None:
        self._db.save(self._schema.practices, practice, expected_version)


class _Users(_Repository):
    def add(self, user: User) -> None:
        self._db.insert(self._schema.users, user)

    def get(self, user_id: str) -> User | None:
        return self._db.one(self._schema.users, "id = %s", (user_id,))

    def get_by_email(self, email: str) -> User | None:
        return self._db.one(self._schema.users, "email = %s", (email,))

    def save(self, user: User, *, expected_version: int) -> None:
        self._db.save(self._schema.users, user, expected_version)

    def list_for_practice(self, practice_id: str) -> Sequence[User]:
        return self._db.many(
            self._schema.users, "practice_id = %s ORDER BY email, id", (practice_id,)
        )


class _Credentials(_Repository):
    def get(self, user_id: str) -> Credential | None:
        return self._db.one(self._schema.credentials, "user_id = %s", (user_id,))

    def add(self, credential: Credential) -> None:
        self._db.insert(self._schema.credentials, credential)

    def save(self, credential: Credential, *, expected_version: int) -> None:
        self._db.save(self._schema.credentials, credential, expected_version)


#: One attempt starts: drop the user's abandoned attempts in flight, add this one, and return
#: failures plus attempts in flight. Inserting from ``users`` makes a missing user no row
#: rather than a refused reference, so no savepoint is needed.
_START = (
    "INSERT INTO sign_in_failures AS f (user_id, failures, in_flight) "
    "SELECT id, 0, ARRAY[%(now)s::timestamptz] FROM users WHERE id = %(user_id)s "
    "ON CONFLICT (user_id) DO UPDATE SET in_flight = ARRAY("
    "SELECT t FROM unnest(f.in_flight) AS t WHERE t >= %(abandoned_before)s::timestamptz"
    ") || %(now)s::timestamptz "
    "RETURNING failures + cardinality(in_flight) AS counted"
)
#: One attempt ends: remove one attempt started at ``started`` if it is still in flight, and
#: record the outcome: (failures of a first row, failures of an existing row ``f``).
_FINISH = (
    "INSERT INTO sign_in_failures AS f (user_id, failures, in_flight) "
    "SELECT id, {first}, '{{}}' FROM users WHERE id = %(user_id)s "
    "ON CONFLICT (user_id) DO UPDATE SET failures = {then}, in_flight = coalesce("
    "f.in_flight[:array_position(f.in_flight, %(started)s::timestamptz) - 1] || "
    "f.in_flight[array_position(f.in_flight, %(started)s::timestamptz) + 1:], f.in_flight) "
    "RETURNING failures"
)
_FINISHES: Mapping[AttemptOutcome, str] = {
    AttemptOutcome.WRONG: _FINISH.format(first="1", then="f.failures + 1"),
    AttemptOutcome.RIGHT: _FINISH.format(first="0", then="0"),
    AttemptOutcome.NOT_COUNTED: _FINISH.format(first="0", then="f.failures"),
}


def _no_user() -> NotFound:
    return NotFound(
        "the record refers to another record that does not exist",
        code="storage.reference_missing",
    )


class _SignInFailures(_Repository):
    def start(self, user_id: str, *, now: datetime, abandoned_before: datetime) -> int:
        row = self._db.run(
            _START,
            {
                "user_id": user_id,
                "now": require_utc(now, field="now"),
                "abandoned_before": require_utc(abandoned_before, field="abandoned_before"),
            },
        ).fetchone()
        if row is None:
            raise _no_user()
        return int(row["counted"])

    def finish(self, user_id: str, *, started: datetime, outcome: AttemptOutcome) -> int:
        row = self._db.run(
            _FINISHES[outcome],
            {"user_id": user_id, "started": require_utc(started, field="started")},
        ).fetchone()
        if row is None:
            raise _no_user()
        return int(row["failures"])

    def count(self, user_id: str) -> int:
        row = self._db.run(
            "SELECT failures FROM sign_in_failures WHERE user_id = %s", (user_id,)
        ).fetchone()
        return 0 if row is None else int(row["failures"])

    def reset(self, user_id: str) -> None:
        self._db.run("UPDATE sign_in_failures SET failures = 0 WHERE user_id = %s", (user_id,))


class _Challenges(_Repository):
    def add(self, challenge: Challenge) -> None:
        self._db.insert(self._schema.challenges, challenge)

    def get(self, challenge_id: str) -> Challenge | None:
        return self._db.one(self._schema.challenges, "id = %s", (challenge_id,))

    def save(self, challenge: Challenge, *, expected_version: int) -> None:
        self._db.save(self._schema.challenges, challenge, expected_version)

    def latest(self, user_id: str, purpose: Purpose) -> Challenge | None:
        # Challenges are never deleted, so the largest sequence number is the one added last.
        return self._db.one(
            self._schema.challenges,
            "user_id = %s AND purpose = %s ORDER BY seq DESC LIMIT 1",
            (user_id, purpose.value),
        )


class _CodeSends(_Repository):
    def get(self, user_id: str) -> SendLedger | None:
        return self._db.one(self._schema.send_ledgers, "user_id = %s", (user_id,))

    def add(self, ledger: SendLedger) -> None:
        self._db.insert(self._schema.send_ledgers, ledger)

    def save(self, ledger: SendLedger, *, expected_version: int) -> None:
        self._db.save(self._schema.send_ledgers, ledger, expected_version)


class _LinkTokens(_Repository):
    def add(self, token: LinkToken) -> None:
        self._db.insert(self._schema.link_tokens, token, lock_user=token.user_id)

    def get(self, token_hash: bytes) -> LinkToken | None:
        return self._db.one(self._schema.link_tokens, "token_hash = %s", (token_hash,))

    def save(self, token: LinkToken, *, expected_version: int) -> None:
        self._db.save(self._schema.link_tokens, token, expected_version)

    def list_for_user(self, user_id: str, purpose: TokenPurpose) -> Sequence[LinkToken]:
        self._db.lock_user(user_id)
        return self._db.many(
            self._schema.link_tokens,
            "user_id = %s AND purpose = %s ORDER BY created_at, seq",
            (user_id, purpose.value),
        )


class _Sessions(_Repository):
    def add(self, session: Session) -> None:
        self._db.insert(self._schema.sessions, session, lock_user=session.user_id)

    def get(self, token_hash: bytes) -> Session | None:
        return self._db.one(self._schema.sessions, "token_hash = %s", (token_hash,))

    def save(self, session: Session, *, expected_version: int) -> None:
        self._db.save(self._schema.sessions, session, expected_version)

    def list_for_user(self, user_id: str) -> Sequence[Session]:
        self._db.lock_user(user_id)
        return self._db.many(
            self._schema.sessions, "user_id = %s ORDER BY created_at, seq", (user_id,)
        )


class _AuditLog(_Repository):
    def append(self, event: AuditEvent) -> None:
        self._db.insert(self._schema.audit, event)

    def events(
        self,
        *,
        subject_id: str | None = None,
        practice_id: str | None = None,
        since: datetime | None = None,
    ) -> Sequence[AuditEvent]:
        clauses = ["true"]
        parameters: list[object] = []
        for clause, value in (
            ("subject_id = %s", subject_id),
            ("practice_id = %s", practice_id),
            ("at >= %s", None if since is None else require_utc(since, field="since")),
        ):
            if value is not None:
                clauses.append(clause)
                parameters.append(value)
        return self._db.many(
            self._schema.audit, " AND ".join(clauses) + " ORDER BY at, seq", parameters
        )


class _TermsAcceptances(_Repository):
    def add(self, acceptance: TermsAcceptance) -> None:
        self._db.insert(self._schema.terms, acceptance)

    def list_for_user(self, user_id: str) -> Sequence[TermsAcceptance]:
        return self._db.many(
            self._schema.terms, "user_id = %s ORDER BY accepted_at, seq", (user_id,)
        )


class _Subscriptions(_Repository):
    def subscribe(self, subscription: PracticeSubscription) -> bool:
        return self._db.insert_new(self._schema.subscriptions, subscription)

    def list_for_practice(self, practice_id: str) -> Sequence[PracticeSubscription]:
        return self._db.many(
            self._schema.subscriptions, "practice_id = %s ORDER BY product", (practice_id,)
        )


class _Entitlements(_Repository):
    def grant(self, entitlement: Entitlement) -> bool:
        return self._db.insert_new(self._schema.entitlements, entitlement)

    def revoke(self, user_id: str, product: str) -> bool:
        cursor = self._db.run(
            "DELETE FROM entitlements WHERE user_id = %s AND product = %s", (user_id, product)
        )
        return cursor.rowcount == 1

    def list_for_user(self, user_id: str) -> Sequence[Entitlement]:
        return self._db.many(self._schema.entitlements, "user_id = %s ORDER BY product", (user_id,))


class _Cards(_Repository):
    def put(self, card: CardOnFile) -> None:
        self._db.upsert(self._schema.cards, card)

    def get(self, user_id: str) -> CardOnFile | None:
        return self._db.one(self._schema.cards, "user_id = %s", (user_id,))


class _SecureMailBilling(_Repository):
    def add_purchase(self, purchase: SecureMailPurchase) -> None:
        self._db.insert(self._schema.purchases, purchase)

    def active_purchase(self, account_id: str) -> SecureMailPurchase | None:
        return self._db.one(
            self._schema.purchases, "account_id = %s AND ended_at IS NULL", (account_id,)
        )

    def active_purchases(self) -> Sequence[SecureMailPurchase]:
        return self._db.many(
            self._schema.purchases, "ended_at IS NULL ORDER BY purchased_at, seq", ()
        )

    def purchases_paid_by(self, payer_id: str) -> Sequence[SecureMailPurchase]:
        return self._db.many(
            self._schema.purchases, "payer_id = %s ORDER BY purchased_at, seq", (payer_id,)
        )

    def save_purchase(self, purchase: SecureMailPurchase, *, expected_version: int) -> None:
        self._db.save(self._schema.purchases, purchase, expected_version)

    def add_payment(self, payment: SecureMailPayment) -> None:
        self._db.insert(self._schema.payments, payment)

    def payments_for(self, account_id: str) -> Sequence[SecureMailPayment]:
        return self._db.many(
            self._schema.payments, "account_id = %s ORDER BY paid_at, seq", (account_id,)
        )

    def add_invoice(self, invoice: Invoice) -> None:
        self._db.insert(self._schema.invoices, invoice)

    def invoices_for(self, account_id: str) -> Sequence[Invoice]:
        return self._db.many(
            self._schema.invoices, "account_id = %s ORDER BY issued_at, seq", (account_id,)
        )
