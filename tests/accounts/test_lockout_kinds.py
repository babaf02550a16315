"""Lock emails and temporary lockout at sign-in, on every store (MF-6, MF-7, LK-1, LK-4)."""

from __future__ import annotations

import threading
from datetime import timedelta

import argon2
import attrs
import pytest

from securepractice import FakeClock, Outbox, Role, SignInRules, User
from securepractice.accounts.signin import SignInOutcome, SignInReason
from securepractice.dependencies import Dependencies
from securepractice.portal import Accounts, PracticeAdministration
from securepractice.settings import Lockout
from securepractice.testing import PASSWORD, World

EMAIL = "dr.smith@example.com"
WRONG = "Wrong-2026"
TEMPORARY = SignInRules(lockout=Lockout.TEMPORARY)


def _context(context: Dependencies, rules: SignInRules) -> Dependencies:
    return attrs.evolve(context, settings=attrs.evolve(context.settings, sign_in=rules))


def _user(context: Dependencies) -> User:
    with context.unit() as uow:
        user = uow.users.get_by_email(EMAIL)
    assert user is not None
    return user


def _failures(context: Dependencies, user: User) -> int:
    with context.unit() as uow:
        return uow.sign_in_failures.count(user.id)


@pytest.fixture
def portal_rules(context: Dependencies) -> Dependencies:
    World(context).user(EMAIL, practice=World(context).practice())
    return context


@pytest.fixture
def temporary(context: Dependencies) -> Dependencies:
    context = _context(context, TEMPORARY)
    World(context).user(EMAIL, practice=World(context).practice())
    return context


def _wrong(accounts: Accounts, times: int) -> list[SignInReason]:
    return [accounts.sign_in(email=EMAIL, password=WRONG).reason for _ in range(times)]


def test_mf_6_the_owner_is_emailed_when_the_account_locks(
    portal_rules: Dependencies, outbox: Outbox
) -> None:
    """MF-6, LK-1: the fifth wrong password locks until reset; the email points to the reset."""
    accounts = Accounts(portal_rules)
    _wrong(accounts, 4)
    assert outbox.emails == ()
    _wrong(accounts, 1)
    assert _user(portal_rules).locked
    mail = outbox.last_email(EMAIL)
    assert "locked" in mail.subject
    assert "Forgot Password" in mail.body
    assert WRONG not in mail.body
    assert PASSWORD not in mail.body
    _wrong(accounts, 3)
    assert len(outbox.emails) == 1  # told once, not at every refusal


def test_mf_7_five_wrong_passwords_lock_for_15_minutes_then_the_right_one_works(
    temporary: Dependencies, clock: FakeClock, outbox: Outbox
) -> None:
    accounts = Accounts(temporary)
    assert _wrong(accounts, 5)[-1] is SignInReason.WRONG_PASSWORD
    user = _user(temporary)
    assert not user.locked
    assert user.locked_until == clock.now() + timedelta(minutes=15)
    assert "15 minutes" in outbox.last_email(EMAIL).body  # MF-6 for a temporary lock too
    during = accounts.sign_in(email=EMAIL, password=PASSWORD)
    assert during.outcome is SignInOutcome.INVALID_CREDENTIALS  # LK-5: it looks like any refusal
    assert during.reason is SignInReason.TEMPORARILY_LOCKED
    assert _failures(temporary, user) == 5  # refusals while locked do not count
    clock.advance(timedelta(minutes=15))
    assert accounts.sign_in(email=EMAIL, password=PASSWORD).ok
    cleared = _user(temporary)
    assert (cleared.locked_until, cleared.temporary_locks) == (None, 0)
    assert _failures(temporary, user) == 0


def test_mf_7_each_further_run_of_five_locks_twice_as_long(
    temporary: Dependencies, clock: FakeClock
) -> None:
    accounts = Accounts(temporary)
    lengths = []
    for _ in range(4):
        _wrong(accounts, 5)
        until = _user(temporary).locked_until
        assert until is not None
        lengths.append(until - clock.now())
        clock.advance(until - clock.now())
    assert lengths == [timedelta(minutes=15 * 2**n) for n in range(4)]


def test_mf_7_a_hundred_failures_in_a_row_lock_until_reset(
    temporary: Dependencies, clock: FakeClock
) -> None:
    """MF-7, LK-1: the temporary locks end, and at 100 the account locks as the portal's does."""
    accounts = Accounts(temporary)
    for _ in range(20):
        _wrong(accounts, 5)
        user = _user(temporary)
        if user.locked:
            break
        assert user.locked_until is not None
        clock.advance(user.locked_until - clock.now())
    user = _user(temporary)
    assert user.locked
    assert _failures(temporary, user) == 100
    clock.advance(timedelta(days=30))
    refused = accounts.sign_in(email=EMAIL, password=PASSWORD)
    assert refused.reason is SignInReason.LOCKED


def test_mf_7_support_staff_end_a_temporary_lock(temporary: Dependencies) -> None:
    """MF-7, SP-1: unlocking clears the temporary lock and its count."""
    support = World(temporary).member("help@example.com", roles=(Role.SUPPORT,))
    accounts = Accounts(temporary)
    _wrong(accounts, 5)
    user = _user(temporary)
    assert user.locked_until is not None
    PracticeAdministration(temporary).unlock(support.token, user_id=user.id)
    after = _user(temporary)
    assert (after.locked, after.locked_until, after.temporary_locks) == (False, None, 0)
    assert accounts.sign_in(email=EMAIL, password=PASSWORD).ok


def test_mf_7_lk_4_racing_attempts_past_the_run_are_never_checked(
    temporary: Dependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LK-4 under MF-7: of 20 simultaneous wrong attempts, at most 5 reach argon2; 5 count."""
    accounts = Accounts(temporary)
    user = _user(temporary)
    with temporary.unit() as uow:
        credential = uow.credentials.get(user.id)
    assert credential is not None
    real: list[str] = []
    guard = threading.Lock()
    original = argon2.PasswordHasher.verify

    def spy(self: argon2.PasswordHasher, stored: str, password: bytes) -> bool:
        if stored == credential.password_hash:
            with guard:
                real.append(stored)
        return original(self, stored, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", spy)
    start = threading.Barrier(20, timeout=30)

    def attempt() -> None:
        start.wait()
        accounts.sign_in(email=EMAIL, password=WRONG)

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # The start numbers the 20 attempts 1 to 20: exactly the first five are checked.
    assert len(real) == 5
    assert _failures(temporary, user) == 5
    assert _user(temporary).temporary_locks == 1


def test_mf_6_a_lock_by_wrong_current_passwords_is_told_too(
    portal_rules: Dependencies, outbox: Outbox
) -> None:
    """MF-6, LK-4: five wrong current passwords in a profile action lock, and the owner hears."""
    accounts = Accounts(portal_rules)
    token = World(portal_rules).sign_in(EMAIL)
    for _ in range(5):
        accounts.change_password(
            token, current_password=WRONG, new_password="Harbor-Light-77",
            confirmation="Harbor-Light-77",
        )  # fmt: skip
    assert _user(portal_rules).locked
    assert "Forgot Password" in outbox.last_email(EMAIL).body
