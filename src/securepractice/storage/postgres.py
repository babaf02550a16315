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
  CONFLICT DO UPDATE ... RETURNING``, which keeps the key's counter row
  locked until commit: N simultaneous attempts get N different numbers
  (LK-4), and no count is lost or invented (LK-8, DP-5).
- Listing a user's link tokens or sessions, and adding one, first take a
  transaction-scoped advisory lock on that user, so that "list, supersede,
  add" runs as if alone: of two re-invitations at once, the second sees
  and supersedes the first one's link (RG-4).

- The audit log is read for forwarding (CX-2) in the order of its units'
  transaction ids, ``(tx, seq)``, and only below the oldest transaction
  still running (``pg_snapshot_xmin``). ``seq`` alone would not do: a unit
  takes its ``seq`` when it appends and may commit after a unit that took a
  later one, so a reader that moved past the later one would never see it.
  A unit's id is given before it writes, and every unit below the oldest
  still running has ended, so nothing can appear behind a position read.

Every write that a constraint may refuse (an add, a save) runs under a
savepoint, sent with the statement in one round trip (pipeline mode), so a
refused write (a duplicate key, a missing reference) leaves the unit usable,
as it does in the other stores. The counter's statements cannot be refused
(any key is taken, a user's id or an email's) and run as they are: a
sign-in costs no savepoint. Every
psycopg error becomes the library's own here, raised from the original,
with a message that never echoes a value: ``storage.busy`` for a lock not
had within ``lock_timeout`` or a deadlock, ``storage.unavailable`` when the
server cannot be reached or no pooled connection came free within
``pool_timeout``, ``storage.read_only`` on a standby, ``storage.value_refused``
for a value PostgreSQL cannot keep, ``storage.schema_mismatch`` for tables
that are not the ones migrated. ``storage.conflict`` is only ever a save
over a moved version.

The repositories are `securepractice.storage._sql`'s, shared with the
SQLite store; this module keeps the pool, the transactions, PostgreSQL's own
statements and the translation of its errors. It imports psycopg; nothing
imports it until a `PostgresStorage` is wanted (``pip install 'securepractice[postgres]'``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any, cast

from securepractice.clock import require_utc
from securepractice.errors import (
    AlreadyExists,
    InvalidInput,
    SecurePracticeError,
    StorageError,
)
from securepractice.storage._codec import strip_optional
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

Connection = psycopg.Connection[TupleRow]

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
        return reference_missing()
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


class _NativeColumns:
    """Columns of PostgreSQL's own types (timestamptz, bytea, ...), and the rest as jsonb."""

    extra = "data"

    def to_column(self, value: object, kind: Any, *, field: str) -> object:  # noqa: ANN401, ARG002
        """Return a field's value as psycopg adapts it to its column's type."""
        if isinstance(value, datetime):
            return require_utc(value, field=field)
        if isinstance(value, Enum):
            return value.value
        return value

    def from_column(self, raw: object, kind: Any) -> object:  # noqa: ANN401
        """Return a column's value as the field's type."""
        if raw is None:
            return None
        kind = strip_optional(kind)
        if isinstance(raw, datetime):
            return raw.astimezone(timezone.utc)
        if isinstance(kind, type) and issubclass(kind, Enum):
            return kind(raw)
        return raw

    def pack(self, extra: dict[str, object]) -> object:
        return Json(extra)

    def unpack(self, raw: object) -> Mapping[str, object]:
        return cast("dict[str, object]", raw)


#: One attempt ends: remove one attempt started at ``started`` if it is still in flight, and
#: record the outcome: (failures of a first row, failures of an existing row ``f``).
_FINISH = (
    "INSERT INTO sign_in_failures AS f (key, failures, in_flight) "
    "VALUES (%(key)s, {first}, '{{}}') "
    "ON CONFLICT (key) DO UPDATE SET failures = {then}, in_flight = coalesce("
    "f.in_flight[:array_position(f.in_flight, %(started)s::timestamptz) - 1] || "
    "f.in_flight[array_position(f.in_flight, %(started)s::timestamptz) + 1:], f.in_flight) "
    "RETURNING failures"
)

#: PostgreSQL's SQL. Rows are ordered by their ``seq`` identity column; the counter keeps its
#: attempts in flight as an array of start times. Its key references nothing (a user's id or
#: an email's key), so its statements cannot be refused: they need no savepoint.
_POSTGRES = Dialect(
    mark="%s",
    seq="seq",
    columns=_NativeColumns(),
    # One attempt starts: drop the key's abandoned attempts in flight, add this one.
    start=(
        "INSERT INTO sign_in_failures AS f (key, failures, in_flight) "
        "VALUES (%(key)s, 0, ARRAY[%(now)s::timestamptz]) "
        "ON CONFLICT (key) DO UPDATE SET in_flight = ARRAY("
        "SELECT t FROM unnest(f.in_flight) AS t WHERE t >= %(abandoned_before)s::timestamptz"
        ") || %(now)s::timestamptz "
        "RETURNING failures + cardinality(in_flight) AS counted"
    ),
    finish=finishes(_FINISH, "f.failures"),
    count="SELECT failures FROM sign_in_failures WHERE key = %(key)s",
    reset="UPDATE sign_in_failures SET failures = 0 WHERE key = %(key)s",
    feed=Feed(
        position="tx::text || ':' || seq::text",
        visible="tx < pg_snapshot_xmin(pg_current_snapshot())",
        after="(tx, seq) > (split_part({p}, ':', 1)::xid8, split_part({p}, ':', 2)::bigint)",
        order="tx, seq",
        pattern="[0-9]{1,20}:[0-9]{1,18}",
    ),
)


def _read_schema(connection: Connection) -> Schema:
    """Read the tables' columns from the database, after migration."""
    found: dict[str, set[str]] = {}
    for table_name, column_name in connection.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema()"
    ):
        found.setdefault(str(table_name), set()).add(str(column_name))
    return Schema(_POSTGRES, lambda table: found.get(table, set()))


