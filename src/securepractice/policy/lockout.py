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
the failures on record after a wrong password decide the lock (`lock_after`):
until a reset (LK-1), or under temporary lockout for a while, longer each
time (MF-7).
An attempt whose outcome storage could not record never finishes: it lapses
after ``SignInRules.attempt_timeout``, neither a failure nor a success
(DP-5).

Every sign-in is counted, whether or not an account has the email: an
address with no account counts under its key (`email_lookup`), so that an unknown
email costs the same storage writes as a known one (IN-4) and guessing on
addresses without accounts shows in the count. A password longer than any
the policy lets anyone set is refused before it is normalised or hashed
(`too_long_to_check`, IN-3); the dummy verification of a refusal spends its
work on `bounded_password`, never on the whole input.
"""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from securepractice.clock import require_utc
from securepractice.errors import InvalidInput
from securepractice.keys import SIGN_IN_COUNTER, keyed_name
from securepractice.policy.identity import MAX_EMAIL_LENGTH, normalize_email
from securepractice.policy.password import MAX_COMPOSITION_RATIO, check_limit
from securepractice.records import AttemptOutcome, User, revised
from securepractice.secret import Secret
from securepractice.settings import Lockout, PasswordRules, SignInRules

__all__ = [
    "AttemptDecision",
    "Lock",
    "attempt_decision",
    "attempt_outcome",
    "bounded_password",
    "email_lookup",
    "lock_after",
    "lock_of",
    "with_lock",
]

#: What starts the counter key of an email that has no account; a user id never does.
_EMAIL_KEY_PREFIX = "email:"


class AttemptDecision(enum.Enum):
    """What to do with one counted sign-in attempt.

    A refusal for a lock counts as a failure (LK-4); one for a temporary
    lock does not (MF-7), so that waiting attempts never lock for good.
    """

    CHECK_PASSWORD = "check_password"
    REFUSE_LOCKED = "refuse_locked"
    REFUSE_PAUSED = "refuse_paused"


@attrs.frozen(kw_only=True)
class Lock:
    """Where an account stands on locks (LK-1, MF-7): the `User` fields that say it."""

    locked: bool = False
    locked_until: datetime | None = None
    temporary_locks: int = 0


def lock_of(user: User) -> Lock:
    """Return where ``user`` stands on locks."""
    return Lock(
        locked=user.locked, locked_until=user.locked_until, temporary_locks=user.temporary_locks
    )


def with_lock(user: User, lock: Lock) -> User:
    """Return ``user`` revised to stand at ``lock``; the same user when nothing changes."""
    if lock_of(user) == lock:
        return user
    return revised(
        user,
        locked=lock.locked,
        locked_until=lock.locked_until,
        temporary_locks=lock.temporary_locks,
    )


def attempt_decision(
    *, lock: Lock, failures: int, rules: SignInRules, now: datetime
) -> AttemptDecision:
    """Decide whether an attempt, counted as attempt number ``failures``, may check the password.

    ``failures`` is what the store's `start` returned: the failures on
    record plus the attempts in flight, this one included. With the default
    of five, the fifth consecutive attempt is still checked (it may be
    right), the sixth never is (LK-4). Under temporary lockout (MF-7) an
    attempt is refused while the account is locked for a while, and past
    the run of attempts that the next temporary lock ends; neither refusal
    counts.
    """
    if lock.locked:
        return AttemptDecision.REFUSE_LOCKED
    if rules.lockout is Lockout.UNTIL_RESET:
        if failures > rules.max_failed_sign_ins:
            return AttemptDecision.REFUSE_LOCKED
        return AttemptDecision.CHECK_PASSWORD
    if lock.locked_until is not None and require_utc(now) < lock.locked_until:
        return AttemptDecision.REFUSE_PAUSED
    if failures > rules.max_failed_sign_ins * (lock.temporary_locks + 1):
        return AttemptDecision.REFUSE_PAUSED
    return AttemptDecision.CHECK_PASSWORD


def lock_after(*, lock: Lock, failures: int, rules: SignInRules, now: datetime) -> Lock | None:
    """Return the lock that a wrong password leaving ``failures`` on record begins, or None.

    The portal's rule (LK-1) locks until a reset at ``max_failed_sign_ins``.
    Temporary lockout (MF-7) locks for ``first_lock`` at that many, twice as
    long at each further run of as many, up to ``longest_lock``; at
    ``lock_for_good_at`` failures in a row it locks as LK-1 does.
    """
    if lock.locked:
        return None
    if rules.lockout is Lockout.UNTIL_RESET:
        return Lock(locked=True) if failures >= rules.max_failed_sign_ins else None
    if failures >= rules.lock_for_good_at:
        return Lock(locked=True, temporary_locks=lock.temporary_locks)
    if failures < rules.max_failed_sign_ins * (lock.temporary_locks + 1):
        return None
    count = lock.temporary_locks + 1
    length = rules.first_lock
    for _ in range(count - 1):
        if length >= rules.longest_lock:
            break
        length *= 2
    return Lock(
        locked_until=require_utc(now) + min(length, rules.longest_lock), temporary_locks=count
    )


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


def bounded_password(password: str, rules: PasswordRules) -> str:
    """Return the part of ``password`` a refusal's dummy verification spends its work on (IN-4).

    As long as any password that may be checked, so a refusal costs what a
    real check costs, however long the input (IN-3). Never verify it
    against a real hash: it may be a right password with text added.
    """
    return password[: check_limit(rules)]


def email_lookup(email: object, secret: Secret[bytes]) -> tuple[str, str]:
    """Return what to look ``email`` up by, and the key of its counters and links (IN-4).

    The key is a keyed hash under ``secret`` of the normalised address, so
    that every spelling of one address counts together and the store never
    holds the address; it names the counters and links of an email without
    an account. What is not an address at all is named by what was typed
    (its first characters, as many as an address may take before
    normalising), and is looked up by its key, which no user has.
    """
    try:
        address = normalize_email(email)  # type: ignore[arg-type]
    except InvalidInput:
        limit = MAX_EMAIL_LENGTH * MAX_COMPOSITION_RATIO
        typed = email[:limit] if isinstance(email, str) else f"<{type(email).__name__}>"
        key = _key_of(typed, secret)
        return key, key
    return address, _key_of(address, secret)


def _key_of(text: str, secret: Secret[bytes]) -> str:
    return _EMAIL_KEY_PREFIX + keyed_name(secret, SIGN_IN_COUNTER, text)
