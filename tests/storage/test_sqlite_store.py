"""What only the SQLite store has: pragmas, schema versions, and its failures (ST-2, ST-3, LK-8).

Also what lives in its file beyond one process: the portal secret's
fingerprint (DP-2) and sign-in attempts in flight through a held lock (DP-5).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import attrs
import pytest

from securepractice import FakeClock
from securepractice.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    SettingsError,
    StorageError,
)
from securepractice.keys import fingerprint
from securepractice.records import (
    AttemptOutcome,
    AuditEvent,
    PhoneKind,
    Practice,
    Purpose,
    RegistrationStatus,
    SendLedger,
    TokenPurpose,
    User,
    revised,
)
from securepractice.secret import Secret
from securepractice.storage import migrations
from securepractice.storage._codec import TEXT_COLUMNS
from securepractice.storage._sql import Rows, Table
from securepractice.storage.ports import SignInFailures
from securepractice.storage.sqlite import SQLiteStorage, _storage_error

#: How long an unfinished sign-in attempt stays in flight in these tests.
IN_FLIGHT = timedelta(minutes=5)


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


def _start(failures: SignInFailures, user_id: str, at: datetime) -> int:
    return failures.start(user_id, now=at, abandoned_before=at - IN_FLIGHT)


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
    assert len(tables) == 19
    assert all(row[0].endswith("STRICT") for row in tables)


@pytest.mark.parametrize(("given", "level"), [("normal", 1), ("OFF", 0), ("Extra", 3)])
def test_options_are_configurable_and_checked(path: Path, given: str, level: int) -> None:
    """Tests that do not test durability may trade it for speed; anything unknown is refused."""
    relaxed = SQLiteStorage(path, synchronous=given, busy_timeout=timedelta(seconds=1))
    assert relaxed.connection().execute("PRAGMA synchronous").fetchone()[0] == level
    assert f"synchronous={given.upper()!r}" in repr(relaxed)
    relaxed.close()
    with pytest.raises(InvalidInput) as bad_sync:
        SQLiteStorage(path, synchronous="SOMETIMES")
    with pytest.raises(InvalidInput) as bad_wait:
        SQLiteStorage(path, busy_timeout=timedelta(seconds=-1))
    assert (bad_sync.value.field, bad_wait.value.field) == ("synchronous", "busy_timeout")


def test_dp_5_a_unit_that_need_not_be_durable_lowers_the_level_for_itself_only(
    path: Path, now: datetime
) -> None:
    """DP-5: the start of an attempt commits at NORMAL; every other unit at the store's level."""
    with SQLiteStorage(path, synchronous="EXTRA") as store:
        levels = []
        with store.unit_of_work(durable=False) as uow:
            levels.append(store.connection().execute("PRAGMA synchronous").fetchone()[0])
            uow.sign_in_failures.start("u1", now=now, abandoned_before=now)
        levels.append(store.connection().execute("PRAGMA synchronous").fetchone()[0])
        with store.unit_of_work() as uow:
            levels.append(store.connection().execute("PRAGMA synchronous").fetchone()[0])
            assert uow.sign_in_failures.count("u1") == 0
        assert levels == [1, 3, 3]  # NORMAL, then EXTRA again
        assert store.synchronous == "EXTRA"


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
    assert migrations.schema_version(store.connection()) == migrations.LATEST_VERSION == 7


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
        assert migrations.schema_version(store.connection()) == migrations.LATEST_VERSION
        with store.unit_of_work() as uow:
            assert uow.practices.get("p1") == Practice(id="p1", name="Smile Dental",
                                                       created_at=now)  # fmt: skip
            assert uow.securemail.active_purchase("u1") is None
        assert migrations.migrate(store.connection()) == migrations.LATEST_VERSION
    finally:
        store.close()


