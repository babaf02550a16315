"""Sign-in, lockout, sessions and sign-out (LK-1..LK-8, PW-5, PW-7, DP-5, RC-4).

A sign-in takes two short units of work with the password check between
them, so that no database lock is held while argon2 runs:

1. look the user up and start the attempt with the store's atomic counter
   (LK-4): the user's, or for an email no account has, the counter of that
   email (`~securepractice.policy.lockout.email_lookup`); the number it
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

A right password is asked of the compromised-password source, when the
portal has one, between the two units (RC-4): a listed password is marked
compromised, and like an expired one (PW-5) it then signs in only as far as
the change of password. A source that cannot answer never blocks a right
password; a wrong one is never sent to it, so refusals are unchanged (LK-5).
"""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from securepractice.accounts._shared import (
    audit,
    duration_words,
    email_lookup,
    end_sessions,
    send_notice,
)
from securepractice.context import acting_on, current_request
from securepractice.dependencies import Dependencies, Service
from securepractice.errors import (
    Conflict,
    CorruptHash,
    InvalidState,
    InvalidToken,
    StorageError,
)
from securepractice.policy.compromised import CompromisedCheckFailed
from securepractice.policy.lockout import (
    AttemptDecision,
    Lock,
    attempt_decision,
    attempt_outcome,
    bounded_password,
    lock_after,
    lock_of,
    with_lock,
)
from securepractice.policy.password import (
    normalize_password,
    password_expired,
    too_long_to_check,
)
from securepractice.policy.sessions import (
    SESSION_ENDED_MESSAGE,
    SessionState,
    new_session,
    revoke,
    session_state,
    session_token_hash,
    touched,
)
from securepractice.records import Credential, Session, TokenPurpose, User, revised
from securepractice.secret import Secret
from securepractice.settings import SecondFactor
from securepractice.storage.ports import UnitOfWork
from securepractice.throttle import SignInThrottle
from securepractice.verification import tokens

__all__ = [
    "INVALID_CREDENTIALS_MESSAGE",
    "SECOND_FACTOR_MESSAGE",
    "Notices",
    "SessionStatus",
    "SignInOutcome",
    "SignInReason",
    "SignInResult",
    "lock_if_due",
    "open_session",
    "session_status",
    "sign_in",
    "sign_out",
    "signed_in",
    "tell_compromised",
    "tell_locked",
    "touch_session",
    "trusted_device",
]

#: The one public message of a refused sign-in: it names all three causes (LK-5).
INVALID_CREDENTIALS_MESSAGE = (
    "We could not sign you in. Check the email address and the password; "
    "if your account is locked, reset your password."
)


class SignInOutcome(enum.Enum):
    """What the caller may show (LK-5): the public outcomes of a sign-in.

    ``PASSWORD_EXPIRED`` (PW-5) and ``PASSWORD_COMPROMISED`` (RC-4) sign in
    only as far as the change of password: `SignInResult.must_change_password`.
    """

    OK = "ok"
    INVALID_CREDENTIALS = "invalid_credentials"
    PASSWORD_EXPIRED = "password_expired"
    PASSWORD_COMPROMISED = "password_compromised"
    SECOND_FACTOR_REQUIRED = "second_factor_required"
    SECOND_FACTOR_REFUSED = "second_factor_refused"


class SignInReason(enum.Enum):
    """Why a sign-in ended as it did: for logs and audit only, never for the user."""

    OK = "ok"
    PASSWORD_EXPIRED = "password_expired"
    PASSWORD_COMPROMISED = "password_compromised"
    SECOND_FACTOR_REQUIRED = "second_factor_required"
    UNKNOWN_USER = "unknown_user"
    NOT_REGISTERED = "not_registered"
    WRONG_PASSWORD = "wrong_password"
    PASSWORD_TOO_LONG = "password_too_long"
    LOCKED = "locked"
    TEMPORARILY_LOCKED = "temporarily_locked"
    DEACTIVATED = "deactivated"
    WRONG_CODE = "wrong_code"
    CODES_PAUSED = "codes_paused"
    CODES_STOPPED = "codes_stopped"
    THROTTLED = "throttled"


