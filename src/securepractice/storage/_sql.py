"""The repositories of the SQL stores, written once over what each adapter's transaction offers.

An adapter (`securepractice.storage.sqlite`, `securepractice.storage.postgres`)
keeps its connections, its transactions, the translation of its driver's
errors and its schema; its transaction offers `SQLTransaction`: ``run`` a
statement no constraint can refuse, ``write`` one that a constraint may
refuse (an add, a save), and ``lock_user``. Its `Dialect` says what differs
in the SQL text: the parameter mark, the column that orders rows as they were
added, how fields become column values (`~securepractice.storage._codec.Columns`)
and the sign-in counter's statements. Everything else is here: how a record
maps to its table (`Table`), the tables (`Schema`), the statements every
repository is made of (`Rows`: insert, versioned save, one, many) and the
unit of work with its repositories (`SQLUnitOfWork`). No rule of
the portal is in SQL: the core decides, the store remembers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

import attrs

from securepractice.errors import Conflict, NotFound, StorageError
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
from securepractice.storage._codec import Columns, field_types, from_json, to_json
from securepractice.storage._unit import Transaction, TransactionalUnit, bad_position

__all__ = [
    "Dialect",
    "Feed",
    "Parameters",
    "Rows",
    "SQLTransaction",
    "SQLUnitOfWork",
    "Schema",
    "Table",
    "finishes",
    "reference_missing",
]

R = TypeVar("R", bound=attrs.AttrsInstance)
Parameters = Sequence[object] | Mapping[str, object]


def reference_missing() -> NotFound:
    """Return the error of a write whose record refers to a record that does not exist."""
    return NotFound(
        "the record refers to another record that does not exist",
        code="storage.reference_missing",
    )


def finishes(statement: str, failures: str) -> Mapping[AttemptOutcome, str]:
    """Return the statement that finishes a sign-in attempt, for each outcome.

    In ``statement``, ``{first}`` is the recorded failures of a new counter
    row and ``{then}`` those of an existing one whose failures are
    ``failures``: a wrong password adds one, a right one clears them, and an
    attempt that does not count leaves them.
    """
    return {
        AttemptOutcome.WRONG: statement.format(first="1", then=f"{failures} + 1"),
        AttemptOutcome.RIGHT: statement.format(first="0", then="0"),
        AttemptOutcome.NOT_COUNTED: statement.format(first="0", then=failures),
    }


@attrs.frozen
class Feed:
    """How one database reads the audit log in an order that a later commit never precedes (CX-2).

    ``position`` is the SQL expression of a row's position (text),
    ``visible`` the condition of the rows a reader may take now, ``after``
    the condition of the rows after a position given as every ``{p}`` in
    it, ``order`` the order of positions, and ``pattern`` what a position
    looks like.
    """

    position: str
    visible: str
    after: str
    order: str
    pattern: str


@attrs.frozen
class Dialect:
    """What differs in the SQL text of one database.

    ``mark`` is the parameter placeholder and ``seq`` the column that orders
    rows as they were added. The counter's statements take named
    parameters: ``start`` (``key``, ``now``, ``abandoned_before``)
    returns ``counted``; ``finish`` (``key``, ``started``), one for each
    outcome (`finishes`), and ``count`` (``key``) return ``failures``;
    ``reset`` takes ``key``. ``feed`` reads the audit log for forwarding.
    """

    mark: str
    seq: str
    columns: Columns
    start: str
    finish: Mapping[AttemptOutcome, str]
    count: str
    reset: str
    feed: Feed


class Row(Protocol):
    """A row a statement returned, read by column name."""

    def __getitem__(self, key: str, /) -> Any: ...  # noqa: ANN401 - any column value


class Cursor(Protocol):
    """What the repositories read from a statement that ran."""

    @property
    def rowcount(self) -> int:
        """How many rows the statement changed."""
        ...

    def fetchone(self) -> Row | None:
        """Return the next row, or None."""
        ...

    def fetchall(self) -> Sequence[Row]:
        """Return the rows left."""
        ...


@attrs.frozen
class Table(Generic[R]):
    """How one record type maps to one table: a column per field it has, JSON for the rest.

    ``thing`` names a record of the table in errors (``<thing>.not_found``).
    """

    name: str
    record: type[R]
    key: tuple[str, ...]
    columns: frozenset[str]
    codec: Columns
    thing: str

    def values(self, record: R) -> dict[str, object]:
        """Return the row for ``record``: column name to the value the driver takes."""
        row: dict[str, object] = {}
        extra: dict[str, object] = {}
        for name, kind in field_types(self.record).items():
            value = getattr(record, name)
            if name in self.columns:
                row[name] = self.codec.to_column(value, kind, field=name)
            else:
                extra[name] = to_json(value, kind, field=name)
        row[self.codec.extra] = self.codec.pack(extra)
        return row

    def decode(self, row: Row) -> R:
        """Build the record a row holds; `StorageError` if the row cannot make one."""
        fields: dict[str, object] = {}
        try:
            extra = self.codec.unpack(row[self.codec.extra])
            for name, kind in field_types(self.record).items():
                if name in self.columns:
                    fields[name] = self.codec.from_column(row[name], kind)
                elif name in extra:
                    fields[name] = from_json(extra[name], kind)
            return self.record(**fields)
        except (TypeError, ValueError, KeyError) as error:
            raise StorageError(
                f"a stored {self.record.__name__} does not fit the record's fields",
                code="storage.schema_mismatch",
            ) from error


class Schema:
    """The tables of one database, with the columns the database itself has after migration.

    ``columns`` returns the names of a table's columns.
    """

    def __init__(self, dialect: Dialect, columns: Callable[[str], Iterable[str]]) -> None:
        codec = dialect.columns

        def table(name: str, record: type[R], key: tuple[str, ...], thing: str) -> Table[R]:
            return Table(name, record, key, frozenset(columns(name)) - {codec.extra}, codec, thing)

        self.dialect = dialect
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


class SQLTransaction(Transaction, Protocol):
    """What an adapter's transaction offers the repositories.

    Both ``run`` and ``write`` raise the library's errors, never the
    driver's: `~securepractice.errors.AlreadyExists` for a taken key, `NotFound`
    (`reference_missing`) for a missing reference, `StorageError` for the rest.
    """

    @property
    def schema(self) -> Schema:
        """The database's tables."""
        ...

    def run(self, sql: str, parameters: Parameters = ()) -> Cursor:
        """Run a statement that no constraint can refuse: a read, a delete, the counter."""
        ...

    def write(self, sql: str, parameters: Parameters, *, lock_user: str | None = None) -> Cursor:
        """Run a statement that a constraint may refuse, leaving the unit usable if it is.

        With ``lock_user``, first take the lock that `lock_user` takes.
        """
        ...

    def lock_user(self, user_id: str) -> None:
        """Hold until the unit ends the lock on the user's link tokens and sessions (RG-4)."""
        ...


