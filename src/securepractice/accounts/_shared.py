"""What the account and practice services share: ids, audit, email, code delivery.

A service function does one user action: it opens one unit of work, loads,
decides with the pure rules, saves what they returned and writes its audit
events in that unit (ST-2, AU-1), and sends messages only after the unit
has committed.
"""

from __future__ import annotations

import contextlib
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TypeVar

import attrs

from securepractice.context import RequestContext, current_request
from securepractice.dependencies import Dependencies
from securepractice.errors import (
    AlreadyExists,
    Conflict,
    DeliveryFailed,
    InvalidState,
    RateLimited,
    SecurePracticeError,
)
from securepractice.events import written
from securepractice.messaging.ports import EmailMessage, SmsMessage, VoiceMessage
from securepractice.policy import lockout, sessions
from securepractice.records import (
    AuditEvent,
    Challenge,
    ChallengeState,
    DeliveryMethod,
    Purpose,
    SendLedger,
    TokenPurpose,
    User,
    revised,
)
from securepractice.secret import Secret
from securepractice.settings import SecondFactor, Settings, VerificationRules
from securepractice.storage.ports import UnitOfWork
from securepractice.verification import codes, guesses, tokens

__all__ = [
    "CODES_STOPPED_MESSAGE",
    "CodeEntry",
    "audit",
    "codes_blocked",
    "count_code_guess",
    "deliver_code",
    "deliver_or_record",
    "duration_words",
    "email_lookup",
    "end_sessions",
    "enter_code",
    "ledger_for_send",
    "new_id",
    "require_optional_two_step",
    "retry_on_conflict",
    "save_issued",
    "save_ledger",
    "send_email",
    "send_guess_notices",
    "send_notice",
    "send_notices",
    "supersede_links",
    "switch_two_step",
    "void_undelivered_code",
]


#: The context of a call made outside any request block: nothing known of the client.
_NO_CLIENT = RequestContext()


def new_id() -> str:
    """Return a new random record id (not a secret: ids are never credentials)."""
    return uuid.uuid4().hex


def audit(
    uow: UnitOfWork,
    action: str,
    outcome: str = "ok",
    *,
    at: datetime,
    actor: User | str | None = None,
    subject: User | None = None,
    practice_id: str | None = None,
    written_by: str | None = None,
    **detail: str,
) -> None:
    """Append one audit event in ``uow`` (AU-1); ``detail`` must never hold a secret (AU-2).

    The event's practice is ``practice_id`` if given, else the subject's,
    else the actor's; it keeps the request context of the call (CX-1), and
    is logged and published once the unit commits (OP-5), by the logger of
    ``written_by``, the module that wrote it unless given.
    """
    actor_id = actor.id if isinstance(actor, User) else actor
    if practice_id is None and subject is not None:
        practice_id = subject.practice_id
    if practice_id is None and isinstance(actor, User):
        practice_id = actor.practice_id
    client = current_request() or _NO_CLIENT
    event = AuditEvent(
        id=new_id(),
        at=at,
        action=action,
        outcome=outcome,
        actor_id=actor_id,
        subject_id=subject.id if subject is not None else None,
        practice_id=practice_id,
        detail=tuple(sorted(detail.items())),
        client_address=client.client_address,
        user_agent=client.user_agent,
        request_id=client.request_id,
    )
    uow.audit.append(event)
    if written_by is None:
        # The module that wrote it logs it, as logging names the caller (OP-5).
        written_by = sys._getframe(1).f_globals.get("__name__", __name__)  # noqa: SLF001
    written(event, written_by)


def email_lookup(settings: Settings, email: object) -> tuple[str, str]:
    """Return what to look ``email`` up by, and its key (`policy.lockout.email_lookup`, IN-4).

    The key is made from `Settings.root_key`.
    """
    return lockout.email_lookup(email, settings.root_key)


def send_email(deps: Dependencies, to: str, subject: str, body: str) -> None:
    """Send an email now; `DeliveryFailed` reaches the caller unchanged."""
    deps.messaging.email.send_email(EmailMessage(to=to, subject=subject, body=body))


