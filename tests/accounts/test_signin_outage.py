"""A right password never counts toward lockout when storage fails mid sign-in (DP-5, LK-8).

Sign-in counts an attempt in one unit of work (before argon2) and records its
outcome in a second (after). These tests break storage at every point of
that, with `FaultyStorage` on both stores and with a real lock held on a
SQLite file by another connection, and check that the right password is
never refused as locked afterwards and that no failure is invented or lost.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import attrs
import pytest

from conftest import CHEAP_HASHING
from securepractice import (
    FakeClock,
    Messaging,
    Outbox,
    PasswordHasher,
    Settings,
    SQLiteStorage,
    StorageError,
    User,
)
from securepractice.dependencies import Dependencies
from securepractice.portal import Accounts
from securepractice.records import AttemptOutcome
from securepractice.storage.ports import Storage
from securepractice.testing import PASSWORD, FaultyStorage, World

WRONG = "Wrong-password-1"


class HookedHasher(PasswordHasher):
    """A cheap hasher that calls ``after`` once each verification (real or dummy) is done.

    The hook runs between sign-in's two units of work, where argon2 runs:
    where an outage or another connection's lock hurts the most.
    """

    def __init__(self, after: Callable[[], None]) -> None:
        super().__init__(CHEAP_HASHING)
        self._after = after

    def verify(self, stored: str, password: str) -> bool:
        matched = super().verify(stored, password)
        self._after()
        return matched


def lapse(context: Dependencies, clock: FakeClock) -> None:
    """Move the clock past ``attempt_timeout``: every attempt in flight now is abandoned."""
    clock.advance(context.settings.sign_in.attempt_timeout + timedelta(seconds=1))


def failures(context: Dependencies, user: User) -> int:
    """The failures on record, read past any fault."""
    with context.storage.unit_of_work() as uow:
        return uow.sign_in_failures.count(user.id)


def locked(context: Dependencies, user: User) -> bool:
    with context.storage.unit_of_work() as uow:
        stored = uow.users.get(user.id)
    assert stored is not None
    return stored.locked


def add_user(context: Dependencies, email: str) -> User:
    world = World(context)
    return world.user(email, practice=world.practice())


# --- (a) a fault at every storage call of one sign-in ------------------------------------


@pytest.mark.parametrize("retry_fails_too", [False, True], ids=["fault", "fault-and-retry"])
def test_dp_5_a_fault_at_any_storage_call_never_counts_the_right_password(
    store: Storage, context: Dependencies, clock: FakeClock, *, retry_fails_too: bool
) -> None:
    """DP-5, LK-8: storage fails at the k-th call of a right sign-in, for every k in turn.

    Each user has two failures on record. Whatever call fails, the sign-in
    either signs in or raises `StorageError` (never a refusal), the
    failures on record never grow, the user is never locked, and once the
    fault is gone and ``attempt_timeout`` has passed the right password
    signs in and clears them. With ``fault-and-retry`` the operation after
    the fault fails too, so the fresh unit that records the outcome once
    more fails as well: nobody gets in (LK-8).
    """
    # Two layers: an operation the outer store fails never reaches the inner one,
    # so the inner store's k-th operation is the outer store's (k+1)-th.
    inner = FaultyStorage(store)
    outer = FaultyStorage(inner)
    context = attrs.evolve(context, storage=outer)
    accounts = Accounts(context)

    probe = add_user(context, "probe@example.com")
    for _ in range(2):
        assert not accounts.sign_in(email="probe@example.com", password=WRONG).ok
    calls = outer.calls
    assert accounts.sign_in(email="probe@example.com", password=PASSWORD).ok
    operations = outer.calls - calls
    assert operations >= 10  # two units: begin, reads, start / finish, session, audit, commit
    assert failures(context, probe) == 0

    raised = []
    for k in range(1, operations + 1):
        email = f"user{k}@example.com"
        user = add_user(context, email)
        for _ in range(2):
            assert not accounts.sign_in(email=email, password=WRONG).ok
        before = failures(context, user)
        outer.fail_at(k)
        if retry_fails_too:
            inner.fail_at(k)
        try:
            result = accounts.sign_in(email=email, password=PASSWORD)
        except StorageError:
            raised.append(k)
        else:
            assert result.ok, (k, result.reason)
        finally:
            outer.fail_at(None)
            inner.fail_at(None)
        assert failures(context, user) <= before, k
        assert not locked(context, user), k
        lapse(context, clock)
        assert accounts.sign_in(email=email, password=PASSWORD).ok, k
        assert failures(context, user) == 0
        assert not locked(context, user)
    if retry_fails_too:
        assert raised == list(range(1, operations + 1))
    else:
        # A fault in the first unit reaches the caller; one in the second is
        # absorbed by recording the outcome once more in a fresh unit.
        assert raised
        assert raised == list(range(1, len(raised) + 1))
        assert len(raised) < operations


# --- (b) the repro: an outage between counting and recording ---------------------


def test_dp_5_six_right_passwords_lost_in_an_outage_do_not_lock(
    store: Storage, context: Dependencies, clock: FakeClock
) -> None:
    """DP-5: the issue's repro. Six right passwords, each counted, then storage goes down.

    Storage fails from the moment argon2 is done until the sign-in has
    raised: each attempt is counted but its outcome cannot be recorded,
    even once more. After recovery and ``attempt_timeout`` the right
    password signs in; the account was never locked and no failure was
    recorded.
    """
    faulty = FaultyStorage(store)
    context = attrs.evolve(context, storage=faulty, hasher=HookedHasher(after=faulty.start_outage))
    user = add_user(context, "dr.smith@example.com")
    accounts = Accounts(context)
    for _ in range(6):
        with pytest.raises(StorageError):
            accounts.sign_in(email="dr.smith@example.com", password=PASSWORD)
        faulty.end_outage()
        assert failures(context, user) == 0
        assert not locked(context, user)
    lapse(context, clock)
    healthy = attrs.evolve(context, hasher=PasswordHasher(CHEAP_HASHING))
    result = Accounts(healthy).sign_in(email="dr.smith@example.com", password=PASSWORD)
    assert result.ok
    assert failures(context, user) == 0
    assert not locked(context, user)


def test_lk_8_a_wrong_password_whose_outcome_is_lost_counts_only_while_in_flight(
    store: Storage, context: Dependencies, clock: FakeClock
) -> None:
    """LK-8, LK-4: a wrong password whose recording failed is not counted later as a failure.

    Decided: storage never learnt the outcome, so the attempt never becomes
    a failure on record. Until ``attempt_timeout`` it still holds its place
    among the attempts in flight, so it counts toward the threshold that
    decides whether the next attempts are checked at all (LK-4); then it
    lapses.
    """
    faulty = FaultyStorage(store)
    healthy = attrs.evolve(context, storage=faulty)
    outage = attrs.evolve(healthy, hasher=HookedHasher(after=faulty.start_outage))
    user = add_user(healthy, "dr.smith@example.com")
    accounts = Accounts(healthy)
    for _ in range(4):
        assert not accounts.sign_in(email="dr.smith@example.com", password=WRONG).ok
    started = clock.now()
    with pytest.raises(StorageError):
        Accounts(outage).sign_in(email="dr.smith@example.com", password=WRONG)
    faulty.end_outage()
    assert failures(healthy, user) == 4  # not recorded as a failure ...
    clock.advance(seconds=1)
    assert counted(healthy, user) == 5  # ... but in flight, at the gate (LK-4)
    clock.set(started + healthy.settings.sign_in.attempt_timeout + timedelta(seconds=1))
    assert counted(healthy, user) == 4  # lapsed, and never turned into a failure
    assert failures(healthy, user) == 4
    assert accounts.sign_in(email="dr.smith@example.com", password=PASSWORD).ok
    assert failures(healthy, user) == 0


def counted(context: Dependencies, user: User) -> int:
    """What the store counts against the next attempt, less that attempt: failures + in flight."""
    now = context.now()
    timeout = context.settings.sign_in.attempt_timeout
    with context.storage.unit_of_work() as uow:
        number = uow.sign_in_failures.start(user.id, now=now, abandoned_before=now - timeout)
        uow.sign_in_failures.finish(user.id, started=now, outcome=AttemptOutcome.NOT_COUNTED)
    return number - 1


# --- (c) a real lock held on the SQLite file -----------------------------------------------


def test_dp_5_a_write_lock_held_during_argon2_does_not_lock_the_account(
    tmp_path: Path, settings: Settings, outbox: Outbox, clock: FakeClock
) -> None:
    """DP-5: the issue's repro with a real lock, as a backup or VACUUM would hold it.

    A second connection takes ``BEGIN IMMEDIATE`` on the file while
    argon2 runs and keeps it longer than the store's busy timeout, so the
    unit that records the outcome (and its one retry) fails with
    ``storage.busy``; it is released after the sign-in raised. Six right
    passwords that way; then the right password signs in and the account
    is not locked.
    """
    path = tmp_path / "held.db"
    store = SQLiteStorage(path, synchronous="OFF", busy_timeout=timedelta(milliseconds=20))
    other = sqlite3.connect(path, isolation_level=None, timeout=0)

    def hold_the_write_lock() -> None:
        other.execute("BEGIN IMMEDIATE")

    context = Dependencies(
        storage=store, messaging=Messaging.using(outbox), settings=settings, clock=clock
    )
    user = add_user(context, "dr.smith@example.com")
    held = Accounts(attrs.evolve(context, hasher=HookedHasher(after=hold_the_write_lock)))
    try:
        for _ in range(6):
            with pytest.raises(StorageError) as caught:
                held.sign_in(email="dr.smith@example.com", password=PASSWORD)
            assert caught.value.code == "storage.busy"
            other.execute("ROLLBACK")
            assert failures(context, user) == 0
    finally:
        other.close()
    lapse(context, clock)
    assert Accounts(context).sign_in(email="dr.smith@example.com", password=PASSWORD).ok
    assert failures(context, user) == 0
    assert not locked(context, user)
    store.close()
