"""The storage contract of `securepractice.testing.contract` on a real PostgreSQL server (DP-4).

The server is started by the tests (tests/pgserver.py); each test gets a new
database. Without PostgreSQL the tests skip locally and fail in CI.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import pgserver
from securepractice import Messaging, Outbox, Portal, Settings
from securepractice.errors import InvalidInput, SettingsError, StorageError
from securepractice.forwarding import AuditForwarder
from securepractice.records import (
    AttemptOutcome,
    AuditEvent,
    LinkToken,
    Practice,
    TokenPurpose,
    User,
    revised,
)
from securepractice.secret import Secret
from securepractice.storage.ports import Storage
from securepractice.testing.contract import StorageContract

try:
    import psycopg

    from securepractice.storage import postgres_schema
    from securepractice.storage.postgres import PostgresStorage
except ImportError as missing_extra:  # pragma: no cover - CI and nox install the extra
    pgserver.missing(f"the postgres extra is not installed ({missing_extra})")


class TestPostgresStorage(StorageContract):
    """DP-4: the PostgreSQL store keeps the contract, under READ COMMITTED."""

    @pytest.fixture
    def storage(self, postgres_dsn: str) -> Iterator[Storage]:
        store = PostgresStorage(postgres_dsn)
        yield store
        store.close()


# --- what only the PostgreSQL store has ------------------------------------------------------

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


def _user(store: PostgresStorage) -> User:
    user = User(id="u1", practice_id="p1", email="ada@example.com", created_at=NOW)
    with store.unit_of_work() as uow:
        uow.practices.add(Practice(id="p1", name="Smile Dental", created_at=NOW))
        uow.users.add(user)
    return user


def _applied(dsn: str) -> list[int]:
    with psycopg.connect(dsn) as connection:
        rows = connection.execute("SELECT version FROM schema_version ORDER BY version")
        return [int(row[0]) for row in rows]


@pytest.fixture
def store(postgres_dsn: str) -> Iterator[PostgresStorage]:
    opened = PostgresStorage(postgres_dsn, lock_timeout=timedelta(milliseconds=200))
    yield opened
    opened.close()


def test_st_3_a_new_database_is_migrated_and_reopening_applies_nothing(
    postgres_dsn: str,
) -> None:
    """ST-3: opening migrates forward once; what was stored survives a reopening."""
    first = PostgresStorage(postgres_dsn)
    user = _user(first)
    first.close()
    again = PostgresStorage(postgres_dsn)
    with again.unit_of_work() as uow:
        assert uow.users.get(user.id) == user
    again.close()
    assert _applied(postgres_dsn) == list(range(1, postgres_schema.LATEST_VERSION + 1))


def test_st_3_four_threads_opening_a_new_database_at_once_migrate_it_exactly_once(
    postgres_dsn: str,
) -> None:
    """ST-3, DP-4: servers starting together queue on the advisory lock; each step runs once."""
    barrier = threading.Barrier(4, timeout=60)
    results: list[str] = []

    def open_one() -> None:
        results.append(pgserver.open_when_released(postgres_dsn, barrier))

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results == ["ok"] * 4
    assert _applied(postgres_dsn) == list(range(1, postgres_schema.LATEST_VERSION + 1))


def test_st_3_four_processes_opening_a_new_database_at_once_migrate_it_exactly_once(
    postgres_dsn: str,
) -> None:
    """ST-3, DP-4: the same across processes, as several servers would start."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(4, timeout=60)
        with context.Pool(4) as workers:
            pending = workers.starmap_async(
                pgserver.open_when_released, [(postgres_dsn, barrier)] * 4
            )
            results = pending.get(timeout=120)
    assert results == ["ok"] * 4
    assert _applied(postgres_dsn) == list(range(1, postgres_schema.LATEST_VERSION + 1))


