"""Sign-in, lockout and sessions, on both stores (LK-1..LK-8, PW-5, PW-7, AU-1, AU-2)."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import argon2
import attrs
import pytest

from securepractice import (
    CorruptHash,
    FakeClock,
    HashParameters,
    InvalidState,
    InvalidToken,
    PasswordHasher,
    SignInRules,
    SQLiteStorage,
    StorageError,
    User,
)
from securepractice.accounts.signin import (
    INVALID_CREDENTIALS_MESSAGE,
    SignInOutcome,
    SignInReason,
    signed_in,
)
from securepractice.dependencies import Dependencies
from securepractice.policy.sessions import session_token_hash, touched
from securepractice.portal import Accounts
from securepractice.records import Session, revised
from securepractice.storage.ports import Storage
from securepractice.testing import PASSWORD, FaultyStorage, World

EMAIL = "dr.smith@example.com"


def with_rules(context: Dependencies, sign_in: SignInRules) -> Dependencies:
    """``context`` under other sign-in rules."""
    return attrs.evolve(context, settings=attrs.evolve(context.settings, sign_in=sign_in))


@pytest.fixture
def accounts(context: Dependencies) -> Accounts:
    return Accounts(context)


def add_user(
    context: Dependencies,
    email: str = EMAIL,
    *,
    password: str | None = PASSWORD,
    locked: bool = False,
    deactivated: bool = False,
) -> User:
    """A user of a new practice, registered with ``password`` set now unless it is None."""
    world = World(context)
    return world.user(
        email, practice=world.practice(), password=password, locked=locked, deactivated=deactivated
    )


def failures(context: Dependencies, user: User) -> int:
    with context.storage.unit_of_work() as uow:
        return uow.sign_in_failures.count(user.id)


def stored_user(context: Dependencies, user: User) -> User:
    with context.storage.unit_of_work() as uow:
        found = uow.users.get(user.id)
    assert found is not None
    return found


def audit_actions(context: Dependencies, user: User | None = None) -> list[tuple[str, str]]:
    with context.storage.unit_of_work() as uow:
        events = uow.audit.events(subject_id=user.id if user else None)
    return [(e.action, e.outcome) for e in events]


# --- sign-in and LK-3 ------------------------------------------------------------------


def test_right_password_signs_in_with_a_session(context: Dependencies, accounts: Accounts) -> None:
    """LK-3: a user signs in with the right password, in any case of the email."""
    user = add_user(context)
    result = accounts.sign_in(email="  Dr.Smith@EXAMPLE.com ", password=PASSWORD)
    assert result.ok
    assert (result.outcome, result.reason, result.user_id) == (
        SignInOutcome.OK,
        SignInReason.OK,
        user.id,
    )
    assert result.session_token is not None
    status = accounts.touch_session(result.session_token)
    assert status.user_id == user.id
    assert not status.must_change_password
    assert ("sign_in", "ok") in audit_actions(context, user)


def test_lk_3_success_clears_the_failure_count(context: Dependencies, accounts: Accounts) -> None:
    """LK-3: with 4 failures on record, the right password still signs in and clears them."""
    user = add_user(context)
    for _ in range(4):
        assert not accounts.sign_in(email=EMAIL, password="Wrong-2026").ok
    assert failures(context, user) == 4
    assert accounts.sign_in(email=EMAIL, password=PASSWORD).ok
    assert failures(context, user) == 0
    for _ in range(4):
        accounts.sign_in(email=EMAIL, password="Wrong-2026")
    assert not stored_user(context, user).locked  # the count started again from zero


# --- LK-1, LK-2 --------------------------------------------------------------------------


def test_lk_1_five_wrong_passwords_lock_and_the_right_one_is_refused(
    context: Dependencies, accounts: Accounts
) -> None:
    """LK-1: the fifth consecutive failure locks; then even the right password is refused."""
    user = add_user(context)
    reasons = [accounts.sign_in(email=EMAIL, password=f"Wrong-{i}!").reason for i in range(5)]
    assert reasons == [SignInReason.WRONG_PASSWORD] * 5
    assert stored_user(context, user).locked
    refused = accounts.sign_in(email=EMAIL, password=PASSWORD)
    assert refused.outcome is SignInOutcome.INVALID_CREDENTIALS
    assert refused.reason is SignInReason.LOCKED
    assert refused.session_token is None
    assert ("account.locked", "ok") in audit_actions(context, user)


def test_lk_1_lockout_threshold_is_a_setting(context: Dependencies) -> None:
    """LK-1: with a threshold of 3, the third failure locks."""
    context = with_rules(context, SignInRules(max_failed_sign_ins=3))
    user = add_user(context)
    accounts = Accounts(context)
    for _ in range(2):
        accounts.sign_in(email=EMAIL, password="Wrong-2026")
    assert not stored_user(context, user).locked
    accounts.sign_in(email=EMAIL, password="Wrong-2026")
    assert stored_user(context, user).locked


def test_lk_6_locking_revokes_every_session(context: Dependencies, accounts: Accounts) -> None:
    """LK-6: a lock revokes every session of the user."""
    add_user(context)
    token = accounts.sign_in(email=EMAIL, password=PASSWORD).session_token
    assert token is not None
    for _ in range(5):
        accounts.sign_in(email=EMAIL, password="Wrong-2026")
    with pytest.raises(InvalidToken):
        accounts.touch_session(token)


def test_lk_2_unlocking_clears_the_failure_count(context: Dependencies, accounts: Accounts) -> None:
    """LK-2: after an unlock (here by a reset's effect on the records) sign-in works again."""
    user = add_user(context)
    for _ in range(5):
        accounts.sign_in(email=EMAIL, password="Wrong-2026")
    locked = stored_user(context, user)
    with context.storage.unit_of_work() as uow:
        uow.users.save(revised(locked, locked=False), expected_version=locked.version)
        uow.sign_in_failures.reset(user.id)
    assert accounts.sign_in(email=EMAIL, password=PASSWORD).ok


# --- LK-4 --------------------------------------------------------------------------------


def test_lk_4_no_attempt_after_the_threshold_is_checked(
    context: Dependencies, accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LK-4: attempts past the fifth verify only the dummy hash, never the user's."""
    add_user(context)
    real_hash = _stored_hash(context)
    checked: list[str] = []
    original = argon2.PasswordHasher.verify

    def spy(self: argon2.PasswordHasher, stored: str, password: bytes) -> bool:
        checked.append(stored)
        return original(self, stored, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", spy)
    for _ in range(8):
        accounts.sign_in(email=EMAIL, password="Wrong-2026")
    assert len(checked) == 8  # every attempt costs one verification (LK-5)
    assert checked.count(real_hash) == 5


def _stored_hash(context: Dependencies) -> str:
    with context.storage.unit_of_work() as uow:
        user = uow.users.get_by_email(EMAIL)
        assert user is not None
        credential = uow.credentials.get(user.id)
    assert credential is not None
    return credential.password_hash


def test_lk_4_simultaneous_wrong_attempts_are_counted_exactly(
    tmp_path: Path, context: Dependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LK-4: 100 simultaneous wrong sign-ins on SQLite count 100; at most 5 check the hash."""
    store = SQLiteStorage(tmp_path / "threads.db")
    context = attrs.evolve(context, storage=store)
    user = add_user(context)
    real_hash = _stored_hash(context)
    accounts = Accounts(context)
    checked: list[str] = []
    lock = threading.Lock()
    original = argon2.PasswordHasher.verify

    def spy(self: argon2.PasswordHasher, stored: str, password: bytes) -> bool:
        with lock:
            checked.append(stored)
        return original(self, stored, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", spy)
    start = threading.Barrier(100, timeout=30)

    def attempt() -> None:
        start.wait()
        accounts.sign_in(email=EMAIL, password="Wrong-2026")

    threads = [threading.Thread(target=attempt) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert failures(context, user) == 100
    assert checked.count(real_hash) <= 5
    assert len(checked) == 100
    assert stored_user(context, user).locked
    store.close()


# --- LK-5 --------------------------------------------------------------------------------


def test_lk_5_unknown_wrong_and_locked_look_the_same(
    context: Dependencies, accounts: Accounts
) -> None:
    """LK-5: one public outcome and message for all three; the true reason is separate.

    A refusal names no user either: the result of a known email tells no
    more than that of an unknown one.
    """
    add_user(context)
    add_user(context, "locked@example.com", locked=True)
    add_user(context, "invited@example.com", password=None)
    add_user(context, "gone@example.com", deactivated=True)
    results = {
        "unknown": accounts.sign_in(email="nobody@example.com", password=PASSWORD),
        "malformed": accounts.sign_in(email="not an email", password=PASSWORD),
        "wrong": accounts.sign_in(email=EMAIL, password="Wrong-2026"),
        "locked": accounts.sign_in(email="locked@example.com", password=PASSWORD),
        "invited": accounts.sign_in(email="invited@example.com", password=PASSWORD),
        "deactivated": accounts.sign_in(email="gone@example.com", password=PASSWORD),
    }
    for result in results.values():
        assert result.outcome is SignInOutcome.INVALID_CREDENTIALS
        assert result.message == INVALID_CREDENTIALS_MESSAGE
        assert result.session_token is None
        assert result.user_id is None
    for word in ("email", "password", "locked", "reset"):
        assert word in INVALID_CREDENTIALS_MESSAGE
    assert results["unknown"].reason is SignInReason.UNKNOWN_USER
    assert results["malformed"].reason is SignInReason.UNKNOWN_USER
    assert results["wrong"].reason is SignInReason.WRONG_PASSWORD
    assert results["locked"].reason is SignInReason.LOCKED
    assert results["invited"].reason is SignInReason.NOT_REGISTERED
    assert results["deactivated"].reason is SignInReason.DEACTIVATED
    outcomes = {outcome for _, outcome in audit_actions(context)}
    assert {"unknown_user", "wrong_password", "locked", "not_registered"} <= outcomes


def test_lk_5_every_path_spends_one_verification_at_the_same_parameters(
    context: Dependencies, accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LK-5: unknown, wrong and locked each verify exactly one hash with the same parameters."""
    add_user(context)
    add_user(context, "locked@example.com", locked=True)
    seen: list[str] = []
    original = argon2.PasswordHasher.verify

    def spy(self: argon2.PasswordHasher, stored: str, password: bytes) -> bool:
        seen.append(stored)
        return original(self, stored, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", spy)
    for email in ("nobody@example.com", EMAIL, "locked@example.com"):
        seen.clear()
        accounts.sign_in(email=email, password="Wrong-2026")
        assert len(seen) == 1, email
        assert argon2.extract_parameters(seen[0]) == argon2.extract_parameters(
            _stored_hash(context)
        )


# --- LK-6, LK-7 ------------------------------------------------------------------------


def test_lk_6_idle_29_minutes_stays_signed_in_31_minutes_signs_out(
    context: Dependencies, accounts: Accounts, clock: FakeClock
) -> None:
    """LK-6: journey (e): 29 idle minutes are fine, 31 end the session."""
    add_user(context)
    token = accounts.sign_in(email=EMAIL, password=PASSWORD).session_token
    assert token is not None
    clock.advance(minutes=29)
    accounts.touch_session(token)
    clock.advance(minutes=29)
    accounts.touch_session(token)
    clock.advance(minutes=31)
    with pytest.raises(InvalidToken) as caught:
        accounts.touch_session(token)
    assert caught.value.code == "session.invalid"
    clock.advance(minutes=1)
    with pytest.raises(InvalidToken):  # an ended session stays ended
        accounts.touch_session(token)


def test_lk_6_background_requests_do_not_extend_the_session(
    context: Dependencies, accounts: Accounts, clock: FakeClock
) -> None:
    """LK-6: polling every 5 minutes does not keep an idle user signed in."""
    add_user(context)
    token = accounts.sign_in(email=EMAIL, password=PASSWORD).session_token
    assert token is not None
    for _ in range(5):
        clock.advance(minutes=5)
        accounts.touch_session(token, background=True)
    clock.advance(minutes=5)
    with pytest.raises(InvalidToken):
        accounts.touch_session(token, background=True)


def test_lk_7_twelve_hours_of_activity_sign_out(
    context: Dependencies, accounts: Accounts, clock: FakeClock
) -> None:
    """LK-7: journey (e): active every 20 minutes, still signed out after 12 hours."""
    add_user(context)
    token = accounts.sign_in(email=EMAIL, password=PASSWORD).session_token
    assert token is not None
    for _ in range(35):  # 11 h 40 min
        clock.advance(minutes=20)
        status = accounts.touch_session(token)
    assert status.ends_at == status.idle_until - timedelta(minutes=30) + timedelta(minutes=20)
    clock.advance(minutes=20)
    with pytest.raises(InvalidToken):
        accounts.touch_session(token)


def test_lk_6_sign_out_ends_the_session(context: Dependencies, accounts: Accounts) -> None:
    add_user(context)
    token = accounts.sign_in(email=EMAIL, password=PASSWORD).session_token
    assert token is not None
    accounts.sign_out(token)
    accounts.sign_out(token)  # twice is fine
    with pytest.raises(InvalidToken):
        accounts.touch_session(token)
    with pytest.raises(InvalidToken):
        accounts.touch_session("a-token-nobody-was-given")
    accounts.sign_out("a-token-nobody-was-given")
    assert ("sign_out", "ok") in audit_actions(context)


@pytest.mark.parametrize(
    "junk", ["", "x" * 10_000, "\ud800", "é"], ids=["empty", "long", "surrogate", "accent"]
)
def test_lk_6_signing_out_with_what_cannot_be_a_token_does_nothing(
    context: Dependencies, accounts: Accounts, junk: str
) -> None:
    """As with an unknown token: nothing to end, nothing raised, nothing audited."""
    before = audit_actions(context)
    accounts.sign_out(junk)
    assert audit_actions(context) == before


def test_lk_6_session_tokens_are_stored_only_hashed(
    context: Dependencies, accounts: Accounts
) -> None:
    user = add_user(context)
    token = accounts.sign_in(email=EMAIL, password=PASSWORD).session_token
    assert token is not None
    assert len(token.reveal()) >= 22
    assert token.reveal() not in repr(token)
    with context.storage.unit_of_work() as uow:
        live = [s for s in uow.sessions.list_for_user(user.id) if not s.revoked]
    assert [s.token_hash for s in live] == [session_token_hash(token)]


def test_lk_6_a_touch_that_loses_the_race_keeps_the_other_request_s_write(
    context: Dependencies, accounts: Accounts, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LK-6: when a simultaneous request on the session saved first, its write stands."""
    user = add_user(context)
    token = accounts.sign_in(email=EMAIL, password=PASSWORD).session_token
    assert token is not None
    clock.advance(minutes=10)
    with context.storage.unit_of_work() as uow:
        save = uow.sessions.save

        def rival_saves_first(session: Session, *, expected_version: int) -> None:
            monkeypatch.setattr(uow.sessions, "save", save)
            read = uow.sessions.get(session.token_hash)
            assert read is not None
            save(touched(read, now=clock.now(), background=False), expected_version=read.version)
            save(session, expected_version=expected_version)

        monkeypatch.setattr(uow.sessions, "save", rival_saves_first)
        session, signed_in_user = signed_in(context, uow, token, clock.now())
    assert signed_in_user.id == user.id
    with context.storage.unit_of_work() as uow:
        stored = uow.sessions.get(session.token_hash)
    assert stored is not None
    assert (stored.last_active_at, stored.version) == (clock.now(), session.version + 1)
    assert accounts.touch_session(token).user_id == user.id


# --- PW-5, PW-7 --------------------------------------------------------------------------


def test_pw_5_an_expired_password_reaches_only_the_change_of_password(
    context: Dependencies, accounts: Accounts, clock: FakeClock
) -> None:
    """PW-5: 90 days on, sign-in succeeds only as far as "must change password"."""
    add_user(context)
    clock.advance(days=90)
    result = accounts.sign_in(email=EMAIL, password=PASSWORD)
    assert result.outcome is SignInOutcome.PASSWORD_EXPIRED
    assert not result.ok
    assert result.session_token is not None
    assert accounts.touch_session(result.session_token).must_change_password
    with context.storage.unit_of_work() as uow:
        with pytest.raises(InvalidState) as caught:
            signed_in(context, uow, result.session_token, clock.now())
        session, _ = signed_in(
            context, uow, result.session_token, clock.now(), allow_expired_password=True
        )
    assert caught.value.code == "password.expired"
    assert session.user_id == result.user_id


def test_pw_7_a_hash_with_old_parameters_is_upgraded_at_sign_in(context: Dependencies) -> None:
    """PW-7: after a successful sign-in, the stored hash uses the current parameters."""
    old = context
    add_user(old)
    before = _stored_hash(old)
    stronger = HashParameters(time_cost=2, memory_cost=16, parallelism=1)
    new = attrs.evolve(old, hasher=PasswordHasher(stronger))
    accounts = Accounts(new)
    assert not accounts.sign_in(email=EMAIL, password="Wrong-2026").ok
    assert _stored_hash(new) == before  # a failed sign-in never rehashes
    assert accounts.sign_in(email=EMAIL, password=PASSWORD).ok
    after = _stored_hash(new)
    assert after != before
    assert argon2.extract_parameters(after).time_cost == 2
    assert ("password.rehashed", "ok") in audit_actions(new, add_user_id(new))
    assert accounts.sign_in(email=EMAIL, password=PASSWORD).ok


def add_user_id(context: Dependencies) -> User:
    with context.storage.unit_of_work() as uow:
        user = uow.users.get_by_email(EMAIL)
    assert user is not None
    return user


# --- LK-8 --------------------------------------------------------------------------------


def test_lk_8_storage_outage_fails_closed_and_loses_no_count(
    store: Storage, context: Dependencies
) -> None:
    """LK-8: while storage is down nobody gets in, and the counts are intact after."""
    faulty = FaultyStorage(store)
    context = attrs.evolve(context, storage=faulty)
    user = add_user(context)
    accounts = Accounts(context)
    accounts.sign_in(email=EMAIL, password="Wrong-2026")
    faulty.start_outage()
    for password in (PASSWORD, "Wrong-2026"):
        with pytest.raises(StorageError):
            accounts.sign_in(email=EMAIL, password=password)
    faulty.end_outage()
    assert failures(context, user) == 1
    assert accounts.sign_in(email=EMAIL, password=PASSWORD).ok


def test_lk_8_a_corrupt_hash_fails_closed_and_is_not_counted(
    context: Dependencies, accounts: Accounts
) -> None:
    """LK-8: an unreadable stored hash is an error, not a wrong password and not a success."""
    user = add_user(context)
    with context.storage.unit_of_work() as uow:
        stored = uow.credentials.get(user.id)
        assert stored is not None
        corrupt = revised(stored, password_hash="$argon2id$v=19$m=8", set_at=context.clock.now())
        uow.credentials.save(corrupt, expected_version=stored.version)
    with pytest.raises(CorruptHash):
        accounts.sign_in(email=EMAIL, password=PASSWORD)
    assert failures(context, user) == 0
    assert ("sign_in", "corrupt_hash") in audit_actions(context, user)


def test_dp_5_a_right_password_refused_by_a_lock_made_meanwhile_is_not_a_failure(
    context: Dependencies,
) -> None:
    """DP-5, LK-1: the account locks while argon2 runs: refused, and no failure is added."""
    user = add_user(context)
    accounts = Accounts(context)
    for _ in range(2):
        assert not accounts.sign_in(email=EMAIL, password="Wrong-2026").ok

    class LockedMeanwhile(PasswordHasher):
        def verify(self, stored: str, password: str) -> bool:
            matched = super().verify(stored, password)
            before = stored_user(context, user)
            with context.storage.unit_of_work() as uow:
                uow.users.save(revised(before, locked=True), expected_version=before.version)
            return matched

    racing = Accounts(attrs.evolve(context, hasher=LockedMeanwhile(context.settings.hashing)))
    result = racing.sign_in(email=EMAIL, password=PASSWORD)
    assert (result.outcome, result.reason) == (
        SignInOutcome.INVALID_CREDENTIALS,
        SignInReason.LOCKED,
    )
    assert (result.session_token, result.user_id) == (None, None)
    assert failures(context, user) == 2


def test_deactivated_users_cannot_sign_in(context: Dependencies, accounts: Accounts) -> None:
    add_user(context, deactivated=True)
    result = accounts.sign_in(email=EMAIL, password=PASSWORD)
    assert result.outcome is SignInOutcome.INVALID_CREDENTIALS
    assert result.reason is SignInReason.DEACTIVATED


# --- AU-1, AU-2 ------------------------------------------------------------------------


def test_au_1_and_au_2_sign_in_events_name_the_user_and_hold_no_secret(
    context: Dependencies, accounts: Accounts
) -> None:
    """AU-1: sign-in success, failure and lockout are audited; AU-2: no secret in them."""
    user = add_user(context)
    token = accounts.sign_in(email=EMAIL, password=PASSWORD).session_token
    assert token is not None
    for _ in range(5):
        accounts.sign_in(email=EMAIL, password="Wrong-2026")
    with context.storage.unit_of_work() as uow:
        events = uow.audit.events(subject_id=user.id)
    assert {e.action for e in events} >= {"sign_in", "account.locked"}
    assert all(e.practice_id == user.practice_id for e in events)
    secrets = (PASSWORD, "Wrong-2026", token.reveal(), _stored_hash(context))
    for event in events:
        for secret in secrets:
            assert secret not in repr(event)
