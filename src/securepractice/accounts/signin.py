"""Sign-in, lockout, sessions and sign-out (LK-1..LK-8, PW-5, PW-7, DP-5).

A sign-in takes two short units of work with the password check between
them, so that no database lock is held while argon2 runs:

1. look the user up and start the attempt with the store's atomic counter
   (LK-4): the user's, or for an email no account has, the counter of that
   email (`~securepractice.policy.lockout.email_counter_key`); the number it
   returns decides whether the password may be checked at all;
2. after the check, finish the attempt with its outcome: clear the failures
   and open a session (LK-3), or count a failure and lock the account at
   the fifth (LK-1), and audit it.

When the second unit fails it is tried once more in a fresh unit; when that
fails too the error reaches the caller and nobody is signed in (LK-8). The
attempt then stays in flight until ``SignInRules.attempt_timeout`` and
lapses: it never becomes a failure, so a right password typed during a
storage outage never counts toward lockout (DP-5).

Unknown emails, wrong passwords and locked accounts look the same to the
caller (LK-5) and cost the same work (IN-4): the same storage calls in both
units and one argon2 verification, of a bounded input, whatever the
password's length (IN-3). The true reason is in the result's ``reason`` and
in the audit log, for the operator.
"""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from securepractice.accounts._shared import audit, end_sessions
from securepractice.dependencies import Dependencies, Service
from securepractice.errors import (
    Conflict,
    CorruptHash,
    InvalidInput,
    InvalidState,
    InvalidToken,
    StorageError,
)
from securepractice.policy.identity import normalize_email
from securepractice.policy.lockout import (
    AttemptDecision,
    attempt_outcome,
    bounded_password,
    decide_attempt,
    email_counter_key,
    locks_now,
)
from securepractice.policy.password import password_expired, too_long_to_check
from securepractice.policy.sessions import (
    SESSION_ENDED_MESSAGE,
    SessionState,
    new_session,
    revoke,
    session_state,
    session_token_hash,
    touched,
)
from securepractice.records import Credential, Session, User, revised
from securepractice.secret import Secret
from securepractice.settings import Settings
from securepractice.storage.ports import UnitOfWork

__all__ = [
    "INVALID_CREDENTIALS_MESSAGE",
    "SessionStatus",
    "SignInOutcome",
    "SignInReason",
    "SignInResult",
    "lock_if_due",
    "session_status",
    "sign_in",
    "sign_out",
    "signed_in",
    "touch_session",
]

#: The one public message of a refused sign-in: it names all three causes (LK-5).
INVALID_CREDENTIALS_MESSAGE = (
    "We could not sign you in. Check the email address and the password; "
    "if your account is locked, reset your password."
)
_EXPIRED_MESSAGE = "Your password has expired: choose a new one to continue."


class SignInOutcome(enum.Enum):
    """What the caller may show (LK-5): the three public outcomes of a sign-in."""

    OK = "ok"
    INVALID_CREDENTIALS = "invalid_credentials"
    PASSWORD_EXPIRED = "password_expired"


class SignInReason(enum.Enum):
    """Why a sign-in ended as it did: for logs and audit only, never for the user."""

    OK = "ok"
    PASSWORD_EXPIRED = "password_expired"
    UNKNOWN_USER = "unknown_user"
    NOT_REGISTERED = "not_registered"
    WRONG_PASSWORD = "wrong_password"
    PASSWORD_TOO_LONG = "password_too_long"
    LOCKED = "locked"
    DEACTIVATED = "deactivated"


@attrs.frozen(kw_only=True)
class SignInResult:
    """The public outcome, its message, the true reason, and the session token if any.

    A session token and the user's id are given for ``OK`` and for
    ``PASSWORD_EXPIRED``; the latter session reaches nothing but the change
    of password (PW-5). A refusal has neither, so that it tells no more for
    a known email than for an unknown one (LK-5).
    """

    outcome: SignInOutcome
    reason: SignInReason
    message: str
    user_id: str | None = None
    session_token: Secret[str] | None = None

    @property
    def ok(self) -> bool:
        """Whether the user is signed in with full access."""
        return self.outcome is SignInOutcome.OK


@attrs.frozen(kw_only=True)
class SessionStatus:
    """A live session after a request: whose it is and until when it lasts."""

    user_id: str
    must_change_password: bool
    idle_until: datetime
    ends_at: datetime


