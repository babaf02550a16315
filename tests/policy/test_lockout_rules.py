"""Lockout as pure rules (LK-1, LK-4)."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from securepractice import SignInRules
from securepractice.policy.lockout import AttemptDecision, Lock, attempt_decision, lock_after

RULES = SignInRules()
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def locks_now(*, failures: int, rules: SignInRules) -> bool:
    """Whether a wrong password leaving ``failures`` on record locks an unlocked account."""
    after = lock_after(lock=Lock(), failures=failures, rules=rules, now=NOW)
    return after is not None and after.locked


def decide_attempt(*, locked: bool, failures: int, rules: SignInRules) -> AttemptDecision:
    return attempt_decision(lock=Lock(locked=locked), failures=failures, rules=rules, now=NOW)


def test_lk_1_the_fifth_wrong_password_locks() -> None:
    """LK-1: failures one to four do not lock; the fifth does."""
    assert [locks_now(failures=n, rules=RULES) for n in range(1, 7)] == [
        False,
        False,
        False,
        False,
        True,
        True,
    ]


def test_lk_1_a_locked_account_refuses_even_before_counting() -> None:
    """LK-1: once locked, the password is never checked, whatever the count."""
    assert decide_attempt(locked=True, failures=1, rules=RULES) is AttemptDecision.REFUSE_LOCKED


@given(st.integers(min_value=1, max_value=10_000), st.integers(min_value=1, max_value=20))
def test_lk_4_no_attempt_past_the_threshold_checks_the_password(failures: int, limit: int) -> None:
    """LK-4: attempt number n is checked against the hash exactly when n <= the threshold."""
    rules = SignInRules(max_failed_sign_ins=limit)
    decision = decide_attempt(locked=False, failures=failures, rules=rules)
    assert (decision is AttemptDecision.CHECK_PASSWORD) == (failures <= limit)
    assert locks_now(failures=failures, rules=rules) == (failures >= limit)