@pytest.mark.parametrize("version", range(migrations.LATEST_VERSION))
def test_every_older_version_migrates_to_a_working_store(
    path: Path, now: datetime, version: int
) -> None:
    """ST-3: from any released schema, opening gives the latest one, where saves work."""
    old = sqlite3.connect(path, isolation_level=None)
    migrations.migrate(old, target=version)
    old.close()
    store = SQLiteStorage(path)
    try:
        assert migrations.schema_version(store.connection()) == migrations.LATEST_VERSION
        user = _add_user(store, now)
        with store.unit_of_work() as uow:
            uow.code_sends.add(SendLedger(user_id=user.id, sends=(now,)))
            uow.users.save(revised(user, locked=True), expected_version=user.version)
            with pytest.raises(Conflict):
                uow.users.save(revised(user), expected_version=user.version)
        with store.unit_of_work() as uow:
            assert uow.users.get_by_email("ada@example.com") == revised(user, locked=True)
            assert uow.code_sends.get(user.id) == SendLedger(user_id=user.id, sends=(now,))
    finally:
        store.close()


def _version_2_database(path: Path) -> None:
    """A database of the previous release (schema version 2), with rows of every changed table."""
    old = sqlite3.connect(path, isolation_level=None)
    assert migrations.migrate(old, target=2) == 2
    at = "2026-01-05T09:00:00.000000+00:00"
    old.executescript(f"""
        INSERT INTO practices (id, name, address, phone, created_at)
            VALUES ('p1', 'Smile Dental', '', '', '{at}');
        INSERT INTO users (id, practice_id, email, email_key, first_name, last_name, phones,
            time_zone, ada_number, specialties, roles, status, two_step_enabled, locked,
            deactivated, created_at)
            VALUES ('u1', 'p1', 'ada@example.com', 'ada@example.com', 'Ada', '', '[]', NULL,
                NULL, '[]', '["user"]', 'registered', 1, 0, 0, '{at}'),
            ('u2', 'p1', 'grace@example.com', 'grace@example.com', '', '', '[]', NULL, NULL,
                '[]', '["user"]', 'invited', 1, 0, 0, '{at}');
        INSERT INTO credentials (user_id, password_hash, set_at, history)
            VALUES ('u1', '$argon2id$one', '{at}', '[]');
        INSERT INTO code_sends (user_id, at) VALUES
            ('u1', '2026-01-05T09:03:00.000000+00:00'), ('u1', '2026-01-05T09:01:00.000000+00:00'),
            ('u2', '2026-01-05T09:02:00.000000+00:00'), ('u1', '2026-01-05T09:02:00.000000+00:00');
        INSERT INTO link_tokens (token_hash, user_id, purpose, created_at, expires_at, used_at,
            superseded)
            VALUES (X'aa', 'u1', 'invitation', '{at}', '2026-01-19T09:00:00.000000+00:00', NULL, 1),
            (X'bb', 'u1', 'invitation', '{at}', '2026-01-19T09:00:00.000000+00:00', NULL, 0),
            (X'cc', 'u2', 'password_reset', '{at}', '2026-01-05T10:00:00.000000+00:00', '{at}', 0);
        INSERT INTO challenges (id, user_id, purpose, method, destination, code_hash, issued_at,
            expires_at, wrong_attempts, state, extra)
            VALUES ('c1', 'u1', 'new_phone', 'sms', '+12025550143', X'0101', '{at}',
                '2026-01-05T09:10:00.000000+00:00', 2, 'active',
                '{{"version":3,"phone_kind":"cell"}}');
        INSERT INTO sessions (token_hash, user_id, created_at, last_active_at, revoked)
            VALUES (X'dd', 'u1', '{at}', '{at}', 0);
        INSERT INTO purchases (id, practice_id, payer_id, account_id, monthly_cents,
            purchased_at, ended_at)
            VALUES ('sm1', 'p1', 'u1', 'u2', 1000, '{at}', NULL);
    """)  # noqa: S608 - the only value is this test's own constant
    old.close()


