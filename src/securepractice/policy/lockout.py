"""Lockout as pure rules (LK-1, LK-3, LK-4, LK-5, LK-8, DP-5).

Every sign-in attempt against an existing account is started first, with the
store's atomic counter, and only then is the password looked at. The number
`start` returns (the failures on record plus the attempts in flight, this
one included) decides whether this attempt may be checked against the real
hash at all: attempts past the threshold never are (LK-4), and an account
that is locked refuses even the right password (LK-1). The attempts that are
not checked still spend one dummy verification, so that every refusal takes
as long as a real one (LK-5).

Each attempt then finishes with the outcome `attempt_outcome` gives it, and
the failures on record after a wrong password decide the lock (`locks_now`).
An attempt whose outcome storage could not record never finishes: it lapses
after ``SignInRules.attempt_timeout``, neither a failure nor a success
(DP-5).
"""

from __future__ import annotations

import enum

from securepractice.records import AttemptOutcome
from securepractice.settings import SignInRules

__all__ = ["AttemptDecision", "attempt_outcome", "decide_attempt", "locks_now"]


class AttemptDecision(enum.Enum):
    """What to do with one counted sign-in attempt."""

    CHECK_PASSWORD = "check_password"
    REFUSE_LOCKED = "refuse_locked"


def decide_attempt(*, locked: bool, failures: int, rules: SignInRules) -> AttemptDecision:
    """Decide whether an attempt, counted as attempt number ``failures``, may check the password.

    ``failures`` is what the store's `start` returned: the failures on
    record plus the attempts in flight, this one included. With the default
    of five, the fifth consecutive attempt is still checked (it may be
    right), the sixth never is.
    """
    if locked or failures > rules.max_failed_sign_ins:
        return AttemptDecision.REFUSE_LOCKED
    return AttemptDecision.CHECK_PASSWORD


def attempt_outcome(*, matched: bool | None, accepted: bool) -> AttemptOutcome:
    """Return how one finished attempt counts toward lockout (LK-1, LK-3, LK-4, LK-8, DP-5).

    ``matched`` is whether the password matched the stored hash: False for
    a wrong password and for an attempt refused without a check (locked,
    past the threshold, deactivated), which counts like a wrong one (LK-4);
    None when the hash could not be read. ``accepted`` is whether the
    attempt signed the user in (or let a profile action go ahead). A right
    password clears the failures only when accepted (LK-3); a right one
    refused after the check (the account locked meanwhile) and an
    unreadable hash leave them as they were (LK-8, DP-5).
    """
    if accepted:
        return AttemptOutcome.RIGHT
    if matched is False:
        return AttemptOutcome.WRONG
    return AttemptOutcome.NOT_COUNTED


def locks_now(*, failures: int, rules: SignInRules) -> bool:
    """Return whether an attempt that left ``failures`` failures on record locks the account."""
    return failures >= rules.max_failed_sign_ins
