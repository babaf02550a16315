"""Manage Users: what a User Manager does for the users of their practice (UM-2..UM-5, UM-9).

A User Manager lists the practice's users with their registration status,
edits the email and phone numbers of a user who has not finished
registration, sends them a new invitation link, and turns two-step
verification on or off for them, off with a reason (RC-2). There is no "invite" here: new users
arrive by invitation only (UM-9, RG-1).
"""

from __future__ import annotations

from typing import Any

import attrs

from securepractice.accounts._shared import (
    audit,
    require_optional_two_step,
    send_notice,
    supersede_links,
    switch_two_step,
)
from securepractice.accounts.registration import issue_invitation, send_invitation
from securepractice.accounts.verification import cancel_open_verification
from securepractice.dependencies import Dependencies, Service
from securepractice.errors import InvalidInput, InvalidState, PermissionDenied
from securepractice.policy import text
from securepractice.policy.identity import normalize_email
from securepractice.policy.roles import Action, is_user_manager
from securepractice.practice._base import acting
from securepractice.records import (
    Phone,
    PhoneKind,
    Purpose,
    RegistrationStatus,
    TokenPurpose,
    User,
    revised,
)
from securepractice.secret import Secret
from securepractice.verification.phones import parse_phone

__all__ = [
    "MAX_REASON_LENGTH",
    "ManagedUser",
    "edit_invited_user",
    "list_users",
    "reinvite",
    "set_two_step_for",
]

#: The longest reason a User Manager may give for turning two-step verification off (RC-2).
MAX_REASON_LENGTH = 500


@attrs.frozen(kw_only=True)
class ManagedUser:
    """One line of the Manage Users view (UM-3): who the user is and where they stand (ID-3)."""

    user_id: str
    email: str
    first_name: str
    last_name: str
    phones: tuple[Phone, ...]
    status: RegistrationStatus
    two_step_enabled: bool
    user_manager: bool
    locked: bool
    deactivated: bool

    @classmethod
    def of(cls, user: User) -> ManagedUser:
        """Return the line of ``user``."""
        return cls(
            user_id=user.id,
            email=user.email,
            first_name=user.first_name,
            last_name=user.last_name,
            phones=user.phones,
            status=user.status,
            two_step_enabled=user.two_step_enabled,
            user_manager=is_user_manager(user),
            locked=user.locked,
            deactivated=user.deactivated,
        )


def _not_registered(user: User) -> None:
    """Refuse a user who finished registration, or one who was deactivated (UM-4)."""
    if user.deactivated:
        raise InvalidState("This user has been deactivated.", code="user.deactivated")
    if user.status is not RegistrationStatus.INVITED:
        raise InvalidState(
            "This user has finished registration: only they can change their details.",
            code="user.already_registered",
        )


def _with_number(
    phones: tuple[Phone, ...], kind: PhoneKind, value: object, region: str
) -> tuple[Phone, ...]:
    """Set or, for blank text, remove the number of ``kind``; the other number stays."""
    others = tuple(p for p in phones if p.kind is not kind)
    if isinstance(value, str) and not value.strip():
        return others
    return (*others, parse_phone(value, kind=kind, region=region))


def list_users(service: Service, token: str | Secret[str]) -> tuple[ManagedUser, ...]:
    """List every user invited to the manager's practice, with their status (UM-3, ID-3)."""
    with acting(service.deps, token, "users.listed") as act:
        act.require(Action.LIST_USERS, practice_id=act.actor.practice_id)
        users = act.uow.users.list_for_practice(str(act.actor.practice_id))
        return tuple(ManagedUser.of(user) for user in users)


def edit_invited_user(
    service: Service,
    token: str | Secret[str],
    *,
    user_id: str,
    email: str | None = None,
    phone: str | None = None,
    cell: str | None = None,
) -> User:
    """Edit the email, phone or cell phone of a user who has not finished registration (UM-4).

    A field left as None stays as it is; a blank phone or cell removes
    that number. The email is normalised and must be no other user's
    (``user.email_taken``); changing it makes every outstanding
    invitation link useless, so the manager then re-invites. Changing a
    number ends an open verification, whose code went to the old one.
    """
    user_id = text.identifier(user_id, field="user_id")
    deps = service.deps
    region = deps.settings.verification.default_region
    with acting(deps, token, "user.edited", target=user_id) as act:
        user = act.user(user_id)
        act.require(Action.EDIT_INVITED_USER, user)
        _not_registered(user)
        changes: dict[str, Any] = {}
        if email is not None and (normalized := normalize_email(email)) != user.email:
            changes["email"] = normalized
        phones = user.phones
        for value, kind in ((phone, PhoneKind.PHONE), (cell, PhoneKind.CELL)):
            if value is not None:
                phones = _with_number(phones, kind, value, region)
        if phones != user.phones:
            changes["phones"] = phones
        if not changes:
            return user
        updated = revised(user, **changes)
        act.uow.users.save(updated, expected_version=user.version)
        superseded = 0
        if "email" in changes:
            superseded = supersede_links(act.uow, user.id, TokenPurpose.INVITATION)
        if "phones" in changes:
            cancel_open_verification(act.uow, user.id, Purpose.REGISTRATION)
        audit(
            act.uow,
            "user.edited",
            at=act.now,
            actor=act.actor,
            subject=updated,
            fields=",".join(changes),
            links_superseded=str(superseded),
        )
        return updated


