"""The portal secret: one setting, the same in every process, kept by fingerprint (DP-1, DP-2).

Two portals opened on one SQLite file in one process stand for two worker
processes here; the tests with real processes are in ``test_processes.py``.
"""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path

import pytest

from conftest import BASE_URL, CHEAP_HASHING
from securepractice import (
    FakeClock,
    LinkRules,
    MemoryStorage,
    Messaging,
    Outbox,
    Portal,
    Secret,
    Settings,
    SettingsError,
    SQLiteStorage,
)
from securepractice.dependencies import Dependencies
from securepractice.keys import derive_key, fingerprint
from securepractice.records import DeliveryMethod, Phone, PhoneKind
from securepractice.testing import PASSWORD, World
from securepractice.verification.codes import VerifyOutcome

CELL = "+12025550143"
NEW_CELL = "+12025550178"


def settings_with(secret: Secret[bytes] | None, previous: Secret[bytes] | None = None) -> Settings:
    """Settings as each process builds them for itself, from the secret it is given."""
    return Settings(
        hashing=CHEAP_HASHING,
        links=LinkRules(base_url=BASE_URL),
        secret=secret,
        previous_secret=previous,
    )


def new_secret() -> Secret[bytes]:
    return Secret(secrets.token_bytes(32))


def open_portal(
    path: Path,
    secret: Secret[bytes] | None,
    *,
    previous: Secret[bytes] | None = None,
    outbox: Outbox | None = None,
    clock: FakeClock | None = None,
) -> Portal:
    return Portal.sqlite(
        path,
        messaging=Messaging.using(outbox or Outbox()),
        settings=settings_with(secret, previous),
        clock=clock,
    )


def refusal(
    path: Path, secret: Secret[bytes] | None, *, previous: Secret[bytes] | None = None
) -> SettingsError:
    """The error that opening a portal on ``path`` with ``secret`` raises."""
    with pytest.raises(SettingsError) as caught:
        open_portal(path, secret, previous=previous)
    return caught.value


def start_phone_change(portal: Portal, token: str) -> None:
    portal.accounts.start_phone_change(
        token,
        current_password=PASSWORD,
        kind=PhoneKind.CELL,
        number=NEW_CELL,
        option_method=DeliveryMethod.SMS,
    )


def test_dp_1_a_code_sent_through_one_portal_verifies_through_another(tmp_path: Path) -> None:
    """DP-1: a code sent by one portal on the file is accepted by another with the same secret.

    Each portal builds its own `Settings` from the secret, as each worker
    process does; the code key is derived from the secret, not drawn at
    random per `Settings`.
    """
    path = tmp_path / "portal.db"
    secret = new_secret()
    outbox = Outbox()
    clock = FakeClock()
    with (
        open_portal(path, secret, outbox=outbox, clock=clock) as sender,
        open_portal(path, Secret(secret.reveal()), outbox=outbox, clock=clock) as checker,
    ):
        world = World(sender.deps)
        phones = (Phone(number=CELL, kind=PhoneKind.CELL),)
        member = world.member("dr.smith@example.com", practice=world.practice(), phones=phones)
        start_phone_change(sender, member.token)
        code = outbox.last_code(NEW_CELL)
        result = checker.accounts.verify_phone_code(member.token, code=code)
        assert result.outcome is VerifyOutcome.VERIFIED
        with checker.deps.unit() as uow:
            stored = uow.users.get(member.id)
        assert stored is not None
        assert Phone(number=NEW_CELL, kind=PhoneKind.CELL) in stored.phones


def test_dp_2_a_file_store_without_a_secret_is_refused_at_construction(tmp_path: Path) -> None:
    """DP-2: Portal.sqlite, Portal(...) and a hand-built Dependencies all refuse; memory is fine."""
    path = tmp_path / "portal.db"
    error = refusal(path, None)
    assert (error.field, error.code) == ("secret", "settings.no_secret")
    for words in ("Settings(secret=Secret(", "32", "the same in every process"):
        assert words in str(error)
    store = SQLiteStorage(path)
    try:
        with pytest.raises(SettingsError) as by_hand:
            Dependencies(storage=store, messaging=Messaging.using(Outbox()))
        assert by_hand.value.code == "settings.no_secret"
        with pytest.raises(SettingsError) as by_portal:
            Portal(storage=store, messaging=Messaging.using(Outbox()))
        assert by_portal.value.code == "settings.no_secret"
    finally:
        store.close()
    # An in-memory store makes its own key: its codes live and die with the process.
    Dependencies(storage=MemoryStorage(), messaging=Messaging.using(Outbox()))
    Portal.in_memory(messaging=Messaging.using(Outbox())).close()


