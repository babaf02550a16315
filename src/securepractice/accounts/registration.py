"""Invitation and registration: the flow a new user follows from the e-mailed link (RG-1..RG-6).

The steps, as the portal's "Login" help page lists them: open the link
(step 1), give at least one phone number (step 2), verify your identity by
a code when two-step verification is on (steps 3-5, in
`~securepractice.accounts.verification`), accept the Terms of Use (step 6),
create a password and re-enter it (step 7), and sign in (step 8: not here,
registration does not sign anyone in).

Where a user stands is derived from what is stored (their phones, a
verification done on this very link, the acceptance of the current Terms of
Use), never kept as a separate field, so it cannot drift from the facts. A
step out of order raises `InvalidState` (``flow.out_of_order``) and changes
nothing.
"""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from securepractice.accounts._shared import (
    audit,
    deliver_or_record,
    duration_words,
    new_id,
    send_email,
    supersede_links,
)
from securepractice.accounts.verification import (
    LinkStep,
    cancel_open_verification,
    link_unit,
    link_verified,
    out_of_order,
    record_delivery_failure,
    use_link,
    verification_due,
)
from securepractice.dependencies import Dependencies, Service
from securepractice.errors import AlreadyExists, InvalidInput, NotFound
from securepractice.policy import text
from securepractice.policy.identity import normalize_email
from securepractice.policy.password import PasswordReport
from securepractice.records import (
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
    revised,
)
from securepractice.secret import Secret
from securepractice.storage.ports import UnitOfWork
from securepractice.verification import tokens
from securepractice.verification.phones import DeliveryOption, delivery_options, parse_phone

__all__ = [
    "RegistrationStage",
    "RegistrationStep",
    "accept_terms",
    "add_phones",
    "create_practice",
    "enrol",
    "invite",
    "issue_invitation",
    "open_invitation",
    "send_invitation",
    "set_password",
]

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


def create_practice(service: Service, *, name: str, address: str = "", phone: str = "") -> Practice:
    """Create a practice with its main account information (ID-2).

    Later changes belong to support staff only (PF-2). The name and the
    address (of up to six lines) are checked as every text is (IN-1,
    `securepractice.policy.text`); ``phone`` is stored in E.164 form when given.
    """
    deps = service.deps
    checked_name = text.practice_name(name)
    checked_address = text.lines(address, field="address")
    region = deps.settings.verification.default_region
    number = parse_phone(phone, kind=PhoneKind.PHONE, region=region).number if _given(phone) else ""
    now = deps.now()
    practice = Practice(
        id=new_id(), name=checked_name, address=checked_address, phone=number, created_at=now
    )
    with deps.unit() as uow:
        uow.practices.add(practice)
        audit(uow, "practice.created", at=now, practice_id=practice.id)
    return practice


