"""The SQLite schema, as numbered steps that migrate a database forward (ST-3).

``PRAGMA user_version`` holds the number of steps applied. Opening a store
applies the missing steps in one transaction; a database whose version is
newer than this library knows is refused, since this code cannot know what
the newer schema means. Steps are only ever appended, never edited.

Every table has an ``extra`` column of JSON text: a record field that has no
column of its own (a field added to a record after its table was made) is
kept there, so adding a field to a record needs no migration.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from securepractice.errors import StorageError

__all__ = ["LATEST_VERSION", "MIGRATIONS", "STRICT_MINIMUM", "migrate", "schema_version"]

#: The first SQLite version with ``STRICT`` tables; older ones get plain tables.
STRICT_MINIMUM = (3, 37, 0)

_EXTRA = "extra TEXT NOT NULL DEFAULT '{}'"


def _table(name: str, columns: str, *, strict: bool, key: str = "") -> str:
    constraint = f", PRIMARY KEY ({key})" if key else ""
    return f"CREATE TABLE {name} ({columns}, {_EXTRA}{constraint}){' STRICT' if strict else ''}"


def _append_only(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_no_{verb} BEFORE {verb.upper()} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
        for verb in ("update", "delete")
    ]


def _v1_accounts(strict: bool) -> list[str]:
    """Practices, users, credentials, counters, codes, links, sessions, audit, terms."""
    user = "user_id TEXT NOT NULL REFERENCES users(id)"
    return [
        _table(
            "practices",
            "id TEXT PRIMARY KEY, name TEXT NOT NULL, address TEXT NOT NULL, "
            "phone TEXT NOT NULL, created_at TEXT NOT NULL",
            strict=strict,
        ),
        _table(
            "users",
            "id TEXT PRIMARY KEY, practice_id TEXT REFERENCES practices(id), "
            "email TEXT NOT NULL COLLATE NOCASE UNIQUE, email_key TEXT NOT NULL UNIQUE, "
            "first_name TEXT NOT NULL, last_name TEXT NOT NULL, phones TEXT NOT NULL, "
            "time_zone TEXT, ada_number TEXT, specialties TEXT NOT NULL, roles TEXT NOT NULL, "
            "status TEXT NOT NULL, two_step_enabled INTEGER NOT NULL, locked INTEGER NOT NULL, "
            "deactivated INTEGER NOT NULL, created_at TEXT NOT NULL",
            strict=strict,
        ),
        "CREATE INDEX users_by_practice ON users(practice_id, email_key)",
        _table(
            "credentials",
            "user_id TEXT PRIMARY KEY REFERENCES users(id), password_hash TEXT NOT NULL, "
            "set_at TEXT NOT NULL, history TEXT NOT NULL",
            strict=strict,
        ),
        _table(
            "sign_in_failures",
            "user_id TEXT PRIMARY KEY REFERENCES users(id), count INTEGER NOT NULL",
            strict=strict,
        ),
        _table(
            "challenges",
            f"id TEXT PRIMARY KEY, {user}, purpose TEXT NOT NULL, method TEXT NOT NULL, "
            "destination TEXT NOT NULL, code_hash BLOB, issued_at TEXT NOT NULL, "
            "expires_at TEXT NOT NULL, wrong_attempts INTEGER NOT NULL, state TEXT NOT NULL",
            strict=strict,
        ),
        "CREATE INDEX challenges_by_user ON challenges(user_id, purpose, issued_at)",
        _table("code_sends", f"{user}, at TEXT NOT NULL", strict=strict),
        "CREATE INDEX code_sends_by_user ON code_sends(user_id, at)",
        _table(
            "link_tokens",
            f"token_hash BLOB PRIMARY KEY, {user}, purpose TEXT NOT NULL, "
            "created_at TEXT NOT NULL, expires_at TEXT NOT NULL, used_at TEXT, "
            "superseded INTEGER NOT NULL",
            strict=strict,
        ),
        "CREATE INDEX link_tokens_by_user ON link_tokens(user_id, purpose)",
        _table(
            "sessions",
            f"token_hash BLOB PRIMARY KEY, {user}, created_at TEXT NOT NULL, "
            "last_active_at TEXT NOT NULL, revoked INTEGER NOT NULL",
            strict=strict,
        ),
        "CREATE INDEX sessions_by_user ON sessions(user_id)",
        _table(
            "audit_events",
            "seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, at TEXT NOT NULL, "
            "action TEXT NOT NULL, outcome TEXT NOT NULL, actor_id TEXT, subject_id TEXT, "
            "practice_id TEXT, detail TEXT NOT NULL",
            strict=strict,
        ),
        "CREATE INDEX audit_events_by_subject ON audit_events(subject_id, at)",
        "CREATE INDEX audit_events_by_practice ON audit_events(practice_id, at)",
        *_append_only("audit_events"),
        _table(
            "terms",
            f"{user}, version TEXT NOT NULL, accepted_at TEXT NOT NULL",
            strict=strict,
            key="user_id, version",
        ),
        _table(
            "entitlements",
            f"{user}, product TEXT NOT NULL, granted_at TEXT NOT NULL",
            strict=strict,
            key="user_id, product",
        ),
    ]


def _v2_billing(strict: bool) -> list[str]:
    """Practice subscriptions, cards on file, SecureMail purchases, payments and invoices."""
    return [
        _table(
            "subscriptions",
            "practice_id TEXT NOT NULL REFERENCES practices(id), product TEXT NOT NULL, "
            "subscribed_at TEXT NOT NULL",
            strict=strict,
            key="practice_id, product",
        ),
        _table(
            "cards",
            "user_id TEXT PRIMARY KEY REFERENCES users(id), processor_token TEXT NOT NULL, "
            "last_four TEXT NOT NULL, added_at TEXT NOT NULL",
            strict=strict,
        ),
        _table(
            "purchases",
            "id TEXT PRIMARY KEY, practice_id TEXT NOT NULL REFERENCES practices(id), "
            "payer_id TEXT NOT NULL REFERENCES users(id), "
            "account_id TEXT NOT NULL REFERENCES users(id), "
            "monthly_cents INTEGER NOT NULL CHECK (monthly_cents >= 0), "
            "purchased_at TEXT NOT NULL, ended_at TEXT",
            strict=strict,
        ),
        "CREATE UNIQUE INDEX purchases_one_active ON purchases(account_id) WHERE ended_at IS NULL",
        "CREATE INDEX purchases_by_payer ON purchases(payer_id, purchased_at)",
        _table(
            "payments",
            "id TEXT PRIMARY KEY, purchase_id TEXT NOT NULL REFERENCES purchases(id), "
            "payer_id TEXT NOT NULL, account_id TEXT NOT NULL, "
            "amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0), paid_at TEXT NOT NULL, "
            "processor_reference TEXT NOT NULL",
            strict=strict,
        ),
        "CREATE INDEX payments_by_account ON payments(account_id, paid_at)",
        _table(
            "invoices",
            "id TEXT PRIMARY KEY, payment_id TEXT NOT NULL REFERENCES payments(id), "
            "payer_id TEXT NOT NULL, account_id TEXT NOT NULL, "
            "amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0), "
            "period_start TEXT NOT NULL, period_end TEXT NOT NULL, issued_at TEXT NOT NULL",
            strict=strict,
        ),
        "CREATE INDEX invoices_by_account ON invoices(account_id, issued_at)",
    ]


def _rebuild(name: str, columns: str, copied: str, selected: str, *, strict: bool) -> list[str]:
    """Make table ``name`` anew with ``columns``, keeping its rows and their rowids.

    SQLite cannot drop a column constraint, so the table is made under a new
    name, filled, and renamed (SQLite's documented procedure; `migrate` turns
    reference checks off meanwhile and checks every reference before commit).
    """
    return [
        _table(f"{name}_new", columns, strict=strict),
        (
            f"INSERT INTO {name}_new (rowid, {copied}, extra) "  # noqa: S608 - names from code
            f"SELECT rowid, {selected}, extra FROM {name}"
        ),
        f"DROP TABLE {name}",
        f"ALTER TABLE {name}_new RENAME TO {name}",
    ]


def _v3_versions(strict: bool) -> list[str]:
    """Versions for saves over the version read, flow ids, exact emails, per-user send ledgers.

    Every record with a life cycle gets a ``version`` column (a challenge's
    moves out of ``extra``). Users are keyed by their email exactly as
    stored, with no case folding of the store's own (ID-2). Link tokens get
    an ``id``, a random one for existing rows; challenges a ``flow_id``, NULL
    for existing rows. The code-send rows become one ledger per user, its
    send times oldest first (VF-8).
    """
    version = "version INTEGER NOT NULL DEFAULT 0"
    user = "user_id TEXT NOT NULL REFERENCES users(id)"
    user_fields = (
        "id, practice_id, email, first_name, last_name, phones, time_zone, ada_number, "
        "specialties, roles, status, two_step_enabled, locked, deactivated, created_at"
    )
    token_fields = "token_hash, user_id, purpose, created_at, expires_at, used_at, superseded"
    return [
        *(
            f"ALTER TABLE {table} ADD COLUMN {version}"
            for table in ("practices", "credentials", "challenges", "sessions", "purchases")
        ),
        "ALTER TABLE challenges ADD COLUMN flow_id TEXT",
        (
            "UPDATE challenges SET version = coalesce(json_extract(extra, '$.version'), 0), "
            "extra = json_remove(extra, '$.version')"
        ),
        "DROP INDEX challenges_by_user",
        "CREATE INDEX challenges_by_user ON challenges(user_id, purpose)",
        *_rebuild(
            "users",
            "id TEXT PRIMARY KEY, practice_id TEXT REFERENCES practices(id), "
            "email TEXT NOT NULL UNIQUE, first_name TEXT NOT NULL, last_name TEXT NOT NULL, "
            "phones TEXT NOT NULL, time_zone TEXT, ada_number TEXT, specialties TEXT NOT NULL, "
            "roles TEXT NOT NULL, status TEXT NOT NULL, two_step_enabled INTEGER NOT NULL, "
            f"locked INTEGER NOT NULL, deactivated INTEGER NOT NULL, created_at TEXT NOT NULL, "
            f"{version}",
            user_fields,
            user_fields,
            strict=strict,
        ),
        "CREATE INDEX users_by_practice ON users(practice_id, email)",
        *_rebuild(
            "link_tokens",
            f"id TEXT NOT NULL UNIQUE, token_hash BLOB PRIMARY KEY, {user}, "
            "purpose TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL, "
            f"used_at TEXT, superseded INTEGER NOT NULL, {version}",
            f"id, {token_fields}",
            f"lower(hex(randomblob(16))), {token_fields}",
            strict=strict,
        ),
        "CREATE INDEX link_tokens_by_user ON link_tokens(user_id, purpose, created_at)",
        _table(
            "send_ledgers",
            f"user_id TEXT PRIMARY KEY REFERENCES users(id), sends TEXT NOT NULL, {version}",
            strict=strict,
        ),
        # A window's frame is in its ORDER BY order, so each array lists the sends oldest first.
        (
            "INSERT INTO send_ledgers (user_id, sends) SELECT DISTINCT user_id, "
            "json_group_array(at) OVER (PARTITION BY user_id ORDER BY at, rowid "
            "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) FROM code_sends"
        ),
        "DROP TABLE code_sends",
    ]


def _v4_attempts_and_secret(strict: bool) -> list[str]:
    """Sign-in attempts in flight (DP-5, LK-4) and the portal secret's fingerprint (DP-2).

    ``sign_in_failures.count`` stays the recorded failures. The new
    ``in_flight`` column is a JSON array of the start times (UTC ISO text,
    fixed width, so text order is time order) of the attempts started and
    not yet finished: one row per user, so that starting or finishing an
    attempt is one ``INSERT ... ON CONFLICT DO UPDATE`` statement. Existing
    counts carry over as recorded failures with nothing in flight.
    ``secret_fingerprint`` holds one row: the fingerprint of the secret the
    store was first used with, never the secret.
    """
    return [
        "ALTER TABLE sign_in_failures ADD COLUMN in_flight TEXT NOT NULL DEFAULT '[]'",
        (
            "CREATE TABLE secret_fingerprint (id INTEGER PRIMARY KEY CHECK (id = 1), "
            f"fingerprint TEXT NOT NULL){' STRICT' if strict else ''}"
        ),
    ]


def _v5_counter_keys(strict: bool) -> list[str]:
    """Key the sign-in counter by any key: a user's id, or an email's key (IN-4).

    Every sign-in is counted, an email that no account has included, under
    a keyed hash of the address; so ``sign_in_failures`` loses its reference
    to ``users`` and its ``user_id`` column becomes ``key``. Existing counts
    and attempts in flight carry over unchanged.
    """
    return _rebuild(
        "sign_in_failures",
        "key TEXT PRIMARY KEY, count INTEGER NOT NULL, in_flight TEXT NOT NULL DEFAULT '[]'",
        "key, count, in_flight",
        "user_id, count, in_flight",
        strict=strict,
    )


def _v6_link_keys(strict: bool) -> list[str]:
    """Key link tokens by any key: a user's id, or an email's key (IN-4).

    "Forgot password" stores a link for an address that no account has, as
    it does for one that has (under the address's keyed hash, never sent),
    so that both make the same writes; ``link_tokens`` loses its reference
    to ``users``. Existing links carry over unchanged.
    """
    fields = (
        "id, token_hash, user_id, purpose, created_at, expires_at, used_at, superseded, version"
    )
    return [
        *_rebuild(
            "link_tokens",
            "id TEXT NOT NULL UNIQUE, token_hash BLOB PRIMARY KEY, user_id TEXT NOT NULL, "
            "purpose TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL, "
            "used_at TEXT, superseded INTEGER NOT NULL, version INTEGER NOT NULL DEFAULT 0",
            fields,
            fields,
            strict=strict,
        ),
        "CREATE INDEX link_tokens_by_user ON link_tokens(user_id, purpose, created_at)",
    ]


def _v7_housekeeping(strict: bool) -> list[str]:
    """Audit export by time, forwarding positions, and client failures (OP-3, CX-2, CX-3).

    An index on the audit log's time serves exports by time range (OP-3).
    ``audit_sinks`` holds, per forwarder's sink name, the position of the
    last event it took and whether it is in an outage (CX-2).
    ``client_failures`` holds a row per failed sign-in of a client, under an
    opaque key, for the sign-in throttle (CX-3); housekeeping removes the
    old ones (OP-2). Nothing existing changes.
    """
    mode = " STRICT" if strict else ""
    return [
        "CREATE INDEX audit_events_by_time ON audit_events(at)",
        (
            "CREATE TABLE audit_sinks (sink TEXT PRIMARY KEY, delivered TEXT, "
            f"failing INTEGER NOT NULL DEFAULT 0){mode}"
        ),
        f"CREATE TABLE client_failures (key TEXT NOT NULL, at TEXT NOT NULL){mode}",
        "CREATE INDEX client_failures_by_key ON client_failures(key, at)",
        "CREATE INDEX client_failures_by_time ON client_failures(at)",
    ]


#: The steps, in order; step ``n`` (from 1) takes a database from version n-1 to n.
MIGRATIONS: tuple[Callable[[bool], Sequence[str]], ...] = (
    _v1_accounts,
    _v2_billing,
    _v3_versions,
    _v4_attempts_and_secret,
    _v5_counter_keys,
    _v6_link_keys,
    _v7_housekeeping,
)
LATEST_VERSION = len(MIGRATIONS)


def schema_version(connection: sqlite3.Connection) -> int:
    """Return the database's ``user_version``: how many steps were applied."""
    version: int = connection.execute("PRAGMA user_version").fetchone()[0]
    return version


def _refuse_newer(version: int) -> None:
    if version > LATEST_VERSION:
        raise StorageError(
            f"the database has schema version {version}, newer than the {LATEST_VERSION} "
            "this version of securepractice knows; upgrade securepractice to open it",
            code="storage.schema_too_new",
        )


def _apply(connection: sqlite3.Connection, version: int, target: int, *, strict: bool) -> None:
    """Run the steps from ``version`` to ``target``, then check every reference."""
    for step in MIGRATIONS[version:target]:
        for statement in step(strict):
            connection.execute(statement)
    if connection.execute("PRAGMA foreign_key_check").fetchone() is not None:
        raise StorageError(
            "migrating the database would leave a record that refers to a missing one; "
            "nothing was changed",
            code="storage.migration_failed",
        )
    # PRAGMA takes no parameters; ``target`` is an int of this module's own.
    connection.execute(f"PRAGMA user_version = {int(target)}")


def migrate(
    connection: sqlite3.Connection, *, target: int = LATEST_VERSION, strict: bool | None = None
) -> int:
    """Apply the missing steps up to ``target`` in one transaction; return the version.

    ``connection`` must be in autocommit mode (``isolation_level=None``).
    ``strict`` defaults to whether this SQLite supports ``STRICT`` tables.
    Reference checks are off while the steps run, so that a step can make a
    table anew, and every reference is checked before the commit. Raises
    `StorageError`: ``storage.schema_too_new`` for a newer database,
    ``storage.migration_failed`` if the steps would leave a broken reference.
    """
    if strict is None:
        strict = sqlite3.sqlite_version_info >= STRICT_MINIMUM
    version = schema_version(connection)
    _refuse_newer(version)
    if version >= target:
        return version
    enforced = int(connection.execute("PRAGMA foreign_keys").fetchone()[0])
    # This PRAGMA takes effect only outside a transaction.
    connection.execute("PRAGMA foreign_keys = OFF")
    try:
        connection.execute("BEGIN IMMEDIATE")
        try:
            version = schema_version(connection)
            _refuse_newer(version)
            if version < target:
                _apply(connection, version, target, strict=strict)
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
    finally:
        connection.execute(f"PRAGMA foreign_keys = {enforced}")
    return max(version, target)
