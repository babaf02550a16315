"""The "Verify your Identity" screen, shared by registration, reset and sign-in (VF-1..VF-10).

Every action is keyed by the e-mailed link's token: the token says whose
verification it is and what for (an invitation link verifies for
`Purpose.REGISTRATION`, a reset link for `Purpose.PASSWORD_RESET`, and a
pending sign-in's token, which the browser holds, for `Purpose.SIGN_IN`:
a code by text or call is a second factor, MF-2). A
verification belongs to the link it was made on: its ``flow_id`` is the
link's ``id``, so a new link (a re-invitation, a new reset request) needs a
verification of its own, whatever the clock says. The verification is the
current step only while two-step verification is on for the user (VF-9)
and the link's own verification is not done; any other time an action here
is out of order (RG-2, RS-2).

The link machinery of the three link flows lives here too: `link_unit`
checks a link inside a unit of work and, when the link is refused, records
the true reason in a unit of its own and raises the one `InvalidToken`
(RG-6); `use_link` uses a link up as its flow completes (RS-5).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime

import attrs

from securepractice.accounts._shared import (
    CodeEntry,
    audit,
    deliver_code,
    enter_code,
    ledger_for_send,
    retry_on_conflict,
    save_issued,
    send_guess_notices,
)
from securepractice.context import acting_on
from securepractice.dependencies import Dependencies, Service
from securepractice.errors import Conflict, DeliveryFailed, InvalidState, InvalidToken
from securepractice.records import (
    Challenge,
    ChallengeState,
    LinkToken,
    Purpose,
    SendLedger,
    TokenPurpose,
    User,
)
from securepractice.secret import Secret
from securepractice.storage.ports import UnitOfWork
from securepractice.verification import codes, phones, tokens
from securepractice.verification.phones import DeliveryOption

__all__ = [
    "OUT_OF_ORDER_MESSAGE",
    "LinkStep",
    "cancel_open_verification",
    "change_delivery_method",
    "delivery_options",
    "link_unit",
    "link_verified",
    "out_of_order",
    "record_delivery_failure",
    "refuse_link",
    "resend_code",
    "send_code",
    "use_link",
    "verification_due",
    "verify_code",
]

#: The message of a step done out of order (RG-2): nothing was changed.
OUT_OF_ORDER_MESSAGE = "This step is not the next one: go back to the page the link opens."

_PURPOSES = {
    TokenPurpose.INVITATION: Purpose.REGISTRATION,
    TokenPurpose.PASSWORD_RESET: Purpose.PASSWORD_RESET,
    TokenPurpose.SIGN_IN: Purpose.SIGN_IN,
}
_REFUSED_ACTIONS = {
    TokenPurpose.INVITATION: "invitation.refused",
    TokenPurpose.PASSWORD_RESET: "password.reset_refused",
    TokenPurpose.EMAIL_CHANGE: "email.change_refused",
    TokenPurpose.SIGN_IN: "sign_in.pending_refused",
    TokenPurpose.TRUSTED_DEVICE: "device.refused",
}


def out_of_order() -> InvalidState:
    """Return the error of a step done out of order (RG-2): ``flow.out_of_order``."""
    return InvalidState(OUT_OF_ORDER_MESSAGE, code="flow.out_of_order")


def cancel_open_verification(uow: UnitOfWork, user_id: str, purpose: Purpose) -> None:
    """In ``uow``, end the user's open verification for ``purpose``, if any: its code dies."""
    latest = uow.challenges.latest(user_id, purpose)
    if latest is not None and latest.state is ChallengeState.ACTIVE:
        uow.challenges.save(codes.cancel(latest), expected_version=latest.version)


def record_delivery_failure(
    deps: Dependencies,
    action: str,
    failure: DeliveryFailed,
    user: User,
    *,
    actor: User | str | None,
) -> None:
    """Audit a message that could not be handed over, in a unit of its own."""
    with deps.unit() as uow:
        audit(
            uow, action, failure.code, at=deps.now(), actor=actor, subject=user,
            channel=failure.channel,
        )  # fmt: skip


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


@contextlib.contextmanager
def link_unit(
    deps: Dependencies, token: str | Secret[str], purpose: TokenPurpose | None
) -> Iterator[LinkStep]:
    """Check ``token`` in a new unit of work and give the step to the block.

    ``purpose`` is the link's expected purpose, or None when the link of
    either flow with a verification (an invitation or a reset) will do.
    A refused link (unknown, expired, used, superseded, wrong purpose, or its
    user deactivated), or one the block refuses (`refuse_link`), rolls the
    unit back, is audited with its true reason in a unit of its own, and
    raises `InvalidToken` with
    `~securepractice.verification.tokens.INVALID_LINK_MESSAGE` (RG-6).
    """
    now = deps.now()
    try:
        with deps.unit() as uow:
            yield _checked(uow, token, purpose, now)
    except _LinkRefused as refused:
        action = (
            _REFUSED_ACTIONS[refused.purpose] if refused.purpose is not None else "link.refused"
        )
        with deps.unit() as uow:
            audit(uow, action, refused.reason, at=now, subject=refused.user)
        invalid = InvalidToken(tokens.INVALID_LINK_MESSAGE)
        invalid.audited = True
        raise invalid from None