def test_dp_2_another_secret_is_a_clear_error_when_the_portal_starts(tmp_path: Path) -> None:
    """DP-2: a file first used with one secret refuses another, at start, not at a wrong code."""
    path = tmp_path / "portal.db"
    secret = new_secret()
    open_portal(path, secret).close()
    error = refusal(path, new_secret())
    assert (error.field, error.code) == ("secret", "settings.secret_mismatch")
    assert "previous_secret" in str(error)
    with open_portal(path, Secret(secret.reveal())) as again:  # the first one still works
        again.accounts.create_practice(name="Smile Dental")


def test_dp_2_rotation_moves_the_store_to_the_new_secret(tmp_path: Path) -> None:
    """DP-2: the new secret with the old as previous_secret rotates; then the old alone is refused.

    Decided: codes sent under the old secret are not accepted after the
    rotation (the user asks for a new code); links and sessions, stored as
    plain hashes of their tokens, keep working.
    """
    path = tmp_path / "portal.db"
    old, new = new_secret(), new_secret()
    outbox = Outbox()
    clock = FakeClock()
    with open_portal(path, old, outbox=outbox, clock=clock) as before:
        world = World(before.deps)
        phones = (Phone(number=CELL, kind=PhoneKind.CELL),)
        member = world.member("dr.smith@example.com", practice=world.practice(), phones=phones)
        start_phone_change(before, member.token)
        code = outbox.last_code(NEW_CELL)
    wrong_previous = refusal(path, new, previous=new_secret())
    assert wrong_previous.code == "settings.secret_mismatch"
    with open_portal(path, new, previous=old, outbox=outbox, clock=clock) as rotated:
        assert rotated.accounts.touch_session(member.token).user_id == member.id
        result = rotated.accounts.verify_phone_code(member.token, code=code)
        assert result.outcome is VerifyOutcome.WRONG_CODE
    with open_portal(path, new, outbox=outbox, clock=clock) as after:
        after.accounts.resend_phone_code(member.token)
        fresh = outbox.last_code(NEW_CELL)
        assert after.accounts.verify_phone_code(member.token, code=fresh).verified
    error = refusal(path, old)
    assert error.code == "settings.secret_mismatch"


def test_dp_2_the_store_keeps_a_fingerprint_and_never_the_secret(tmp_path: Path) -> None:
    """DP-2: every table of the file holds the fingerprint, and no byte run of the secret or key."""
    path = tmp_path / "portal.db"
    secret = new_secret()
    outbox = Outbox()
    with open_portal(path, secret, outbox=outbox) as portal:
        world = World(portal.deps)
        phones = (Phone(number=CELL, kind=PhoneKind.CELL),)
        member = world.member("dr.smith@example.com", practice=world.practice(), phones=phones)
        start_phone_change(portal, member.token)
    code_key = derive_key(secret, "verification-code")
    forbidden = [
        form
        for key in (secret.reveal(), code_key.reveal())
        for form in (key, key.hex().encode(), key.hex().upper().encode())
    ]
    values: list[bytes] = []
    with sqlite3.connect(path) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master")]
        for table in tables:
            if connection.execute(
                "SELECT type FROM sqlite_master WHERE name = ?", (table,)
            ).fetchone() != ("table",):
                continue
            for row in connection.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 - own names
                values += [v if isinstance(v, bytes) else str(v).encode() for v in row]
    connection.close()
    assert fingerprint(secret).encode() in values
    for value in values:
        for form in forbidden:
            assert form not in value
    for file in tmp_path.iterdir():  # the database, and any journal left beside it
        content = file.read_bytes()
        for form in forbidden:
            assert form not in content, file.name


def test_the_secret_is_in_no_repr_and_no_error_message(tmp_path: Path) -> None:
    """DP-2, AU-2: neither the secret nor the previous one shows in a repr or an error."""
    secret, previous = new_secret(), new_secret()
    settings = settings_with(secret, previous)
    path = tmp_path / "portal.db"
    texts = [repr(settings), str(settings), repr(secret)]
    with pytest.raises(SettingsError) as short:
        Settings(secret=Secret(b"too short, and a secret"))
    texts += [str(short.value), repr(short.value)]
    with open_portal(path, secret) as portal:
        texts.append(repr(portal.deps))
    for error in (
        refusal(path, new_secret()),
        refusal(path, new_secret(), previous=previous),
        refusal(tmp_path / "other.db", None),
    ):
        texts += [str(error), repr(error)]
    assert "too short" not in "".join(texts)
    for key in (secret, previous, settings.verification.code_key):
        raw = key.reveal()
        for form in (repr(raw), raw.hex(), raw.hex().upper(), fingerprint(key)):
            for text in texts:
                assert form not in text
