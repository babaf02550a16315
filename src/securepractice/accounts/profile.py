"""What a signed-in user changes on their own account (PW-5, PW-6, LK-6, PF-1, PF-3, PF-4, VF-9).

Change of password, of profile fields, of email address and of phone number,
and turning two-step verification off or on. Every action acts on the user
of the session given, and on nobody else: there is no way here for anyone to
set another user's password (PW-9).

The actions that need the current password (changing the password, the
email address or a phone number) check it the way sign-in does, so that a
stolen session is not a way around lockout (LK-1, LK-4): the attempt is
started with the store's atomic counter first, the password is verified
between two short units of work (no write lock is held while argon2 runs),
a wrong password is recorded as a failed sign-in and locks the account at
the threshold, and a right one clears the count in the action's own unit.
That unit checks that the password did not change meanwhile before it
writes anything; when it fails, the attempt is finished as not counted in a
fresh unit, or lapses, so a right password never counts (DP-5).
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import zoneinfo
from collections.abc import Callable, Iterator
from datetime import datetime
from string import Template
from typing import Any

import attrs

from securepractice.accounts._shared import (
    audit,
    deliver_code,
    end_sessions,
    enter_code,
    retry_on_conflict,
    save_issued,
    send_email,
    supersede_links,
)
from securepractice.accounts.signin import lock_if_due, signed_in
from securepractice.accounts.verification import cancel_open_verification
from securepractice.dependencies import Dependencies, Service
from securepractice.errors import (
    AlreadyExists,
    CorruptHash,
    DeliveryFailed,
    InvalidInput,
    InvalidState,
    StorageError,
)
from securepractice.policy import text
from securepractice.policy.identity import normalize_email
from securepractice.policy.lockout import (
    AttemptDecision,
    attempt_outcome,
    bounded_password,
    decide_attempt,
)
from securepractice.policy.password import (
    PasswordReport,
    Violation,
    require_password_text,
    too_long_to_check,
)
from securepractice.policy.sessions import new_session
from securepractice.policy.text import MAX_NAME_LENGTH
from securepractice.records import (
    Challenge,
    Credential,
    DeliveryMethod,
    Phone,
    PhoneKind,
    Purpose,
    Session,
    TokenPurpose,
    User,
    revised,
)
from securepractice.secret import Secret
from securepractice.storage.ports import UnitOfWork
from securepractice.verification import codes
from securepractice.verification.codes import CodeIssued, VerifyResult
from securepractice.verification.phones import DeliveryOption, delivery_options, parse_phone

__all__ = [
    "CURRENT_PASSWORD_WRONG",
    "MAX_ADA_NUMBER_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_SPECIALTIES",
    "MAX_SPECIALTY_LENGTH",
    "ChangePasswordResult",
    "change_email",
    "change_password",
    "resend_phone_code",
    "set_two_step",
    "start_phone_change",
    "update_profile",
    "verify_phone_code",
]

#: The longest ADA number kept.
MAX_ADA_NUMBER_LENGTH = 20
#: How many specialties a profile may list, and how long each may be.
MAX_SPECIALTIES = 20
MAX_SPECIALTY_LENGTH = 100
#: The longest IANA time zone name is 32 characters; longer input is not looked up.
_MAX_TIME_ZONE_LENGTH = 64
#: Names `zoneinfo.available_timezones` may list that are not a place's zone.
_NOT_A_PLACE = frozenset({"Factory", "localtime", "posixrules"})
#: The text and the call script of a new number's code; `deliver_code` fills them in.
_SMS = Template(
    "$code is your code to confirm this phone number for $portal. It expires in $lifetime."
)
_VOICE = Template("Your code to confirm this phone number for $portal is $spoken. Again: $spoken.")

#: The violation a change of password reports when the current password is wrong (PW-6).
CURRENT_PASSWORD_WRONG = Violation(
    "password.current_wrong",
    "Your current password is not right. Repeated wrong entries lock your account.",
)


@attrs.frozen(kw_only=True)
class ChangePasswordResult:
    """The outcome of a change of password: every violation, and the new session's token.

    On success the session used is replaced by one with a new token (LK-6):
    hand ``session_token`` to the browser, the old token no longer works.
    """

    report: PasswordReport
    session_token: Secret[str] | None = None

    @property
    def ok(self) -> bool:
        """Whether the password was changed."""
        return self.session_token is not None


@attrs.frozen
class _Recheck:
    """A current password checked outside any unit of work, and what it was checked against.

    ``started`` is when the attempt was started in the store (LK-4).
    """

    user: User
    credential: Credential
    matched: bool
    started: datetime


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) - _NOT_A_PLACE


def _time_zone(value: object) -> str | None:
    name = text.require_text(value, field="time_zone").strip()
    if not name:
        return None
    if len(name) > _MAX_TIME_ZONE_LENGTH or name not in _time_zones():
        raise InvalidInput(
            "the time zone must be an IANA time zone name such as America/New_York",
            field="time_zone",
            code="profile.unknown_time_zone",
        )
    return name


def _ada_number(value: object) -> str | None:
    number = text.line(value, field="ada_number", max_length=MAX_ADA_NUMBER_LENGTH)
    if not number:
        return None
    if not all(c.isascii() and (c.isalnum() or c == "-") for c in number):
        raise InvalidInput(
            "the ADA number may hold only letters, digits and hyphens",
            field="ada_number",
            code="profile.ada_number_invalid",
        )
    return number


def _specialties(value: object) -> tuple[str, ...]:
    if not isinstance(value, (tuple, list)):
        raise InvalidInput(
            f"specialties must be a tuple or list of text, not {type(value).__name__}",
            field="specialties",
            code="profile.not_a_list",
        )
    items: tuple[object, ...] = tuple(value)
    if len(items) > MAX_SPECIALTIES:
        raise InvalidInput(
            f"list at most {MAX_SPECIALTIES} specialties",
            field="specialties",
            code="profile.too_many",
        )
    kept: dict[str, str] = {}
    for item in items:
        specialty = text.line(
            item, field="specialties", max_length=MAX_SPECIALTY_LENGTH, required=True
        )
        kept.setdefault(specialty.casefold(), specialty)
    return tuple(kept.values())


def _with_phone(phones: tuple[Phone, ...], new: Phone) -> tuple[Phone, ...]:
    """Return ``phones`` with the number of ``new``'s kind replaced, in place; the other kept."""
    kept = [new if phone.kind is new.kind else phone for phone in phones]
    if new not in kept:
        kept.append(new)
    return tuple(dict.fromkeys(kept))