def test_previous_version_with_rows_migrates_and_keeps_them(path: Path, now: datetime) -> None:
    """ST-3, VF-8, ID-2: users, codes sent, links, challenges and the rest survive version 3."""
    _version_2_database(path)
    store = SQLiteStorage(path)
    try:
        with store.unit_of_work() as uow:
            ada = uow.users.get_by_email("ada@example.com")
            grace = uow.users.get("u2")
            ledgers = (uow.code_sends.get("u1"), uow.code_sends.get("u2"))
            tokens = [
                *uow.link_tokens.list_for_user("u1", TokenPurpose.INVITATION),
                *uow.link_tokens.list_for_user("u2", TokenPurpose.PASSWORD_RESET),
            ]
            challenge = uow.challenges.latest("u1", Purpose.NEW_PHONE)
            credential = uow.credentials.get("u1")
            session = uow.sessions.get(b"\xdd")
            purchase = uow.securemail.active_purchase("u2")
            practice = uow.practices.get("p1")
        assert ada == User(id="u1", practice_id="p1", email="ada@example.com", first_name="Ada",
                           status=RegistrationStatus.REGISTERED, created_at=now)  # fmt: skip
        assert grace is not None
        assert grace.email == "grace@example.com"
        minutes = [now + timedelta(minutes=m) for m in (1, 2, 3)]
        assert ledgers == (
            SendLedger(user_id="u1", sends=tuple(minutes)),
            SendLedger(user_id="u2", sends=(minutes[1],)),
        )
        assert [(t.token_hash, t.superseded, t.used_at, t.version) for t in tokens] == [
            (b"\xaa", True, None, 0),
            (b"\xbb", False, None, 0),
            (b"\xcc", False, now, 0),
        ]
        ids = [t.id for t in tokens]
        assert len(set(ids)) == 3
        assert all(len(i) == 32 and set(i) <= set("0123456789abcdef") for i in ids)
        assert challenge is not None
        kept = (challenge.version, challenge.flow_id, challenge.phone_kind)
        assert kept == (3, None, PhoneKind.CELL)
        assert (challenge.wrong_attempts, challenge.code_hash) == (2, b"\x01\x01")
        assert credential is not None
        assert (credential.password_hash, credential.version) == ("$argon2id$one", 0)
        assert session is not None
        assert (session.user_id, session.revoked, session.version) == ("u1", False, 0)
        assert purchase is not None
        assert (purchase.id, purchase.payer_id, purchase.version) == ("sm1", "u1", 0)
        assert practice is not None
        assert practice.version == 0
        connection = store.connection()
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_schema")}
        assert "code_sends" not in tables
        assert connection.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert connection.execute("SELECT extra FROM challenges").fetchone()[0] == (
            '{"phone_kind":"cell"}'
        )
    finally:
        store.close()


def test_migrated_users_are_keyed_by_their_exact_email(path: Path, now: datetime) -> None:
    """ID-2: the store's own case folding is gone; the normal form is the one key."""
    _version_2_database(path)
    store = SQLiteStorage(path)
    try:
        shouty = User(id="u3", practice_id="p1", email="ADA@example.com", created_at=now)
        with store.unit_of_work() as uow:
            uow.users.add(shouty)
            with pytest.raises(AlreadyExists) as taken:
                uow.users.add(attrs.evolve(shouty, id="u4", email="grace@example.com"))
        assert taken.value.code == "user.email_taken"
        with store.unit_of_work() as uow:
            assert uow.users.get_by_email("ADA@example.com") == shouty
            found = uow.users.get_by_email("ada@example.com")
            assert found is not None
            assert found.id == "u1"
            assert uow.users.get_by_email("Ada@Example.com") is None
    finally:
        store.close()


#: When the rows of `_old_database` were made, as SQLite text.
OLD_TIME = "2026-01-05T09:00:00.000000+00:00"