def send_notice(
    deps: Dependencies, user: User, to: str, subject: str, body: str, *, notice: str
) -> None:
    """Email a notice of a change already made; a failed delivery is audited, not raised.

    The change is committed by then, so an error would tell the caller it
    failed when it did not (and, for a change of password, lose the new
    session token). The event is ``notice.failed``, naming the ``notice``.
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


def deliver_or_record(
    send: Callable[[], None], on_failure: Callable[[DeliveryFailed], None]
) -> None:
    """Send after commit; on failure record it (in a unit of its own) and re-raise."""
    try:
        send()
    except DeliveryFailed as failure:
        on_failure(failure)
        raise


def save_issued(uow: UnitOfWork, issued: codes.CodeIssued, *, previous: Challenge | None) -> None:
    """Save what issuing a code decided: the challenge and the user's send ledger (VF-8).

    ``previous`` is the challenge the new code replaces (a re-send or a change
    of method), or None for a new verification. A user's first ledger added
    by a simultaneous send first is a lost race like any other: `Conflict`.
    """
    if previous is None:
        uow.challenges.add(issued.challenge)
    else:
        uow.challenges.save(issued.challenge, expected_version=previous.version)
    save_ledger(uow, issued.ledger)


def save_ledger(uow: UnitOfWork, ledger: SendLedger) -> None:
    """Save a user's send ledger over the version it was computed from, or add their first.

    A first ledger added by a simultaneous unit first is a lost race like
    any other: `Conflict`, and the unit decides again (VF-8, MF-8).
    """
    if ledger.version > 0:
        uow.code_sends.save(ledger, expected_version=ledger.version - 1)
        return
    try:
        uow.code_sends.add(ledger)
    except AlreadyExists as taken:
        raise Conflict("another unit counted on this ledger first; decide again") from taken


#: How many times a unit that lost a race to save is run before the `Conflict` is raised:
#: enough for fifty units racing for one record on a busy server to all get their turn.
_CONFLICT_TRIES = 25
#: The first and the longest wait, in seconds, before a unit that lost a race runs again.
_FIRST_BACKOFF = 0.01
_LONGEST_BACKOFF = 0.2
_T = TypeVar("_T")


def retry_on_conflict(action: Callable[[], _T]) -> _T:
    """Run ``action``, one whole unit of work, again each time it lost a race to save.

    A `Conflict` means another unit saved the same record first; this unit
    was rolled back, so running it again decides over what the other saved
    (the loser of two right entries is ``ALREADY_VERIFIED``, RS-5; a second
    wrong entry still counts, VF-7). Each lost race waits a random while,
    up to twice as long as the one before, so that many units racing for one
    record (fifty wrong codes at once, MF-8) take turns instead of colliding
    again. After a bounded number of lost races the `Conflict` reaches the
    caller. Works under any isolation level.
    """
    for attempt in range(_CONFLICT_TRIES - 1):
        with contextlib.suppress(Conflict):
            return action()
        longest = min(_FIRST_BACKOFF * 2**attempt, _LONGEST_BACKOFF)
        time.sleep(random.uniform(0, longest))  # noqa: S311 - a wait, not a secret
    return action()


@attrs.frozen(kw_only=True)
class CodeEntry(codes.VerifyResult):
    """A code entered by text or call: its `VerifyResult`, and the emails it calls for (MF-8).

    ``notices`` names the notices `send_guess_notices` emails once the unit
    has committed: a run of wrong codes began a pause, or reached the stop.
    """

    notices: tuple[str, ...] = ()


#: The outcomes of a code that was checked and wrong: they count toward MF-8's cap.
_WRONG = frozenset({codes.VerifyOutcome.WRONG_CODE, codes.VerifyOutcome.TOO_MANY_WRONG})


def enter_code(
    uow: UnitOfWork,
    challenge: Challenge,
    entry: str | Secret[str],
    *,
    user: User,
    purpose: Purpose,
    now: datetime,
    rules: VerificationRules,
) -> CodeEntry:
    """In ``uow``, enter a code on ``challenge``; save what `codes.verify` decided, and audit it.

    While the user's codes are paused or stopped (MF-8) the entry is refused
    unchecked and uncounted (`codes_blocked`). A wrong code counts on the
    user's ledger across verifications, and a right one clears that count
    (`count_code_guess`). The saves are over the versions read: when a
    simultaneous entry saved first they raise `Conflict`, and the unit is
    run again by `retry_on_conflict`.
    """
    ledger = uow.code_sends.get(user.id)
    block = guesses.blocked(ledger, now=now, rules=rules)
    if block is not None and ledger is not None:
        raise codes_blocked(block, ledger, now)
    result = codes.verify(challenge, entry, user_id=user.id, purpose=purpose, now=now, rules=rules)
    if result.challenge.version != challenge.version:
        uow.challenges.save(result.challenge, expected_version=challenge.version)
    verified = result.verified
    notices: tuple[str, ...] = ()
    if verified or result.outcome in _WRONG:
        notices = count_code_guess(uow, user, ledger, right=verified, now=now, rules=rules)
    audit(
        uow,
        "code.verified" if verified else "code.failed",
        "ok" if verified else result.outcome.value,
        at=now,
        actor=user,
        subject=user,
        purpose=purpose.value,
        method=result.challenge.method.value,
        attempts_left=str(result.attempts_left),
    )
    return CodeEntry(
        challenge=result.challenge,
        outcome=result.outcome,
        attempts_left=result.attempts_left,
        notices=notices,
    )


# The cap on guessing codes across verifications (MF-8).

#: What a user is told while no code is sent or taken until support staff clear the count.
CODES_STOPPED_MESSAGE = (
    "Too many wrong codes were entered for this account: no code can be sent or used "
    "until support staff clear them. Please contact support."
)


def codes_blocked(
    block: guesses.CodesBlocked, ledger: SendLedger, now: datetime
) -> SecurePracticeError:
    """Return the error of a code refused unchecked while the user's codes are blocked (MF-8).

    A pause is `RateLimited` (``verification.codes_paused``), whose
    ``retry_after`` is the rest of the pause; the stop is `InvalidState`
    (``verification.codes_stopped``): it ends only when support staff clear it.
    """
    if block is guesses.CodesBlocked.PAUSED and ledger.paused_until is not None:
        wait = ledger.paused_until - now
        return RateLimited(
            f"Too many wrong codes were entered. Try again in {duration_words(wait)}.",
            retry_after=wait,
            code="verification.codes_paused",
        )
    return InvalidState(CODES_STOPPED_MESSAGE, code="verification.codes_stopped")


def ledger_for_send(
    uow: UnitOfWork, user_id: str, *, now: datetime, rules: VerificationRules
) -> SendLedger | None:
    """Return the user's send ledger, to issue a code over; refuse while codes are stopped (MF-8).

    During a pause a code is still sent: it works once the pause is over.
    """
    ledger = uow.code_sends.get(user_id)
    block = guesses.blocked(ledger, now=now, rules=rules)
    if block is guesses.CodesBlocked.STOPPED and ledger is not None:
        raise codes_blocked(block, ledger, now)
    return ledger


def count_code_guess(
    uow: UnitOfWork,
    user: User,
    ledger: SendLedger | None,
    *,
    right: bool,
    now: datetime,
    rules: VerificationRules,
) -> tuple[str, ...]:
    """In ``uow``, count a checked code on the user's ledger: clear if right, else add one (MF-8).

    ``ledger`` is the ledger as read in ``uow``. Every pause a wrong code
    begins, and the stop, are audited; returns the notices to email after
    commit: the first pause of a run, and the stop.
    """
    if right:
        if ledger is not None:
            cleared = guesses.clear(ledger)
            if cleared is not ledger:
                save_ledger(uow, cleared)
        return ()
    before = 0 if ledger is None else ledger.wrong_codes
    counted = guesses.wrong_code(ledger, user_id=user.id, now=now, rules=rules)
    save_ledger(uow, counted)
    wrong = counted.wrong_codes
    if before < rules.stop_at_wrong_codes <= wrong:
        audit(uow, "code_guesses.stopped", at=now, actor=user, subject=user, wrong_codes=str(wrong))
        return ("code_guesses_stopped",)
    if counted.paused_until is None or guesses.pause_after(wrong, rules) is None:
        return ()
    audit(
        uow, "code_guesses.paused", at=now, actor=user, subject=user, wrong_codes=str(wrong),
        until=counted.paused_until.isoformat(),
    )  # fmt: skip
    return ("code_guesses_paused",) if before < rules.pause_from_wrong_codes else ()


def send_notices(deps: Dependencies, user: User, names: Iterable[str]) -> None:
    """Email the user each notice of ``names`` (messages of `MessageTemplates`), after commit.

    Each is filled in with what it offers of ``$portal`` and MF-8's numbers
    (``$pause_from``, ``$first_pause``, ``$stop_at``). A failed delivery is
    audited, not raised (`send_notice`).
    """
    rules = deps.settings.verification
    words = {
        "portal": deps.portal_name,
        "pause_from": str(rules.pause_from_wrong_codes),
        "first_pause": duration_words(rules.first_code_pause),
        "stop_at": str(rules.stop_at_wrong_codes),
    }
    messages = deps.settings.messages
    for name in names:
        offered = {key: words[key] for key in messages.placeholders(name)}
        subject, body = messages.render_email(name, offered)
        send_notice(deps, user, user.email, subject, body, notice=name)


def send_guess_notices(deps: Dependencies, user: User, names: Iterable[str]) -> None:
    """Email the user MF-8's notices that entering a code called for (`CodeEntry.notices`)."""
    send_notices(deps, user, names)