def test_in_4_version_1_counters_carry_over_and_any_key_is_taken(postgres_dsn: str) -> None:
    """ST-3, IN-4: step 2 keeps every count and attempt in flight; the user reference goes.

    Sign-in counts an email that no account has under its key, which names no user.
    """
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        assert postgres_schema.migrate(connection, target=1) == 1
        connection.execute(
            "INSERT INTO practices (id, version, data) VALUES ('p1', 0, '{}');"
            "INSERT INTO users (id, practice_id, email, version, data) "
            "VALUES ('u1', 'p1', 'ada@example.com', 0, '{}');"
            "INSERT INTO sign_in_failures (user_id, failures, in_flight) "
            "VALUES ('u1', 3, ARRAY['2026-01-05T09:00:00+00:00'::timestamptz])"
        )
    store = PostgresStorage(postgres_dsn)
    key = "email:" + "ab" * 32
    try:
        with store.unit_of_work() as uow:
            failures = uow.sign_in_failures
            assert failures.count("u1") == 3
            assert failures.start("u1", now=NOW, abandoned_before=NOW) == 5
            assert failures.finish("u1", started=NOW, outcome=AttemptOutcome.WRONG) == 4
            assert failures.start(key, now=NOW, abandoned_before=NOW) == 1
            assert failures.finish(key, started=NOW, outcome=AttemptOutcome.WRONG) == 1
    finally:
        store.close()
    assert _applied(postgres_dsn) == list(range(1, postgres_schema.LATEST_VERSION + 1))
    with psycopg.connect(postgres_dsn) as connection:
        references = connection.execute(
            "SELECT count(*) FROM pg_constraint "
            "WHERE conrelid = 'sign_in_failures'::regclass AND contype = 'f'"
        ).fetchone()
        rows = connection.execute("SELECT key, failures FROM sign_in_failures ORDER BY key")
        assert [tuple(row) for row in rows] == [(key, 1), ("u1", 4)]
    assert references == (0,)


def test_in_4_version_2_links_carry_over_and_any_key_is_taken(postgres_dsn: str) -> None:
    """ST-3, IN-4: step 3 keeps every link as it was; the user reference goes.

    "Forgot password" keeps a link for an email that no account has under its key.
    """
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        assert postgres_schema.migrate(connection, target=2) == 2
    store = PostgresStorage(postgres_dsn)
    key = "email:" + "ab" * 32
    link = LinkToken(
        id="l1",
        token_hash=b"\xaa",
        user_id=key,
        purpose=TokenPurpose.PASSWORD_RESET,
        created_at=NOW,
        expires_at=NOW + timedelta(hours=1),
    )
    try:
        with store.unit_of_work() as uow:
            uow.link_tokens.add(link)
        with store.unit_of_work() as uow:
            assert uow.link_tokens.list_for_user(key, TokenPurpose.PASSWORD_RESET) == [link]
    finally:
        store.close()
    assert _applied(postgres_dsn) == list(range(1, postgres_schema.LATEST_VERSION + 1))
    with psycopg.connect(postgres_dsn) as connection:
        references = connection.execute(
            "SELECT count(*) FROM pg_constraint "
            "WHERE conrelid = 'link_tokens'::regclass AND contype = 'f'"
        ).fetchone()
    assert references == (0,)


def test_cx_2_version_3_audit_events_carry_over_in_order_and_feed(postgres_dsn: str) -> None:
    """ST-3, CX-2: step 4 gives stored events the step's transaction id; they feed in seq order."""
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        assert postgres_schema.migrate(connection, target=3) == 3
        for n in (1, 2, 3):
            connection.execute(
                "INSERT INTO audit_events (id, at, data) VALUES (%s, %s, %s)",
                (f"e{n}", NOW, '{"action": "sign_in", "outcome": "ok", "detail": []}'),
            )
    store = PostgresStorage(postgres_dsn)
    try:
        with store.unit_of_work() as uow:
            uow.audit.append(AuditEvent(id="e4", at=NOW, action="sign_in", outcome="ok"))
        with store.unit_of_work() as uow:
            assert [event.id for _, event in uow.audit.feed(limit=10)] == ["e1", "e2", "e3", "e4"]
    finally:
        store.close()
    assert _applied(postgres_dsn) == list(range(1, postgres_schema.LATEST_VERSION + 1))