class Rows:
    """The statements every repository is made of, on one transaction.

    A ``where`` clause is a template: ``{p}`` is a parameter and ``{seq}``
    the column that orders rows as they were added.
    """

    def __init__(self, tx: SQLTransaction) -> None:
        self.tx = tx
        self.schema = tx.schema
        self.dialect = tx.schema.dialect

    def sql(self, template: str) -> str:
        """Return ``template`` in this database's SQL."""
        return template.format(p=self.dialect.mark, seq=self.dialect.seq)

    def time(self, moment: datetime, field: str) -> object:
        """Return ``moment`` as a parameter compared with a time column."""
        return self.dialect.columns.to_column(moment, datetime, field=field)

    def _insert(self, table: Table[R], row: dict[str, object]) -> str:
        marks = ", ".join([self.dialect.mark] * len(row))
        return f"INSERT INTO {table.name} ({', '.join(row)}) VALUES ({marks})"  # noqa: S608

    def insert(self, table: Table[R], record: R, *, lock_user: str | None = None) -> None:
        """Add ``record``; `AlreadyExists` if its key is taken."""
        row = table.values(record)
        self.tx.write(self._insert(table, row), list(row.values()), lock_user=lock_user)

    def insert_new(self, table: Table[R], record: R) -> bool:
        """Insert ``record`` unless its key exists; return whether it was inserted."""
        row = table.values(record)
        sql = self._insert(table, row) + " ON CONFLICT DO NOTHING"
        return self.tx.write(sql, list(row.values())).rowcount == 1

    def upsert(self, table: Table[R], record: R) -> None:
        """Insert ``record``, or replace the row that has its key."""
        row = table.values(record)
        changes = ", ".join(f"{name} = excluded.{name}" for name in row if name not in table.key)
        sql = self._insert(table, row) + (
            f" ON CONFLICT ({', '.join(table.key)}) DO UPDATE SET {changes}"
        )
        self.tx.write(sql, list(row.values()))

    def save(self, table: Table[R], record: R, expected_version: int) -> None:
        """Replace the row of ``record``'s key if its version is ``expected_version``.

        `NotFound` if there is no such row, `Conflict` if its version moved.
        """
        row = table.values(record)
        mark = self.dialect.mark
        changes = ", ".join(f"{name} = {mark}" for name in row if name not in table.key)
        where = " AND ".join(f"{name} = {mark}" for name in table.key)
        keys = [row[name] for name in table.key]
        cursor = self.tx.write(
            f"UPDATE {table.name} SET {changes} WHERE {where} AND version = {mark}",  # noqa: S608
            [*(v for n, v in row.items() if n not in table.key), *keys, expected_version],
        )
        if cursor.rowcount == 1:
            return
        if self.tx.run(f"SELECT 1 FROM {table.name} WHERE {where}", keys).fetchone() is None:  # noqa: S608
            raise NotFound(f"no such {table.thing}", code=f"{table.thing}.not_found")
        raise Conflict(f"the {table.thing} changed since it was read; nothing was saved")

    def _select(self, table: Table[R], where: str, parameters: Sequence[object]) -> Cursor:
        return self.tx.run(f"SELECT * FROM {table.name} WHERE {self.sql(where)}", parameters)  # noqa: S608

    def one(self, table: Table[R], where: str, *parameters: object) -> R | None:
        """Return the first record of ``table`` that ``where`` selects, if any."""
        row = self._select(table, where, parameters).fetchone()
        return None if row is None else table.decode(row)

    def many(self, table: Table[R], where: str, *parameters: object) -> list[R]:
        """Return the records of ``table`` that ``where`` selects."""
        return [table.decode(row) for row in self._select(table, where, parameters).fetchall()]

    def page(self, table: Table[R], after: object, limit: int) -> list[R]:
        """Return up to ``limit`` records of ``table`` in order of key, those after ``after``."""
        (key,) = table.key
        if after is None:
            return self.many(table, f"1 = 1 ORDER BY {key} LIMIT {{p}}", max(limit, 0))
        return self.many(table, f"{key} > {{p}} ORDER BY {key} LIMIT {{p}}", after, max(limit, 0))

    def delete(self, table: Table[R], keyed: Sequence[tuple[object, int]]) -> int:
        """Remove each row of ``table`` whose key is given with its stored version."""
        if not keyed:
            return 0
        (key,) = table.key
        pairs = ", ".join([f"({self.dialect.mark}, {self.dialect.mark})"] * len(keyed))
        sql = f"DELETE FROM {table.name} WHERE ({key}, version) IN (VALUES {pairs})"  # noqa: S608
        return self.tx.run(sql, [value for pair in keyed for value in pair]).rowcount