@attrs.frozen(kw_only=True)
class SignInResult:
    """The public outcome, its message, the true reason, and the token to hand the browser.

    A session token and the user's id are given for ``OK``, and for
    ``PASSWORD_EXPIRED`` and ``PASSWORD_COMPROMISED``, whose session reaches
    nothing but the change of password (PW-5, RC-4). When a second factor
    is due (MF-1), ``SECOND_FACTOR_REQUIRED`` gives instead a
    ``pending_token``, which opens nothing but the second-factor step and
    lapses after ``LinkRules.sign_in_lifetime``. A device the user chose to
    trust comes back as a ``device_token`` (MF-5). A refusal has none of
    them, so that it tells no more for a known email than for an unknown
    one (LK-5).
    """

    outcome: SignInOutcome
    reason: SignInReason
    message: str
    user_id: str | None = None
    session_token: Secret[str] | None = None
    pending_token: Secret[str] | None = None
    device_token: Secret[str] | None = None

    @property
    def ok(self) -> bool:
        """Whether the user is signed in with full access."""
        return self.outcome is SignInOutcome.OK

    @property
    def must_change_password(self) -> bool:
        """Whether the user is signed in for the change of password only (PW-5, RC-4)."""
        return self.outcome in _MUST_CHANGE_OUTCOMES


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
    for an email no user has, the email's key (`~securepractice.policy.lockout.email_lookup`).
    ``failures`` is what the start returned, ``started`` when it started.
    """

    user: User | None
    credential: Credential | None
    key: str
    failures: int
    started: datetime


@attrs.frozen
class _Screened:
    """What the compromised-password source said of a right password (RC-4).

    ``failure`` is the code of a source that could not answer, and
    ``error`` the kind of error it raised, for the audit log.
    """

    listed: bool
    failure: str | None = None
    error: str | None = None


#: The public outcome, message and error code of each reason to change the password first.
_MUST_CHANGE: dict[SignInReason, tuple[SignInOutcome, str, str]] = {
    SignInReason.PASSWORD_EXPIRED: (
        SignInOutcome.PASSWORD_EXPIRED,
        "Your password has expired: choose a new one to continue.",
        "password.expired",
    ),
    SignInReason.PASSWORD_COMPROMISED: (
        SignInOutcome.PASSWORD_COMPROMISED,
        "Your password is known to have been exposed: choose a new one to continue.",
        "password.compromised",
    ),
}
_MUST_CHANGE_OUTCOMES = frozenset(outcome for outcome, _, _ in _MUST_CHANGE.values())

#: Refusals that count as a wrong password, and so may lock the account (LK-1, IN-3).
_LOCKING = frozenset({SignInReason.WRONG_PASSWORD, SignInReason.PASSWORD_TOO_LONG})

#: Whether the password of a refusal matched, as `attempt_outcome` counts it: no password to
#: match (not registered) and a right one refused (the user gone meanwhile) count neither way.
_MATCHED: dict[SignInReason, bool | None] = {
    SignInReason.NOT_REGISTERED: None,
    SignInReason.TEMPORARILY_LOCKED: None,
    SignInReason.OK: True,
}
#: The message that asks for the second factor (MF-1).
SECOND_FACTOR_MESSAGE = "Enter a code to finish signing in."


def sign_in(
    service: Service,
    *,
    email: str,
    password: str,
    device_token: str | Secret[str] | None = None,
) -> SignInResult:
    """Sign in with an email and a password (LK-1..LK-5, LK-8, PW-5, PW-7, DP-5, IN-3, IN-4).

    When the settings ask for a second factor (MF-1), a right password
    gives a pending sign-in (``SECOND_FACTOR_REQUIRED``), finished by
    `~securepractice.accounts.second_factor.finish_sign_in`; under
    ``SecondFactor.NEW_DEVICE`` the ``device_token`` of a device the user
    trusted skips it (MF-5).

    A password too long to be anyone's is refused before it is normalised
    or hashed, as a wrong one. Raises `~securepractice.errors.InvalidInput`
    (``password.not_text``) for a password that is not text, before
    anything is counted; `~securepractice.errors.StorageError` when storage
    cannot be reached (nobody gets in, LK-8); and
    `~securepractice.errors.CorruptHash` when the stored hash is
    unreadable. Neither of the last two counts as a failure. A right
    password that the compromised-password source lists is marked
    compromised and signs in for the change of password only; the user is
    emailed (RC-4).
    """
    deps = service.deps
    too_long = too_long_to_check(password, deps.settings.password)
    now = deps.now()
    client = _throttled_client(deps)
    if client is not None and not client.allows(now):
        return _throttled(deps, now)
    attempt = _start_attempt(deps, email, now)
    reason, matched = _check(deps, attempt, password, too_long=too_long)
    new_hash = (
        _upgraded_hash(deps, attempt.credential, password)
        if matched and attempt.credential is not None
        else None
    )
    screened = _screen(deps, attempt.credential, password) if matched else None
    outcome = _Outcome(reason=reason, new_hash=new_hash, screened=screened, device=device_token)
    try:
        with deps.unit() as uow:
            result, notices = _record(deps, uow, attempt, outcome, now=now)
    except StorageError:
        # Once more in a fresh unit; a second failure reaches the caller, and
        # the attempt lapses after attempt_timeout (DP-5).
        with deps.unit() as uow:
            result, notices = _record(deps, uow, attempt, outcome, now=now)
    notices.send(deps)
    if client is not None and result.outcome is SignInOutcome.INVALID_CREDENTIALS:
        client.failed(now)
    return result


@attrs.frozen
class _Client:
    """The throttle, and the client address it counts this sign-in under (CX-3)."""

    throttle: SignInThrottle
    address: str

    def allows(self, now: datetime) -> bool:
        return self.throttle.allows(self.address, now=now)

    def failed(self, now: datetime) -> None:
        self.throttle.failed(self.address, now=now)


def _throttled_client(deps: Dependencies) -> _Client | None:
    """Return the throttle and the request's client address; None without either (CX-3)."""
    request = current_request()
    if deps.throttle is None or request is None or request.client_address is None:
        return None
    return _Client(deps.throttle, request.client_address)