class _Kept:
    """A sink that keeps the ids it is given."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def deliver(self, events: Sequence[AuditEvent]) -> None:
        self.ids.extend(event.id for event in events)


def test_cx_2_an_event_of_a_unit_still_running_is_waited_for_never_skipped(
    store: PostgresStorage,
) -> None:
    """CX-2: a unit that took a lower seq and commits last is forwarded, not passed over.

    Unit A appends first (the lower seq) and stays open; unit B appends and
    commits. Forwarding by seq alone would deliver B, move past A's seq and
    never deliver A. The forwarder waits for A instead, then delivers both.
    """
    appended, release = threading.Event(), threading.Event()

    def slow_unit() -> None:
        with store.unit_of_work() as uow:
            uow.audit.append(AuditEvent(id="a", at=NOW, action="sign_in", outcome="ok"))
            appended.set()
            release.wait(timeout=30)

    slow = threading.Thread(target=slow_unit)
    slow.start()
    assert appended.wait(timeout=30)
    with store.unit_of_work() as uow:
        uow.audit.append(AuditEvent(id="b", at=NOW, action="sign_in", outcome="ok"))
    sink = _Kept()
    forwarder = AuditForwarder(store, sink, name="siem")
    try:
        assert forwarder.forward_pending() == 0
        with store.unit_of_work() as uow:
            assert uow.audit_sinks.position("siem") is None
            assert [event.id for event in uow.audit.events()] == ["b"]
    finally:
        release.set()
        slow.join(timeout=30)
    assert forwarder.forward_pending() == 2
    assert sink.ids == ["a", "b"]
    assert forwarder.forward_pending() == 0


def test_st_3_a_newer_schema_is_refused(postgres_dsn: str) -> None:
    """ST-3: a database migrated by a newer securepractice is not opened by this one."""
    PostgresStorage(postgres_dsn).close()
    with psycopg.connect(postgres_dsn) as connection:
        connection.execute("INSERT INTO schema_version (version) VALUES (99)")
    with pytest.raises(StorageError) as newer:
        PostgresStorage(postgres_dsn)
    assert newer.value.code == "storage.schema_too_new"
    assert "99" in newer.value.message


def test_dp_4_every_unit_runs_read_committed_whatever_the_database_default(
    postgres_dsn: str,
) -> None:
    """DP-4: the isolation level the store documents is the one its units run under."""
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        name = connection.info.dbname
        connection.execute(
            f"ALTER DATABASE {name} SET default_transaction_isolation = 'serializable'"
        )
    store = PostgresStorage(postgres_dsn)
    with store.unit_of_work() as uow:
        connection = uow._tx.active()
        level = connection.execute("SHOW transaction_isolation").fetchone()
        zone = connection.execute("SHOW TimeZone").fetchone()
    store.close()
    assert level == ("read committed",)
    assert zone == ("UTC",)


def test_dp_4_a_row_held_past_the_lock_timeout_is_busy_and_keeps_nothing(
    store: PostgresStorage, postgres_dsn: str
) -> None:
    """DP-4, ST-2: another connection holding the row makes a save fail as busy, unwritten."""
    user = _user(store)
    with psycopg.connect(postgres_dsn) as holder:
        holder.execute("SELECT 1 FROM users WHERE id = 'u1' FOR UPDATE")
        with pytest.raises(StorageError) as busy, store.unit_of_work() as uow:  # noqa: PT012
            uow.sign_in_failures.start(user.id, now=NOW, abandoned_before=NOW)
            uow.users.save(revised(user, locked=True), expected_version=user.version)
        holder.rollback()
    assert busy.value.code == "storage.busy"
    assert isinstance(busy.value.__cause__, psycopg.errors.LockNotAvailable)
    with store.unit_of_work() as uow:
        assert uow.users.get(user.id) == user
        assert uow.sign_in_failures.count(user.id) == 0
        assert uow.sign_in_failures.start(user.id, now=NOW, abandoned_before=NOW) == 1


def test_st_2_a_statement_error_the_caller_swallowed_still_fails_the_commit(
    store: PostgresStorage,
) -> None:
    """ST-2: a unit whose transaction failed never reports success; nothing of it is kept."""
    with pytest.raises(StorageError) as failed, store.unit_of_work() as uow:  # noqa: PT012
        uow.practices.add(Practice(id="p9", name="Kept?", created_at=NOW))
        with pytest.raises(StorageError) as refused:
            uow._tx.run("SELECT 1 / 0")
    assert refused.value.code == "storage.value_refused"
    assert failed.value.code == "storage.unavailable"
    with store.unit_of_work() as uow:
        assert uow.practices.get("p9") is None


def test_st_1_a_value_postgresql_cannot_keep_is_refused_clearly(store: PostgresStorage) -> None:
    """ST-1: a NUL in a key column is refused with a code, and the unit goes on."""
    _user(store)
    with store.unit_of_work() as uow:
        with pytest.raises(StorageError) as refused:
            uow.practices.add(Practice(id="p\x00", name="Nul", created_at=NOW))
        uow.practices.add(Practice(id="p2", name="N\x00l", created_at=NOW))
    assert refused.value.code == "storage.value_refused"
    assert "\x00" not in str(refused.value)
    with store.unit_of_work() as uow:
        kept = uow.practices.get("p2")
    assert kept is not None
    assert kept.name == "N\x00l"


def test_au_1_the_database_itself_refuses_to_change_the_audit_log(
    store: PostgresStorage, postgres_dsn: str
) -> None:
    """AU-1: even raw SQL cannot update, delete or truncate an audit event."""
    with store.unit_of_work() as uow:
        uow.audit.append(AuditEvent(id="e1", at=NOW, action="sign_in", outcome="ok"))
    for statement in (
        "UPDATE audit_events SET id = 'e2'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ):
        with (
            psycopg.connect(postgres_dsn) as connection,
            pytest.raises(psycopg.errors.RestrictViolation),
        ):
            connection.execute(statement)
    with store.unit_of_work() as uow:
        assert [event.id for event in uow.audit.events()] == ["e1"]


def test_rg_4_listing_a_users_links_waits_for_a_unit_that_may_add_one(
    store: PostgresStorage, postgres_dsn: str
) -> None:
    """RG-4, DP-4: "list, supersede, add" of two units at once runs one after the other."""
    user = _user(store)
    first = LinkToken(id="l1", token_hash=b"1" * 32, user_id=user.id,
                      purpose=TokenPurpose.INVITATION, created_at=NOW,
                      expires_at=NOW + timedelta(days=14))  # fmt: skip
    seen: list[list[str]] = []
    with store.unit_of_work() as uow:
        assert list(uow.link_tokens.list_for_user(user.id, TokenPurpose.INVITATION)) == []

        def second_unit() -> None:
            with store.unit_of_work() as other:
                listed = other.link_tokens.list_for_user(user.id, TokenPurpose.INVITATION)
                seen.append([token.id for token in listed])

        waiting = threading.Thread(target=second_unit)
        waiting.start()
        with psycopg.connect(postgres_dsn, autocommit=True) as watcher:
            for _ in range(1000):  # bounded: until the second unit waits for the lock
                row = watcher.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                ).fetchone()
                if row == (1,):
                    break
                waiting.join(timeout=0.01)
            assert row == (1,)
        uow.link_tokens.add(first)
    waiting.join(timeout=30)
    assert seen == [["l1"]]


def test_dp_4_options_are_checked_and_the_password_never_shown(postgres_dsn: str) -> None:
    """DP-4: a pool that cannot work is refused; the repr names the database, not the password."""
    for options in ({"min_size": 3, "max_size": 2}, {"max_size": 0}):
        with pytest.raises(InvalidInput) as bad_pool:
            PostgresStorage(postgres_dsn, **options)  # type: ignore[arg-type]
        assert bad_pool.value.code == "storage.bad_option"
    with pytest.raises(InvalidInput) as bad_wait:
        PostgresStorage(postgres_dsn, lock_timeout=timedelta(0))
    assert bad_wait.value.code == "storage.bad_option"
    store = PostgresStorage(f"{postgres_dsn} password=hunter2-secret")
    shown = repr(store)
    store.close()
    assert "hunter2" not in shown
    assert "dbname=" in shown
    assert store.persistent is True


def test_dp_4_an_unreachable_server_is_unavailable_at_construction(tmp_path: Path) -> None:
    """DP-4: a server that cannot be reached is a clear error at once, from the driver's."""
    with pytest.raises(StorageError) as unreachable:
        PostgresStorage(f"host={tmp_path} port=1 dbname=nothing connect_timeout=2")
    assert unreachable.value.code == "storage.unavailable"
    assert isinstance(unreachable.value.__cause__, psycopg.OperationalError)