class SQLUnitOfWork(TransactionalUnit):
    """A unit of work on an SQL store: its fourteen repositories over one transaction."""

    _tx: SQLTransaction

    def __init__(self, tx: SQLTransaction) -> None:
        self._tx = tx
        rows = Rows(tx)
        self.practices: ports.Practices = _Practices(rows)
        self.users: ports.Users = _Users(rows)
        self.credentials: ports.Credentials = _Credentials(rows)
        self.sign_in_failures: ports.SignInFailures = _SignInFailures(rows)
        self.client_failures: ports.ClientFailures = _ClientFailures(rows)
        self.challenges: ports.Challenges = _Challenges(rows)
        self.code_sends: ports.CodeSends = _CodeSends(rows)
        self.link_tokens: ports.LinkTokens = _LinkTokens(rows)
        self.sessions: ports.Sessions = _Sessions(rows)
        self.audit: ports.AuditLog = _AuditLog(rows)
        self.audit_sinks: ports.AuditSinks = _AuditSinks(rows)
        self.terms: ports.TermsAcceptances = _TermsAcceptances(rows)
        self.subscriptions: ports.Subscriptions = _Subscriptions(rows)
        self.entitlements: ports.Entitlements = _Entitlements(rows)
        self.cards: ports.Cards = _Cards(rows)
        self.securemail: ports.SecureMailBilling = _SecureMailBilling(rows)