# Change of password (PW-4..PW-6, LK-6).


def change_password(
    service: Service,
    token: str | Secret[str],
    *,
    current_password: str,
    new_password: str,
    confirmation: str,
) -> ChangePasswordResult:
    """Set a new password after checking the current one (PW-6, PW-1..PW-4).

    Works with a session whose password has expired: that is how such a
    user gets back in (PW-5). A refusal is a value: the report lists
    every violation, ``password.current_wrong`` among them. On success
    every session of the user is revoked and the current one continues
    with a new token, returned in the result (LK-6); the user is emailed.
    """
    for value, field in (
        (current_password, "current_password"),
        (new_password, "new_password"),
        (confirmation, "confirmation"),
    ):
        require_password_text(value, field=field)
    deps = service.deps
    now = deps.now()
    recheck = _recheck(deps, token, current_password, now, purpose="change_password")
    if not recheck.matched:
        # No history check without the current password: it would let a
        # session's thief test guesses of the user's old passwords.
        shape = deps.policy.check(new_password, confirmation)
        return ChangePasswordResult(
            report=PasswordReport((CURRENT_PASSWORD_WRONG, *shape.violations))
        )
    checked = recheck.credential
    report = deps.policy.check(
        new_password,
        confirmation,
        history=(checked.password_hash, *checked.history),
        hasher=deps.hasher,
    )
    new_hash = deps.hasher.hash(new_password) if report.ok else None
    with _settling(deps, recheck), deps.unit() as uow:
        session, user, credential = _proven(
            deps, uow, token, now, recheck, allow_expired_password=True
        )
        if new_hash is None:
            audit(
                uow,
                "password.change_refused",
                "policy",
                at=now,
                actor=user,
                subject=user,
                violations=",".join(report.codes),
            )
            return ChangePasswordResult(report=report)
        renewed = _replace_credential(
            deps, uow, user, credential=credential, new_hash=new_hash, session=session, now=now
        )
    _notify(
        deps,
        user,
        user.email,
        "Your password was changed",
        f"The password of your {deps.portal_name} account was changed. If you did not "
        "change it, reset your password now and contact support.",
        notice="password_changed",
    )
    return ChangePasswordResult(report=report, session_token=renewed)