def reinvite(service: Service, token: str | Secret[str], *, user_id: str) -> User:
    """Send a new invitation link to a user of the practice who has not registered (RG-4).

    Every earlier link stops working. The invitation is the registration
    flow's own (`~securepractice.accounts.registration.issue_invitation`):
    the same token, link and email. Users of another practice are refused
    (UM-2).
    """
    user_id = text.identifier(user_id, field="user_id")
    deps = service.deps
    with acting(deps, token, "invitation.sent", target=user_id) as act:
        user = act.user(user_id)
        act.require(Action.REINVITE, user)
        _not_registered(user)
        manager = act.actor
        cancel_open_verification(act.uow, user.id, Purpose.REGISTRATION)
        link = issue_invitation(deps, act.uow, user, now=act.now, invited_by=manager.id, again=True)
    send_invitation(deps, user, link, invited_by=manager.id)
    return user


def set_two_step_for(
    service: Service,
    token: str | Secret[str],
    *,
    user_id: str,
    enabled: bool,
    reason: str | None = None,
) -> User:
    """Turn two-step verification on or off for a user of the practice (UM-5, VF-9, RC-2).

    Turning it off needs a ``reason`` (one line of text, at most
    `MAX_REASON_LENGTH` characters, checked as every text is, IN-1), which
    is audited and told to the user; turning it on takes one too, if given.
    A manager's own is turned off in their profile, with their password and
    a code (`PermissionDenied`, ``two_step.own_account``), so that a session
    alone never turns it off.
    Either change ends every session of the user (RC-5), is audited as
    ``two_step.toggled``, and the user is emailed. Setting it to what it
    is changes nothing and sends nothing. Where every sign-in needs a second
    factor it cannot be turned off (``two_step.required``, MF-1).
    """
    if not isinstance(enabled, bool):
        raise InvalidInput(
            f"enabled must be True or False, not {type(enabled).__name__}",
            field="enabled",
            code="profile.not_bool",
        )
    if not enabled:
        require_optional_two_step(service.deps)
    user_id = text.identifier(user_id, field="user_id")
    why = text.line(
        "" if reason is None else reason,
        field="reason",
        max_length=MAX_REASON_LENGTH,
        required=not enabled,
    )
    deps = service.deps
    with acting(deps, token, "two_step.toggled", target=user_id) as act:
        user = act.user(user_id)
        act.require(Action.SET_TWO_STEP_FOR, user)
        if user.two_step_enabled is enabled:
            return user
        if not enabled and user.id == act.actor.id:
            raise PermissionDenied(
                "Turn your own two-step verification off in your profile: it asks for your "
                "password and a code.",
                code="two_step.own_account",
            )
        updated = switch_two_step(
            act.uow, user, enabled=enabled, now=act.now, actor=act.actor, reason=why
        )
        manager = act.actor
    _tell_user(deps, updated, manager, why)
    return updated


def _tell_user(deps: Dependencies, user: User, manager: User, reason: str) -> None:
    """Email the user that a User Manager turned their two-step verification on or off (RC-2)."""
    messages = deps.settings.messages
    who = " ".join(part for part in (manager.first_name, manager.last_name) if part)
    by = (
        messages.render("by_manager", {"manager": who})
        if who
        else messages.render("by_manager_without_name", {})
    )
    reason_given = messages.render("reason_given", {"reason": reason}) if reason else ""
    name = "two_step_turned_on_for_you" if user.two_step_enabled else "two_step_turned_off_for_you"
    subject, body = messages.render_email(
        name, {"portal": deps.portal_name, "by": by, "reason_given": reason_given}
    )
    send_notice(deps, user, user.email, subject, body, notice="two_step_toggled")