def invite(
    service: Service,
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

    The email is normalised (ID-1) and the names checked as every text is
    (IN-1); both may be empty. An email of another practice's user is
    refused (``user.email_taken``, ID-2); so is one of a user who has
    registered (``user.already_registered``). Inviting again sends a new
    link and makes every earlier one useless (RG-4); the new link needs its
    own verification. The practice's first user becomes its User Manager
    (RG-5). The link goes out after the invitation is stored; if the email
    cannot be handed over, `DeliveryFailed` is raised and inviting again
    sends a new link.
    """
    practice_id = text.identifier(practice_id, field="practice_id")
    if invited_by is not None:
        invited_by = text.identifier(invited_by, field="invited_by")
    deps = service.deps
    region = deps.settings.verification.default_region
    now = deps.now()
    draft = User(
        id=new_id(),
        practice_id=practice_id,
        email=normalize_email(email),
        first_name=text.name(first_name, field="first_name", required=False),
        last_name=text.name(last_name, field="last_name", required=False),
        phones=_parse_phones(phone, cell, region),
        created_at=now,
    )
    with deps.unit() as uow:
        if uow.practices.get(practice_id) is None:
            raise NotFound("There is no such practice.", code="practice.not_found")
        user, again = enrol(uow, draft)
        link = issue_invitation(deps, uow, user, now=now, invited_by=invited_by, again=again)
    send_invitation(deps, user, link, invited_by=invited_by)
    return user


def enrol(uow: UnitOfWork, draft: User) -> tuple[User, bool]:
    """In ``uow``, store the invitee ``draft``, or take again the known invitee of its email.

    Returns the user and whether they were invited before (RG-4); the
    refusals are `invite`'s (``user.email_taken``, ``user.already_registered``).
    A building block for the services that invite in a unit of their own
    (support staff, OP-1); issue the link with `issue_invitation`.
    """
    existing = uow.users.get_by_email(draft.email)
    if existing is None:
        return _new_user(uow, draft), False
    return _invited_again(uow, existing, draft), True


def issue_invitation(
    deps: Dependencies,
    uow: UnitOfWork,
    user: User,
    *,
    now: datetime,
    invited_by: str | None,
    again: bool,
) -> Secret[str]:
    """Store a new invitation link for ``user`` in ``uow`` and return it (RG-1, RG-4).

    Every earlier invitation link of the user stops working, and a
    verification made on one of them does not count for the new link. A
    building block for the services that invite inside a unit of their own
    (re-invitation by a User Manager); send the link with `send_invitation`
    once the unit has committed.
    """
    rules = deps.settings.links
    issued = tokens.issue_token(user_id=user.id, purpose=_INVITATION, now=now, rules=rules)
    link = tokens.build_link(issued.token, purpose=_INVITATION, rules=rules)
    superseded = supersede_links(uow, user.id, _INVITATION)
    uow.link_tokens.add(issued.record)
    audit(
        uow,
        "invitation.sent",
        at=now,
        actor=invited_by,
        subject=user,
        again=str(again).lower(),
        links_superseded=str(superseded),
    )
    return link


def send_invitation(
    deps: Dependencies, user: User, link: Secret[str], *, invited_by: str | None
) -> None:
    """Email the invitation ``link`` to ``user``; a failed delivery is audited and raised."""
    deliver_or_record(
        lambda: send_email(deps, user.email, *_invitation_email(deps, user, link)),
        lambda failure: record_delivery_failure(
            deps, "invitation.delivery_failed", failure, user, actor=invited_by
        ),
    )


def _new_user(uow: UnitOfWork, draft: User) -> User:
    """Store a new invitee as drafted; a practice's first user is its User Manager too (RG-5)."""
    first = draft.practice_id is not None and not uow.users.list_for_practice(draft.practice_id)
    user = attrs.evolve(draft, roles=draft.roles | {Role.USER_MANAGER}) if first else draft
    uow.users.add(user)
    return user


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
    cancel_open_verification(uow, user.id, Purpose.REGISTRATION)
    corrected = {
        "first_name": draft.first_name or user.first_name,
        "last_name": draft.last_name or user.last_name,
        "phones": draft.phones or user.phones,
    }
    if all(getattr(user, name) == value for name, value in corrected.items()):
        return user
    updated = revised(user, **corrected)
    uow.users.save(updated, expected_version=user.version)
    return updated


def _invitation_email(deps: Dependencies, user: User, link: Secret[str]) -> tuple[str, str]:
    messages = deps.settings.messages
    greeting = (
        messages.render("greeting", {"first_name": user.first_name})
        if user.first_name
        else messages.render("greeting_without_name", {})
    )
    return messages.render_email(
        "invitation",
        {
            "portal": deps.portal_name,
            "email": user.email,
            "first_name": user.first_name,
            "greeting": greeting,
            "lifetime": duration_words(deps.settings.links.invitation_lifetime),
            "link": link.reveal(),
        },
    )


def open_invitation(service: Service, token: str | Secret[str]) -> RegistrationStep:
    """Check an invitation link and say which step the user is at (step 1, RG-1).

    Opening does not use the link up: a user who closes the tab opens it
    again. Every refusal is the one `InvalidToken` (RG-6).
    """
    deps = service.deps
    with link_unit(deps, token, _INVITATION) as step:
        return _step(deps, step)


def add_phones(
    service: Service, token: str | Secret[str], *, phone: str | None = None, cell: str | None = None
) -> RegistrationStep:
    """Give the "Phone" and/or "Cell Phone" numbers (step 2, VF-1, VF-3).

    At least one is needed (``phone.required``); each is parsed and stored in
    E.164 form, and an error names its field. The numbers given replace the
    earlier ones. They can be corrected until a code was verified; an open
    verification then ends, since its number may have changed.
    """
    deps = service.deps
    with link_unit(deps, token, _INVITATION) as step:
        if _stage(deps, step) not in {RegistrationStage.PHONES, RegistrationStage.VERIFY}:
            raise out_of_order()
        phones = _parse_phones(phone, cell, deps.settings.verification.default_region)
        if not phones:
            raise InvalidInput(
                "Enter at least one phone number: Phone or Cell Phone.",
                field="phone",
                code="phone.required",
            )
        user = revised(step.user, phones=phones)
        step.uow.users.save(user, expected_version=step.user.version)
        cancel_open_verification(step.uow, user.id, Purpose.REGISTRATION)
        audit(
            step.uow,
            "profile.phones_set",
            at=step.now,
            actor=user,
            subject=user,
            kinds=",".join(p.kind.value for p in phones),
        )
        return _step(deps, attrs.evolve(step, user=user))


def accept_terms(service: Service, token: str | Secret[str], *, version: str) -> RegistrationStep:
    """Accept the Terms of Use of ``version`` (step 6, RG-3).

    ``version`` is the version the page showed; it must be the current one
    (``terms.outdated`` otherwise). The acceptance is kept with its version
    and time.
    """
    deps = service.deps
    with link_unit(deps, token, _INVITATION) as step:
        if _stage(deps, step) is not RegistrationStage.TERMS:
            raise out_of_order()
        if version != deps.terms_version:
            raise InvalidInput(
                "These Terms of Use have changed: read the current ones and accept them.",
                field="version",
                code="terms.outdated",
            )
        step.uow.terms.add(
            TermsAcceptance(user_id=step.user.id, version=version, accepted_at=step.now)
        )
        audit(
            step.uow, "terms.accepted", at=step.now, actor=step.user, subject=step.user,
            version=version,
        )  # fmt: skip
        return _step(deps, step)


def set_password(
    service: Service, token: str | Secret[str], *, password: str, confirmation: str
) -> PasswordReport:
    """Create the password and re-enter it (step 7); this completes registration.

    The whole password policy applies; a password it refuses comes back as
    a report of every violation, and nothing changes (PW-8). On success the
    link is used up, so no flow completes after the link expired or was
    replaced (RG-1), and the status becomes ``registered`` (a code was
    verified on this link) or ``registered_unverified`` (two-step
    verification was off) (ID-3). The user is not signed in: send them to
    sign in (step 8, RG-2).
    """
    deps = service.deps
    with link_unit(deps, token, _INVITATION) as step:
        if _stage(deps, step) is not RegistrationStage.PASSWORD:
            raise out_of_order()
    report = deps.policy.check(password, confirmation)
    if not report.ok:
        return report
    hashed = deps.hasher.hash(password)
    with link_unit(deps, token, _INVITATION) as step:
        if _stage(deps, step) is not RegistrationStage.PASSWORD:
            raise out_of_order()
        uow, user = step.uow, step.user
        use_link(step, token)
        status = (
            RegistrationStatus.REGISTERED
            if link_verified(step)
            else RegistrationStatus.REGISTERED_UNVERIFIED
        )
        uow.credentials.add(Credential(user_id=user.id, password_hash=hashed, set_at=step.now))
        uow.users.save(revised(user, status=status), expected_version=user.version)
        supersede_links(uow, user.id, _INVITATION)
        audit(
            uow, "invitation.accepted", at=step.now, actor=user, subject=user,
            status=status.value,
        )  # fmt: skip
        audit(uow, "password.set", at=step.now, actor=user, subject=user)
    return report


def _stage(deps: Dependencies, step: LinkStep) -> RegistrationStage:
    """Derive the user's step from what is stored (RG-2)."""
    user = step.user
    if not user.phones:
        return RegistrationStage.PHONES
    if verification_due(step):
        return RegistrationStage.VERIFY
    current = deps.terms_version
    accepted = any(a.version == current for a in step.uow.terms.list_for_user(user.id))
    return RegistrationStage.PASSWORD if accepted else RegistrationStage.TERMS


def _step(deps: Dependencies, step: LinkStep) -> RegistrationStep:
    stage = _stage(deps, step)
    options = delivery_options(step.user.phones) if stage is RegistrationStage.VERIFY else ()
    return RegistrationStep(stage=stage, email=step.user.email, delivery_options=options)