def _throttled(deps: Dependencies, now: datetime) -> SignInResult:
    """Refuse a sign-in from a throttled address unchecked and uncounted, as LK-5 says (CX-3)."""
    with deps.unit() as uow:
        audit(uow, "sign_in.throttled", SignInReason.THROTTLED.value, at=now)
    return SignInResult(
        outcome=SignInOutcome.INVALID_CREDENTIALS,
        reason=SignInReason.THROTTLED,
        message=INVALID_CREDENTIALS_MESSAGE,
    )


def _start_attempt(deps: Dependencies, email: object, now: datetime) -> _Attempt:
    """First unit: find the user and start the attempt before any password check (LK-4).

    Every email makes the same three calls, an unknown or malformed one
    included (IN-4): the lookup (of the email's counter key when it is no
    address, which no user has), the credential, and the start, on the
    user's counter or on the email's.
    """
    address, unknown = email_lookup(deps.settings, email)
    # The attempt in flight need not survive a power cut: its finish is durable (DP-5).
    with deps.unit(durable=False) as uow:
        user = uow.users.get_by_email(address)
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
    decision = attempt_decision(
        lock=lock_of(user), failures=attempt.failures, rules=deps.settings.sign_in,
        now=attempt.started,
    )  # fmt: skip
    if decision is AttemptDecision.REFUSE_LOCKED:
        return SignInReason.LOCKED
    if decision is AttemptDecision.REFUSE_PAUSED:
        return SignInReason.TEMPORARILY_LOCKED
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


