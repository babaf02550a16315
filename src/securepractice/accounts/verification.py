"""The "Verify your Identity" screen, shared by registration and password reset (VF-1..VF-10).

Every action is keyed by the e-mailed link's token: the token says whose
verification it is and what for (an invitation link verifies for
`Purpose.REGISTRATION`, a reset link for `Purpose.PASSWORD_RESET`). The
verification is the current step only while two-step verification is on for
the user (VF-9) and no code was verified since the link was made; any other
time an action here is out of order (RG-2, RS-2).

`LinkFlow` is the base of the three link flows: it checks a link inside a
unit of work and, when the link is refused, records the true reason in a
unit of its own and raises the one `InvalidToken` (RG-6).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta

import attrs

from securepractice.accounts._service import ServiceBase
from securepractice.errors import DeliveryFailed, InvalidState, InvalidToken
from securepractice.records import (
    Challenge,
    ChallengeState,
    LinkToken,
    Purpose,
    TokenPurpose,
    User,
)
from securepractice.secret import Secret
from securepractice.storage.ports import UnitOfWork
from securepractice.verification import codes, tokens
from securepractice.verification.phones import DeliveryOption, delivery_options

__all__ = [
    "OUT_OF_ORDER_MESSAGE",
    "LinkFlow",
    "LinkStep",
    "VerificationActions",
    "cancel_open_verification",
    "duration_words",
    "out_of_order",
    "verified_since",
]

#: The message of a step done out of order (RG-2): nothing was changed.
OUT_OF_ORDER_MESSAGE = "This step is not the next one: go back to the page the link opens."

_PURPOSES = {
    TokenPurpose.INVITATION: Purpose.REGISTRATION,
    TokenPurpose.PASSWORD_RESET: Purpose.PASSWORD_RESET,
}
_REFUSED_ACTIONS = {
    TokenPurpose.INVITATION: "invitation.refused",
    TokenPurpose.PASSWORD_RESET: "password.reset_refused",
}


def out_of_order() -> InvalidState:
    """Return the error of a step done out of order (RG-2): ``flow.out_of_order``."""
    return InvalidState(OUT_OF_ORDER_MESSAGE, code="flow.out_of_order")


def verified_since(uow: UnitOfWork, user_id: str, purpose: Purpose, since: datetime) -> bool:
    """Return whether the user's latest verification for ``purpose`` was verified after ``since``.

    Only a verification started after the link was made counts, so a new
    link (a re-invitation, a new reset request) needs a new verification.
    """
    latest = uow.challenges.latest(user_id, purpose)
    return (
        latest is not None and latest.state is ChallengeState.VERIFIED and latest.issued_at >= since
    )


def cancel_open_verification(uow: UnitOfWork, user_id: str, purpose: Purpose) -> None:
    """End the user's open verification for ``purpose``, if any: its code stops working."""
    latest = uow.challenges.latest(user_id, purpose)
    if latest is not None and latest.state is ChallengeState.ACTIVE:
        uow.challenges.update(codes.cancel(latest))


@attrs.frozen(kw_only=True)
class LinkStep:
    """A checked link inside a unit of work: the unit, the link's record, its user, the time."""

    uow: UnitOfWork
    link: LinkToken
    user: User
    now: datetime

    @property
    def purpose(self) -> Purpose:
        """What a verification opened from this link is for (VF-7)."""
        return _PURPOSES[self.link.purpose]