@attrs.frozen
class _Attempt:
    """The user and credential found in the first unit, and the attempt started (LK-4, IN-4).

    ``key`` is the counter the attempt was started on: the user's id, or
    for an email no user has, the email's `email_counter_key`.
    ``failures`` is what the start returned, ``started`` when it started.
    """

    user: User | None
    credential: Credential | None
    key: str
    failures: int
    started: datetime


#: Refusals that count as a wrong password, and so may lock the account (LK-1, IN-3).
_LOCKING = frozenset({SignInReason.WRONG_PASSWORD, SignInReason.PASSWORD_TOO_LONG})

#: Whether the password of a refusal matched, as `attempt_outcome` counts it: no password to
#: match (not registered) and a right one refused (the user gone meanwhile) count neither way.
_MATCHED: dict[SignInReason, bool | None] = {
    SignInReason.NOT_REGISTERED: None,
    SignInReason.OK: True,
}


def _email_key(email: object) -> str | None:
    try:
        return normalize_email(email)  # type: ignore[arg-type]
    except InvalidInput:
        return None


def _counter_secret(settings: Settings) -> Secret[bytes]:
    """Return the secret that names the counters of unknown emails (IN-4).

    The portal secret; without one (a store in memory, DP-2) the code key,
    which then lives as long as the process, as the store does.
    """
    return settings.secret if settings.secret is not None else settings.verification.code_key


def sign_in(service: Service, *, email: str, password: str) -> SignInResult:
    """Sign in with an email and a password (LK-1..LK-5, LK-8, PW-5, PW-7, DP-5, IN-3, IN-4).

    A password too long to be anyone's is refused before it is normalised
    or hashed, as a wrong one. Raises `~securepractice.errors.InvalidInput`
    (``password.not_text``) for a password that is not text, before
    anything is counted; `~securepractice.errors.StorageError` when storage
    cannot be reached (nobody gets in, LK-8); and
    `~securepractice.errors.CorruptHash` when the stored hash is
    unreadable. Neither of the last two counts as a failure.
    """
    deps = service.deps
    too_long = too_long_to_check(password, deps.settings.password)
    now = deps.now()
    attempt = _start_attempt(deps, email, now)
    reason, matched = _check(deps, attempt, password, too_long=too_long)
    new_hash = (
        _upgraded_hash(deps, attempt.credential, password)
        if matched and attempt.credential is not None
        else None
    )
    try:
        with deps.unit() as uow:
            return _record(deps, uow, attempt, reason=reason, new_hash=new_hash, now=now)
    except StorageError:
        # Once more in a fresh unit; a second failure reaches the caller, and
        # the attempt lapses after attempt_timeout (DP-5).
        with deps.unit() as uow:
            return _record(deps, uow, attempt, reason=reason, new_hash=new_hash, now=now)


def _start_attempt(deps: Dependencies, email: object, now: datetime) -> _Attempt:
    """First unit: find the user and start the attempt before any password check (LK-4).

    Every email makes the same three calls, an unknown or malformed one
    included (IN-4): the lookup (of the email's counter key when it is no
    address, which no user has), the credential, and the start, on the
    user's counter or on the email's.
    """
    unknown = email_counter_key(email, _counter_secret(deps.settings))
    address = _email_key(email)
    with deps.unit() as uow:
        user = uow.users.get_by_email(unknown if address is None else address)
        key = unknown if user is None else user.id
        credential = uow.credentials.get(key)
        failures = uow.sign_in_failures.start(
            key, now=now, abandoned_before=now - deps.settings.sign_in.attempt_timeout
        )
    return _Attempt(user, credential, key, failures, now)


def _refusal(
    deps: Dependencies, attempt: _Attempt, user: User, *, too_long: bool
) -> SignInReason | None:
    """Return why the attempt on ``user``'s password is refused unchecked; None to check it."""
    if user.deactivated:
        return SignInReason.DEACTIVATED
    decision = decide_attempt(
        locked=user.locked, failures=attempt.failures, rules=deps.settings.sign_in
    )
    if decision is AttemptDecision.REFUSE_LOCKED:
        return SignInReason.LOCKED
    return SignInReason.PASSWORD_TOO_LONG if too_long else None


def _refuse(deps: Dependencies, password: str, reason: SignInReason) -> tuple[SignInReason, bool]:
    """Spend the dummy verification of a refusal, on `bounded_password` (LK-5, IN-3, IN-4)."""
    deps.hasher.dummy_verify(bounded_password(password, deps.settings.password))
    return reason, False