def _replace_credential(
    deps: Dependencies,
    uow: UnitOfWork,
    user: User,
    *,
    credential: Credential,
    new_hash: str,
    session: Session,
    now: datetime,
) -> Secret[str]:
    """Store the new hash, end every session, and continue the current one under a new token."""
    settings = deps.settings
    kept = max(settings.password.history - 1, 0)
    uow.credentials.save(
        revised(
            credential,
            password_hash=new_hash,
            set_at=now,
            history=(credential.password_hash, *credential.history)[:kept],
        ),
        expected_version=credential.version,
    )
    revoked = end_sessions(uow, user.id)
    superseded = supersede_links(uow, user.id, TokenPurpose.PASSWORD_RESET)
    renewed = new_session(user_id=user.id, now=now, rules=settings.sign_in)
    # The session continues: it keeps its start, so the absolute lifetime
    # (LK-7) is not extended by a change of password.
    uow.sessions.add(attrs.evolve(renewed.record, created_at=session.created_at))
    audit(
        uow,
        "password.changed",
        at=now,
        actor=user,
        subject=user,
        sessions_revoked=str(revoked),
        reset_links_voided=str(superseded),
    )
    return renewed.token


# Profile fields (PF-1).


def update_profile(
    service: Service,
    token: str | Secret[str],
    *,
    first_name: str | None = None,
    last_name: str | None = None,
    time_zone: str | None = None,
    ada_number: str | None = None,
    specialties: tuple[str, ...] | None = None,
) -> User:
    """Change the fields given (None leaves a field as it is) and return the user (PF-1).

    Names are checked as every text the library takes
    (`securepractice.policy.text.name`, IN-1): trimmed, in NFC form, at most
    `MAX_NAME_LENGTH` characters, without control, invisible or direction
    characters; the first name may not be empty. The
    time zone is an IANA name ``zoneinfo`` knows; an empty string clears
    it, and clears the ADA number. Specialties are a tuple (or list) of at
    most `MAX_SPECIALTIES` short texts, duplicates dropped. A bad value
    raises `InvalidInput` naming its field, and nothing changes.
    """
    changes: dict[str, Any] = {}
    if first_name is not None:
        changes["first_name"] = text.name(first_name, field="first_name")
    if last_name is not None:
        changes["last_name"] = text.name(last_name, field="last_name", required=False)
    if time_zone is not None:
        changes["time_zone"] = _time_zone(time_zone)
    if ada_number is not None:
        changes["ada_number"] = _ada_number(ada_number)
    if specialties is not None:
        changes["specialties"] = _specialties(specialties)
    return _change_own(service.deps, token, changes, "profile.changed")


def set_two_step(service: Service, token: str | Secret[str], *, enabled: bool) -> User:
    """Turn the user's own two-step verification on or off (PF-3, VF-9).

    The flag is the user's and stays as set through changes and resets of
    the password.
    """
    if not isinstance(enabled, bool):
        raise InvalidInput(
            f"enabled must be True or False, not {type(enabled).__name__}",
            field="enabled",
            code="profile.not_bool",
        )
    return _change_own(
        service.deps,
        token,
        {"two_step_enabled": enabled},
        "two_step.toggled",
        enabled="on" if enabled else "off",
    )


def _change_own(
    deps: Dependencies,
    token: str | Secret[str],
    changes: dict[str, Any],
    action: str,
    **detail: str,
) -> User:
    """Apply ``changes`` to the session's user; audit ``action`` naming the fields changed.

    Values equal to the stored ones are no change: when nothing changes,
    nothing is written or audited.
    """
    now = deps.now()
    with deps.unit() as uow:
        _session, user = signed_in(deps, uow, token, now)
        changed = {name: value for name, value in changes.items() if getattr(user, name) != value}
        if changed:
            before = user
            user = revised(before, **changed)
            uow.users.save(user, expected_version=before.version)
            audit(
                uow,
                action,
                at=now,
                actor=user,
                subject=user,
                fields=",".join(sorted(changed)),
                **detail,
            )
    return user


# Email address (PF-4).