class _LinkRefused(Exception):
    """Raised inside a link's unit of work to leave it; turned into `InvalidToken`."""

    def __init__(self, reason: str, purpose: TokenPurpose | None, user: User | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.purpose = purpose
        self.user = user


class LinkFlow(ServiceBase):
    """The base of the link flows: open a link's unit of work, refuse a bad link as one error."""

    @contextlib.contextmanager
    def _link_unit(
        self, token: str | Secret[str], purpose: TokenPurpose | None
    ) -> Iterator[LinkStep]:
        """Check ``token`` in a new unit of work and give the step to the block.

        ``purpose`` is the link's expected purpose, or None when either will
        do. A refused link (unknown, expired, used, superseded, wrong purpose,
        or its user deactivated) rolls the unit back, is audited with its true
        reason in a unit of its own, and raises `InvalidToken` with
        `~securepractice.verification.tokens.INVALID_LINK_MESSAGE` (RG-6).
        """
        now = self._now()
        try:
            with self._unit() as uow:
                yield self._checked(uow, token, purpose, now)
        except _LinkRefused as refused:
            action = (
                _REFUSED_ACTIONS[refused.purpose] if refused.purpose is not None else "link.refused"
            )
            with self._unit() as uow:
                self._audit(uow, action, refused.reason, at=now, subject=refused.user)
            raise InvalidToken(tokens.INVALID_LINK_MESSAGE) from None

    def _checked(
        self,
        uow: UnitOfWork,
        token: str | Secret[str],
        purpose: TokenPurpose | None,
        now: datetime,
    ) -> LinkStep:
        try:
            record = uow.link_tokens.get(tokens.hash_token(token))
        except InvalidToken:
            record = None
        if record is None:
            raise _LinkRefused(tokens.TokenProblem.UNKNOWN.value, purpose, None)
        user = uow.users.get(record.user_id)
        expected = record.purpose if purpose is None else purpose
        problem = tokens.token_problem(token, record, purpose=expected, now=now)
        if problem is not None:
            raise _LinkRefused(problem.value, expected, user)
        if user is None or user.deactivated:
            raise _LinkRefused("deactivated", expected, user)
        return LinkStep(uow=uow, link=record, user=user, now=now)

    def _refuse_used(self, step: LinkStep) -> _LinkRefused:
        """Return the refusal of a link that could not be used up: a simultaneous use won (RS-5)."""
        return _LinkRefused(tokens.TokenProblem.USED.value, step.link.purpose, step.user)

    def _record_delivery_failure(
        self, action: str, failure: DeliveryFailed, user: User, *, actor: User | str | None
    ) -> None:
        """Audit a message that could not be handed over, in a unit of its own."""
        with self._unit() as uow:
            self._audit(
                uow, action, failure.code, at=self._now(), actor=actor, subject=user,
                channel=failure.channel,
            )  # fmt: skip

    def _verification_due(self, step: LinkStep) -> bool:
        """Whether the identity check is still ahead of the user on this link (VF-9, RG-2, RS-2)."""
        return step.user.two_step_enabled and not verified_since(
            step.uow, step.user.id, step.purpose, step.link.created_at
        )


def duration_words(span: timedelta) -> str:
    """Say a lifetime as an email or text message does: "14 days", "1 hour", "10 minutes"."""
    seconds = int(span.total_seconds())
    for name, size in (("day", 86_400), ("hour", 3_600)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {name}{'s' if count != 1 else ''}"
    minutes = max(-(-seconds // 60), 1)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


class VerificationActions(LinkFlow):
    """Send, re-send and check the codes that verify a user's identity by phone."""

    def delivery_options(self, token: str | Secret[str]) -> tuple[DeliveryOption, ...]:
        """Return the ways a code can reach the user: only what their numbers allow (VF-2)."""
        with self._link_unit(token, None) as step:
            return delivery_options(step.user.phones)

    def send_code(self, token: str | Secret[str], *, option: DeliveryOption) -> None:
        """Start a verification: send a new code by ``option`` ("Continue" on steps 3-4).

        An open verification of the same purpose ends first. Raises
        `~securepractice.errors.InvalidInput` for an option the user's
        numbers do not offer, `~securepractice.errors.RateLimited` past the
        send limit (VF-8), `InvalidState` out of order, and
        `~securepractice.errors.DeliveryFailed` when the SMS or call could not
        be handed over; then the code is void, and re-sending or changing the
        method works (VF-10).
        """

        def start(step: LinkStep, sends: Sequence[datetime]) -> codes.CodeIssued:
            cancel_open_verification(step.uow, step.user.id, step.purpose)
            issued = codes.issue(
                user_id=step.user.id,
                purpose=step.purpose,
                option=option,
                offered=delivery_options(step.user.phones),
                recent_sends=sends,
                now=step.now,
                rules=self._context.settings.verification,
            )
            step.uow.challenges.add(issued.challenge)
            return issued

        self._send(token, start, "new")

    def resend_code(self, token: str | Secret[str]) -> None:
        """Send a new code by the method chosen last; the previous code stops working (VF-5)."""

        def again(step: LinkStep, sends: Sequence[datetime]) -> codes.CodeIssued:
            issued = codes.resend(
                self._open_challenge(step),
                recent_sends=sends,
                now=step.now,
                rules=self._context.settings.verification,
            )
            step.uow.challenges.update(issued.challenge)
            return issued

        self._send(token, again, "resend")

    def change_delivery_method(self, token: str | Secret[str], *, option: DeliveryOption) -> None:
        """Switch to another offered option and send a new code there; the old one dies (VF-6)."""

        def switch(step: LinkStep, sends: Sequence[datetime]) -> codes.CodeIssued:
            issued = codes.change_method(
                self._open_challenge(step),
                option=option,
                offered=delivery_options(step.user.phones),
                recent_sends=sends,
                now=step.now,
                rules=self._context.settings.verification,
            )
            step.uow.challenges.update(issued.challenge)
            return issued

        self._send(token, switch, "change_method")

    def verify_code(self, token: str | Secret[str], *, code: str) -> codes.VerifyResult:
        """Check the code the user typed ("Continue" on step 5) (VF-4, VF-7).

        A right code verifies once: of two simultaneous right entries exactly
        one is ``VERIFIED`` (RS-5). A wrong one counts toward the limit,
        whatever the method or re-sends. The outcome is a value, not an error.
        """
        rules = self._context.settings.verification
        with self._link_unit(token, None) as step:
            challenge = self._open_challenge(step, allow_closed=True)
            checked = codes.verify(
                challenge,
                code,
                user_id=step.user.id,
                purpose=step.purpose,
                now=step.now,
                rules=rules,
            )
            outcome = checked.outcome
            challenges = step.uow.challenges
            if outcome is codes.VerifyOutcome.VERIFIED and challenge.code_hash is not None:
                won = challenges.consume(challenge.id, code_hash=challenge.code_hash, now=step.now)
                outcome = outcome if won else codes.VerifyOutcome.ALREADY_VERIFIED
            elif outcome in {codes.VerifyOutcome.WRONG_CODE, codes.VerifyOutcome.TOO_MANY_WRONG}:
                count = challenges.record_wrong_attempt(challenge.id, limit=rules.max_wrong_codes)
                outcome = (
                    codes.VerifyOutcome.TOO_MANY_WRONG
                    if count >= rules.max_wrong_codes
                    else codes.VerifyOutcome.WRONG_CODE
                )
            saved = challenges.get(challenge.id) or checked.challenge
            left = (
                max(rules.max_wrong_codes - saved.wrong_attempts, 0)
                if saved.state is ChallengeState.ACTIVE
                else 0
            )
            verified = outcome is codes.VerifyOutcome.VERIFIED
            self._audit(
                step.uow,
                "code.verified" if verified else "code.failed",
                "ok" if verified else outcome.value,
                at=step.now,
                actor=step.user,
                subject=step.user,
                purpose=step.purpose.value,
                method=saved.method.value,
                attempts_left=str(left),
            )
        return codes.VerifyResult(challenge=saved, outcome=outcome, attempts_left=left)

    def _open_challenge(self, step: LinkStep, *, allow_closed: bool = False) -> Challenge:
        """Return the verification the user is in on this link.

        ``allow_closed`` (for entering a code) also returns one that ended,
        so that its outcome can say so.
        """
        self._require_verification_step(step, allow_done=allow_closed)
        latest = step.uow.challenges.latest(step.user.id, step.purpose)
        if latest is None or latest.issued_at < step.link.created_at:
            raise InvalidState(
                "No code was sent yet: choose how to receive your code first.",
                code="verification.not_started",
            )
        if not allow_closed and latest.state is not ChallengeState.ACTIVE:
            raise InvalidState(
                "This verification has ended: choose how to receive a new code.",
                code="verification.not_active",
            )
        return latest

    def _require_verification_step(self, step: LinkStep, *, allow_done: bool) -> None:
        """Refuse, as out of order, a code action at any other step than "Verify your Identity".

        On an invitation the phones come first (RG-2); with two-step off there
        is no such step (VF-9); once a code was verified it is behind the user,
        except that entering a code may still say "already verified".
        """
        no_phones = step.link.purpose is TokenPurpose.INVITATION and not step.user.phones
        due = step.user.two_step_enabled if allow_done else self._verification_due(step)
        if no_phones or not due:
            raise out_of_order()

    def _send(
        self,
        token: str | Secret[str],
        make: Callable[[LinkStep, Sequence[datetime]], codes.CodeIssued],
        kind: str,
    ) -> None:
        """Issue a code in one unit (counting the send, VF-8), then deliver it after commit."""
        rules = self._context.settings.verification
        with self._link_unit(token, None) as step:
            self._require_verification_step(step, allow_done=False)
            since = codes.send_window_start(now=step.now, rules=rules)
            issued = make(step, step.uow.code_sends.sends_since(step.user.id, since))
            # Every send counts toward the limit, delivered or not (VF-8, VF-10).
            step.uow.code_sends.record(step.user.id, step.now)
            self._audit(
                step.uow,
                "code.sent",
                at=step.now,
                actor=step.user,
                subject=step.user,
                purpose=step.purpose.value,
                method=issued.challenge.method.value,
                kind=kind,
            )
            user = step.user
        self._send_verification_code(user, issued)

    def _send_verification_code(self, user: User, issued: codes.CodeIssued) -> None:
        code = issued.code.reveal()
        lifetime = duration_words(self._context.settings.verification.code_lifetime)
        name = self._context.portal_name
        spoken = ", ".join(code)
        self._deliver_code(
            user,
            issued,
            sms=f"Your {name} verification code is {code}. It expires in {lifetime}.",
            voice=f"Hello. Your {name} verification code is {spoken}. "
            f"Again, your code is {spoken}. It expires in {lifetime}.",
        )