def _check(
    deps: Dependencies, attempt: _Attempt, password: str, *, too_long: bool
) -> tuple[SignInReason, bool]:
    """Check the password with no unit open; a refusal costs what a check costs (LK-5, IN-4)."""
    user, credential = attempt.user, attempt.credential
    if user is None or credential is None:
        unchecked = SignInReason.UNKNOWN_USER if user is None else SignInReason.NOT_REGISTERED
        return _refuse(deps, password, unchecked)
    refused = _refusal(deps, attempt, user, too_long=too_long)
    if refused is not None:
        return _refuse(deps, password, refused)
    try:
        matched = deps.hasher.verify(credential.password_hash, password)
    except CorruptHash:
        with deps.unit() as uow:
            _finish(uow, attempt, matched=None, accepted=False)
            audit(uow, "sign_in", "corrupt_hash", at=deps.now(), subject=user)
        raise
    return (SignInReason.OK if matched else SignInReason.WRONG_PASSWORD), matched


def _upgraded_hash(deps: Dependencies, credential: Credential, password: str) -> str | None:
    """Return a new hash when the stored one was made with other parameters (PW-7)."""
    hasher = deps.hasher
    return hasher.hash(password) if hasher.needs_rehash(credential.password_hash) else None


def _finish(uow: UnitOfWork, attempt: _Attempt, *, matched: bool | None, accepted: bool) -> int:
    """In ``uow``, finish the attempt of the first unit as `attempt_outcome` counts it.

    Returns the failures on record after it, on the attempt's counter.
    """
    outcome = attempt_outcome(matched=matched, accepted=accepted)
    return uow.sign_in_failures.finish(attempt.key, started=attempt.started, outcome=outcome)


def _record(
    deps: Dependencies,
    uow: UnitOfWork,
    attempt: _Attempt,
    *,
    reason: SignInReason,
    new_hash: str | None,
    now: datetime,
) -> SignInResult:
    """Second unit: finish the attempt, lock at the threshold or open a session, and audit.

    A refusal makes the same calls whether or not the email has an account
    (IN-4): the user (none, for an email's counter key), the finish, the
    audit event; and its result names no user (LK-5).
    """
    user = uow.users.get(attempt.key)
    refused = SignInResult(
        outcome=SignInOutcome.INVALID_CREDENTIALS,
        reason=reason,
        message=INVALID_CREDENTIALS_MESSAGE,
    )
    if user is None or reason is not SignInReason.OK:
        failures = _finish(uow, attempt, matched=_MATCHED.get(reason, False), accepted=False)
        # An attempt refused unchecked counts (LK-4) but does not lock: it may
        # be a right password that met attempts still in flight. One too long
        # to be anyone's password is a wrong one (IN-3).
        if user is not None and reason in _LOCKING:
            lock_if_due(deps, uow, user, failures, now)
        audit(uow, "sign_in", reason.value, at=now, subject=user)
        return refused
    credential = uow.credentials.get(user.id)
    if user.locked or credential is None:
        # The right password, refused by what changed meanwhile: not a failure (DP-5).
        _finish(uow, attempt, matched=True, accepted=False)
        late = SignInReason.LOCKED if user.locked else SignInReason.NOT_REGISTERED
        audit(uow, "sign_in", late.value, at=now, subject=user)
        return attrs.evolve(refused, reason=late)
    _finish(uow, attempt, matched=True, accepted=True)
    if new_hash is not None and attempt.credential == credential:
        uow.credentials.save(
            revised(credential, password_hash=new_hash), expected_version=credential.version
        )
        audit(uow, "password.rehashed", at=now, actor=user, subject=user)
    session = new_session(user_id=user.id, now=now, rules=deps.settings.sign_in)
    uow.sessions.add(session.record)
    if password_expired(credential.set_at, now, deps.settings.password):
        audit(uow, "sign_in", SignInReason.PASSWORD_EXPIRED.value, at=now, subject=user)
        return SignInResult(
            outcome=SignInOutcome.PASSWORD_EXPIRED,
            reason=SignInReason.PASSWORD_EXPIRED,
            message=_EXPIRED_MESSAGE,
            user_id=user.id,
            session_token=session.token,
        )
    audit(uow, "sign_in", at=now, actor=user, subject=user)
    return SignInResult(
        outcome=SignInOutcome.OK,
        reason=SignInReason.OK,
        message="Signed in.",
        user_id=user.id,
        session_token=session.token,
    )