def _old_database(path: Path, version: int, counters: str) -> None:
    """Make a database at schema ``version`` with practice p1, users u1 and u2, and ``counters``."""
    old = sqlite3.connect(path, isolation_level=None)
    assert migrations.migrate(old, target=version) == version
    old.executescript(f"""
        INSERT INTO practices (id, name, address, phone, created_at, version)
            VALUES ('p1', 'Smile Dental', '', '', '{OLD_TIME}', 0);
        INSERT INTO users (id, practice_id, email, first_name, last_name, phones, time_zone,
            ada_number, specialties, roles, status, two_step_enabled, locked, deactivated,
            created_at, version)
            VALUES ('u1', 'p1', 'ada@example.com', '', '', '[]', NULL, NULL, '[]', '["user"]',
                'registered', 1, 0, 0, '{OLD_TIME}', 0),
            ('u2', 'p1', 'grace@example.com', '', '', '[]', NULL, NULL, '[]', '["user"]',
                'registered', 1, 0, 0, '{OLD_TIME}', 0);
        {counters}
    """)  # noqa: S608 - the values are this module's own constants
    old.close()


def test_version_3_failure_counts_survive_as_recorded_failures(path: Path, now: datetime) -> None:
    """ST-3, LK-1, DP-5: a count of the previous release is kept as failures, none in flight."""
    _old_database(
        path, 3, "INSERT INTO sign_in_failures (user_id, count) VALUES ('u1', 4), ('u2', 0);"
    )
    store = SQLiteStorage(path)
    try:
        connection = store.connection()
        assert migrations.schema_version(connection) == migrations.LATEST_VERSION
        rows = connection.execute(
            "SELECT key, count, in_flight FROM sign_in_failures ORDER BY key"
        ).fetchall()
        assert [tuple(row) for row in rows] == [("u1", 4, "[]"), ("u2", 0, "[]")]
        with store.unit_of_work() as uow:
            failures = uow.sign_in_failures
            assert (failures.count("u1"), failures.count("u2")) == (4, 0)
            assert _start(failures, "u1", now) == 5
            assert failures.finish("u1", started=now, outcome=AttemptOutcome.WRONG) == 5
            assert _start(failures, "u2", now) == 1
            assert failures.finish("u2", started=now, outcome=AttemptOutcome.RIGHT) == 0
        assert connection.execute("SELECT count(*) FROM secret_fingerprint").fetchone()[0] == 0
    finally:
        store.close()


def test_in_4_version_4_counters_carry_over_and_any_key_is_taken(path: Path, now: datetime) -> None:
    """ST-3, IN-4: migration 5 keeps every count and attempt in flight, and the user reference goes.

    Sign-in counts an email that no account has under its key, which names no user.
    """
    _old_database(
        path,
        4,
        "INSERT INTO sign_in_failures (user_id, count, in_flight) "
        "VALUES ('u1', 3, json_array('2026-01-05T09:00:00.000000+00:00'));",
    )
    store = SQLiteStorage(path)
    key = "email:" + "ab" * 32
    try:
        connection = store.connection()
        assert migrations.schema_version(connection) == migrations.LATEST_VERSION
        assert connection.execute("PRAGMA foreign_key_list(sign_in_failures)").fetchall() == []
        with store.unit_of_work() as uow:
            failures = uow.sign_in_failures
            assert failures.count("u1") == 3
            assert _start(failures, "u1", now) == 5  # 3 failures, the attempt carried over, this
            assert failures.finish("u1", started=now, outcome=AttemptOutcome.WRONG) == 4
            assert _start(failures, key, now) == 1
            assert failures.finish(key, started=now, outcome=AttemptOutcome.WRONG) == 1
        rows = connection.execute("SELECT key, count FROM sign_in_failures ORDER BY key")
        assert [tuple(row) for row in rows] == [(key, 1), ("u1", 4)]
    finally:
        store.close()