class _Repository:
    def __init__(self, rows: Rows) -> None:
        self._rows = rows
        self._schema = rows.schema


class _Practices(_Repository):
    def add(self, practice: Practice) -> None:
        self._rows.insert(self._schema.practices, practice)

    def get(self, practice_id: str) -> Practice | None:
        return self._rows.one(self._schema.practices, "id = {p}", practice_id)

    def save(self, practice: Practice, *, expected_version: int) -> None:
        self._rows.save(self._schema.practices, practice, expected_version)


class _Users(_Repository):
    def add(self, user: User) -> None:
        self._rows.insert(self._schema.users, user)

    def get(self, user_id: str) -> User | None:
        return self._rows.one(self._schema.users, "id = {p}", user_id)

    def get_by_email(self, email: str) -> User | None:
        return self._rows.one(self._schema.users, "email = {p}", email)

    def save(self, user: User, *, expected_version: int) -> None:
        self._rows.save(self._schema.users, user, expected_version)

    def list_for_practice(self, practice_id: str) -> Sequence[User]:
        return self._rows.many(
            self._schema.users, "practice_id = {p} ORDER BY email, id", practice_id
        )

    def list_staff(self) -> Sequence[User]:
        return self._rows.many(self._schema.users, "practice_id IS NULL ORDER BY email, id")


class _Credentials(_Repository):
    def get(self, user_id: str) -> Credential | None:
        return self._rows.one(self._schema.credentials, "user_id = {p}", user_id)

    def add(self, credential: Credential) -> None:
        self._rows.insert(self._schema.credentials, credential)

    def save(self, credential: Credential, *, expected_version: int) -> None:
        self._rows.save(self._schema.credentials, credential, expected_version)


class _SignInFailures(_Repository):
    """Each start and finish is one statement on the key's counter row, atomic by itself.

    The statement makes the row of a key that has none; any key is taken,
    a user's id or an email's key (IN-4).
    """

    def _counter(self, statement: str, parameters: Mapping[str, object], column: str) -> int:
        row = self._rows.tx.run(statement, parameters).fetchone()
        if row is None:
            raise StorageError("the sign-in counter returned no row", code="storage.unavailable")
        return int(row[column])

    def start(self, key: str, *, now: datetime, abandoned_before: datetime) -> int:
        parameters = {
            "key": key,
            "now": self._rows.time(now, "now"),
            "abandoned_before": self._rows.time(abandoned_before, "abandoned_before"),
        }
        return self._counter(self._rows.dialect.start, parameters, "counted")

    def finish(self, key: str, *, started: datetime, outcome: AttemptOutcome) -> int:
        parameters = {"key": key, "started": self._rows.time(started, "started")}
        return self._counter(self._rows.dialect.finish[outcome], parameters, "failures")

    def count(self, key: str) -> int:
        row = self._rows.tx.run(self._rows.dialect.count, {"key": key}).fetchone()
        return 0 if row is None else int(row["failures"])

    def reset(self, key: str) -> None:
        self._rows.tx.run(self._rows.dialect.reset, {"key": key})


