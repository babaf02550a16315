"""What the account and practice services share: ids, audit, email, code delivery.

A service function does one user action: it opens one unit of work, loads,
decides with the pure rules, saves what they returned and writes its audit
events in that unit (ST-2, AU-1), and sends messages only after the unit
has committed.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from string import Template
from typing import TypeVar

from securepractice.dependencies import Dependencies
from securepractice.errors import AlreadyExists, Conflict, DeliveryFailed
from securepractice.messaging.ports import EmailMessage, SmsMessage, VoiceMessage
from securepractice.policy import sessions
from securepractice.records import (
    AuditEvent,
    Challenge,
    ChallengeState,
    DeliveryMethod,
    Purpose,
    TokenPurpose,
    User,
)
from securepractice.secret import Secret
from securepractice.settings import VerificationRules
from securepractice.storage.ports import UnitOfWork
from securepractice.verification import codes, tokens

__all__ = [
    "audit",
    "deliver_code",
    "deliver_or_record",
    "duration_words",
    "end_sessions",
    "enter_code",
    "new_id",
    "retry_on_conflict",
    "save_issued",
    "send_email",
    "supersede_links",
    "void_undelivered_code",
]


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
    **detail: str,
) -> None:
    """Append one audit event in ``uow`` (AU-1); ``detail`` must never hold a secret (AU-2).

    The event's practice is ``practice_id`` if given, else the subject's,
    else the actor's.
    """
    actor_id = actor.id if isinstance(actor, User) else actor
    if practice_id is None and subject is not None:
        practice_id = subject.practice_id
    if practice_id is None and isinstance(actor, User):
        practice_id = actor.practice_id
    uow.audit.append(
        AuditEvent(
            id=new_id(),
            at=at,
            action=action,
            outcome=outcome,
            actor_id=actor_id,
            subject_id=subject.id if subject is not None else None,
            practice_id=practice_id,
            detail=tuple(sorted(detail.items())),
        )
    )


def send_email(deps: Dependencies, to: str, subject: str, body: str) -> None:
    """Send an email now; `DeliveryFailed` reaches the caller unchanged."""
    deps.messaging.email.send_email(EmailMessage(to=to, subject=subject, body=body))


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
    ledger = issued.ledger
    if ledger.version > 0:
        uow.code_sends.save(ledger, expected_version=ledger.version - 1)
        return
    try:
        uow.code_sends.add(ledger)
    except AlreadyExists as taken:
        raise Conflict("another send counted first; decide again") from taken


#: How many times a unit that lost a race to save is run before the `Conflict` is raised.
_CONFLICT_TRIES = 8
_T = TypeVar("_T")


def retry_on_conflict(action: Callable[[], _T]) -> _T:
    """Run ``action``, one whole unit of work, again each time it lost a race to save.

    A `Conflict` means another unit saved the same record first; this unit
    was rolled back, so running it again decides over what the other saved
    (the loser of two right entries is ``ALREADY_VERIFIED``, RS-5; a second
    wrong entry still counts, VF-7). After a bounded number of lost races
    the `Conflict` reaches the caller. Works under any isolation level.
    """
    for _ in range(_CONFLICT_TRIES - 1):
        with contextlib.suppress(Conflict):
            return action()
    return action()


def enter_code(
    uow: UnitOfWork,
    challenge: Challenge,
    entry: str | Secret[str],
    *,
    user: User,
    purpose: Purpose,
    now: datetime,
    rules: VerificationRules,
) -> codes.VerifyResult:
    """In ``uow``, enter a code on ``challenge``; save what `codes.verify` decided, and audit it.

    The save is over the version read: when a simultaneous entry saved first
    it raises `Conflict`, and the unit is run again by `retry_on_conflict`.
    """
    result = codes.verify(challenge, entry, user_id=user.id, purpose=purpose, now=now, rules=rules)
    if result.challenge.version != challenge.version:
        uow.challenges.save(result.challenge, expected_version=challenge.version)
    verified = result.verified
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
    return result


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
    deps: Dependencies, user: User, issued: codes.CodeIssued, *, sms: Template, voice: Template
) -> None:
    """Send a code after commit by its challenge's method, as the ``sms`` or ``voice`` text.

    The templates are filled in with ``$code`` (``$spoken``: digit by digit,
    for a call), ``$lifetime`` and ``$portal``. A failed delivery voids the
    code in a unit of its own, is audited, and reaches the caller as
    `DeliveryFailed` (VF-10).
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
            text = sms.substitute(words)
            deps.messaging.sms.send_sms(SmsMessage(to=sent.destination, text=text))
        else:
            script = voice.substitute(words)
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
