"""The current password, checked again as a sign-in attempt, for actions that need it (PW-6, LK-4).

Changing the password, the email address or a phone number, turning
two-step verification off, ending sessions, removing an authenticator app
and making recovery codes all ask for the current password first, so that
a stolen session is not a way around lockout (LK-1, LK-4). They share this
module: `recheck` starts the attempt with the store's atomic counter and
verifies the password between two short units of work (no write lock is
held while argon2 runs); a wrong password is recorded as a failed sign-in
and locks the account at the threshold. The action then runs its own unit
within `settling`, where `proven` clears the count and checks that the
password did not change meanwhile; when that unit fails, the attempt is
finished as not counted in a fresh unit, or lapses, so a right password
never counts (DP-5).
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Callable, Iterator
from datetime import datetime

import attrs

from securepractice.accounts._shared import audit
from securepractice.accounts.signin import lock_if_due, signed_in, tell_locked
from securepractice.dependencies import Dependencies
from securepractice.errors import CorruptHash, InvalidInput, InvalidState, StorageError
from securepractice.policy.lockout import (
    AttemptDecision,
    attempt_decision,
    attempt_outcome,
    bounded_password,
    lock_of,
)
from securepractice.policy.password import Violation, too_long_to_check
from securepractice.records import Credential, Session, User
from securepractice.secret import Secret
from securepractice.storage.ports import UnitOfWork

__all__ = ["CURRENT_PASSWORD_WRONG", "Recheck", "proven", "recheck", "require_match", "settling"]

#: The violation a change of password reports when the current password is wrong (PW-6).
CURRENT_PASSWORD_WRONG = Violation(
    "password.current_wrong",
    "Your current password is not right. Repeated wrong entries lock your account.",
)


@attrs.frozen
class Recheck:
    """A current password checked outside any unit of work, and what it was checked against.

    ``started`` is when the attempt was started in the store (LK-4).
    """

    user: User
    credential: Credential
    matched: bool
    started: datetime


def recheck(
    deps: Dependencies,
    token: str | Secret[str],
    password: str,
    now: datetime,
    *,
    purpose: str,
    precheck: Callable[[UnitOfWork, User], object] | None = None,
) -> Recheck:
    """Start an attempt, then verify ``password`` with no unit of work open.

    A wrong password is recorded (and locks at the threshold) in a unit of
    its own, tried once more when it fails; a right one is recorded by
    `proven`. ``precheck`` refuses the action before anything is counted.
    A password too long to be anyone's is wrong, refused before it is
    normalised or hashed (IN-3).
    """
    too_long = too_long_to_check(password, deps.settings.password)
    allow_expired = purpose == "change_password"
    # Starting the attempt, and touching the session, need not survive a power cut (DP-5).
    with deps.unit(durable=False) as uow:
        _session, user = signed_in(deps, uow, token, now, allow_expired_password=allow_expired)
        credential = uow.credentials.get(user.id)
        if credential is None:
            raise InvalidState("this account has no password yet", code="password.not_set")
        if precheck is not None:
            precheck(uow, user)
        failures = uow.sign_in_failures.start(
            user.id, now=now, abandoned_before=now - deps.settings.sign_in.attempt_timeout
        )
    hasher = deps.hasher
    decision = attempt_decision(
        lock=lock_of(user), failures=failures, rules=deps.settings.sign_in, now=now
    )
    paused = decision is AttemptDecision.REFUSE_PAUSED
    if too_long or decision is not AttemptDecision.CHECK_PASSWORD:
        hasher.dummy_verify(bounded_password(password, deps.settings.password))
        matched = False
    else:
        try:
            matched = hasher.verify(credential.password_hash, password)
        except CorruptHash:
            with deps.unit() as uow:
                uow.sign_in_failures.finish(
                    user.id, started=now, outcome=attempt_outcome(matched=None, accepted=False)
                )
                audit(
                    uow, "password.recheck", "corrupt_hash", at=now, subject=user, purpose=purpose
                )
            raise
    if not matched:
        counted = not paused or too_long
        try:
            locked = _record_wrong(deps, user, now, purpose=purpose, counted=counted)
        except StorageError:
            locked = _record_wrong(deps, user, now, purpose=purpose, counted=counted)
        if locked is not None:
            tell_locked(deps, locked)
    return Recheck(user, credential, matched, now)


def _record_wrong(
    deps: Dependencies, user: User, started: datetime, *, purpose: str, counted: bool
) -> User | None:
    """In a unit of its own, count the wrong current password and lock at the threshold.

    One refused unchecked while the account is locked for a while (MF-7)
    is not ``counted``. Returns the user if this locked them (LK-1, MF-7),
    to be emailed after commit (MF-6).
    """
    with deps.unit() as uow:
        outcome = attempt_outcome(matched=False if counted else None, accepted=False)
        failures = uow.sign_in_failures.finish(user.id, started=started, outcome=outcome)
        current = uow.users.get(user.id)
        locked = None
        if current is not None and counted:
            locked = lock_if_due(deps, uow, current, failures, started)
        audit(
            uow,
            "password.recheck",
            "wrong_password" if counted else "temporarily_locked",
            at=started,
            actor=user,
            subject=user,
            purpose=purpose,
        )
    return locked


@contextlib.contextmanager
def settling(deps: Dependencies, checked: Recheck) -> Iterator[None]:
    """Around the unit that acts on a right password: if it fails, the attempt does not count.

    `proven` clears the failures in that unit; when the unit fails (storage,
    a send limit, a session ended meanwhile) that is rolled back, so the
    attempt is finished here as not counted, in a fresh unit (DP-5). If
    that fails too, the attempt lapses after ``attempt_timeout``.
    """
    try:
        yield
    except Exception:
        with contextlib.suppress(StorageError), deps.unit() as uow:
            uow.sign_in_failures.finish(
                checked.user.id,
                started=checked.started,
                outcome=attempt_outcome(matched=True, accepted=False),
            )
        raise


def require_match(checked: Recheck) -> None:
    """Refuse the action when the current password given was wrong (PW-6)."""
    if not checked.matched:
        raise InvalidInput(
            CURRENT_PASSWORD_WRONG.message,
            field="current_password",
            code=CURRENT_PASSWORD_WRONG.code,
        )


def proven(
    deps: Dependencies,
    uow: UnitOfWork,
    token: str | Secret[str],
    now: datetime,
    checked: Recheck,
    *,
    allow_expired_password: bool = False,
) -> tuple[Session, User, Credential]:
    """Return the session, user and credential again, now that the password was right.

    Finishes the attempt as right, which clears the count of failed
    attempts (LK-3), inside ``uow``: run it within `settling`. Refuses
    (``password.changed_meanwhile``) when the password checked is no longer
    the current one.
    """
    session, user = signed_in(deps, uow, token, now, allow_expired_password=allow_expired_password)
    stored = uow.credentials.get(user.id)
    if stored is None or not hmac.compare_digest(
        stored.password_hash.encode(), checked.credential.password_hash.encode()
    ):
        raise InvalidState(
            "the password was changed meanwhile: sign in again",
            code="password.changed_meanwhile",
        )
    uow.sign_in_failures.finish(
        user.id, started=checked.started, outcome=attempt_outcome(matched=True, accepted=True)
    )
    return session, user, stored