def _checked(
    uow: UnitOfWork, token: str | Secret[str], purpose: TokenPurpose | None, now: datetime
) -> LinkStep:
    try:
        record = uow.link_tokens.get(tokens.hash_token(token))
    except InvalidToken:
        record = None
    if record is None:
        raise _LinkRefused(tokens.TokenProblem.UNKNOWN.value, purpose, None)
    user = uow.users.get(record.user_id)
    if purpose is None and record.purpose not in _PURPOSES:
        # A link without a verification (RC-1's) opens no code step.
        raise _LinkRefused(tokens.TokenProblem.WRONG_PURPOSE.value, None, user)
    expected = record.purpose if purpose is None else purpose
    problem = tokens.token_problem(token, record, purpose=expected, now=now)
    if problem is not None:
        raise _LinkRefused(problem.value, expected, user)
    if user is None or user.deactivated:
        raise _LinkRefused("deactivated", expected, user)
    acting_on(user)
    return LinkStep(uow=uow, link=record, user=user, now=now)


def refuse_link(step: LinkStep, reason: str) -> Exception:
    """Return what the block of `link_unit` raises to refuse the step's link for ``reason``.

    The unit is rolled back, ``reason`` audited, and the caller gets the one
    `InvalidToken` (RG-6), as for any other refused link.
    """
    return _LinkRefused(reason, step.link.purpose, step.user)


def use_link(step: LinkStep, token: str | Secret[str]) -> None:
    """Use the step's link up as its flow completes, saved over the version that was checked.

    The checks run again at completion, so no flow completes after its link
    expired (RG-1). When a simultaneous use saved first, this one is refused
    as a used link, with the one `InvalidToken` (RG-6, RS-5).
    """
    used = tokens.use_token(token, step.link, purpose=step.link.purpose, now=step.now)
    try:
        step.uow.link_tokens.save(used, expected_version=step.link.version)
    except Conflict:
        raise _LinkRefused(tokens.TokenProblem.USED.value, step.link.purpose, step.user) from None


def _link_challenge(step: LinkStep) -> Challenge | None:
    """Return the verification made on the step's link, or None if none was.

    It is the user's latest verification for the link's purpose if it was
    made for this link (its ``flow_id``); a verification of an earlier link
    never counts, even one made in the same instant.
    """
    latest = step.uow.challenges.latest(step.user.id, step.purpose)
    return latest if latest is not None and latest.flow_id == step.link.id else None


def link_verified(step: LinkStep) -> bool:
    """Whether a code was verified on the step's link itself."""
    challenge = _link_challenge(step)
    return challenge is not None and challenge.state is ChallengeState.VERIFIED


def verification_due(step: LinkStep) -> bool:
    """Whether the identity check is still ahead of the user on this link (VF-9, RG-2, RS-2).

    A pending sign-in exists only when a second factor is due, whatever
    the user's two-step setting (MF-1).
    """
    return _asks_code(step) and not link_verified(step)


def _asks_code(step: LinkStep) -> bool:
    """Whether the step's flow has a verification at all (VF-9, MF-1)."""
    return step.link.purpose is TokenPurpose.SIGN_IN or step.user.two_step_enabled


def delivery_options(service: Service, token: str | Secret[str]) -> tuple[DeliveryOption, ...]:
    """Return the ways a code can reach the user: only what their numbers allow (VF-2)."""
    with link_unit(service.deps, token, None) as step:
        return phones.delivery_options(step.user.phones)


def send_code(service: Service, token: str | Secret[str], *, option: DeliveryOption) -> None:
    """Start a verification: send a new code by ``option`` ("Continue" on steps 3-4).

    An open verification of the same purpose ends first. Raises
    `~securepractice.errors.InvalidInput` for an option the user's numbers
    do not offer, `~securepractice.errors.RateLimited` past the send limit
    (VF-8), `InvalidState` out of order or once wrong codes stopped the
    user's codes (``verification.codes_stopped``, MF-8), and
    `~securepractice.errors.DeliveryFailed` when the SMS or call could not be
    handed over; then the code is void, and re-sending or changing the
    method works (VF-10).
    """
    deps = service.deps

    def start(step: LinkStep, ledger: SendLedger | None) -> codes.CodeIssued:
        cancel_open_verification(step.uow, step.user.id, step.purpose)
        issued = codes.issue(
            user_id=step.user.id,
            purpose=step.purpose,
            option=option,
            offered=phones.delivery_options(step.user.phones),
            ledger=ledger,
            now=step.now,
            rules=deps.settings.verification,
            flow_id=step.link.id,
        )
        save_issued(step.uow, issued, previous=None)
        return issued

    _send(deps, token, start, "new")