def _screen(deps: Dependencies, credential: Credential | None, password: str) -> _Screened | None:
    """Ask the compromised-password source about a right password, with no unit open (RC-4).

    None when there is no source, or the password is marked already. A
    source that cannot answer, whatever it raises, never blocks a right
    password: the failure is audited and the sign-in goes on.
    """
    source = deps.policy.compromised
    if source is None or credential is None or credential.compromised:
        return None
    try:
        return _Screened(listed=source.is_compromised(normalize_password(password)))
    except Exception as failure:  # noqa: BLE001 - a source of one's own may raise anything
        code = (
            failure.code
            if isinstance(failure, CompromisedCheckFailed)
            else "compromised.unavailable"
        )
        return _Screened(listed=False, failure=code, error=type(failure).__name__)


def _finish(uow: UnitOfWork, attempt: _Attempt, *, matched: bool | None, accepted: bool) -> int:
    """In ``uow``, finish the attempt of the first unit as `attempt_outcome` counts it.

    Returns the failures on record after it, on the attempt's counter.
    """
    outcome = attempt_outcome(matched=matched, accepted=accepted)
    return uow.sign_in_failures.finish(attempt.key, started=attempt.started, outcome=outcome)


@attrs.frozen
class _Outcome:
    """What was decided of an attempt between its two units, for the second to record."""

    reason: SignInReason
    new_hash: str | None
    screened: _Screened | None
    device: str | Secret[str] | None


@attrs.frozen
class Notices:
    """The emails a sign-in sends once its unit committed (RC-4, MF-6)."""

    compromised: User | None = None
    locked: User | None = None

    def send(self, deps: Dependencies) -> None:
        """Tell the user their password was marked compromised, or their account locked."""
        if self.compromised is not None:
            tell_compromised(deps, self.compromised)
        if self.locked is not None:
            tell_locked(deps, self.locked)


def _record(
    deps: Dependencies, uow: UnitOfWork, attempt: _Attempt, outcome: _Outcome, *, now: datetime
) -> tuple[SignInResult, Notices]:
    """Second unit: finish the attempt, lock at the threshold or let the user in, and audit.

    A refusal makes the same calls whether or not the email has an account
    (IN-4): the user (none, for an email's counter key), the finish, the
    audit event; and its result names no user (LK-5). A right password
    opens a session, or a pending sign-in when a second factor is due
    (MF-1). Returns the result and the emails to send after commit.
    """
    user = uow.users.get(attempt.key)
    reason = outcome.reason
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
        locked = None
        if user is not None and reason in _LOCKING:
            locked = lock_if_due(deps, uow, user, failures, now)
        audit(uow, "sign_in", reason.value, at=now, subject=user)
        return refused, Notices(locked=locked)
    credential = uow.credentials.get(user.id)
    if user.locked or credential is None:
        # The right password, refused by what changed meanwhile: not a failure (DP-5).
        _finish(uow, attempt, matched=True, accepted=False)
        late = SignInReason.LOCKED if user.locked else SignInReason.NOT_REGISTERED
        audit(uow, "sign_in", late.value, at=now, subject=user)
        return attrs.evolve(refused, reason=late), Notices()
    _finish(uow, attempt, matched=True, accepted=True)
    user = _run_ended(uow, user)
    screened = outcome.screened
    marking = screened is not None and screened.listed and not credential.compromised
    if attempt.credential == credential:
        credential = _renewed(
            uow, user, credential, new_hash=outcome.new_hash, mark=marking, now=now
        )
    if screened is not None and screened.failure is not None:
        audit(
            uow, "password.compromised_check_failed", screened.failure, at=now, actor=user,
            subject=user, error=str(screened.error),
        )  # fmt: skip
    notices = Notices(compromised=user if marking and credential.compromised else None)
    if _second_factor_due(deps, uow, user, outcome.device, now):
        return _pending(deps, uow, user, now), notices
    return open_session(deps, uow, user, credential, now), notices


def _run_ended(uow: UnitOfWork, user: User) -> User:
    """In ``uow``, clear a temporary lock's count after a right password (MF-7); return the user."""
    cleared = with_lock(user, Lock())
    if cleared is not user:
        uow.users.save(cleared, expected_version=user.version)
    return cleared


