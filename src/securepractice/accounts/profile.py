"""What a signed-in user changes on their own account (PW-5, PW-6, LK-6, PF-1, PF-3, PF-4, VF-9).

Change of password, of profile fields, of email address (confirmed from the
new address, RC-1) and of phone number, turning two-step verification off
(with the password and a code, RC-2) or on, and the user's own sessions:
listed, and ended one by one or all but the current one (RC-5). Every action
acts on the user of the session given, and on nobody else: there is no way
here for anyone to set another user's password (PW-9).

The actions that need the current password (changing the password, the
email address or a phone number, turning two-step verification off, ending
sessions) check it the way sign-in does, with the re-check of
`securepractice.accounts._recheck` that the second factors' actions share,
so that a stolen session is not a way around lockout (LK-1, LK-4): the attempt is
started with the store's atomic counter first, the password is verified
between two short units of work (no write lock is held while argon2 runs),
a wrong password is recorded as a failed sign-in and locks the account at
the threshold, and a right one clears the count in the action's own unit.
That unit checks that the password did not change meanwhile before it
writes anything; when it fails, the attempt is finished as not counted in a
fresh unit, or lapses, so a right password never counts (DP-5).
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import datetime
from typing import Any

import attrs

from securepractice.accounts import _recheck
from securepractice.accounts._recheck import CURRENT_PASSWORD_WRONG
from securepractice.accounts._shared import (
    CodeEntry,
    audit,
    deliver_code,
    deliver_or_record,
    duration_words,
    end_sessions,
    enter_code,
    ledger_for_send,
    require_optional_two_step,
    retry_on_conflict,
    save_issued,
    send_email,
    send_guess_notices,
    send_notice,
    supersede_links,
    switch_two_step,
)
from securepractice.accounts.signin import signed_in
from securepractice.accounts.verification import (
    cancel_open_verification,
    link_unit,
    record_delivery_failure,
    refuse_link,
    use_link,
)
from securepractice.dependencies import Dependencies, Service
from securepractice.errors import (
    AlreadyExists,
    InvalidInput,
    InvalidState,
    NotFound,
)
from securepractice.policy import text
from securepractice.policy.identity import normalize_email
from securepractice.policy.password import (
    PasswordReport,
    require_password_text,
)
from securepractice.policy.sessions import SessionState, new_session, revoke, session_state
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
from securepractice.verification import codes, tokens
from securepractice.verification.codes import CodeIssued, VerifyOutcome, VerifyResult
from securepractice.verification.phones import DeliveryOption, delivery_options, parse_phone

__all__ = [
    "CURRENT_PASSWORD_WRONG",
    "MAX_ADA_NUMBER_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_SPECIALTIES",
    "MAX_SPECIALTY_LENGTH",
    "ChangePasswordResult",
    "SessionInfo",
    "change_email",
    "change_password",
    "confirm_email_change",
    "end_other_sessions",
    "end_session",
    "list_sessions",
    "resend_phone_code",
    "resend_two_step_off_code",
    "send_two_step_off_code",
    "set_two_step",
    "start_phone_change",
    "two_step_off_options",
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
#: The messages (`MessageTemplates`) of a new number's code, as a text and as a call.
_SMS = "new_phone_code_text"
_VOICE = "new_phone_code_call"
#: The messages of the code that turns two-step verification off (RC-2).
_OFF_SMS = "two_step_off_code_text"
_OFF_VOICE = "two_step_off_code_call"
#: What a code entered to turn two-step verification off that did not verify means (RC-2).
_CODE_REFUSALS = {
    VerifyOutcome.WRONG_CODE: ("verification.wrong_code", "This code is not right."),
    VerifyOutcome.TOO_MANY_WRONG: (
        "verification.too_many_wrong",
        "Too many wrong codes were entered: ask for a new code.",
    ),
    VerifyOutcome.EXPIRED: ("verification.expired", "This code has expired: ask for a new one."),
    VerifyOutcome.NO_ACTIVE_CODE: (
        "verification.no_active_code",
        "The code could not be sent: ask for a new one.",
    ),
    VerifyOutcome.MALFORMED: (
        "verification.malformed",
        "Enter the code as it was sent: its digits only.",
    ),
}
#: The refusal of a code whose verification is over (used, void, or not this one).
_CODE_USED = ("verification.code_used", "This code can no longer be used: ask for a new one.")


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


@attrs.frozen(kw_only=True)
class SessionInfo:
    """One of the user's live sessions, as "your sessions" lists it (RC-5).

    ``session_id`` is the session's public name (`Session.id`), never its
    token; ``current`` marks the session the list was asked from.
    """

    session_id: str
    started_at: datetime
    last_active_at: datetime
    current: bool


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
    recheck = _recheck.recheck(deps, token, current_password, now, purpose="change_password")
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
    with _recheck.settling(deps, recheck), deps.unit() as uow:
        session, user, credential = _recheck.proven(
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
    subject, body = deps.settings.messages.render_email(
        "password_changed", {"portal": deps.portal_name}
    )
    send_notice(deps, user, user.email, subject, body, notice="password_changed")
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
    """Store the new hash, end every session and trusted device (MF-5), continue this session.

    The current session goes on under a new token.
    """
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
    forgotten = supersede_links(uow, user.id, TokenPurpose.TRUSTED_DEVICE)
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
        devices_forgotten=str(forgotten),
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


# Two-step verification (PF-3, VF-9, RC-2, RC-5).


def set_two_step(
    service: Service,
    token: str | Secret[str],
    *,
    enabled: bool,
    current_password: str | None = None,
    code: str | Secret[str] | None = None,
) -> User:
    """Turn the user's own two-step verification on or off (PF-3, VF-9, RC-2, RC-5).

    Turning it off needs the current password, checked and counted as a
    sign-in attempt is (a wrong one raises `InvalidInput`,
    ``password.current_wrong``), and the code `send_two_step_off_code`
    sent to the user's phone. A code that does not verify raises
    `InvalidInput` on the ``code`` field, with a ``verification.*`` code
    saying why; wrong ones count, and at the limit the code is void
    (VF-7). Turning it on needs neither: ``current_password`` and ``code``
    are not read then. Either change ends the user's other sessions, is
    audited, and the user is emailed. Setting it to what it is changes
    nothing. The flag is the user's and stays as set through changes and
    resets of the password.
    """
    if not isinstance(enabled, bool):
        raise InvalidInput(
            f"enabled must be True or False, not {type(enabled).__name__}",
            field="enabled",
            code="profile.not_bool",
        )
    deps = service.deps
    if enabled:
        user, changed = _two_step_on(deps, token)
    else:
        require_optional_two_step(deps)
        password = require_password_text(current_password, field="current_password")
        if not isinstance(code, (str, Secret)):
            raise InvalidInput(
                "Enter the code sent to your phone.", field="code", code="code.not_text"
            )
        user, changed = _two_step_off(deps, token, password, code)
    if changed:
        _two_step_notice(deps, user)
    return user


def _two_step_on(deps: Dependencies, token: str | Secret[str]) -> tuple[User, bool]:
    """Turn two-step verification on; return the user and whether it changed (RC-5)."""
    now = deps.now()
    with deps.unit() as uow:
        session, user = signed_in(deps, uow, token, now)
        if user.two_step_enabled:
            return user, False
        return switch_two_step(
            uow, user, enabled=True, now=now, actor=user, keep=session.token_hash
        ), True


def _two_step_off(
    deps: Dependencies, token: str | Secret[str], current_password: str, code: str | Secret[str]
) -> tuple[User, bool]:
    """Check the password, then the code, and turn two-step verification off (RC-2).

    Returns the user and whether it changed. When it is off already,
    nothing is asked. A code that did not verify is raised after its unit
    committed, so that a wrong one counts (VF-7).
    """
    now = deps.now()
    with deps.unit() as uow:
        _session, user = signed_in(deps, uow, token, now)
        if not user.two_step_enabled:
            return user, False
        _latest_challenge(uow, user, Purpose.TWO_STEP_OFF)
    recheck = _recheck.recheck(deps, token, current_password, now, purpose="two_step_off")
    _recheck.require_match(recheck)

    def entry() -> tuple[CodeEntry, User, bool]:
        with deps.unit() as uow:
            session, user, _credential = _recheck.proven(deps, uow, token, now, recheck)
            result = _enter(deps, uow, user, Purpose.TWO_STEP_OFF, code=code, now=now)
            if not (result.verified and user.two_step_enabled):
                return result, user, False
            return (
                result,
                switch_two_step(
                    uow, user, enabled=False, now=now, actor=user, keep=session.token_hash
                ),
                True,
            )

    with _recheck.settling(deps, recheck):
        result, user, changed = retry_on_conflict(entry)
    send_guess_notices(deps, user, result.notices)
    if not result.verified:
        code_name, message = _CODE_REFUSALS.get(result.outcome, _CODE_USED)
        if result.outcome is VerifyOutcome.WRONG_CODE:
            message += f" {result.attempts_left} more tries are left before it stops working."
        raise InvalidInput(message, field="code", code=code_name)
    return user, changed


def _two_step_notice(deps: Dependencies, user: User) -> None:
    """Tell the user their own two-step verification was turned on or off (RC-2)."""
    name = "two_step_turned_on" if user.two_step_enabled else "two_step_turned_off"
    subject, body = deps.settings.messages.render_email(name, {"portal": deps.portal_name})
    send_notice(deps, user, user.email, subject, body, notice="two_step_toggled")


def two_step_off_options(service: Service, token: str | Secret[str]) -> tuple[DeliveryOption, ...]:
    """Return the ways the code that turns two-step verification off can reach the user (VF-2)."""
    deps = service.deps
    require_optional_two_step(deps)
    with deps.unit() as uow:
        _session, user = signed_in(deps, uow, token, deps.now())
    return delivery_options(user.phones)


def send_two_step_off_code(
    service: Service, token: str | Secret[str], *, option: DeliveryOption
) -> None:
    """Send a code to the user's phone by ``option``, to turn two-step verification off (RC-2).

    ``option`` is one of `two_step_off_options`. A new verification of its
    own purpose starts, and an earlier one ends: its code stops working.
    The send limit applies (VF-8), and a failed delivery voids the code and
    raises `~securepractice.errors.DeliveryFailed` (VF-10). Refused
    (``two_step.already_off``) when two-step verification is off.
    """
    deps = service.deps
    require_optional_two_step(deps)
    rules = deps.settings.verification

    def issue() -> tuple[User, codes.CodeIssued]:
        now = deps.now()
        with deps.unit() as uow:
            _session, user = signed_in(deps, uow, token, now)
            if not user.two_step_enabled:
                raise InvalidState(
                    "Two-step verification is off already.", code="two_step.already_off"
                )
            cancel_open_verification(uow, user.id, Purpose.TWO_STEP_OFF)
            issued = codes.issue(
                user_id=user.id,
                purpose=Purpose.TWO_STEP_OFF,
                option=option,
                offered=delivery_options(user.phones),
                ledger=ledger_for_send(uow, user.id, now=now, rules=rules),
                now=now,
                rules=rules,
            )
            save_issued(uow, issued, previous=None)
            _audit_send(uow, user, issued.challenge, now)
        return user, issued

    user, issued = retry_on_conflict(issue)
    deliver_code(deps, user, issued, sms=_OFF_SMS, voice=_OFF_VOICE)


def resend_two_step_off_code(service: Service, token: str | Secret[str]) -> None:
    """Send a new code to turn two-step verification off; the previous one dies at once (VF-5)."""
    _resend(service.deps, token, Purpose.TWO_STEP_OFF, sms=_OFF_SMS, voice=_OFF_VOICE)


# Email address (PF-4, RC-1).

_EMAIL_CHANGE = TokenPurpose.EMAIL_CHANGE
_EMAIL_TAKEN = "This email address belongs to another account."


def change_email(
    service: Service, token: str | Secret[str], *, current_password: str, new_email: str
) -> User:
    """Ask to change the user's email address (their username) to ``new_email`` (PF-4, RC-1).

    After the current password (a wrong one raises `InvalidInput`,
    ``password.current_wrong``, and counts toward lockout), the address,
    normalised (ID-1), becomes the user's ``pending_email``, and a
    single-use link that confirms it (`confirm_email_change`; it works for
    ``LinkRules.email_change_lifetime``, 24 hours) is sent to it; the old
    address is told that a change was requested. Nothing else changes until
    then: sign-in, reset links and notices keep the old address. A new
    request replaces an earlier one, whose link stops working, and asking
    for the current address withdraws a pending change. An address that is
    another user's is refused (`AlreadyExists`, ``user.email_taken``). When
    the link cannot be sent the request stays and
    `~securepractice.errors.DeliveryFailed` reaches the caller: asking again
    sends a new link. Returns the user, ``pending_email`` set.
    """
    require_password_text(current_password, field="current_password")
    email = normalize_email(new_email)
    deps = service.deps
    # A portal without its address cannot send the link: refuse before anything counts.
    tokens.build_link(Secret("check"), purpose=_EMAIL_CHANGE, rules=deps.settings.links)
    now = deps.now()
    recheck = _recheck.recheck(deps, token, current_password, now, purpose="change_email")
    _recheck.require_match(recheck)
    link: Secret[str] | None = None
    with _recheck.settling(deps, recheck), deps.unit() as uow:
        _session, user, _credential = _recheck.proven(deps, uow, token, now, recheck)
        other = uow.users.get_by_email(email)
        taken = other is not None and other.id != user.id
        if taken:
            audit(uow, "email.change_refused", "email_taken", at=now, actor=user, subject=user)
        else:
            user, link = _pend_email(deps, uow, user, None if email == user.email else email, now)
    if taken:
        raise AlreadyExists(_EMAIL_TAKEN, code="user.email_taken")
    if link is not None:
        _send_email_change(deps, user, link)
    return user


def _pend_email(
    deps: Dependencies, uow: UnitOfWork, user: User, email: str | None, now: datetime
) -> tuple[User, Secret[str] | None]:
    """In ``uow``, make ``email`` the user's pending address, or withdraw it for None (RC-1).

    Earlier links that confirm an address stop working. Returns the user
    and the new link to send, if any; withdrawing when nothing is pending
    changes nothing.
    """
    if email is None and user.pending_email is None:
        return user, None
    rules = deps.settings.links
    superseded = supersede_links(uow, user.id, _EMAIL_CHANGE)
    link = None
    if email is not None:
        issued = tokens.issue_token(user_id=user.id, purpose=_EMAIL_CHANGE, now=now, rules=rules)
        uow.link_tokens.add(issued.record)
        link = tokens.build_link(issued.token, purpose=_EMAIL_CHANGE, rules=rules)
    changed = revised(user, pending_email=email)
    uow.users.save(changed, expected_version=user.version)
    audit(
        uow,
        "email.change_requested" if email is not None else "email.change_withdrawn",
        at=now,
        actor=user,
        subject=user,
        links_superseded=str(superseded),
    )
    return changed, link


def _send_email_change(deps: Dependencies, user: User, link: Secret[str]) -> None:
    """Tell the current address that a change was asked for; send the link to the new one."""
    messages, portal = deps.settings.messages, deps.portal_name
    subject, body = messages.render_email("email_change_requested", {"portal": portal})
    send_notice(deps, user, user.email, subject, body, notice="email_change_requested")
    new = str(user.pending_email)
    lifetime = duration_words(deps.settings.links.email_change_lifetime)
    confirm = messages.render_email(
        "email_change_link", {"portal": portal, "lifetime": lifetime, "link": link.reveal()}
    )
    deliver_or_record(
        lambda: send_email(deps, new, *confirm),
        lambda failure: record_delivery_failure(
            deps, "email.change_link_failed", failure, user, actor=user
        ),
    )


def confirm_email_change(
    service: Service, token: str | Secret[str], *, link_token: str | Secret[str]
) -> User:
    """Make the pending address the user's email, from the link sent to it (RC-1).

    ``token`` is the session of the user who asked, ``link_token`` the
    token of the link. The link works once, within its lifetime, only while
    it is the user's latest one, and only in that user's session: an
    unknown, expired, used or superseded link, or one opened in another
    user's session, raises the one `~securepractice.errors.InvalidToken`
    (``token.invalid``, RG-6), and the true reason is audited
    (``email.change_refused``). Without a live session it raises
    `~securepractice.errors.InvalidToken` (``session.invalid``), and the
    link still works once the user signs in. The address is checked again:
    when it has become another user's, the change ends (the link is used
    up, the pending address dropped) and `AlreadyExists`
    (``user.email_taken``) is raised. Otherwise the email switches,
    outstanding reset links stop working, and both addresses are told.
    """
    deps = service.deps
    with link_unit(deps, link_token, _EMAIL_CHANGE) as step:
        uow, now = step.uow, step.now
        _session, user = signed_in(deps, uow, token, now)
        if user.id != step.user.id:
            raise refuse_link(step, "other_user")
        new = user.pending_email
        if new is None:
            raise refuse_link(step, "nothing_pending")
        use_link(step, link_token)
        other = uow.users.get_by_email(new)
        taken = other is not None and other.id != user.id
        old = user
        user = (
            revised(old, pending_email=None)
            if taken
            else revised(old, email=new, pending_email=None)
        )
        uow.users.save(user, expected_version=old.version)
        if taken:
            audit(uow, "email.change_refused", "email_taken", at=now, actor=user, subject=user)
        else:
            superseded = supersede_links(uow, user.id, TokenPurpose.PASSWORD_RESET)
            audit(
                uow, "email.changed", at=now, actor=user, subject=user,
                reset_links_voided=str(superseded),
            )  # fmt: skip
    if taken:
        raise AlreadyExists(_EMAIL_TAKEN, code="user.email_taken")
    words = {"portal": deps.portal_name}
    for address, name in (
        (old.email, "email_changed_old_address"),
        (user.email, "email_changed_new_address"),
    ):
        subject, body = deps.settings.messages.render_email(name, words)
        send_notice(deps, user, address, subject, body, notice="email_changed")
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
    (VF-8). When delivery fails the code is void and
    `~securepractice.errors.DeliveryFailed` reaches the caller (VF-10);
    `resend_phone_code` may then try again.
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

    def require_new(_uow: UnitOfWork, user: User) -> None:
        if phone in user.phones:
            raise InvalidInput(
                "this is already your number", field=kind.value, code="phone.unchanged"
            )

    now = deps.now()
    recheck = _recheck.recheck(
        deps, token, current_password, now, purpose="change_phone", precheck=require_new
    )
    _recheck.require_match(recheck)

    def issue() -> tuple[User, codes.CodeIssued]:
        with deps.unit() as uow:
            _session, user, _credential = _recheck.proven(deps, uow, token, now, recheck)
            cancel_open_verification(uow, user.id, Purpose.NEW_PHONE)
            issued = codes.issue(
                user_id=user.id,
                purpose=Purpose.NEW_PHONE,
                option=option,
                offered=offered,
                ledger=ledger_for_send(uow, user.id, now=now, rules=rules),
                now=now,
                rules=rules,
                phone_kind=kind,
            )
            save_issued(uow, issued, previous=None)
            _audit_send(uow, user, issued.challenge, now)
        return user, issued

    with _recheck.settling(deps, recheck):
        user, issued = retry_on_conflict(issue)
    _send_code(deps, user, issued)


def resend_phone_code(service: Service, token: str | Secret[str]) -> None:
    """Send a new code for the phone change under way; the previous one dies at once (VF-5).

    Raises `InvalidState` when no change is under way
    (``verification.not_started``) or it is finished or void
    (``verification.not_active``).
    """
    _resend(service.deps, token, Purpose.NEW_PHONE, sms=_SMS, voice=_VOICE)


def verify_phone_code(
    service: Service, token: str | Secret[str], *, code: str | Secret[str]
) -> VerifyResult:
    """Check the code sent to the new number; when right, the number replaces the old one.

    A code works once, for this user's phone change only; wrong entries
    count, and at the limit the change is void (VF-7). The outcome is a
    value (`~securepractice.verification.codes.VerifyOutcome`); on success
    the user's other sessions end (RC-5) and the user is emailed a notice.
    """
    deps = service.deps

    def entry() -> tuple[CodeEntry, User]:
        now = deps.now()
        with deps.unit() as uow:
            session, user = signed_in(deps, uow, token, now)
            result = _enter(deps, uow, user, Purpose.NEW_PHONE, code=code, now=now)
            if result.verified:
                user = _install_phone(uow, user, result.challenge, now, keep=session.token_hash)
        return result, user

    result, user = retry_on_conflict(entry)
    send_guess_notices(deps, user, result.notices)
    if result.verified:
        subject, body = deps.settings.messages.render_email(
            "phone_changed", {"portal": deps.portal_name}
        )
        send_notice(deps, user, user.email, subject, body, notice="phone_changed")
    return result


#: What a code action says when no verification of its purpose was started.
_NOT_STARTED = {
    Purpose.NEW_PHONE: "no change of phone number is under way: start one first",
    Purpose.TWO_STEP_OFF: "no code to turn two-step verification off was sent: ask for one first",
}


def _latest_challenge(uow: UnitOfWork, user: User, purpose: Purpose) -> Challenge:
    """Return the user's latest verification for ``purpose``: the one under way, or the last."""
    challenge = uow.challenges.latest(user.id, purpose)
    if challenge is None:
        raise InvalidState(_NOT_STARTED[purpose], code="verification.not_started")
    return challenge