def change_email(
    service: Service, token: str | Secret[str], *, current_password: str, new_email: str
) -> User:
    """Change the user's email address (their username) after checking the password (PF-4).

    The address is normalised (ID-1) and must not be another user's
    (`AlreadyExists`, ``user.email_taken``); outstanding reset links,
    which went to the old address, stop working. Both the old and the
    new address are told. A wrong password raises `InvalidInput`
    (``password.current_wrong``) and counts toward lockout.
    """
    require_password_text(current_password, field="current_password")
    email = normalize_email(new_email)
    deps = service.deps
    now = deps.now()
    recheck = _recheck(deps, token, current_password, now, purpose="change_email")
    _require_match(recheck)
    taken = False
    with _settling(deps, recheck), deps.unit() as uow:
        _session, user, _credential = _proven(deps, uow, token, now, recheck)
        old_email = user.email
        other = uow.users.get_by_email(email)
        if other is not None and other.id != user.id:
            taken = True
            audit(uow, "email.change_refused", "email_taken", at=now, actor=user, subject=user)
        elif email != old_email:
            before = user
            user = revised(before, email=email)
            uow.users.save(user, expected_version=before.version)
            supersede_links(uow, user.id, TokenPurpose.PASSWORD_RESET)
            audit(uow, "email.changed", at=now, actor=user, subject=user)
    if taken:
        raise AlreadyExists(
            "This email address belongs to another account.", code="user.email_taken"
        )
    if email != old_email:
        portal = deps.portal_name
        for address in (old_email, email):
            _notify(
                deps,
                user,
                address,
                "Your email address was changed",
                f"The email address of your {portal} account was changed, and this is "
                "the address you now sign in with. If you did not change it, contact "
                "support."
                if address == email
                else f"The email address of your {portal} account was changed to another "
                "address. If you did not change it, contact support.",
                notice="email_changed",
            )
    return user


# Phone numbers (PF-4, VF-5, VF-7, VF-10).


def start_phone_change(
    service: Service,
    token: str | Secret[str],
    *,
    current_password: str,
    kind: PhoneKind,
    number: str,
    option_method: DeliveryMethod,
) -> None:
    """Start replacing the user's ``kind`` number: send a code to the new number (PF-4).

    The new number is used for nothing until `verify_phone_code` accepts
    the code sent to it; until then the user's numbers are unchanged.
    ``option_method`` must be one the new number allows (VF-2). An
    earlier unfinished change is cancelled. The send limit applies
    (VF-8). When delivery fails the code is void and `DeliveryFailed`
    reaches the caller (VF-10); `resend_phone_code` may then try again.
    """
    require_password_text(current_password, field="current_password")
    if not isinstance(kind, PhoneKind):
        raise InvalidInput(
            "kind must be PhoneKind.PHONE or PhoneKind.CELL", field="kind", code="phone.kind"
        )
    if not isinstance(option_method, DeliveryMethod):
        raise InvalidInput(
            "option_method must be DeliveryMethod.SMS or DeliveryMethod.VOICE",
            field="method",
            code="verification.option_not_offered",
        )
    deps = service.deps
    rules = deps.settings.verification
    phone = parse_phone(number, kind=kind, region=rules.default_region)
    offered = delivery_options([phone])
    option = DeliveryOption(method=option_method, destination=phone.number, kind=kind)
    if option not in offered:
        raise InvalidInput(
            "this number cannot receive a code that way: choose a voice call"
            if option_method is DeliveryMethod.SMS
            else "this number cannot receive a code that way",
            field="method",
            code="verification.option_not_offered",
        )

    def require_new(user: User) -> None:
        if phone in user.phones:
            raise InvalidInput(
                "this is already your number", field=kind.value, code="phone.unchanged"
            )

    now = deps.now()
    recheck = _recheck(
        deps, token, current_password, now, purpose="change_phone", precheck=require_new
    )
    _require_match(recheck)

    def issue() -> tuple[User, codes.CodeIssued]:
        with deps.unit() as uow:
            _session, user, _credential = _proven(deps, uow, token, now, recheck)
            cancel_open_verification(uow, user.id, Purpose.NEW_PHONE)
            issued = codes.issue(
                user_id=user.id,
                purpose=Purpose.NEW_PHONE,
                option=option,
                offered=offered,
                ledger=uow.code_sends.get(user.id),
                now=now,
                rules=rules,
                phone_kind=kind,
            )
            save_issued(uow, issued, previous=None)
            _audit_send(uow, user, issued.challenge, now)
        return user, issued

    with _settling(deps, recheck):
        user, issued = retry_on_conflict(issue)
    _send_code(deps, user, issued)