def test_dp_4_a_unit_with_no_free_connection_is_unavailable_after_the_pool_timeout(
    postgres_dsn: str,
) -> None:
    """DP-4: a unit that cannot get a connection fails clearly instead of waiting for ever."""
    store = PostgresStorage(postgres_dsn, max_size=1, pool_timeout=timedelta(milliseconds=100))
    outcome: list[str] = []
    with store.unit_of_work():

        def starved() -> None:
            try:
                with store.unit_of_work():
                    outcome.append("ok")
            except StorageError as error:
                outcome.append(error.code)

        thread = threading.Thread(target=starved)
        thread.start()
        thread.join(timeout=30)
    store.close()
    assert outcome == ["storage.unavailable"]


def test_dp_4_portal_postgres_opens_in_one_line(postgres_dsn: str) -> None:
    """DP-4, DP-2: ``Portal.postgres`` builds a portal on the server, with the secret."""
    settings = Settings(secret=Secret(bytes(range(32))))
    with Portal.postgres(
        postgres_dsn, messaging=Messaging.using(Outbox()), settings=settings
    ) as portal:
        assert isinstance(portal.deps.storage, PostgresStorage)
    with pytest.raises(SettingsError) as other:
        Portal.postgres(postgres_dsn, messaging=Messaging.using(Outbox()),
                        settings=Settings(secret=Secret(bytes(32))))  # fmt: skip
    assert other.value.code == "settings.secret_mismatch"


@pytest.mark.parametrize("ci", ["", "true"])
def test_a_missing_server_skips_locally_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    """Locally a test without PostgreSQL may skip; in CI it must fail, never pass unseen."""
    monkeypatch.setenv("CI", ci)
    expected = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(expected):
        pgserver.missing("no binaries")
