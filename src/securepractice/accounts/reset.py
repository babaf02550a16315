"""Password reset: "Forgot Password", the e-mailed link, a code, a new password (RS-1..RS-5).

The steps, as the portal's "Forgot Password" help page lists them: ask with
your email address (steps 2-3), open the link in the email (step 4), verify
your identity by a code sent to your phone when two-step verification is on
(steps 5-6, in `~securepractice.accounts.verification`), and set a new
password, entered twice (step 7). A reset is how a lost password, an expired
one (PW-5) or a locked account (LK-1) is recovered (RS-4); support staff
cannot do it for the user (PW-9).
"""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from securepractice.accounts.verification import (
    LinkFlow,
    LinkStep,
    cancel_open_verification,
    duration_words,
    out_of_order,
)
from securepractice.errors import DeliveryFailed, InvalidInput
from securepractice.policy.identity import normalize_email
from securepractice.policy.password import PasswordReport
from securepractice.records import Credential, Purpose, TokenPurpose, User
from securepractice.secret import Secret
from securepractice.storage.ports import UnitOfWork
from securepractice.verification import tokens
from securepractice.verification.phones import DeliveryOption, delivery_options

__all__ = ["ResetActions", "ResetStage", "ResetStep"]

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


@attrs.frozen
class _Mail:
    to: str
    subject: str
    body: str


