"""Lockout as pure rules (LK-1, LK-4, LK-5).

Every sign-in attempt against an existing account is counted first, with the
store's atomic increment, and only then is the password looked at. The count
after the increment decides whether this attempt may be checked against the
real hash at all: attempts past the threshold never are (LK-4), and an
account that is locked refuses even the right password (LK-1). The attempts
that are not checked still spend one dummy verification, so that every
refusal takes as long as a real one (LK-5).
"""

from __future__ import annotations

import enum

from securepractice.settings import SignInRules

__all__ = ["AttemptDecision", "decide_attempt", "locks_now"]


class AttemptDecision(enum.Enum):
    """What to do with one counted sign-in attempt."""

    CHECK_PASSWORD = "check_password"
    REFUSE_LOCKED = "refuse_locked"


def decide_attempt(*, locked: bool, failures: int, rules: SignInRules) -> AttemptDecision:
    """Decide whether an attempt, counted as failure number ``failures``, may check the password.

    ``failures`` includes this attempt. With the default of five, the fifth
    consecutive attempt is still checked (it may be right), the sixth never is.
    """
    if locked or failures > rules.max_failed_sign_ins:
        return AttemptDecision.REFUSE_LOCKED
    return AttemptDecision.CHECK_PASSWORD


def locks_now(*, failures: int, rules: SignInRules) -> bool:
    """Return whether a wrong password counted as failure number ``failures`` locks the account."""
    return failures >= rules.max_failed_sign_ins