class _Challenges(_Repository):
    def add(self, challenge: Challenge) -> None:
        self._rows.insert(self._schema.challenges, challenge)

    def get(self, challenge_id: str) -> Challenge | None:
        return self._rows.one(self._schema.challenges, "id = {p}", challenge_id)

    def save(self, challenge: Challenge, *, expected_version: int) -> None:
        self._rows.save(self._schema.challenges, challenge, expected_version)

    def latest(self, user_id: str, purpose: Purpose) -> Challenge | None:
        # Challenges are never deleted, so the last in insertion order is the one added last.
        return self._rows.one(
            self._schema.challenges,
            "user_id = {p} AND purpose = {p} ORDER BY {seq} DESC LIMIT 1",
            user_id,
            purpose.value,
        )

    def page(self, *, after: str | None = None, limit: int) -> Sequence[Challenge]:
        return self._rows.page(self._schema.challenges, after, limit)

    def delete(self, challenges: Sequence[Challenge]) -> int:
        return self._rows.delete(self._schema.challenges, [(c.id, c.version) for c in challenges])


class _CodeSends(_Repository):
    def get(self, user_id: str) -> SendLedger | None:
        return self._rows.one(self._schema.send_ledgers, "user_id = {p}", user_id)

    def add(self, ledger: SendLedger) -> None:
        self._rows.insert(self._schema.send_ledgers, ledger)

    def save(self, ledger: SendLedger, *, expected_version: int) -> None:
        self._rows.save(self._schema.send_ledgers, ledger, expected_version)

    def page(self, *, after: str | None = None, limit: int) -> Sequence[SendLedger]:
        return self._rows.page(self._schema.send_ledgers, after, limit)

    def delete(self, ledgers: Sequence[SendLedger]) -> int:
        return self._rows.delete(
            self._schema.send_ledgers, [(g.user_id, g.version) for g in ledgers]
        )


class _LinkTokens(_Repository):
    """Adding and listing take the user's lock: "list, supersede, add" runs as if alone."""

    def add(self, token: LinkToken) -> None:
        self._rows.insert(self._schema.link_tokens, token, lock_user=token.user_id)

    def get(self, token_hash: bytes) -> LinkToken | None:
        return self._rows.one(self._schema.link_tokens, "token_hash = {p}", token_hash)

    def save(self, token: LinkToken, *, expected_version: int) -> None:
        self._rows.save(self._schema.link_tokens, token, expected_version)

    def list_for_user(self, user_id: str, purpose: TokenPurpose) -> Sequence[LinkToken]:
        self._rows.tx.lock_user(user_id)
        return self._rows.many(
            self._schema.link_tokens,
            "user_id = {p} AND purpose = {p} ORDER BY created_at, {seq}",
            user_id,
            purpose.value,
        )

    def page(self, *, after: bytes | None = None, limit: int) -> Sequence[LinkToken]:
        return self._rows.page(self._schema.link_tokens, after, limit)

    def delete(self, tokens: Sequence[LinkToken]) -> int:
        return self._rows.delete(
            self._schema.link_tokens, [(t.token_hash, t.version) for t in tokens]
        )


class _Sessions(_Repository):
    """Adding and listing take the user's lock, as link tokens do."""

    def add(self, session: Session) -> None:
        self._rows.insert(self._schema.sessions, session, lock_user=session.user_id)

    def get(self, token_hash: bytes) -> Session | None:
        return self._rows.one(self._schema.sessions, "token_hash = {p}", token_hash)

    def save(self, session: Session, *, expected_version: int) -> None:
        self._rows.save(self._schema.sessions, session, expected_version)

    def list_for_user(self, user_id: str) -> Sequence[Session]:
        self._rows.tx.lock_user(user_id)
        return self._rows.many(
            self._schema.sessions, "user_id = {p} ORDER BY created_at, {seq}", user_id
        )

    def page(self, *, after: bytes | None = None, limit: int) -> Sequence[Session]:
        return self._rows.page(self._schema.sessions, after, limit)

    def delete(self, sessions: Sequence[Session]) -> int:
        return self._rows.delete(
            self._schema.sessions, [(s.token_hash, s.version) for s in sessions]
        )