def test_in_4_version_5_links_carry_over_and_any_key_is_taken(path: Path) -> None:
    """ST-3, IN-4: migration 6 keeps every link as it was, and the user reference goes.

    "Forgot password" keeps a link for an email that no account has under its key.
    """
    _old_database(
        path,
        5,
        "INSERT INTO link_tokens (id, token_hash, user_id, purpose, created_at, expires_at, "
        "used_at, superseded, version) VALUES ('l1', X'aa', 'u1', 'password_reset', "
        "'2026-01-05T09:00:00.000000+00:00', '2026-01-05T10:00:00.000000+00:00', NULL, 1, 3);",
    )
    store = SQLiteStorage(path)
    key = "email:" + "ab" * 32
    try:
        connection = store.connection()
        assert migrations.schema_version(connection) == migrations.LATEST_VERSION
        assert connection.execute("PRAGMA foreign_key_list(link_tokens)").fetchall() == []
        with store.unit_of_work() as uow:
            (old,) = uow.link_tokens.list_for_user("u1", TokenPurpose.PASSWORD_RESET)
            assert (old.id, old.token_hash, old.superseded, old.version) == ("l1", b"\xaa", True, 3)
            assert old.expires_at == datetime(2026, 1, 5, 10, tzinfo=timezone.utc)
            unsent = attrs.evolve(old, id="l2", token_hash=b"\xbb", user_id=key, version=0)
            uow.link_tokens.add(unsent)
        with store.unit_of_work() as uow:
            assert uow.link_tokens.list_for_user(key, TokenPurpose.PASSWORD_RESET) == [unsent]
        indexes = connection.execute("PRAGMA index_list(link_tokens)").fetchall()
        assert "link_tokens_by_user" in {row["name"] for row in indexes}
    finally:
        store.close()


def test_op_3_cx_2_version_6_audit_log_carries_over_and_new_tables_work(path: Path) -> None:
    """ST-3, OP-3, CX-2, CX-3: migration 7 keeps every audit event, in its order, and adds
    forwarding positions and client failures; the audit log stays append-only.
    """
    _old_database(
        path,
        6,
        "INSERT INTO audit_events (id, at, action, outcome, detail) VALUES "  # noqa: S608 - constants
        f"('e1', '{OLD_TIME}', 'sign_in', 'ok', '[]'), "
        f"('e2', '{OLD_TIME}', 'sign_in', 'wrong_password', '[]');",
    )
    store = SQLiteStorage(path)
    at = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
    try:
        connection = store.connection()
        assert migrations.schema_version(connection) == migrations.LATEST_VERSION
        with store.unit_of_work() as uow:
            fed = list(uow.audit.feed(limit=10))
            assert [(event.id, event.outcome) for _, event in fed] == [
                ("e1", "ok"),
                ("e2", "wrong_password"),
            ]
            uow.audit_sinks.advance("siem", expected=None, position=fed[0][0])
            uow.client_failures.record("client:a", at)
        with store.unit_of_work() as uow:
            assert [
                e.id for _, e in uow.audit.feed(after=uow.audit_sinks.position("siem"), limit=10)
            ] == ["e2"]
            assert uow.client_failures.count_since("client:a", at) == 1
        indexes = connection.execute("PRAGMA index_list(audit_events)").fetchall()
        assert "audit_events_by_time" in {row["name"] for row in indexes}
        with pytest.raises(sqlite3.IntegrityError):
            connection.execute("DELETE FROM audit_events")
    finally:
        store.close()


def test_dp_2_the_fingerprint_survives_reopening_and_binds_every_process(path: Path) -> None:
    """DP-2: a second store on the file, now or after a restart, refuses another secret."""
    first, second = (fingerprint(Secret(bytes([n]) * 32)) for n in (1, 2))
    store = SQLiteStorage(path)
    assert store.persistent is True
    store.remember_secret(first)
    other = SQLiteStorage(path)
    with pytest.raises(SettingsError) as refused:
        other.remember_secret(second)
    assert refused.value.code == "settings.secret_mismatch"
    other.close()
    store.close()
    reopened = SQLiteStorage(path)
    try:
        reopened.remember_secret(first)
        with pytest.raises(SettingsError):
            reopened.remember_secret(second)
        reopened.remember_secret(second, replacing=first)
    finally:
        reopened.close()
    rotated = SQLiteStorage(path)
    try:
        rotated.remember_secret(second)
        with pytest.raises(SettingsError):
            rotated.remember_secret(first)
        rows = rotated.connection().execute("SELECT * FROM secret_fingerprint").fetchall()
        assert [tuple(row) for row in rows] == [(1, second)]
    finally:
        rotated.close()


