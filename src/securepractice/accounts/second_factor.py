"""The second factor at sign-in, and the devices a user trusts (MF-1, MF-2, MF-5).

When the settings ask for one (``SignInRules.second_factor``), a right
password gives a pending sign-in: a token the browser keeps, which opens
nothing but this step and lapses after ``LinkRules.sign_in_lifetime``. Any
method the user has completes it (MF-2):

* a code by text or call: the screens of `securepractice.accounts.verification`
  (``delivery_options``, ``send_code``, ``resend_code``,
  ``change_delivery_method``, ``verify_code``) take the pending token as
  they take a link's, under their usual rules (VF-1..VF-8), and then
  `finish_sign_in` opens the session;
* an authenticator app's code, or a recovery code, given to `finish_sign_in`.

A pending sign-in completes once: of simultaneous completions one opens a
session and the others are refused as a used link. Wrong authenticator or
recovery codes count on it as wrong texted codes count on theirs (VF-7):
at ``max_wrong_codes`` it ends, and the password must be typed again. Every
wrong code also counts toward the user's cap across verifications (MF-8).

Under ``SecondFactor.NEW_DEVICE``, the user may trust the device they
finish on: `finish_sign_in` then also gives a device token, which skips the
second factor at the next sign-ins with it for
``LinkRules.trusted_device_lifetime`` (MF-5). It is kept only as its hash;
the user lists their trusted devices and forgets any one of them; a change
or a reset of the password forgets them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import attrs

from securepractice.accounts import factors
from securepractice.accounts._shared import audit, retry_on_conflict
from securepractice.accounts.signin import (
    SignInOutcome,
    SignInReason,
    SignInResult,
    open_session,
    signed_in,
)
from securepractice.accounts.verification import (
    LinkStep,
    link_unit,
    link_verified,
    out_of_order,
    refuse_link,
    use_link,
)
from securepractice.dependencies import Dependencies, Service
from securepractice.errors import InvalidInput, NotFound
from securepractice.records import Credential, LinkToken, TokenPurpose, User, revised
from securepractice.secret import Secret
from securepractice.settings import SecondFactor
from securepractice.verification import phones, tokens
from securepractice.verification.phones import DeliveryOption

__all__ = [
    "SECOND_FACTOR_REFUSED_MESSAGE",
    "SecondFactorOptions",
    "TrustedDevice",
    "finish_sign_in",
    "forget_device",
    "second_factor_options",
    "trusted_devices",
]

_PENDING = TokenPurpose.SIGN_IN
_DEVICE = TokenPurpose.TRUSTED_DEVICE

#: The one message of a refused second factor, whatever the reason (LK-5).
SECOND_FACTOR_REFUSED_MESSAGE = (
    "That code did not work. Check it and try again; after many wrong codes, codes are "
    "not accepted for a while, and we email you."
)

#: The public reason of each way a factor entry is refused (`factors.FactorEntry.reason`).
_REASONS = {
    "paused": SignInReason.CODES_PAUSED,
    "stopped": SignInReason.CODES_STOPPED,
}


@attrs.frozen(kw_only=True)
class SecondFactorOptions:
    """The ways the user of a pending sign-in can finish it (MF-2).

    ``delivery_options`` are the ways a code can reach their phones (VF-2);
    ``authenticator`` and ``recovery_codes`` say whether they have an
    authenticator app and unused recovery codes.
    """

    delivery_options: tuple[DeliveryOption, ...]
    authenticator: bool
    recovery_codes: bool


@attrs.frozen(kw_only=True)
class TrustedDevice:
    """A device the user trusts (MF-5): a public id, never its token, and its dates."""

    id: str
    trusted_at: datetime
    expires_at: datetime


def second_factor_options(
    service: Service, pending_token: str | Secret[str]
) -> SecondFactorOptions:
    """Return the methods the pending sign-in's user has, for the "Verify it's you" screen."""
    with link_unit(service.deps, pending_token, _PENDING) as step:
        credential = step.uow.credentials.get(step.user.id)
        app = credential.authenticator if credential is not None else None
        codes = credential.recovery_codes if credential is not None else ()
        return SecondFactorOptions(
            delivery_options=phones.delivery_options(step.user.phones),
            authenticator=app is not None and app.confirmed,
            recovery_codes=any(code is not None for code in codes),
        )