class _AuditLog(_Repository):
    def append(self, event: AuditEvent) -> None:
        self._rows.insert(self._schema.audit, event)

    def events(
        self,
        *,
        subject_id: str | None = None,
        practice_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Sequence[AuditEvent]:
        clauses = ["1 = 1"]
        parameters: list[object] = []
        for clause, value in (
            ("subject_id = {p}", subject_id),
            ("practice_id = {p}", practice_id),
            ("at >= {p}", None if since is None else self._rows.time(since, "since")),
            ("at < {p}", None if until is None else self._rows.time(until, "until")),
            ("(at, {seq}) > (SELECT at, {seq} FROM audit_events WHERE id = {p})", after),
        ):
            if value is not None:
                clauses.append(clause)
                parameters.append(value)
        where = " AND ".join(clauses) + " ORDER BY at, {seq}"
        if limit is not None:
            where += " LIMIT {p}"
            parameters.append(max(limit, 0))
        return self._rows.many(self._schema.audit, where, *parameters)

    def feed(self, *, after: str | None = None, limit: int) -> Sequence[tuple[str, AuditEvent]]:
        feed = self._rows.dialect.feed
        clauses = [feed.visible]
        parameters: list[object] = []
        if after is not None:
            if not re.fullmatch(feed.pattern, after):
                raise bad_position()
            clauses.append(feed.after)
            parameters.extend([after] * feed.after.count("{p}"))
        where = self._rows.sql(" AND ".join(clauses) + f" ORDER BY {feed.order} LIMIT {{p}}")
        parameters.append(max(limit, 0))
        table = self._schema.audit
        rows = self._rows.tx.run(
            f"SELECT *, {feed.position} AS position FROM {table.name} WHERE {where}",  # noqa: S608
            parameters,
        ).fetchall()
        return [(str(row["position"]), table.decode(row)) for row in rows]


class _AuditSinks(_Repository):
    """One row per sink: the position of the last event it took, and whether it is failing."""

    def position(self, sink: str) -> str | None:
        sql = self._rows.sql("SELECT delivered FROM audit_sinks WHERE sink = {p}")
        row = self._rows.tx.run(sql, (sink,)).fetchone()
        return None if row is None or row["delivered"] is None else str(row["delivered"])

    def advance(self, sink: str, *, expected: str | None, position: str) -> None:
        if expected is None:
            sql = (
                "INSERT INTO audit_sinks (sink, delivered, failing) VALUES ({p}, {p}, {p}) "
                "ON CONFLICT (sink) DO UPDATE SET delivered = excluded.delivered "
                "WHERE audit_sinks.delivered IS NULL"
            )
            parameters: tuple[object, ...] = (sink, position, False)
        else:
            sql = "UPDATE audit_sinks SET delivered = {p} WHERE sink = {p} AND delivered = {p}"
            parameters = (position, sink, expected)
        if self._rows.tx.run(self._rows.sql(sql), parameters).rowcount != 1:
            raise Conflict("the sink's position moved since it was read; nothing was saved")

    def set_failing(self, sink: str, *, failing: bool) -> bool:
        if failing:
            sql = (
                "INSERT INTO audit_sinks (sink, delivered, failing) VALUES ({p}, NULL, {p}) "
                "ON CONFLICT (sink) DO UPDATE SET failing = excluded.failing "
                "WHERE audit_sinks.failing <> excluded.failing"
            )
            parameters: tuple[object, ...] = (sink, True)
        else:
            sql = "UPDATE audit_sinks SET failing = {p} WHERE sink = {p} AND failing"
            parameters = (False, sink)
        return self._rows.tx.run(self._rows.sql(sql), parameters).rowcount == 1


class _ClientFailures(_Repository):
    """A row per failure, so that simultaneous records never overwrite one another (CX-3)."""

    def record(self, key: str, at: datetime) -> None:
        sql = self._rows.sql("INSERT INTO client_failures (key, at) VALUES ({p}, {p})")
        self._rows.tx.run(sql, (key, self._rows.time(at, "at")))

    def count_since(self, key: str, since: datetime) -> int:
        sql = self._rows.sql(
            "SELECT count(*) AS failures FROM client_failures WHERE key = {p} AND at >= {p}"
        )
        row = self._rows.tx.run(sql, (key, self._rows.time(since, "since"))).fetchone()
        return 0 if row is None else int(row["failures"])

    def delete_before(self, before: datetime, *, limit: int) -> int:
        sql = self._rows.sql(
            "DELETE FROM client_failures WHERE {seq} IN "
            "(SELECT {seq} FROM client_failures WHERE at < {p} LIMIT {p})"
        )
        return self._rows.tx.run(sql, (self._rows.time(before, "before"), max(limit, 0))).rowcount


class _TermsAcceptances(_Repository):
    def add(self, acceptance: TermsAcceptance) -> None:
        self._rows.insert(self._schema.terms, acceptance)

    def list_for_user(self, user_id: str) -> Sequence[TermsAcceptance]:
        return self._rows.many(
            self._schema.terms, "user_id = {p} ORDER BY accepted_at, {seq}", user_id
        )


class _Subscriptions(_Repository):
    def subscribe(self, subscription: PracticeSubscription) -> bool:
        return self._rows.insert_new(self._schema.subscriptions, subscription)

    def list_for_practice(self, practice_id: str) -> Sequence[PracticeSubscription]:
        return self._rows.many(
            self._schema.subscriptions, "practice_id = {p} ORDER BY product", practice_id
        )


class _Entitlements(_Repository):
    def grant(self, entitlement: Entitlement) -> bool:
        return self._rows.insert_new(self._schema.entitlements, entitlement)

    def revoke(self, user_id: str, product: str) -> bool:
        sql = self._rows.sql("DELETE FROM entitlements WHERE user_id = {p} AND product = {p}")
        return self._rows.tx.run(sql, (user_id, product)).rowcount == 1

    def list_for_user(self, user_id: str) -> Sequence[Entitlement]:
        return self._rows.many(self._schema.entitlements, "user_id = {p} ORDER BY product", user_id)


class _Cards(_Repository):
    def put(self, card: CardOnFile) -> None:
        self._rows.upsert(self._schema.cards, card)

    def get(self, user_id: str) -> CardOnFile | None:
        return self._rows.one(self._schema.cards, "user_id = {p}", user_id)


class _SecureMailBilling(_Repository):
    def add_purchase(self, purchase: SecureMailPurchase) -> None:
        self._rows.insert(self._schema.purchases, purchase)

    def active_purchase(self, account_id: str) -> SecureMailPurchase | None:
        return self._rows.one(
            self._schema.purchases, "account_id = {p} AND ended_at IS NULL", account_id
        )

    def active_purchases(self) -> Sequence[SecureMailPurchase]:
        return self._rows.many(
            self._schema.purchases, "ended_at IS NULL ORDER BY purchased_at, {seq}"
        )

    def purchases_paid_by(self, payer_id: str) -> Sequence[SecureMailPurchase]:
        return self._rows.many(
            self._schema.purchases, "payer_id = {p} ORDER BY purchased_at, {seq}", payer_id
        )

    def save_purchase(self, purchase: SecureMailPurchase, *, expected_version: int) -> None:
        self._rows.save(self._schema.purchases, purchase, expected_version)

    def add_payment(self, payment: SecureMailPayment) -> None:
        self._rows.insert(self._schema.payments, payment)

    def payments_for(self, account_id: str) -> Sequence[SecureMailPayment]:
        return self._rows.many(
            self._schema.payments, "account_id = {p} ORDER BY paid_at, {seq}", account_id
        )

    def add_invoice(self, invoice: Invoice) -> None:
        self._rows.insert(self._schema.invoices, invoice)

    def invoices_for(self, account_id: str) -> Sequence[Invoice]:
        return self._rows.many(
            self._schema.invoices, "account_id = {p} ORDER BY issued_at, {seq}", account_id
        )