def _enter(
    deps: Dependencies,
    uow: UnitOfWork,
    user: User,
    purpose: Purpose,
    *,
    code: str | Secret[str],
    now: datetime,
) -> CodeEntry:
    """In ``uow``, enter ``code`` on the user's latest verification for ``purpose`` (VF-7, MF-8)."""
    return enter_code(
        uow,
        _latest_challenge(uow, user, purpose),
        code,
        user=user,
        purpose=purpose,
        now=now,
        rules=deps.settings.verification,
    )


def _resend(
    deps: Dependencies,
    token: str | Secret[str],
    purpose: Purpose,
    *,
    sms: str,
    voice: str,
) -> None:
    """Send a new code for the user's verification of ``purpose``, in its words (VF-5, VF-8)."""

    def issue() -> tuple[User, codes.CodeIssued]:
        now = deps.now()
        with deps.unit() as uow:
            _session, user = signed_in(deps, uow, token, now)
            challenge = _latest_challenge(uow, user, purpose)
            issued = codes.resend(
                challenge,
                ledger=ledger_for_send(uow, user.id, now=now, rules=deps.settings.verification),
                now=now,
                rules=deps.settings.verification,
            )
            save_issued(uow, issued, previous=challenge)
            _audit_send(uow, user, issued.challenge, now)
        return user, issued

    user, issued = retry_on_conflict(issue)
    deliver_code(deps, user, issued, sms=sms, voice=voice)


