"""The PostgreSQL schema, as numbered steps that migrate a database forward (ST-3).

The table ``schema_version`` has a row per step applied. Opening a store
runs `migrate`: in one transaction, under a transaction-scoped advisory
lock (`MIGRATION_LOCK`), it reads the version and applies the missing
steps. Servers that start at once queue on the lock, so each step is
applied exactly once, and a server that took the lock second finds the
work done. A database newer than this library knows is refused. Steps are
only ever appended, never edited.

A table has a column for what SQL reads (keys, references, the fields
queries filter or order by, and ``version``) and keeps the rest of a
record in ``data``, a JSON object: a field added to a record later needs
no migration, and free text keeps any character, NUL included, which a
PostgreSQL ``text`` column cannot. Text that SQL orders or compares is
``COLLATE "C"``: code point order and exact equality, as in the other
stores, whatever the database's default collation.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from psycopg.rows import TupleRow

from securepractice.errors import StorageError

__all__ = ["LATEST_VERSION", "MIGRATIONS", "MIGRATION_LOCK", "migrate", "schema_version"]

#: The key of the advisory lock that migrations hold: "securepractice schema" in a bigint.
MIGRATION_LOCK = 0x5EC0_9EAC_71CE_0001

_TEXT = 'text COLLATE "C"'
_VERSION = "version bigint NOT NULL"
_DATA = "data json NOT NULL"
_USER = f"user_id {_TEXT} NOT NULL REFERENCES users (id)"
_SEQ = "seq bigint GENERATED ALWAYS AS IDENTITY"


def _append_only(table: str) -> list[str]:
    """Refuse every UPDATE, DELETE and TRUNCATE of ``table`` in the database itself (AU-1)."""
    return [
        (
            f"CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{table} is append-only' USING ERRCODE = 'restrict_violation'; "
            "END $$"
        ),
        (
            f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
        ),
        (
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()"
        ),
    ]


_V1 = (
    # Accounts: practices, users, credentials and the sign-in counter.
    f"CREATE TABLE practices (id {_TEXT} PRIMARY KEY, {_VERSION}, {_DATA})",
    (
        f"CREATE TABLE users (id {_TEXT} PRIMARY KEY, "
        f"practice_id {_TEXT} REFERENCES practices (id), email {_TEXT} NOT NULL UNIQUE, "
        f"{_VERSION}, {_DATA})"
    ),
    "CREATE INDEX users_by_practice ON users (practice_id, email)",
    (
        f"CREATE TABLE credentials (user_id {_TEXT} PRIMARY KEY REFERENCES users (id), "
        f"{_VERSION}, {_DATA})"
    ),
    (
        f"CREATE TABLE sign_in_failures (user_id {_TEXT} PRIMARY KEY REFERENCES users (id), "
        "failures integer NOT NULL, in_flight timestamptz[] NOT NULL)"
    ),
    # Verification: codes, the send ledger, e-mailed links; sessions and terms.
    (
        f"CREATE TABLE challenges ({_SEQ}, id {_TEXT} PRIMARY KEY, {_USER}, "
        f"purpose {_TEXT} NOT NULL, {_VERSION}, {_DATA})"
    ),
    "CREATE INDEX challenges_latest ON challenges (user_id, purpose, seq)",
    (
        f"CREATE TABLE send_ledgers (user_id {_TEXT} PRIMARY KEY REFERENCES users (id), "
        f"{_VERSION}, {_DATA})"
    ),
    (
        f"CREATE TABLE link_tokens ({_SEQ}, token_hash bytea PRIMARY KEY, "
        f"id {_TEXT} NOT NULL UNIQUE, {_USER}, purpose {_TEXT} NOT NULL, "
        f"created_at timestamptz NOT NULL, {_VERSION}, {_DATA})"
    ),
    "CREATE INDEX link_tokens_by_user ON link_tokens (user_id, purpose, created_at)",
    (
        f"CREATE TABLE sessions ({_SEQ}, token_hash bytea PRIMARY KEY, {_USER}, "
        f"created_at timestamptz NOT NULL, {_VERSION}, {_DATA})"
    ),
    "CREATE INDEX sessions_by_user ON sessions (user_id, created_at)",
    (
        f"CREATE TABLE terms ({_SEQ}, {_USER}, version {_TEXT} NOT NULL, "
        f"accepted_at timestamptz NOT NULL, {_DATA}, PRIMARY KEY (user_id, version))"
    ),
    # The audit log: append-only, in the order of its sequence.
    (
        f"CREATE TABLE audit_events (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
        f"id {_TEXT} NOT NULL UNIQUE, at timestamptz NOT NULL, subject_id {_TEXT}, "
        f"practice_id {_TEXT}, {_DATA})"
    ),
    "CREATE INDEX audit_events_by_time ON audit_events (at, seq)",
    "CREATE INDEX audit_events_by_subject ON audit_events (subject_id, at)",
    "CREATE INDEX audit_events_by_practice ON audit_events (practice_id, at)",
    *_append_only("audit_events"),
    # Products: subscriptions, entitlements, cards, SecureMail purchases, payments, invoices.
    (
        f"CREATE TABLE subscriptions (practice_id {_TEXT} NOT NULL REFERENCES practices (id), "
        f"product {_TEXT} NOT NULL, {_DATA}, PRIMARY KEY (practice_id, product))"
    ),
    (
        f"CREATE TABLE entitlements ({_USER}, product {_TEXT} NOT NULL, {_DATA}, "
        "PRIMARY KEY (user_id, product))"
    ),
    f"CREATE TABLE cards (user_id {_TEXT} PRIMARY KEY REFERENCES users (id), {_DATA})",
    (
        f"CREATE TABLE purchases ({_SEQ}, id {_TEXT} PRIMARY KEY, "
        f"practice_id {_TEXT} NOT NULL REFERENCES practices (id), "
        f"payer_id {_TEXT} NOT NULL REFERENCES users (id), "
        f"account_id {_TEXT} NOT NULL REFERENCES users (id), "
        f"purchased_at timestamptz NOT NULL, ended_at timestamptz, {_VERSION}, {_DATA})"
    ),
    "CREATE UNIQUE INDEX purchases_one_active ON purchases (account_id) WHERE ended_at IS NULL",
    "CREATE INDEX purchases_by_payer ON purchases (payer_id, purchased_at)",
    (
        f"CREATE TABLE payments ({_SEQ}, id {_TEXT} PRIMARY KEY, "
        f"purchase_id {_TEXT} NOT NULL REFERENCES purchases (id), account_id {_TEXT} NOT NULL, "
        f"paid_at timestamptz NOT NULL, {_DATA})"
    ),
    "CREATE INDEX payments_by_account ON payments (account_id, paid_at)",
    (
        f"CREATE TABLE invoices ({_SEQ}, id {_TEXT} PRIMARY KEY, "
        f"payment_id {_TEXT} NOT NULL REFERENCES payments (id), account_id {_TEXT} NOT NULL, "
        f"issued_at timestamptz NOT NULL, {_DATA})"
    ),
    "CREATE INDEX invoices_by_account ON invoices (account_id, issued_at)",
    # The fingerprint of the portal secret: one row at most (DP-2).
    (
        "CREATE TABLE portal_secret (only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row), "
        "fingerprint text NOT NULL)"
    ),
)

#: The sign-in counter keyed by any key: a user's id, or an email's key (IN-4). Every sign-in
#: is counted, an email that no account has included, so the counter loses its reference to
#: ``users`` and ``user_id`` becomes ``key``; existing counts carry over unchanged.
_V2 = (
    "ALTER TABLE sign_in_failures DROP CONSTRAINT sign_in_failures_user_id_fkey",
    "ALTER TABLE sign_in_failures RENAME COLUMN user_id TO key",
)

#: Link tokens keyed by any key: a user's id, or an email's key (IN-4). "Forgot password"
#: stores a link for an address that no account has, as for one that has, so that both
#: make the same writes; the link loses its reference to ``users``.
_V3 = ("ALTER TABLE link_tokens DROP CONSTRAINT link_tokens_user_id_fkey",)

#: Audit forwarding, exports, and client failures (CX-2, OP-3, CX-3). Each audit event keeps
#: the id of the transaction that wrote it (``tx``, given when the transaction first writes),
#: so that forwarders read the log in ``(tx, seq)`` order below the oldest transaction still
#: running, and never pass an event still to commit; events already stored take this step's
#: id, in their ``seq`` order. ``audit_sinks`` holds each forwarder's position and whether its
#: sink is in an outage; ``client_failures`` a row per failed sign-in of a client, for the
#: sign-in throttle, which housekeeping removes once old (OP-2).
_V4 = (
    "ALTER TABLE audit_events ADD COLUMN tx xid8 NOT NULL DEFAULT pg_current_xact_id()",
    "CREATE INDEX audit_events_by_commit ON audit_events (tx, seq)",
    (
        f"CREATE TABLE audit_sinks (sink {_TEXT} PRIMARY KEY, delivered text, "
        "failing boolean NOT NULL DEFAULT false)"
    ),
    (
        f"CREATE TABLE client_failures ({_SEQ} PRIMARY KEY, key {_TEXT} NOT NULL, "
        "at timestamptz NOT NULL)"
    ),
    "CREATE INDEX client_failures_by_key ON client_failures (key, at)",
    "CREATE INDEX client_failures_by_time ON client_failures (at)",
)

#: The steps, in order; step ``n`` (from 1) takes a database from version n-1 to n.
MIGRATIONS: tuple[Sequence[str], ...] = (_V1, _V2, _V3, _V4)
LATEST_VERSION = len(MIGRATIONS)

_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, "
    "applied_at timestamptz NOT NULL DEFAULT now())"
)


def schema_version(connection: psycopg.Connection[TupleRow]) -> int:
    """Return how many steps the database has applied; 0 for one never migrated."""
    exists = connection.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if exists is None or not exists[0]:
        return 0
    row = connection.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return 0 if row is None else int(row[0])


def _refuse_newer(version: int) -> None:
    if version > LATEST_VERSION:
        raise StorageError(
            f"the database has schema version {version}, newer than the {LATEST_VERSION} "
            "this version of securepractice knows; upgrade securepractice to open it",
            code="storage.schema_too_new",
        )


def migrate(connection: psycopg.Connection[TupleRow], *, target: int = LATEST_VERSION) -> int:
    """Apply the missing steps up to ``target`` in one transaction; return the version.

    ``connection`` must be in autocommit mode: the steps run in a
    transaction of their own, under `MIGRATION_LOCK`, so that several
    servers opening one database at once apply each step exactly once.
    ``storage.schema_too_new`` for a database newer than this library.
    """
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        connection.execute(_VERSION_TABLE)
        version = schema_version(connection)
        _refuse_newer(version)
        for number in range(version + 1, target + 1):
            for statement in MIGRATIONS[number - 1]:
                connection.execute(statement)
            connection.execute("INSERT INTO schema_version (version) VALUES (%s)", (number,))
    return max(version, target)
