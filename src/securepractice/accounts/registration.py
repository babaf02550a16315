"""Invitation and registration: the flow a new user follows from the e-mailed link (RG-1..RG-6).

The steps, as the portal's "Login" help page lists them: open the link
(step 1), give at least one phone number (step 2), verify your identity by
a code when two-step verification is on (steps 3-5, in
`~securepractice.accounts.verification`), accept the Terms of Use (step 6),
create a password and re-enter it (step 7), and sign in (step 8: not here,
registration does not sign anyone in).

Where a user stands is derived from what is stored (their phones, a
verification done since the link was made, the acceptance of the current
Terms of Use), never kept as a separate field, so it cannot drift from the
facts. A step out of order raises `InvalidState` (``flow.out_of_order``)
and changes nothing.
"""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from securepractice.accounts._service import new_id
from securepractice.accounts.verification import (
    LinkFlow,
    LinkStep,
    cancel_open_verification,
    duration_words,
    out_of_order,
    verified_since,
)
from securepractice.errors import AlreadyExists, InvalidInput, NotFound
from securepractice.policy.identity import normalize_email
from securepractice.policy.password import PasswordReport
from securepractice.records import (
    AuditEvent,
    Credential,
    Phone,
    PhoneKind,
    Practice,
    Purpose,
    RegistrationStatus,
    Role,
    TermsAcceptance,
    TokenPurpose,
    User,
)
from securepractice.secret import Secret
from securepractice.storage.ports import UnitOfWork
from securepractice.verification import tokens
from securepractice.verification.phones import DeliveryOption, delivery_options, parse_phone

__all__ = ["RegistrationActions", "RegistrationStage", "RegistrationStep"]

_INVITATION = TokenPurpose.INVITATION


class RegistrationStage(enum.Enum):
    """The registration step a user is at (RG-2), in the order they come."""

    PHONES = "phones"
    VERIFY = "verify"
    TERMS = "terms"
    PASSWORD = "password"


@attrs.frozen(kw_only=True)
class RegistrationStep:
    """Where the user of an invitation link stands: the step to show and what it needs.

    ``email`` is the user's username (ID-1); ``delivery_options`` are the
    ways a code can reach them, given only at ``VERIFY`` (VF-2).
    """

    stage: RegistrationStage
    email: str
    delivery_options: tuple[DeliveryOption, ...] = ()


def _given(value: object) -> bool:
    """Whether a form field was filled in: None and blank text are "not given"."""
    return value is not None and not (isinstance(value, str) and not value.strip())


def _parse_phones(phone: object, cell: object, region: str) -> tuple[Phone, ...]:
    """Parse the "Phone" and "Cell Phone" fields that were given (VF-1, VF-3)."""
    fields = ((phone, PhoneKind.PHONE), (cell, PhoneKind.CELL))
    return tuple(
        parse_phone(value, kind=kind, region=region) for value, kind in fields if _given(value)
    )