def _install_phone(
    uow: UnitOfWork, user: User, challenge: Challenge, now: datetime, *, keep: bytes
) -> User:
    """Put the verified number in its field, in place of the user's number of that kind.

    The user's sessions but the one hashed ``keep`` end (RC-5).
    """
    if challenge.phone_kind is None:
        raise InvalidState(
            "this verification does not say which number it is for",
            code="verification.no_phone_kind",
        )
    new = Phone(number=challenge.destination, kind=challenge.phone_kind)
    changed = revised(user, phones=_with_phone(user.phones, new))
    uow.users.save(changed, expected_version=user.version)
    revoked = end_sessions(uow, user.id, keep=keep)
    audit(
        uow, "phone.changed", at=now, actor=changed, subject=changed, kind=new.kind.value,
        sessions_revoked=str(revoked),
    )  # fmt: skip
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


# The user's own sessions (RC-5).


def list_sessions(service: Service, token: str | Secret[str]) -> tuple[SessionInfo, ...]:
    """List the user's live sessions: the current one (marked) first, then latest activity (RC-5).

    A session that ended (signed out, revoked, idle or too old, LK-6, LK-7)
    is not listed. Nothing here is a token: a session is named by its
    public id, which `end_session` takes.
    """
    deps = service.deps
    now = deps.now()
    with deps.unit() as uow:
        current, user = signed_in(deps, uow, token, now)
        live = _live_sessions(deps, uow, user, now)
    listed = (
        SessionInfo(
            session_id=session.id,
            started_at=session.created_at,
            last_active_at=session.last_active_at,
            current=session.token_hash == current.token_hash,
        )
        for session in live
    )
    return tuple(
        sorted(
            listed,
            key=lambda s: (s.current, s.last_active_at, s.started_at, s.session_id),
            reverse=True,
        )
    )