class ResetActions(LinkFlow):
    """Ask for a reset link, open it, and set a new password with it."""

    def forgot_password(self, *, email: str) -> None:
        """Send a reset link to ``email`` if it is a registered user's ("Forgot Password").

        The answer is always the same, None, whether the account exists or
        not and whatever the email looks like (RS-1): nothing is raised for an
        unknown or malformed email, and nothing is sent. A new link makes
        earlier reset links useless. A user who was invited but never
        registered has no password to reset: they get an email that sends
        them back to their invitation instead. A failure to hand the email
        over is audited, not raised, since raising would tell that the
        account exists.
        """
        rules = self._context.settings.links
        # Refuse a portal without its address for every email alike, known or not.
        tokens.build_link(Secret("check"), purpose=_RESET, rules=rules)
        now = self._now()
        try:
            address: str | None = normalize_email(email)
        except InvalidInput:
            address = None
        with self._unit() as uow:
            user = uow.users.get_by_email(address) if address is not None else None
            outcome, mail = self._reset_request(uow, user, now)
            self._audit(uow, "password.reset_requested", outcome, at=now, subject=user)
        if mail is None or user is None:
            return
        try:
            self._email(mail.to, mail.subject, mail.body)
        except DeliveryFailed as failure:
            self._record_delivery_failure("password.reset_email_failed", failure, user, actor=None)

    def _reset_request(
        self, uow: UnitOfWork, user: User | None, now: datetime
    ) -> tuple[str, _Mail | None]:
        """Decide what a reset request for ``user`` does; store its link if it gets one."""
        if user is None:
            return "unknown_user", None
        if user.deactivated:
            return "deactivated", None
        name = self._context.portal_name
        if uow.credentials.get(user.id) is None:
            body = (
                f"Someone asked to reset the password of {user.email} on {name}, but this "
                "account has not finished registering, so it has no password yet.\n\n"
                "To register, open the link in your invitation email. If it no longer works, "
                "ask the person who invited you to send a new invitation.\n"
            )
            return "not_registered", _Mail(user.email, f"Finish registering on {name}", body)
        rules = self._context.settings.links
        cancel_open_verification(uow, user.id, Purpose.PASSWORD_RESET)
        issued = tokens.issue_token(user_id=user.id, purpose=_RESET, now=now, rules=rules)
        link = tokens.build_link(issued.token, purpose=_RESET, rules=rules)
        uow.link_tokens.supersede_all(user.id, _RESET)
        uow.link_tokens.add(issued.record)
        body = (
            f"Someone, probably you, asked to reset the password of {user.email} on {name}.\n\n"
            f"To choose a new password, open this link (it works for "
            f"{duration_words(rules.reset_lifetime)}, once):\n\n"
            f"{link.reveal()}\n\n"
            "You will verify your identity with a code sent to your phone, then enter your "
            "new password twice. If you did not ask, ignore this email: your password has "
            "not changed.\n"
        )
        return "ok", _Mail(user.email, f"Reset your {name} password", body)

    def open_reset_link(self, token: str | Secret[str]) -> ResetStep:
        """Check a reset link and say which step the user is at (step 4, RS-2).

        Opening does not use the link up. Every refusal is the one
        `InvalidToken` (RG-6).
        """
        with self._link_unit(token, _RESET) as step:
            if self._verification_due(step):
                return ResetStep(
                    stage=ResetStage.VERIFY,
                    email=step.user.email,
                    delivery_options=delivery_options(step.user.phones),
                )
            return ResetStep(stage=ResetStage.PASSWORD, email=step.user.email)

    def reset_password(
        self, token: str | Secret[str], *, password: str, confirmation: str
    ) -> PasswordReport:
        """Set a new password with a reset link (step 7, RS-2, RS-3).

        When two-step verification is on, a code must have been verified on
        this link first (``flow.out_of_order`` otherwise). Every password
        rule applies, the last passwords included (PW-4); a refused password
        comes back as a report and nothing changes. On success the link is
        used up and every other reset link ends, the account is unlocked, its
        failure count cleared and every session revoked; the user gets an
        email that their password was changed. The user is not signed in.
        """
        with self._link_unit(token, _RESET) as step:
            self._require_password_step(step)
            credential = step.uow.credentials.get(step.user.id)
        history = () if credential is None else (credential.password_hash, *credential.history)
        hasher = self._context.hasher
        report = self._context.policy.check(password, confirmation, history=history, hasher=hasher)
        if not report.ok:
            return report
        hashed = hasher.hash(password)
        with self._link_unit(token, _RESET) as step:
            self._require_password_step(step)
            user = self._complete(step, hashed)
        try:
            self._email(user.email, *self._changed_email(user, step.now))
        except DeliveryFailed as failure:
            self._record_delivery_failure("password.reset_notice_failed", failure, user, actor=user)
        return report

    def _require_password_step(self, step: LinkStep) -> None:
        if self._verification_due(step):
            raise out_of_order()

    def _complete(self, step: LinkStep, hashed: str) -> User:
        """Store the new password and end what the old one allowed (RS-3), in ``step``'s unit."""
        uow, user, now = step.uow, step.user, step.now
        if uow.link_tokens.consume(step.link.token_hash, purpose=_RESET, now=now) is None:
            raise self._refuse_used(step)
        current = uow.credentials.get(user.id)
        previous = () if current is None else (current.password_hash, *current.history)
        keep = max(self._context.settings.password.history - 1, 0)
        uow.credentials.put(
            Credential(user_id=user.id, password_hash=hashed, set_at=now, history=previous[:keep])
        )
        uow.link_tokens.supersede_all(user.id, _RESET)
        unlocked = attrs.evolve(user, locked=False)
        if unlocked != user:
            uow.users.update(unlocked)
            self._audit(uow, "account.unlocked", "password_reset", at=now, actor=user, subject=user)
        uow.sign_in_failures.reset(user.id)
        revoked = uow.sessions.revoke_all(user.id)
        self._audit(
            uow, "password.reset", at=now, actor=user, subject=user,
            sessions_revoked=str(revoked), was_locked=str(user.locked).lower(),
        )  # fmt: skip
        return unlocked

    def _changed_email(self, user: User, now: datetime) -> tuple[str, str]:
        name = self._context.portal_name
        body = (
            f"The password of {user.email} on {name} was changed on "
            f"{now:%Y-%m-%d at %H:%M} UTC, with a reset link sent to this address. "
            "Every session that was signed in has been signed out.\n\n"
            'If you did not do this, use "Forgot Password" at once to choose a new '
            "password, and tell your practice's User Manager.\n"
        )
        return f"Your {name} password was changed", body