class RegistrationActions(LinkFlow):
    """Create a practice, invite its users, and take an invited user through registration."""

    def create_practice(self, *, name: str, address: str = "", phone: str = "") -> Practice:
        """Create a practice with its main account information (ID-2).

        Later changes belong to support staff only (PF-2). ``phone`` is
        stored in E.164 form when given.
        """
        text: object = name
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput(
                "Enter the practice's name.", field="name", code="practice.name_required"
            )
        region = self._context.settings.verification.default_region
        number = (
            parse_phone(phone, kind=PhoneKind.PHONE, region=region).number if _given(phone) else ""
        )
        now = self._now()
        practice = Practice(
            id=new_id(), name=name.strip(), address=address.strip(), phone=number, created_at=now
        )
        with self._unit() as uow:
            uow.practices.add(practice)
            uow.audit.append(
                AuditEvent(
                    id=new_id(), at=now, action="practice.created", outcome="ok",
                    practice_id=practice.id,
                )
            )  # fmt: skip
        return practice

    def invite(
        self,
        *,
        practice_id: str,
        email: str,
        first_name: str = "",
        last_name: str = "",
        phone: str | None = None,
        cell: str | None = None,
        invited_by: str | None = None,
    ) -> User:
        """Invite a user of the practice by email, or invite again someone not yet registered.

        The email is normalised (ID-1). An email of another practice's user
        is refused (``user.email_taken``, ID-2); so is one of a user who has
        registered (``user.already_registered``). Inviting again sends a new
        link and makes every earlier one useless (RG-4). The practice's first
        user becomes its User Manager (RG-5). The link goes out after the
        invitation is stored; if the email cannot be handed over,
        `DeliveryFailed` is raised and inviting again sends a new link.
        """
        region = self._context.settings.verification.default_region
        now = self._now()
        draft = User(
            id=new_id(),
            practice_id=practice_id,
            email=normalize_email(email),
            first_name=first_name.strip(),
            last_name=last_name.strip(),
            phones=_parse_phones(phone, cell, region),
            created_at=now,
        )
        with self._unit() as uow:
            if uow.practices.get(practice_id) is None:
                raise NotFound("There is no such practice.", code="practice.not_found")
            existing = uow.users.get_by_email(draft.email)
            user = (
                self._new_user(uow, draft)
                if existing is None
                else self._invited_again(uow, existing, draft)
            )
            link = self.issue_invitation(
                uow, user, now=now, invited_by=invited_by, again=existing is not None
            )
        self.send_invitation(user, link, invited_by=invited_by)
        return user

    def issue_invitation(
        self,
        uow: UnitOfWork,
        user: User,
        *,
        now: datetime,
        invited_by: str | None,
        again: bool,
    ) -> Secret[str]:
        """Store a new invitation link for ``user`` in ``uow`` and return it (RG-1, RG-4).

        Every earlier invitation link of the user stops working. A building
        block for the services that invite inside a unit of their own
        (re-invitation by a User Manager); send the link with
        `send_invitation` once the unit has committed.
        """
        rules = self._context.settings.links
        issued = tokens.issue_token(user_id=user.id, purpose=_INVITATION, now=now, rules=rules)
        superseded = uow.link_tokens.supersede_all(user.id, _INVITATION)
        uow.link_tokens.add(issued.record)
        self._audit(
            uow,
            "invitation.sent",
            at=now,
            actor=invited_by,
            subject=user,
            again=str(again).lower(),
            links_superseded=str(superseded),
        )
        return tokens.build_link(issued.token, purpose=_INVITATION, rules=rules)

    def send_invitation(self, user: User, link: Secret[str], *, invited_by: str | None) -> None:
        """Email the invitation ``link`` to ``user``; a failed delivery is audited and raised."""
        self._deliver_or_record(
            lambda: self._email(user.email, *self._invitation_email(user, link)),
            lambda failure: self._record_delivery_failure(
                "invitation.delivery_failed", failure, user, actor=invited_by
            ),
        )

    @staticmethod
    def _new_user(uow: UnitOfWork, draft: User) -> User:
        """Store a new invited user; the practice's first one is its User Manager (RG-5)."""
        first = draft.practice_id is not None and not uow.users.list_for_practice(draft.practice_id)
        user = attrs.evolve(
            draft, roles=frozenset({Role.USER, Role.USER_MANAGER} if first else {Role.USER})
        )
        uow.users.add(user)
        return user

    @staticmethod
    def _invited_again(uow: UnitOfWork, user: User, draft: User) -> User:
        """Invite a known user again: the same practice, and not registered yet (ID-2, RG-4)."""
        if user.practice_id != draft.practice_id:
            raise AlreadyExists(
                "This email address belongs to a user of another practice's account.",
                code="user.email_taken",
            )
        if user.status is not RegistrationStatus.INVITED:
            raise AlreadyExists(
                "This user has registered already: they sign in with their email address.",
                code="user.already_registered",
            )
        updated = attrs.evolve(
            user,
            first_name=draft.first_name or user.first_name,
            last_name=draft.last_name or user.last_name,
            phones=draft.phones or user.phones,
        )
        if updated != user:
            uow.users.update(updated)
        cancel_open_verification(uow, user.id, Purpose.REGISTRATION)
        return updated

    def _invitation_email(self, user: User, link: Secret[str]) -> tuple[str, str]:
        name = self._context.portal_name
        lifetime = duration_words(self._context.settings.links.invitation_lifetime)
        greeting = f"Hello {user.first_name}," if user.first_name else "Hello,"
        body = (
            f"{greeting}\n\n"
            f"You are invited to {name}. Your email address, {user.email}, is your username.\n\n"
            f"To register, open this link (it works for {lifetime}):\n\n"
            f"{link.reveal()}\n\n"
            "You will give at least one phone number, verify your identity with a code "
            "sent to your phone, accept the Terms of Use and create your password. "
            "Then you sign in with your email address and your new password.\n"
        )
        return f"You are invited to {name}", body

    def open_invitation(self, token: str | Secret[str]) -> RegistrationStep:
        """Check an invitation link and say which step the user is at (step 1, RG-1).

        Opening does not use the link up: a user who closes the tab opens it
        again. Every refusal is the one `InvalidToken` (RG-6).
        """
        with self._link_unit(token, _INVITATION) as step:
            return self._step(step)

    def add_phones(
        self, token: str | Secret[str], *, phone: str | None = None, cell: str | None = None
    ) -> RegistrationStep:
        """Give the "Phone" and/or "Cell Phone" numbers (step 2, VF-1, VF-3).

        At least one is needed (``phone.required``); each is parsed and
        stored in E.164 form, and an error names its field. The numbers given
        replace the earlier ones. They can be corrected until a code was
        verified; an open verification then ends, since its number may have
        changed.
        """
        with self._link_unit(token, _INVITATION) as step:
            if self._stage(step) not in {RegistrationStage.PHONES, RegistrationStage.VERIFY}:
                raise out_of_order()
            region = self._context.settings.verification.default_region
            phones = _parse_phones(phone, cell, region)
            if not phones:
                raise InvalidInput(
                    "Enter at least one phone number: Phone or Cell Phone.",
                    field="phone",
                    code="phone.required",
                )
            user = attrs.evolve(step.user, phones=phones)
            step.uow.users.update(user)
            cancel_open_verification(step.uow, user.id, Purpose.REGISTRATION)
            self._audit(
                step.uow,
                "profile.phones_set",
                at=step.now,
                actor=user,
                subject=user,
                kinds=",".join(p.kind.value for p in phones),
            )
            return self._step(attrs.evolve(step, user=user))

    def accept_terms(self, token: str | Secret[str], *, version: str) -> RegistrationStep:
        """Accept the Terms of Use of ``version`` (step 6, RG-3).

        ``version`` is the version the page showed; it must be the current
        one (``terms.outdated`` otherwise). The acceptance is kept with its
        version and time.
        """
        with self._link_unit(token, _INVITATION) as step:
            if self._stage(step) is not RegistrationStage.TERMS:
                raise out_of_order()
            if version != self._context.terms_version:
                raise InvalidInput(
                    "These Terms of Use have changed: read the current ones and accept them.",
                    field="version",
                    code="terms.outdated",
                )
            step.uow.terms.add(
                TermsAcceptance(user_id=step.user.id, version=version, accepted_at=step.now)
            )
            self._audit(
                step.uow, "terms.accepted", at=step.now, actor=step.user, subject=step.user,
                version=version,
            )  # fmt: skip
            return self._step(step)

    def set_password(
        self, token: str | Secret[str], *, password: str, confirmation: str
    ) -> PasswordReport:
        """Create the password and re-enter it (step 7); this completes registration.

        The whole password policy applies; a password it refuses comes back
        as a report of every violation, and nothing changes (PW-8). On
        success the link is used up, so no flow completes after the link
        expired or was replaced (RG-1), and the status becomes ``registered``
        (a code was verified) or ``registered_unverified`` (two-step
        verification was off) (ID-3). The user is not signed in: send them to
        sign in (step 8, RG-2).
        """
        with self._link_unit(token, _INVITATION) as step:
            if self._stage(step) is not RegistrationStage.PASSWORD:
                raise out_of_order()
        report = self._context.policy.check(password, confirmation)
        if not report.ok:
            return report
        hashed = self._context.hasher.hash(password)
        with self._link_unit(token, _INVITATION) as step:
            if self._stage(step) is not RegistrationStage.PASSWORD:
                raise out_of_order()
            uow, user = step.uow, step.user
            if (
                uow.link_tokens.consume(step.link.token_hash, purpose=_INVITATION, now=step.now)
                is None
            ):
                raise self._refuse_used(step)
            verified = verified_since(uow, user.id, Purpose.REGISTRATION, step.link.created_at)
            status = (
                RegistrationStatus.REGISTERED
                if verified
                else RegistrationStatus.REGISTERED_UNVERIFIED
            )
            uow.credentials.put(Credential(user_id=user.id, password_hash=hashed, set_at=step.now))
            uow.users.update(attrs.evolve(user, status=status))
            uow.link_tokens.supersede_all(user.id, _INVITATION)
            self._audit(
                uow, "invitation.accepted", at=step.now, actor=user, subject=user,
                status=status.value,
            )  # fmt: skip
            self._audit(uow, "password.set", at=step.now, actor=user, subject=user)
        return report

    def _stage(self, step: LinkStep) -> RegistrationStage:
        """Derive the user's step from what is stored (RG-2)."""
        user = step.user
        if not user.phones:
            return RegistrationStage.PHONES
        if self._verification_due(step):
            return RegistrationStage.VERIFY
        current = self._context.terms_version
        accepted = any(a.version == current for a in step.uow.terms.list_for_user(user.id))
        return RegistrationStage.PASSWORD if accepted else RegistrationStage.TERMS

    def _step(self, step: LinkStep) -> RegistrationStep:
        stage = self._stage(step)
        options = delivery_options(step.user.phones) if stage is RegistrationStage.VERIFY else ()
        return RegistrationStep(stage=stage, email=step.user.email, delivery_options=options)
