"""Manage Users: what a User Manager does for the users of their practice (UM-2..UM-5, UM-9).

A User Manager lists the practice's users with their registration status,
edits the email and phone numbers of a user who has not finished
registration, sends them a new invitation link, and turns two-step
verification on or off for them. There is no "invite" here: new users
arrive by invitation only (UM-9, RG-1).
"""

from __future__ import annotations

import attrs

from securepractice.accounts.registration import RegistrationActions
from securepractice.accounts.verification import cancel_open_verification
from securepractice.errors import InvalidInput, InvalidState
from securepractice.policy.identity import normalize_email
from securepractice.policy.roles import Action, is_user_manager
from securepractice.practice._base import PracticeService
from securepractice.records import (
    Phone,
    PhoneKind,
    Purpose,
    RegistrationStatus,
    TokenPurpose,
    User,
)
from securepractice.secret import Secret
from securepractice.verification.phones import parse_phone

__all__ = ["ManageUsersActions", "ManagedUser"]


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


class ManageUsersActions(PracticeService):
    """The Manage Users view of a User Manager (UM-2..UM-5); it has no invite action (UM-9)."""

    def list_users(self, token: str | Secret[str]) -> tuple[ManagedUser, ...]:
        """List every user invited to the manager's practice, with their status (UM-3, ID-3)."""
        with self._acting(token, "users.listed") as act:
            act.require(Action.LIST_USERS, practice_id=act.actor.practice_id)
            users = act.uow.users.list_for_practice(str(act.actor.practice_id))
            return tuple(ManagedUser.of(user) for user in users)

    def edit_invited_user(
        self,
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
        region = self._context.settings.verification.default_region
        with self._acting(token, "user.edited", target=user_id) as act:
            user = act.user(user_id)
            act.require(Action.EDIT_INVITED_USER, user)
            _not_registered(user)
            updated = user
            if email is not None:
                updated = attrs.evolve(updated, email=normalize_email(email))
            for value, kind in ((phone, PhoneKind.PHONE), (cell, PhoneKind.CELL)):
                if value is not None:
                    updated = attrs.evolve(
                        updated, phones=_with_number(updated.phones, kind, value, region)
                    )
            if updated == user:
                return user
            act.uow.users.update(updated)
            superseded = 0
            if updated.email != user.email:
                superseded = act.uow.link_tokens.supersede_all(user.id, TokenPurpose.INVITATION)
            if updated.phones != user.phones:
                cancel_open_verification(act.uow, user.id, Purpose.REGISTRATION)
            changed = [
                name
                for name, before, after in (
                    ("email", user.email, updated.email),
                    ("phones", user.phones, updated.phones),
                )
                if before != after
            ]
            self._audit(
                act.uow,
                "user.edited",
                at=act.now,
                actor=act.actor,
                subject=updated,
                fields=",".join(changed),
                links_superseded=str(superseded),
            )
            return updated

    def reinvite(self, token: str | Secret[str], *, user_id: str) -> User:
        """Send a new invitation link to a user of the practice who has not registered (RG-4).

        Every earlier link stops working. The invitation is the registration
        flow's own (`RegistrationActions.invite`): the same token, link and
        email. Users of another practice are refused (UM-2).
        """
        registration = RegistrationActions(self._context)
        with self._acting(token, "invitation.sent", target=user_id) as act:
            user = act.user(user_id)
            act.require(Action.REINVITE, user)
            _not_registered(user)
            manager = act.actor
            cancel_open_verification(act.uow, user.id, Purpose.REGISTRATION)
            link = registration.issue_invitation(
                act.uow, user, now=act.now, invited_by=manager.id, again=True
            )
        registration.send_invitation(user, link, invited_by=manager.id)
        return user

    def set_two_step_for(self, token: str | Secret[str], *, user_id: str, enabled: bool) -> User:
        """Turn two-step verification on or off for a user of the practice (UM-5, VF-9)."""
        if not isinstance(enabled, bool):
            raise InvalidInput(
                f"enabled must be True or False, not {type(enabled).__name__}",
                field="enabled",
                code="profile.not_bool",
            )
        with self._acting(token, "two_step.toggled", target=user_id) as act:
            user = act.user(user_id)
            act.require(Action.SET_TWO_STEP_FOR, user)
            if user.two_step_enabled is enabled:
                return user
            user = attrs.evolve(user, two_step_enabled=enabled)
            act.uow.users.update(user)
            self._audit(
                act.uow,
                "two_step.toggled",
                at=act.now,
                actor=act.actor,
                subject=user,
                enabled="on" if enabled else "off",
            )
            return user
