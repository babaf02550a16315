"""What every account service shares: its collaborators, the clock, audit and ids.

A service method does one user action: it opens one unit of work, loads,
decides with the pure rules, saves and writes its audit events in that
unit (ST-2, AU-1), and sends messages only after the unit has committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import attrs

from securepractice.clock import Clock, SystemClock
from securepractice.errors import DeliveryFailed
from securepractice.messaging.ports import EmailMessage, Messaging, SmsMessage, VoiceMessage
from securepractice.policy.hashing import PasswordHasher
from securepractice.policy.password import PasswordPolicy
from securepractice.records import AuditEvent, Challenge, ChallengeState, DeliveryMethod, User
from securepractice.settings import Settings
from securepractice.storage.ports import Storage, UnitOfWork
from securepractice.verification import codes

__all__ = ["AccountContext", "ServiceBase", "new_id", "void_undelivered_code"]


def new_id() -> str:
    """Return a new random record id (not a secret: ids are never credentials)."""
    return uuid.uuid4().hex


@attrs.frozen(kw_only=True)
class AccountContext:
    """Everything a service needs from the world, built once by `Portal`.

    ``terms_version`` is the version of the Terms of Use users accept now
    (RG-3); ``portal_name`` is the proper name messages give the portal
    ("Your Practice Portal verification code is ...").
    """

    storage: Storage
    messaging: Messaging
    settings: Settings = attrs.field(factory=Settings)
    clock: Clock = attrs.field(factory=SystemClock)
    hasher: PasswordHasher = attrs.field(
        default=attrs.Factory(lambda self: PasswordHasher(self.settings.hashing), takes_self=True)
    )
    policy: PasswordPolicy = attrs.field(
        default=attrs.Factory(lambda self: PasswordPolicy(self.settings.password), takes_self=True)
    )
    terms_version: str = "1"
    portal_name: str = "Practice Portal"


class ServiceBase:
    """The helpers every service mixin uses; holds the `AccountContext`."""

    def __init__(self, context: AccountContext) -> None:
        self._context = context

    @property
    def context(self) -> AccountContext:
        """The collaborators this service works with."""
        return self._context

    def _now(self) -> datetime:
        return self._context.clock.now()

    def _unit(self) -> UnitOfWork:
        return self._context.storage.unit_of_work()

    def _audit(
        self,
        uow: UnitOfWork,
        action: str,
        outcome: str = "ok",
        *,
        at: datetime,
        actor: User | str | None = None,
        subject: User | None = None,
        **detail: str,
    ) -> None:
        """Append one audit event in ``uow`` (AU-1); ``detail`` must never hold a secret (AU-2)."""
        actor_id = actor.id if isinstance(actor, User) else actor
        practice_id = subject.practice_id if subject is not None else None
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

    def _email(self, to: str, subject: str, body: str) -> None:
        """Send an email now; `DeliveryFailed` reaches the caller unchanged."""
        self._context.messaging.email.send_email(EmailMessage(to=to, subject=subject, body=body))

    def _deliver_or_record(
        self, send: Callable[[], None], on_failure: Callable[[DeliveryFailed], None]
    ) -> None:
        """Send after commit; on failure record it (in a unit of its own) and re-raise."""
        try:
            send()
        except DeliveryFailed as failure:
            on_failure(failure)
            raise

    def _deliver_code(self, user: User, issued: codes.CodeIssued, *, sms: str, voice: str) -> None:
        """Send a code after commit by its challenge's method, as ``sms`` or ``voice`` text.

        A failed delivery voids the code in a unit of its own, is audited,
        and reaches the caller as `DeliveryFailed` (VF-10).
        """
        sent = issued.challenge
        messaging = self._context.messaging

        def send() -> None:
            if sent.method is DeliveryMethod.SMS:
                messaging.sms.send_sms(SmsMessage(to=sent.destination, text=sms))
            else:
                messaging.voice.place_call(VoiceMessage(to=sent.destination, text=voice))

        def void(failure: DeliveryFailed) -> None:
            now = self._now()
            with self._unit() as uow:
                void_undelivered_code(uow, sent)
                self._audit(
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

        self._deliver_or_record(send, void)


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
        uow.challenges.update(codes.delivery_failed(stored))