def duration_words(span: timedelta) -> str:
    """Say a lifetime as an email or text message does: "14 days", "1 hour", "10 minutes"."""
    seconds = int(span.total_seconds())
    for name, size in (("day", 86_400), ("hour", 3_600)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {name}{'s' if count != 1 else ''}"
    minutes = max(-(-seconds // 60), 1)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def deliver_code(
    deps: Dependencies, user: User, issued: codes.CodeIssued, *, sms: str, voice: str
) -> None:
    """Send a code after commit by its challenge's method, as the message ``sms`` or ``voice``.

    They name a text and a call script of `MessageTemplates`, filled in
    with ``$code``, ``$spoken`` (digit by digit, for a call), ``$lifetime``
    and ``$portal``. A failed delivery voids the code in a unit of its own,
    is audited, and reaches the caller as `DeliveryFailed` (VF-10).
    """
    sent = issued.challenge
    code = issued.code.reveal()
    words = {
        "code": code,
        "spoken": ", ".join(code),
        "lifetime": duration_words(deps.settings.verification.code_lifetime),
        "portal": deps.portal_name,
    }

    def send() -> None:
        if sent.method is DeliveryMethod.SMS:
            text = deps.settings.messages.render(sms, words)
            deps.messaging.sms.send_sms(SmsMessage(to=sent.destination, text=text))
        else:
            script = deps.settings.messages.render(voice, words)
            deps.messaging.voice.place_call(VoiceMessage(to=sent.destination, text=script))

    def void(failure: DeliveryFailed) -> None:
        now = deps.now()
        with deps.unit() as uow:
            void_undelivered_code(uow, sent)
            audit(
                uow,
                "code.delivery_failed",
                failure.code,
                at=now,
                actor=user,
                subject=user,
                purpose=sent.purpose.value,
                method=sent.method.value,
                channel=failure.channel,
            )

    deliver_or_record(send, void)


def void_undelivered_code(uow: UnitOfWork, sent: Challenge) -> None:
    """In ``uow``, void the code of ``sent`` if it is still the one whose delivery failed (VF-10).

    A verification that moved on meanwhile (verified, re-sent, ended) is
    left as it is.
    """
    stored = uow.challenges.get(sent.id)
    if (
        stored is not None
        and stored.state is ChallengeState.ACTIVE
        and stored.version == sent.version
    ):
        uow.challenges.save(codes.delivery_failed(stored), expected_version=stored.version)


def supersede_links(uow: UnitOfWork, user_id: str, purpose: TokenPurpose) -> int:
    """In ``uow``, supersede every usable link of the user for ``purpose``; return how many.

    `~securepractice.verification.tokens.supersede` decides which (RG-4, RS-3, UM-4).
    """
    changed = tokens.supersede(
        uow.link_tokens.list_for_user(user_id, purpose), user_id=user_id, purpose=purpose
    )
    for token in changed:
        uow.link_tokens.save(token, expected_version=token.version - 1)
    return len(changed)


def end_sessions(uow: UnitOfWork, user_id: str, *, keep: bytes | None = None) -> int:
    """In ``uow``, end every live session of the user but the one hashed ``keep``; return how many.

    `~securepractice.policy.sessions.revoke_all` decides which (LK-6).
    """
    changed = sessions.revoke_all(uow.sessions.list_for_user(user_id), keep=keep)
    for session in changed:
        uow.sessions.save(session, expected_version=session.version - 1)
    return len(changed)


def require_optional_two_step(deps: Dependencies) -> None:
    """Refuse to turn two-step verification off where every sign-in needs it (MF-1).

    Under ``SecondFactor.ALWAYS`` the switch is not offered: `InvalidState`
    (``two_step.required``).
    """
    if deps.settings.sign_in.second_factor is SecondFactor.ALWAYS:
        raise InvalidState(
            "Two-step verification is required on this portal: it cannot be turned off.",
            code="two_step.required",
        )


def switch_two_step(
    uow: UnitOfWork,
    user: User,
    *,
    enabled: bool,
    now: datetime,
    actor: User,
    keep: bytes | None = None,
    reason: str = "",
) -> User:
    """In ``uow``, turn the user's two-step verification on or off; return the user saved.

    A change of two-step verification ends every session of the user but
    the one hashed ``keep`` (RC-5), and is audited as ``two_step.toggled``,
    with the ``reason`` a User Manager gave, if any (VF-9, RC-2).
    """
    detail = {"reason": reason} if reason else {}
    changed = revised(user, two_step_enabled=enabled)
    uow.users.save(changed, expected_version=user.version)
    revoked = end_sessions(uow, user.id, keep=keep)
    audit(
        uow,
        "two_step.toggled",
        at=now,
        actor=actor,
        subject=changed,
        enabled="on" if enabled else "off",
        sessions_revoked=str(revoked),
        **detail,
    )
    return changed