def finish_sign_in(
    service: Service,
    pending_token: str | Secret[str],
    *,
    authenticator_code: str | Secret[str] | None = None,
    recovery_code: str | Secret[str] | None = None,
    trust_device: bool = False,
) -> SignInResult:
    """Finish a pending sign-in with its second factor; return the session (MF-1, MF-2, MF-5).

    With ``authenticator_code`` or ``recovery_code`` that code is the second
    factor; with neither, a code sent by text or call must have been
    verified on this pending sign-in (`~securepractice.accounts.verification.verify_code`),
    or the step is out of order. A wrong code comes back as
    ``SECOND_FACTOR_REFUSED`` with one message (`SECOND_FACTOR_REFUSED_MESSAGE`);
    a pending sign-in that is unknown, lapsed, ended or finished already
    raises `~securepractice.errors.InvalidToken`. ``trust_device`` (under
    ``SecondFactor.NEW_DEVICE`` only) also returns a ``device_token``.
    """
    deps = service.deps
    if authenticator_code is not None and recovery_code is not None:
        raise InvalidInput(
            "give one second factor: an authenticator code or a recovery code",
            field="recovery_code",
            code="sign_in.two_factors",
        )
    if not isinstance(trust_device, bool):
        raise InvalidInput(
            f"trust_device must be True or False, not {type(trust_device).__name__}",
            field="trust_device",
            code="sign_in.not_bool",
        )
    entries: list[tuple[User, factors.FactorEntry]] = []

    def finish() -> SignInResult:
        entries.clear()
        with link_unit(deps, pending_token, _PENDING) as step:
            credential = step.uow.credentials.get(step.user.id)
            if step.user.locked or credential is None:
                raise refuse_link(step, "locked" if step.user.locked else "not_registered")
            if authenticator_code is not None or recovery_code is not None:
                entry = _enter(deps, step, credential, authenticator_code, recovery_code)
                entries.append((step.user, entry))
                if not entry.accepted:
                    return _refused(deps, step, entry.reason)
                method = "authenticator" if authenticator_code is not None else "recovery_code"
            elif link_verified(step):
                method = "phone_code"
            else:
                raise out_of_order()
            use_link(step, pending_token)
            device = _trusted(deps, step) if trust_device else None
            detail = {"method": method} | ({"device": "trusted"} if device else {})
            return open_session(
                deps, step.uow, step.user, credential, step.now, device_token=device, **detail
            )

    result = retry_on_conflict(finish)
    for user, entry in entries:
        factors.send_factor_notices(deps, user, entry)
    return result


def _enter(
    deps: Dependencies,
    step: LinkStep,
    credential: Credential,
    authenticator_code: str | Secret[str] | None,
    recovery_code: str | Secret[str] | None,
) -> factors.FactorEntry:
    """Enter the authenticator or recovery code given, in the step's unit."""
    uow, user, now = step.uow, step.user, step.now
    if authenticator_code is not None:
        return factors.enter_authenticator_code(
            deps, uow, user, credential, authenticator_code, now=now
        )
    assert recovery_code is not None  # noqa: S101 - the caller gives one of the two
    return factors.enter_recovery_code(deps, uow, user, credential, recovery_code, now=now)


def _refused(deps: Dependencies, step: LinkStep, reason: str) -> SignInResult:
    """Count a wrong code on the pending sign-in (VF-7); it ends at the limit. Audit it.

    An entry refused unchecked, while codes are paused or stopped (MF-8),
    is not a wrong code and does not count.
    """
    link = step.link
    public = _REASONS.get(reason, SignInReason.WRONG_CODE)
    ended = False
    if public is SignInReason.WRONG_CODE:
        wrong = link.wrong_codes + 1
        ended = wrong >= deps.settings.verification.max_wrong_codes
        step.uow.link_tokens.save(
            revised(link, wrong_codes=wrong, superseded=ended), expected_version=link.version
        )
    audit(
        step.uow, "sign_in.second_factor", reason, at=step.now, actor=step.user,
        subject=step.user, pending_ended="yes" if ended else "no",
    )  # fmt: skip
    return SignInResult(
        outcome=SignInOutcome.SECOND_FACTOR_REFUSED,
        reason=public,
        message=SECOND_FACTOR_REFUSED_MESSAGE,
    )


def _trusted(deps: Dependencies, step: LinkStep) -> Secret[str] | None:
    """In the step's unit, trust the device for the user (MF-5); None unless ``NEW_DEVICE``."""
    if deps.settings.sign_in.second_factor is not SecondFactor.NEW_DEVICE:
        return None
    issued = tokens.issue_token(
        user_id=step.user.id, purpose=_DEVICE, now=step.now, rules=deps.settings.links
    )
    step.uow.link_tokens.add(issued.record)
    audit(step.uow, "device.trusted", at=step.now, actor=step.user, subject=step.user)
    return issued.token


def trusted_devices(service: Service, token: str | Secret[str]) -> tuple[TrustedDevice, ...]:
    """Return the devices the signed-in user trusts still, oldest first (MF-5)."""
    deps = service.deps
    now = deps.now()
    with deps.unit() as uow:
        _session, user = signed_in(deps, uow, token, now)
        return tuple(
            TrustedDevice(id=link.id, trusted_at=link.created_at, expires_at=link.expires_at)
            for link in _devices(uow.link_tokens.list_for_user(user.id, _DEVICE), now)
        )


def forget_device(service: Service, token: str | Secret[str], *, device_id: str) -> None:
    """Stop trusting one of the signed-in user's devices (MF-5); audited.

    `~securepractice.errors.NotFound` (``device.not_found``) when the user
    trusts no device with that id.
    """
    deps = service.deps
    now = deps.now()
    with deps.unit() as uow:
        _session, user = signed_in(deps, uow, token, now)
        links = _devices(uow.link_tokens.list_for_user(user.id, _DEVICE), now)
        found = next((link for link in links if link.id == device_id), None)
        if found is None:
            raise NotFound("You trust no device with that id.", code="device.not_found")
        uow.link_tokens.save(revised(found, superseded=True), expected_version=found.version)
        audit(uow, "device.forgotten", at=now, actor=user, subject=user)


def _devices(links: Sequence[LinkToken], now: datetime) -> list[LinkToken]:
    """Return the links that are devices trusted still: not forgotten, not expired."""
    return [link for link in links if not link.superseded and now < link.expires_at]