def resend_phone_code(service: Service, token: str | Secret[str]) -> None:
    """Send a new code for the phone change under way; the previous one dies at once (VF-5).

    Raises `InvalidState` when no change is under way
    (``verification.not_started``) or it is finished or void
    (``verification.not_active``).
    """
    deps = service.deps

    def issue() -> tuple[User, codes.CodeIssued]:
        now = deps.now()
        with deps.unit() as uow:
            _session, user = signed_in(deps, uow, token, now)
            challenge = _phone_challenge(uow, user)
            issued = codes.resend(
                challenge,
                ledger=uow.code_sends.get(user.id),
                now=now,
                rules=deps.settings.verification,
            )
            save_issued(uow, issued, previous=challenge)
            _audit_send(uow, user, issued.challenge, now)
        return user, issued

    user, issued = retry_on_conflict(issue)
    _send_code(deps, user, issued)


def verify_phone_code(
    service: Service, token: str | Secret[str], *, code: str | Secret[str]
) -> VerifyResult:
    """Check the code sent to the new number; when right, the number replaces the old one.

    A code works once, for this user's phone change only; wrong entries
    count, and at the limit the change is void (VF-7). The outcome is a
    value (`~securepractice.verification.codes.VerifyOutcome`); on success
    the user is emailed a notice.
    """
    deps = service.deps

    def entry() -> tuple[VerifyResult, User]:
        now = deps.now()
        with deps.unit() as uow:
            _session, user = signed_in(deps, uow, token, now)
            result = enter_code(
                uow,
                _phone_challenge(uow, user),
                code,
                user=user,
                purpose=Purpose.NEW_PHONE,
                now=now,
                rules=deps.settings.verification,
            )
            if result.verified:
                user = _install_phone(uow, user, result.challenge, now)
        return result, user

    result, user = retry_on_conflict(entry)
    if result.verified:
        _notify(
            deps,
            user,
            user.email,
            "Your phone number was changed",
            f"A phone number of your {deps.portal_name} account was changed and "
            "verified. If you did not change it, contact support.",
            notice="phone_changed",
        )
    return result


def _phone_challenge(uow: UnitOfWork, user: User) -> Challenge:
    """Return the user's phone change: their latest new-phone verification."""
    challenge = uow.challenges.latest(user.id, Purpose.NEW_PHONE)
    if challenge is None:
        raise InvalidState(
            "no change of phone number is under way: start one first",
            code="verification.not_started",
        )
    return challenge


def _install_phone(uow: UnitOfWork, user: User, challenge: Challenge, now: datetime) -> User:
    """Put the verified number in its field, in place of the user's number of that kind."""
    if challenge.phone_kind is None:
        raise InvalidState(
            "this verification does not say which number it is for",
            code="verification.no_phone_kind",
        )
    new = Phone(number=challenge.destination, kind=challenge.phone_kind)
    changed = revised(user, phones=_with_phone(user.phones, new))
    uow.users.save(changed, expected_version=user.version)
    audit(uow, "phone.changed", at=now, actor=changed, subject=changed, kind=new.kind.value)
    return changed


def _audit_send(uow: UnitOfWork, user: User, challenge: Challenge, now: datetime) -> None:
    """Audit a code sent; `save_issued` counted it toward the send limit (VF-8)."""
    audit(
        uow,
        "code.sent",
        at=now,
        actor=user,
        subject=user,
        purpose=challenge.purpose.value,
        method=challenge.method.value,
    )


def _send_code(deps: Dependencies, user: User, issued: CodeIssued) -> None:
    """Send the code by SMS or voice after commit; a failed delivery voids it (VF-10)."""
    deliver_code(deps, user, issued, sms=_SMS, voice=_VOICE)


# The current password, checked as a sign-in attempt (PW-6, PF-4, LK-1, LK-4).