def _milliseconds(value: timedelta, name: str) -> int:
    if value <= timedelta(0):
        raise InvalidInput(f"{name} must be positive", field=name, code="storage.bad_option")
    return max(1, int(value / timedelta(milliseconds=1)))


class PostgresStorage(ClosesOnExit):
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
            self._schema = _read_schema(connection)
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

    def unit_of_work(self, *, durable: bool = True) -> PostgresUnitOfWork:
        """Return a new unit of work on this store; one not ``durable`` commits without a flush."""
        return PostgresUnitOfWork(_Transaction(self, self._schema, durable=durable))

    def close(self) -> None:
        """Close the pool and its connections; later units fail with ``storage.closed``."""
        self._closed = True
        self._pool.close()

    def __repr__(self) -> str:
        where = ", ".join(f"{name}={value!r}" for name, value in self._where.items())
        return f"PostgresStorage({where})"


class _Transaction(Held[Connection]):
    """One unit of work's transaction, on one connection of the pool."""

    def __init__(self, storage: PostgresStorage, schema: Schema, *, durable: bool = True) -> None:
        super().__init__()
        self.storage = storage
        self.schema = schema
        self._durable = durable

    def begin(self) -> None:
        storage = self.storage
        self.check_unused()
        if storage._closed:  # noqa: SLF001 - the store's own unit
            raise StorageError("the store is closed", code="storage.closed")
        if getattr(storage._local, "active", False):  # noqa: SLF001
            raise StorageError("units of work do not nest", code="storage.nested_unit")
        with _translated():
            connection = storage._pool.getconn()  # noqa: SLF001
        storage._local.active = True  # noqa: SLF001
        self.hold(connection)
        if not self._durable:
            # Commit without waiting for the WAL flush; it opens the unit's transaction.
            with _translated():
                connection.execute("SET LOCAL synchronous_commit TO OFF")

    def end(self, *, commit: bool) -> None:
        connection = self.let_go()
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


class PostgresUnitOfWork(SQLUnitOfWork):
    """One unit of work on a `PostgresStorage`; see `securepractice.storage.ports.UnitOfWork`."""

    _tx: _Transaction

    def __init__(self, transaction: _Transaction) -> None:
        super().__init__(transaction)