def _second_factor_due(
    deps: Dependencies,
    uow: UnitOfWork,
    user: User,
    device: str | Secret[str] | None,
    now: datetime,
) -> bool:
    """Whether a right password must be followed by a second factor (MF-1, MF-5).

    Always under ``SecondFactor.ALWAYS``; under ``NEW_DEVICE``, for a user
    with two-step verification on, unless ``device`` is a device they
    trusted that is still trusted.
    """
    rule = deps.settings.sign_in.second_factor
    if rule is SecondFactor.NEVER:
        return False
    if rule is SecondFactor.ALWAYS:
        return True
    return user.two_step_enabled and not trusted_device(uow, user, device, now)


def trusted_device(
    uow: UnitOfWork, user: User, device: str | Secret[str] | None, now: datetime
) -> bool:
    """Whether ``device`` is the token of a device ``user`` trusts still (MF-5)."""
    if device is None:
        return False
    try:
        record = uow.link_tokens.get(tokens.hash_token(device))
    except InvalidToken:
        return False
    purpose = TokenPurpose.TRUSTED_DEVICE
    return (
        record is not None
        and record.user_id == user.id
        and tokens.token_problem(device, record, purpose=purpose, now=now) is None
    )


def _pending(deps: Dependencies, uow: UnitOfWork, user: User, now: datetime) -> SignInResult:
    """In ``uow``, start a pending sign-in for ``user`` (MF-1).

    Earlier ones go on, as a user may sign in on two devices at once; each
    lapses soon, and guessing on all of them counts together (MF-8).
    """
    issued = tokens.issue_token(
        user_id=user.id, purpose=TokenPurpose.SIGN_IN, now=now, rules=deps.settings.links
    )
    uow.link_tokens.add(issued.record)
    reason = SignInReason.SECOND_FACTOR_REQUIRED
    audit(uow, "sign_in", reason.value, at=now, actor=user, subject=user)
    return SignInResult(
        outcome=SignInOutcome.SECOND_FACTOR_REQUIRED,
        reason=reason,
        message=SECOND_FACTOR_MESSAGE,
        user_id=user.id,
        pending_token=issued.token,
    )


def open_session(
    deps: Dependencies,
    uow: UnitOfWork,
    user: User,
    credential: Credential,
    now: datetime,
    *,
    device_token: Secret[str] | None = None,
    **detail: str,
) -> SignInResult:
    """In ``uow``, open a session for ``user``, who proved who they are; audit it with ``detail``.

    The session reaches only the change of password when the password has
    expired (PW-5) or is marked compromised (RC-4).
    """
    session = new_session(user_id=user.id, now=now, rules=deps.settings.sign_in)
    uow.sessions.add(session.record)
    due = _change_due(credential, now, deps)
    if due is not None:
        outcome, message, _code = _MUST_CHANGE[due]
        audit(uow, "sign_in", due.value, at=now, subject=user, **detail)
        return SignInResult(
            outcome=outcome,
            reason=due,
            message=message,
            user_id=user.id,
            session_token=session.token,
            device_token=device_token,
        )
    audit(uow, "sign_in", at=now, actor=user, subject=user, **detail)
    return SignInResult(
        outcome=SignInOutcome.OK,
        reason=SignInReason.OK,
        message="Signed in.",
        user_id=user.id,
        session_token=session.token,
        device_token=device_token,
    )


def _renewed(
    uow: UnitOfWork,
    user: User,
    credential: Credential,
    *,
    new_hash: str | None,
    mark: bool,
    now: datetime,
) -> Credential:
    """In ``uow``, save what a right password changes of its credential, and audit it.

    A hash made with the current parameters (PW-7), which keeps the
    password's mark, and the mark of a password the source lists (RC-4).
    Returns the credential as saved.
    """
    if new_hash is None and not mark:
        return credential
    hashed = credential.password_hash if new_hash is None else new_hash
    marked = mark or credential.compromised
    renewed = revised(credential, password_hash=hashed, compromised_hash=hashed if marked else None)
    uow.credentials.save(renewed, expected_version=credential.version)
    if new_hash is not None:
        audit(uow, "password.rehashed", at=now, actor=user, subject=user)
    if mark:
        audit(uow, "password.marked_compromised", at=now, actor=user, subject=user, by="sign_in")
    return renewed