def _recheck(
    deps: Dependencies,
    token: str | Secret[str],
    password: str,
    now: datetime,
    *,
    purpose: str,
    precheck: Callable[[User], None] | None = None,
) -> _Recheck:
    """Start an attempt, then verify ``password`` with no unit of work open.

    A wrong password is recorded (and locks at the threshold) in a unit of
    its own, tried once more when it fails; a right one is recorded by
    `_proven`. ``precheck`` refuses the action before anything is counted.
    A password too long to be anyone's is wrong, refused before it is
    normalised or hashed (IN-3).
    """
    too_long = too_long_to_check(password, deps.settings.password)
    allow_expired = purpose == "change_password"
    with deps.unit() as uow:
        _session, user = signed_in(deps, uow, token, now, allow_expired_password=allow_expired)
        credential = uow.credentials.get(user.id)
        if credential is None:
            raise InvalidState("this account has no password yet", code="password.not_set")
        if precheck is not None:
            precheck(user)
        failures = uow.sign_in_failures.start(
            user.id, now=now, abandoned_before=now - deps.settings.sign_in.attempt_timeout
        )
    hasher = deps.hasher
    decision = decide_attempt(locked=user.locked, failures=failures, rules=deps.settings.sign_in)
    if too_long or decision is AttemptDecision.REFUSE_LOCKED:
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
        try:
            _record_wrong(deps, user, now, purpose=purpose)
        except StorageError:
            _record_wrong(deps, user, now, purpose=purpose)
    return _Recheck(user, credential, matched, now)


def _record_wrong(deps: Dependencies, user: User, started: datetime, *, purpose: str) -> None:
    """In a unit of its own, count the wrong current password and lock at the threshold (LK-1)."""
    with deps.unit() as uow:
        failures = uow.sign_in_failures.finish(
            user.id, started=started, outcome=attempt_outcome(matched=False, accepted=False)
        )
        current = uow.users.get(user.id)
        if current is not None:
            lock_if_due(deps, uow, current, failures, started)
        audit(
            uow,
            "password.recheck",
            "wrong_password",
            at=started,
            actor=user,
            subject=user,
            purpose=purpose,
        )


@contextlib.contextmanager
def _settling(deps: Dependencies, recheck: _Recheck) -> Iterator[None]:
    """Around the unit that acts on a right password: if it fails, the attempt does not count.

    `_proven` clears the failures in that unit; when the unit fails (storage,
    a send limit, a session ended meanwhile) that is rolled back, so the
    attempt is finished here as not counted, in a fresh unit (DP-5). If
    that fails too, the attempt lapses after ``attempt_timeout``.
    """
    try:
        yield
    except Exception:
        with contextlib.suppress(StorageError), deps.unit() as uow:
            uow.sign_in_failures.finish(
                recheck.user.id,
                started=recheck.started,
                outcome=attempt_outcome(matched=True, accepted=False),
            )
        raise


def _require_match(recheck: _Recheck) -> None:
    """Refuse the action when the current password given was wrong (PW-6)."""
    if not recheck.matched:
        raise InvalidInput(
            CURRENT_PASSWORD_WRONG.message,
            field="current_password",
            code=CURRENT_PASSWORD_WRONG.code,
        )


def _proven(
    deps: Dependencies,
    uow: UnitOfWork,
    token: str | Secret[str],
    now: datetime,
    recheck: _Recheck,
    *,
    allow_expired_password: bool = False,
) -> tuple[Session, User, Credential]:
    """Return the session, user and credential again, now that the password was right.

    Finishes the attempt as right, which clears the count of failed
    attempts (LK-3), inside ``uow``: run it within `_settling`. Refuses
    (``password.changed_meanwhile``) when the password checked is no longer
    the current one.
    """
    session, user = signed_in(deps, uow, token, now, allow_expired_password=allow_expired_password)
    stored = uow.credentials.get(user.id)
    if stored is None or not hmac.compare_digest(
        stored.password_hash.encode(), recheck.credential.password_hash.encode()
    ):
        raise InvalidState(
            "the password was changed meanwhile: sign in again",
            code="password.changed_meanwhile",
        )
    uow.sign_in_failures.finish(
        user.id, started=recheck.started, outcome=attempt_outcome(matched=True, accepted=True)
    )
    return session, user, stored


def _notify(
    deps: Dependencies, user: User, to: str, subject: str, body: str, *, notice: str
) -> None:
    """Email a notice of a change already made; a failed delivery is audited, not raised.

    The change is committed by then, so an error would tell the caller it
    failed when it did not (and, for a change of password, lose the new
    session token).
    """
    try:
        send_email(deps, to, subject, body)
    except DeliveryFailed as failure:
        with deps.unit() as uow:
            audit(
                uow,
                "notice.failed",
                failure.code,
                at=deps.now(),
                subject=user,
                notice=notice,
            )
