"""Password reset: "Forgot Password", the e-mailed link, a code, a new password (RS-1..RS-5).

The steps, as the portal's "Forgot Password" help page lists them: ask with
your email address (steps 2-3), open the link in the email (step 4), verify
your identity by a code sent to your phone when two-step verification is on
(steps 5-6, in `~securepractice.accounts.verification`), and set a new
password, entered twice (step 7). A reset is how a lost password, an expired
one (PW-5) or a locked account (LK-1) is recovered (RS-4); support staff
cannot do it for the user (PW-9). Each reset link needs a verification of
its own: a code verified on an earlier link never counts for a later one.
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
    send_email,
    supersede_links,
)
from securepractice.accounts.verification import (
    LinkStep,
    cancel_open_verification,
    link_unit,
    out_of_order,
    record_delivery_failure,
    use_link,
    verification_due,
)
from securepractice.dependencies import Dependencies, Service
from securepractice.errors import DeliveryFailed
from securepractice.policy.lockout import Lock, with_lock
from securepractice.policy.password import PasswordReport
from securepractice.records import Credential, Purpose, TokenPurpose, User, revised
from securepractice.secret import Secret
from securepractice.storage.ports import UnitOfWork
from securepractice.verification import tokens
from securepractice.verification.phones import DeliveryOption, delivery_options

__all__ = [
    "ResetStage",
    "ResetStep",
    "forgot_password",
    "open_reset_link",
    "reset_password",
]

_RESET = TokenPurpose.PASSWORD_RESET


class ResetStage(enum.Enum):
    """The reset step a user is at (RS-2): verify by code, then the new password."""

    VERIFY = "verify"
    PASSWORD = "password"


@attrs.frozen(kw_only=True)
class ResetStep:
    """Where the user of a reset link stands.

    ``delivery_options`` are the ways a code can reach them, given only at
    ``VERIFY`` (VF-2).
    """

    stage: ResetStage
    email: str
    delivery_options: tuple[DeliveryOption, ...] = ()


def forgot_password(service: Service, *, email: str) -> None:
    """Send a reset link to ``email`` if it is a registered user's ("Forgot Password").

    The answer is always the same, None, whether the account exists or not
    and whatever the email looks like (RS-1): nothing is raised for an
    unknown or malformed email, and nothing is sent. A new link makes earlier
    reset links useless. A user who was invited but never registered has no
    password to reset: they get an email that sends them back to their
    invitation instead. A failure to hand the email over is audited, not
    raised, since raising would tell that the account exists.

    Every request makes the same storage calls and the same hashing (IN-4):
    a link is made and stored each time, under the user's id when it is to
    be sent, or else under the address's key (`email_lookup`), where it
    supersedes the earlier ones as a user's links do, and is never sent.
    """
    deps = service.deps
    rules = deps.settings.links
    # Refuse a portal without its address for every email alike, known or not.
    tokens.build_link(Secret("check"), purpose=_RESET, rules=rules)
    now = deps.now()
    address, unknown = email_lookup(deps.settings, email)
    with deps.unit() as uow:
        user = uow.users.get_by_email(address)
        credential = uow.credentials.get(unknown if user is None else user.id)
        outcome = _reset_outcome(user, credential)
        key = user.id if user is not None and outcome == "ok" else unknown
        cancel_open_verification(uow, key, Purpose.PASSWORD_RESET)
        issued = tokens.issue_token(user_id=key, purpose=_RESET, now=now, rules=rules)
        supersede_links(uow, key, _RESET)
        uow.link_tokens.add(issued.record)
        audit(uow, "password.reset_requested", outcome, at=now, subject=user)
    if user is None or outcome in {"unknown_user", "deactivated"}:
        return
    try:
        send_email(deps, user.email, *_reset_mail(deps, user, outcome, issued.token))
    except DeliveryFailed as failure:
        record_delivery_failure(deps, "password.reset_email_failed", failure, user, actor=None)


def _reset_outcome(user: User | None, credential: Credential | None) -> str:
    """Say what a reset request for ``user`` does: ``ok`` sends the link; the rest do not."""
    if user is None:
        return "unknown_user"
    if user.deactivated:
        return "deactivated"
    return "not_registered" if credential is None else "ok"


def _reset_mail(
    deps: Dependencies, user: User, outcome: str, token: Secret[str]
) -> tuple[str, str]:
    """Return the subject and body of the email a reset request sends ``user``."""
    messages = deps.settings.messages
    words = {"portal": deps.portal_name, "email": user.email}
    if outcome == "not_registered":
        return messages.render_email("password_reset_not_registered", words)
    rules = deps.settings.links
    link = tokens.build_link(token, purpose=_RESET, rules=rules)
    return messages.render_email(
        "password_reset_link",
        {**words, "lifetime": duration_words(rules.reset_lifetime), "link": link.reveal()},
    )


def open_reset_link(service: Service, token: str | Secret[str]) -> ResetStep:
    """Check a reset link and say which step the user is at (step 4, RS-2).

    Opening does not use the link up. Every refusal is the one
    `InvalidToken` (RG-6).
    """
    with link_unit(service.deps, token, _RESET) as step:
        if verification_due(step):
            return ResetStep(
                stage=ResetStage.VERIFY,
                email=step.user.email,
                delivery_options=delivery_options(step.user.phones),
            )
        return ResetStep(stage=ResetStage.PASSWORD, email=step.user.email)


def reset_password(
    service: Service, token: str | Secret[str], *, password: str, confirmation: str
) -> PasswordReport:
    """Set a new password with a reset link (step 7, RS-2, RS-3).

    When two-step verification is on, a code must have been verified on this
    link first (``flow.out_of_order`` otherwise). Every password rule
    applies, the last passwords included (PW-4); a refused password comes
    back as a report and nothing changes. On success the link is used up and
    every other reset link ends, the account is unlocked, its failure count
    cleared and every session revoked; the user gets an email that their
    password was changed. The user is not signed in.
    """
    deps = service.deps
    with link_unit(deps, token, _RESET) as step:
        _require_password_step(step)
        credential = step.uow.credentials.get(step.user.id)
    history = () if credential is None else (credential.password_hash, *credential.history)
    report = deps.policy.check(password, confirmation, history=history, hasher=deps.hasher)
    if not report.ok:
        return report
    hashed = deps.hasher.hash(password)
    with link_unit(deps, token, _RESET) as step:
        _require_password_step(step)
        user = _complete(deps, step, token, hashed)
    try:
        send_email(deps, user.email, *_changed_email(deps, user, step.now))
    except DeliveryFailed as failure:
        record_delivery_failure(deps, "password.reset_notice_failed", failure, user, actor=user)
    return report


def _require_password_step(step: LinkStep) -> None:
    if verification_due(step):
        raise out_of_order()


def _complete(deps: Dependencies, step: LinkStep, token: str | Secret[str], hashed: str) -> User:
    """Store the new password and end what the old one allowed (RS-3, MF-5), in ``step``'s unit.

    Every lock ends with it, a temporary one too (MF-7).
    """
    uow, user, now = step.uow, step.user, step.now
    use_link(step, token)
    _store_password(deps, uow, user.id, hashed, now)
    supersede_links(uow, user.id, _RESET)
    forgotten = supersede_links(uow, user.id, TokenPurpose.TRUSTED_DEVICE)
    unlocked = with_lock(user, Lock())
    if unlocked is not user:
        uow.users.save(unlocked, expected_version=user.version)
        audit(uow, "account.unlocked", "password_reset", at=now, actor=user, subject=user)
    uow.sign_in_failures.reset(user.id)
    revoked = end_sessions(uow, user.id)
    audit(
        uow, "password.reset", at=now, actor=user, subject=user,
        sessions_revoked=str(revoked), was_locked=str(user.locked).lower(),
        devices_forgotten=str(forgotten),
    )  # fmt: skip
    return unlocked


def _store_password(
    deps: Dependencies, uow: UnitOfWork, user_id: str, hashed: str, now: datetime
) -> None:
    """Make ``hashed`` the user's password; the one it replaces heads the history (PW-4)."""
    current = uow.credentials.get(user_id)
    if current is None:
        uow.credentials.add(Credential(user_id=user_id, password_hash=hashed, set_at=now))
        return
    keep = max(deps.settings.password.history - 1, 0)
    history = (current.password_hash, *current.history)[:keep]
    uow.credentials.save(
        revised(current, password_hash=hashed, set_at=now, history=history),
        expected_version=current.version,
    )


def _changed_email(deps: Dependencies, user: User, now: datetime) -> tuple[str, str]:
    return deps.settings.messages.render_email(
        "password_reset_done",
        {
            "portal": deps.portal_name,
            "email": user.email,
            "date": f"{now:%Y-%m-%d}",
            "time": f"{now:%H:%M}",
        },
    )