def end_session(
    service: Service, token: str | Secret[str], *, session_id: str, current_password: str
) -> None:
    """End one of the user's sessions, named by its public id, after the password (RC-5).

    The current session may be ended too: that is signing out. A wrong
    password raises `InvalidInput` (``password.current_wrong``) and counts
    toward lockout, as for a change of email. An id that names no live
    session of the user raises `~securepractice.errors.NotFound`
    (``session.unknown_id``) before the password is checked.
    """
    session_id = text.identifier(session_id, field="session_id")
    require_password_text(current_password, field="current_password")
    deps = service.deps
    now = deps.now()

    def named(uow: UnitOfWork, user: User) -> Session:
        found = [s for s in _live_sessions(deps, uow, user, now) if s.id == session_id]
        if not found:
            raise NotFound(
                "You have no live session with this id: it may have ended already.",
                code="session.unknown_id",
            )
        return found[0]

    recheck = _recheck.recheck(
        deps, token, current_password, now, purpose="end_session", precheck=named
    )
    _recheck.require_match(recheck)
    with _recheck.settling(deps, recheck), deps.unit() as uow:
        current, user, _credential = _recheck.proven(deps, uow, token, now, recheck)
        ended = revoke(named(uow, user))
        uow.sessions.save(ended, expected_version=ended.version - 1)
        audit(
            uow, "sessions.revoked", at=now, actor=user, subject=user, scope="one",
            current=str(ended.token_hash == current.token_hash).lower(), sessions_revoked="1",
        )  # fmt: skip