def lock_if_due(
    deps: Dependencies, uow: UnitOfWork, user: User, failures: int, now: datetime
) -> None:
    """In ``uow``, lock ``user`` if a failed attempt left ``failures`` failures on record (LK-1).

    Locking ends every session of the user (LK-6) and is audited. A wrong
    current password given to a profile action counts the same way (LK-4).
    """
    if user.locked or not locks_now(failures=failures, rules=deps.settings.sign_in):
        return
    uow.users.save(revised(user, locked=True), expected_version=user.version)
    revoked = end_sessions(uow, user.id)
    audit(uow, "account.locked", at=now, subject=user, sessions_revoked=str(revoked))


def touch_session(
    service: Service, token: str | Secret[str], *, background: bool = False
) -> SessionStatus:
    """Record a request on a session and return its status (LK-6, LK-7).

    A request marked ``background`` (polling) does not extend the session.
    A session that is unknown, revoked, idle for ``idle_timeout`` or older
    than ``absolute_lifetime`` raises `InvalidToken` (``session.invalid``),
    one error whatever the reason; an ended session is revoked for good.
    """
    deps = service.deps
    now = deps.now()
    digest = session_token_hash(token)
    with deps.unit() as uow:
        session = uow.sessions.get(digest)
        state = (
            SessionState.REVOKED
            if session is None
            else session_state(session, now=now, rules=deps.settings.sign_in)
        )
        if session is None or state is not SessionState.ACTIVE:
            if session is not None and not session.revoked:
                uow.sessions.save(revoke(session), expected_version=session.version)
                audit(uow, "session.ended", state.value, at=now, actor=session.user_id)
            status = None
        else:
            session = _touch(uow, session, now=now, background=background)
            status = session_status(deps, uow, session, now)
    if status is None:
        raise InvalidToken(SESSION_ENDED_MESSAGE, code="session.invalid")
    return status


def _touch(uow: UnitOfWork, session: Session, *, now: datetime, background: bool) -> Session:
    """Save the session as `touched` decided; return it.

    When a simultaneous request on the same session saved first
    (`Conflict`), its write is kept and this one dropped: it recorded
    activity as recent, or ended the session after this request read it
    live, so this request is served as if it came first.
    """
    after = touched(session, now=now, background=background)
    if after.version != session.version:
        try:
            uow.sessions.save(after, expected_version=session.version)
        except Conflict:
            return session
    return after


def sign_out(service: Service, token: str | Secret[str]) -> None:
    """End the session; signing out of an ended or unknown session does nothing.

    Neither does signing out with something that cannot be a token at all
    (empty, too long, not text): there is no session to end.
    """
    deps = service.deps
    now = deps.now()
    try:
        digest = session_token_hash(token)
    except InvalidToken:
        return
    with deps.unit() as uow:
        session = uow.sessions.get(digest)
        if session is not None and not session.revoked:
            uow.sessions.save(revoke(session), expected_version=session.version)
            audit(uow, "sign_out", at=now, actor=session.user_id)


def session_status(
    deps: Dependencies, uow: UnitOfWork, session: Session, now: datetime
) -> SessionStatus:
    """Return the status of a live session: whose, until when, and whether the password expired."""
    credential = uow.credentials.get(session.user_id)
    settings = deps.settings
    return SessionStatus(
        user_id=session.user_id,
        must_change_password=credential is None
        or password_expired(credential.set_at, now, settings.password),
        idle_until=session.last_active_at + settings.sign_in.idle_timeout,
        ends_at=session.created_at + settings.sign_in.absolute_lifetime,
    )


def signed_in(
    deps: Dependencies,
    uow: UnitOfWork,
    token: str | Secret[str],
    now: datetime,
    *,
    allow_expired_password: bool = False,
) -> tuple[Session, User]:
    """Return the live session behind ``token`` and its user, inside ``uow``, and touch it.

    For services that act for a signed-in user. Raises `InvalidToken` for
    a session that cannot be used, and `InvalidState`
    (``password.expired``) when the password has expired and the action
    is not the change of password (PW-5).
    """
    session = uow.sessions.get(session_token_hash(token))
    settings = deps.settings
    user = uow.users.get(session.user_id) if session is not None else None
    if (
        session is None
        or user is None
        or user.locked
        or user.deactivated
        or session_state(session, now=now, rules=settings.sign_in) is not SessionState.ACTIVE
    ):
        raise InvalidToken(SESSION_ENDED_MESSAGE, code="session.invalid")
    if not allow_expired_password and session_status(deps, uow, session, now).must_change_password:
        raise InvalidState(_EXPIRED_MESSAGE, code="password.expired")
    return _touch(uow, session, now=now, background=False), user