def resend_code(service: Service, token: str | Secret[str]) -> None:
    """Send a new code by the method chosen last; the previous code stops working (VF-5)."""
    deps = service.deps

    def again(step: LinkStep, ledger: SendLedger | None) -> codes.CodeIssued:
        current = _open_challenge(step)
        issued = codes.resend(
            current, ledger=ledger, now=step.now, rules=deps.settings.verification
        )
        save_issued(step.uow, issued, previous=current)
        return issued

    _send(deps, token, again, "resend")


def change_delivery_method(
    service: Service, token: str | Secret[str], *, option: DeliveryOption
) -> None:
    """Switch to another offered option and send a new code there; the old one dies (VF-6)."""
    deps = service.deps

    def switch(step: LinkStep, ledger: SendLedger | None) -> codes.CodeIssued:
        current = _open_challenge(step)
        issued = codes.change_method(
            current,
            option=option,
            offered=phones.delivery_options(step.user.phones),
            ledger=ledger,
            now=step.now,
            rules=deps.settings.verification,
        )
        save_issued(step.uow, issued, previous=current)
        return issued

    _send(deps, token, switch, "change_method")


def verify_code(
    service: Service, token: str | Secret[str], *, code: str | Secret[str]
) -> codes.VerifyResult:
    """Check the code the user typed ("Continue" on step 5) (VF-4, VF-7).

    A right code verifies once: of two simultaneous right entries exactly
    one is ``VERIFIED`` and the other ``ALREADY_VERIFIED`` (RS-5). A wrong
    one counts toward the limit, whatever the method or re-sends, and
    simultaneous wrong ones each count: an entry that loses the race to save
    is decided again over what the other saved. The outcome is a value, not
    an error. Wrong codes also count toward the user's cap across
    verifications (MF-8): while it pauses codes an entry raises
    `~securepractice.errors.RateLimited` (``verification.codes_paused``), and
    once it stops them `InvalidState` (``verification.codes_stopped``).
    """
    deps = service.deps

    def entry() -> tuple[User, CodeEntry]:
        with link_unit(deps, token, None) as step:
            return step.user, enter_code(
                step.uow,
                _open_challenge(step, allow_closed=True),
                code,
                user=step.user,
                purpose=step.purpose,
                now=step.now,
                rules=deps.settings.verification,
            )

    user, result = retry_on_conflict(entry)
    send_guess_notices(deps, user, result.notices)
    return result


def _open_challenge(step: LinkStep, *, allow_closed: bool = False) -> Challenge:
    """Return the verification the user is in on this link.

    ``allow_closed`` (for entering a code) also returns one that ended, so
    that its outcome can say so.
    """
    _require_verification_step(step, allow_done=allow_closed)
    challenge = _link_challenge(step)
    if challenge is None:
        raise InvalidState(
            "No code was sent yet: choose how to receive your code first.",
            code="verification.not_started",
        )
    if not allow_closed and challenge.state is not ChallengeState.ACTIVE:
        raise InvalidState(
            "This verification has ended: choose how to receive a new code.",
            code="verification.not_active",
        )
    return challenge


def _require_verification_step(step: LinkStep, *, allow_done: bool) -> None:
    """Refuse, as out of order, a code action at any other step than "Verify your Identity".

    On an invitation the phones come first (RG-2); with two-step off there is
    no such step (VF-9); once a code was verified on the link it is behind
    the user, except that entering a code may still say "already verified".
    """
    no_phones = step.link.purpose is TokenPurpose.INVITATION and not step.user.phones
    due = _asks_code(step) if allow_done else verification_due(step)
    if no_phones or not due:
        raise out_of_order()


def _send(
    deps: Dependencies,
    token: str | Secret[str],
    make: Callable[[LinkStep, SendLedger | None], codes.CodeIssued],
    kind: str,
) -> None:
    """Issue a code in one unit (counting the send, VF-8), then deliver it after commit.

    Every send counts toward the limit, delivered or not (VF-8, VF-10). A
    unit that lost a race for the send ledger runs again, so two simultaneous
    sends cannot both take the last place under the limit.
    """

    def issue() -> tuple[User, codes.CodeIssued]:
        with link_unit(deps, token, None) as step:
            _require_verification_step(step, allow_done=False)
            rules = deps.settings.verification
            issued = make(step, ledger_for_send(step.uow, step.user.id, now=step.now, rules=rules))
            audit(
                step.uow,
                "code.sent",
                at=step.now,
                actor=step.user,
                subject=step.user,
                purpose=step.purpose.value,
                method=issued.challenge.method.value,
                kind=kind,
            )
            return step.user, issued

    user, issued = retry_on_conflict(issue)
    _deliver(deps, user, issued)


def _deliver(deps: Dependencies, user: User, issued: codes.CodeIssued) -> None:
    """Send the code as a text or a call, in the portal's words."""
    deliver_code(deps, user, issued, sms="verification_code_text", voice="verification_code_call")