def tell_compromised(deps: Dependencies, user: User) -> None:
    """Email ``user`` that their password was marked compromised (RC-4), once, after commit.

    The email holds no secret; a failed delivery is audited
    (``notice.failed``), not raised: the mark is made by then.
    """
    words = {"portal": deps.portal_name, "email": user.email}
    subject, body = deps.settings.messages.render_email("password_compromised", words)
    send_notice(deps, user, user.email, subject, body, notice="password_compromised")


def lock_if_due(
    deps: Dependencies, uow: UnitOfWork, user: User, failures: int, now: datetime
) -> User | None:
    """In ``uow``, lock ``user`` if a failed attempt left ``failures`` failures on record.

    Locks until a reset (LK-1), or under temporary lockout for a while
    (MF-7); `~securepractice.policy.lockout.lock_after` decides. A lock
    until reset ends every session of the user (LK-6); a temporary one,
    which anyone who knows the email can cause, does not. Audited. Returns
    the user as locked, to be told after commit (`tell_locked`, MF-6), or
    None. A wrong current password given to a profile action counts the
    same way (LK-4).
    """
    lock = lock_after(lock=lock_of(user), failures=failures, rules=deps.settings.sign_in, now=now)
    if lock is None:
        return None
    locked = with_lock(user, lock)
    uow.users.save(locked, expected_version=user.version)
    if lock.locked:
        revoked = end_sessions(uow, user.id)
        audit(uow, "account.locked", at=now, subject=user, sessions_revoked=str(revoked))
    else:
        until = lock.locked_until.isoformat() if lock.locked_until is not None else ""
        audit(uow, "account.locked", "temporary", at=now, subject=user, until=until)
    return locked


def tell_locked(deps: Dependencies, user: User) -> None:
    """Email ``user`` that their account locked, and the way back (MF-6); no secret in it."""
    messages = deps.settings.messages
    words = {"portal": deps.portal_name, "email": user.email}
    if user.locked or user.locked_until is None:
        subject, body = messages.render_email("account_locked", words)
    else:
        length = duration_words(user.locked_until - deps.now())
        subject, body = messages.render_email(
            "account_locked_temporarily", {**words, "length": length}
        )
    send_notice(deps, user, user.email, subject, body, notice="account_locked")


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
    """Return the status of a live session: whose, until when, and whether the password must change.

    It must when it has expired (PW-5) or is marked compromised (RC-4).
    """
    credential = uow.credentials.get(session.user_id)
    settings = deps.settings
    return SessionStatus(
        user_id=session.user_id,
        must_change_password=_change_due(credential, now, deps) is not None,
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
    a session that cannot be used, and `InvalidState` when the action is
    not the change of password and the password must change first:
    ``password.expired`` (PW-5) or ``password.compromised`` (RC-4).
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
    acting_on(user)
    if not allow_expired_password:
        due = _change_due(uow.credentials.get(user.id), now, deps)
        if due is not None:
            _outcome, message, code = _MUST_CHANGE[due]
            raise InvalidState(message, code=code)
    return _touch(uow, session, now=now, background=False), user


def _change_due(
    credential: Credential | None, now: datetime, deps: Dependencies
) -> SignInReason | None:
    """Return why the password must be changed before anything else, or None (PW-5, RC-4).

    A password marked compromised comes first: its message says more. A
    session without a credential reaches nothing but the setting of one.
    """
    if credential is not None and credential.compromised:
        return SignInReason.PASSWORD_COMPROMISED
    if credential is None or password_expired(credential.set_at, now, deps.settings.password):
        return SignInReason.PASSWORD_EXPIRED
    return None