def test_dp_2_processes_starting_at_once_remember_one_secret(path: Path) -> None:
    """DP-2: stores opened at once, each with its own connection, agree on the first secret."""
    secrets = [fingerprint(Secret(bytes([n]) * 32)) for n in range(1, 9)]
    stores = [SQLiteStorage(path) for _ in secrets]
    barrier = threading.Barrier(len(stores))
    accepted: list[str] = []

    def remember(store: SQLiteStorage, secret: str) -> None:
        barrier.wait()
        try:
            store.remember_secret(secret)
        except SettingsError:
            return
        accepted.append(secret)

    threads = [
        threading.Thread(target=remember, args=pair) for pair in zip(stores, secrets, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert len(accepted) == 1
    again = SQLiteStorage(path)
    try:
        again.remember_secret(accepted[0])
    finally:
        again.close()


def test_remembering_the_secret_inside_a_unit_is_refused(store: SQLiteStorage) -> None:
    """ST-2: the secret is remembered in a transaction of its own, never nested in a unit."""
    secret = fingerprint(Secret(b"k" * 32))
    with store.unit_of_work(), pytest.raises(StorageError) as nested:
        store.remember_secret(secret)
    assert nested.value.code == "storage.nested_unit"
    store.remember_secret(secret)


def test_read_only_store_checks_the_secret_but_cannot_store_one(path: Path) -> None:
    """DP-2, LK-8: a read-only file still refuses a wrong secret; a first one is not written."""
    first, second = (fingerprint(Secret(bytes([n]) * 32)) for n in (1, 2))
    SQLiteStorage(path).close()
    reader = SQLiteStorage(path, read_only=True)
    try:
        with pytest.raises(StorageError) as unwritable:
            reader.remember_secret(first)
        assert unwritable.value.code == "storage.read_only"
    finally:
        reader.close()
    writer = SQLiteStorage(path)
    writer.remember_secret(first)
    writer.close()
    reader = SQLiteStorage(path, read_only=True)
    try:
        reader.remember_secret(first)
        with pytest.raises(SettingsError):
            reader.remember_secret(second)
    finally:
        reader.close()


def test_closed_store_cannot_remember_a_secret(store: SQLiteStorage) -> None:
    store.close()
    with pytest.raises(StorageError) as closed:
        store.remember_secret(fingerprint(Secret(b"k" * 32)))
    assert closed.value.code == "storage.closed"


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

    target = migrations.LATEST_VERSION + 1
    monkeypatch.setattr(migrations, "MIGRATIONS", (*migrations.MIGRATIONS, broken))
    monkeypatch.setattr(migrations, "LATEST_VERSION", target)
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA foreign_keys = ON")
    with pytest.raises(sqlite3.OperationalError):
        migrations.migrate(connection, target=target)
    assert migrations.schema_version(connection) == 0
    assert connection.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0] == 0
    assert connection.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    connection.close()


def test_migration_that_breaks_a_reference_changes_nothing(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ST-3: references go unchecked while steps run, so they are all checked before commit."""

    def orphan(_strict: bool) -> list[str]:
        return [
            (
                "INSERT INTO credentials (user_id, password_hash, set_at, history) "
                "VALUES ('u404', '$argon2id$x', '2026-01-05T09:00:00.000000+00:00', '[]')"
            )
        ]

    latest = migrations.LATEST_VERSION
    monkeypatch.setattr(migrations, "MIGRATIONS", (*migrations.MIGRATIONS, orphan))
    monkeypatch.setattr(migrations, "LATEST_VERSION", latest + 1)
    connection = sqlite3.connect(path, isolation_level=None)
    migrations.migrate(connection, target=latest)
    with pytest.raises(StorageError) as broken:
        migrations.migrate(connection, target=latest + 1)
    assert broken.value.code == "storage.migration_failed"
    assert migrations.schema_version(connection) == latest
    assert connection.execute("SELECT count(*) FROM credentials").fetchone()[0] == 0
    assert connection.execute("PRAGMA foreign_keys").fetchone()[0] == 0
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
            _start(uow.sign_in_failures, "u1", now)
        assert refused.value.code == "storage.read_only"
    finally:
        reader.close()
    with writer.unit_of_work() as uow:
        assert _start(uow.sign_in_failures, "u1", now) == 1
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
            _start(uow.sign_in_failures, "u1", now)
        assert busy.value.code == "storage.busy"
        assert "busy timeout" in busy.value.message
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with store.unit_of_work() as uow:
        assert uow.sign_in_failures.count("u1") == 0
        assert _start(uow.sign_in_failures, "u1", now) == 1
    store.close()


def test_dp_5_right_passwords_unrecorded_under_a_held_lock_lapse(path: Path, now: datetime) -> None:
    """DP-5, LK-8: six attempts counted, then their RIGHT outcome refused by a held write lock.

    The issue's repro at the store: another connection holds ``BEGIN IMMEDIATE``
    past the busy timeout while each attempt finishes. The attempts count
    while in flight (LK-4); once abandoned they are gone and nothing was
    invented: the next attempt is the first.
    """
    store = SQLiteStorage(path, busy_timeout=timedelta(milliseconds=20))
    _add_user(store, now)
    for attempt in range(6):
        with store.unit_of_work() as uow:
            assert _start(uow.sign_in_failures, "u1", now) == attempt + 1
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StorageError) as busy, store.unit_of_work() as uow:
                uow.sign_in_failures.finish("u1", started=now, outcome=AttemptOutcome.RIGHT)
            assert busy.value.code == "storage.busy"
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    later = now + IN_FLIGHT + timedelta(seconds=1)
    with store.unit_of_work() as uow:
        assert uow.sign_in_failures.count("u1") == 0
        assert _start(uow.sign_in_failures, "u1", later) == 1
    store.close()


def test_attempts_in_flight_are_a_json_array_of_utc_start_times(
    store: SQLiteStorage, now: datetime
) -> None:
    """The in-flight column is one row per user: fixed-width UTC text, oldest first."""
    _add_user(store, now)
    paris = timezone(timedelta(hours=1))
    with store.unit_of_work() as uow:
        _start(uow.sign_in_failures, "u1", now)
        _start(uow.sign_in_failures, "u1", (now + timedelta(seconds=1)).astimezone(paris))
        uow.sign_in_failures.finish("u1", started=now, outcome=AttemptOutcome.WRONG)
    row = store.connection().execute("SELECT count, in_flight FROM sign_in_failures").fetchone()
    assert tuple(row) == (1, '["2026-01-05T09:00:01.000000+00:00"]')
    with store.unit_of_work() as uow:
        finished = (now + timedelta(seconds=1)).astimezone(paris)
        uow.sign_in_failures.finish("u1", started=finished, outcome=AttemptOutcome.NOT_COUNTED)
    row = store.connection().execute("SELECT count, in_flight FROM sign_in_failures").fetchone()
    assert tuple(row) == (1, "[]")


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
        uow.sign_in_failures.finish("u1", started=now, outcome=AttemptOutcome.WRONG)
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
    columns = store._schema.practices.columns
    table = Table("practices", _Grown, ("id",), columns, TEXT_COLUMNS, "practice")
    grown = _Grown(id="p1", name="Smile", created_at=now, tags=("a", "b"), rank=3)
    with store.unit_of_work() as uow:
        Rows(uow._tx).insert(table, grown)
        assert Rows(uow._tx).one(table, "id = {p}", "p1") == grown
        plain = uow.practices.get("p1")
    assert plain == Practice(id="p1", name="Smile", created_at=now)


def test_row_that_does_not_fit_the_record_is_a_storage_error(
    store: SQLiteStorage, now: datetime
) -> None:
    @attrs.frozen(kw_only=True)
    class Needy:
        id: str
        must_have: str

    table = Table("practices", Needy, ("id",), frozenset({"id"}), TEXT_COLUMNS, "practice")
    with store.unit_of_work() as uow:
        uow.practices.add(Practice(id="p1", name="Smile", created_at=now))
        with pytest.raises(StorageError) as mismatch:
            Rows(uow._tx).one(table, "id = {p}", "p1")
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
