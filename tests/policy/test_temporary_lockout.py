"""Temporary lockout (MF-7) beside the portal's lock until reset (LK-1, LK-4)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securepractice.policy.lockout import AttemptDecision, Lock, attempt_decision, lock_after
from securepractice.settings import Lockout, SignInRules

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
PORTAL = SignInRules.PORTAL
TEMPORARY = SignInRules(lockout=Lockout.TEMPORARY)


def test_mf_7_the_portal_profile_keeps_lk_1_and_the_nist_profile_locks_for_a_while() -> None:
    assert SignInRules().lockout is Lockout.UNTIL_RESET
    assert SignInRules.NIST.lockout is Lockout.TEMPORARY


def test_lk_1_the_fifth_failure_locks_until_reset() -> None:
    assert lock_after(lock=Lock(), failures=4, rules=PORTAL, now=NOW) is None
    assert lock_after(lock=Lock(), failures=5, rules=PORTAL, now=NOW) == Lock(locked=True)
    assert lock_after(lock=Lock(locked=True), failures=6, rules=PORTAL, now=NOW) is None


def test_lk_4_past_five_attempts_are_refused_and_counted() -> None:
    decisions = [attempt_decision(lock=Lock(), failures=n, rules=PORTAL, now=NOW) for n in (5, 6)]
    assert decisions == [AttemptDecision.CHECK_PASSWORD, AttemptDecision.REFUSE_LOCKED]


def _run_of_locks(runs: int) -> list[timedelta]:
    """Fail ``runs`` runs of five, each after the last lock ended; return the locks' lengths."""
    lock, now, lengths = Lock(), NOW, []
    for run in range(1, runs + 1):
        after = lock_after(lock=lock, failures=5 * run, rules=TEMPORARY, now=now)
        assert after is not None
        assert after.locked_until is not None
        lengths.append(after.locked_until - now)
        lock, now = after, after.locked_until
    return lengths


def test_mf_7_each_run_of_five_locks_for_15_minutes_doubling_to_a_day() -> None:
    hours = [length / timedelta(hours=1) for length in _run_of_locks(10)]
    assert hours == [0.25, 0.5, 1, 2, 4, 8, 16, 24, 24, 24]


def test_mf_7_at_100_failures_in_a_row_the_account_locks_until_reset() -> None:
    lock = Lock(locked_until=NOW - timedelta(seconds=1), temporary_locks=19)
    assert lock_after(lock=lock, failures=99, rules=TEMPORARY, now=NOW) is None
    final = lock_after(lock=lock, failures=100, rules=TEMPORARY, now=NOW)
    assert final is not None
    assert final.locked
    assert attempt_decision(lock=final, failures=101, rules=TEMPORARY, now=NOW) is (
        AttemptDecision.REFUSE_LOCKED
    )


def test_mf_7_while_locked_for_a_while_attempts_are_refused_and_not_counted() -> None:
    ends = NOW + timedelta(minutes=15)
    lock = Lock(locked_until=ends, temporary_locks=1)
    during = attempt_decision(lock=lock, failures=6, rules=TEMPORARY, now=NOW)
    after = attempt_decision(lock=lock, failures=6, rules=TEMPORARY, now=ends)
    assert (during, after) == (AttemptDecision.REFUSE_PAUSED, AttemptDecision.CHECK_PASSWORD)


def test_mf_7_attempts_racing_past_the_next_lock_are_refused_and_not_counted() -> None:
    """LK-4 under MF-7: of simultaneous attempts, those past the run's fifth are never checked."""
    lock = Lock(temporary_locks=1)
    decisions = [
        attempt_decision(lock=lock, failures=n, rules=TEMPORARY, now=NOW) for n in (10, 11)
    ]
    assert decisions == [AttemptDecision.CHECK_PASSWORD, AttemptDecision.REFUSE_PAUSED]


@given(st.integers(min_value=1, max_value=500), st.integers(min_value=0, max_value=60))
def test_mf_7_no_lock_is_longer_than_a_day(failures: int, locks: int) -> None:
    after = lock_after(
        lock=Lock(temporary_locks=locks), failures=failures, rules=TEMPORARY, now=NOW
    )
    if after is not None and after.locked_until is not None:
        assert timedelta(0) < after.locked_until - NOW <= TEMPORARY.longest_lock


@pytest.mark.parametrize("rules", [PORTAL, TEMPORARY])
def test_a_lock_until_reset_refuses_every_attempt(rules: SignInRules) -> None:
    assert attempt_decision(lock=Lock(locked=True), failures=1, rules=rules, now=NOW) is (
        AttemptDecision.REFUSE_LOCKED
    )