def end_other_sessions(service: Service, token: str | Secret[str], *, current_password: str) -> int:
    """End every session of the user but the current one, after the password (RC-5).

    Returns how many ended. A wrong password raises `InvalidInput`
    (``password.current_wrong``) and counts toward lockout.
    """
    require_password_text(current_password, field="current_password")
    deps = service.deps
    now = deps.now()
    recheck = _recheck.recheck(deps, token, current_password, now, purpose="end_sessions")
    _recheck.require_match(recheck)
    with _recheck.settling(deps, recheck), deps.unit() as uow:
        current, user, _credential = _recheck.proven(deps, uow, token, now, recheck)
        revoked = end_sessions(uow, user.id, keep=current.token_hash)
        audit(
            uow, "sessions.revoked", at=now, actor=user, subject=user, scope="others",
            sessions_revoked=str(revoked),
        )  # fmt: skip
    return revoked


def _live_sessions(deps: Dependencies, uow: UnitOfWork, user: User, now: datetime) -> list[Session]:
    """Return the user's sessions still usable at ``now`` (LK-6, LK-7)."""
    rules = deps.settings.sign_in
    return [
        session
        for session in uow.sessions.list_for_user(user.id)
        if session_state(session, now=now, rules=rules) is SessionState.ACTIVE
    ]
