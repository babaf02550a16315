"""What support staff do for practices and their users (SP-1, UM-8, PF-2, SB-1, LK-2, LK-6, RC-5).

Support staff unlock accounts, grant and revoke the User Manager role, edit
a practice's main account information, subscribe practices to products and
grant those products to the practice's users, deactivate users, and end
every session of a user without deactivating them. They
have no way to see, set or reset a password (PW-9): a user changes their
own password, or resets it through the e-mailed link. Support staff may
mark a password compromised (RC-4), which makes its user choose a new one,
and clear a user's count of wrong one-time codes, after which codes work
for them again (MF-8).

Support staff are made through the library, never by writing records
(OP-1): a member of staff, or the operator with the portal's secret and
database (`securepractice.admin`), invites them, and they register as a
practice user does, under the password policy and two-step verification.
The operator's actions share their decisions with these, through the
private functions that take an `Acting`.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from securepractice.accounts._shared import (
    audit,
    end_sessions,
    new_id,
    retry_on_conflict,
    save_ledger,
)
from securepractice.accounts.registration import enrol, issue_invitation, send_invitation
from securepractice.accounts.signin import tell_compromised
from securepractice.dependencies import Dependencies, Service
from securepractice.errors import InvalidInput, InvalidState, NotFound
from securepractice.policy import text
from securepractice.policy.identity import normalize_email
from securepractice.policy.lockout import Lock, with_lock
from securepractice.policy.roles import Action, is_support
from securepractice.policy.securemail import SECUREMAIL
from securepractice.practice._base import Acting, acting
from securepractice.records import (
    Entitlement,
    PhoneKind,
    Practice,
    PracticeSubscription,
    RegistrationStatus,
    Role,
    User,
    revised,
)
from securepractice.secret import Secret
from securepractice.verification import guesses
from securepractice.verification.phones import parse_phone

__all__ = [
    "clear_code_guesses",
    "create_support_staff",
    "deactivate",
    "deactivate_support_staff",
    "edit_practice",
    "end_user_sessions",
    "grant_product",
    "grant_user_manager",
    "list_support_staff",
    "mark_password_compromised",
    "product_name",
    "revoke_product",
    "revoke_user_manager",
    "subscribe_practice",
    "unlock",
]

_PRODUCT = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")

#: The audit actions of the support actions the operator shares (OP-1).
_UNLOCKED = "account.unlocked"
_DEACTIVATED = "account.deactivated"
_STAFF_INVITED = "support_staff.invited"


def product_name(value: object) -> str:
    """Return ``value`` as a product name: lower-case letters, digits, ``-`` and ``_`` (SB-1).

    Products are an open set (``ada-tv``, ``launch-services``,
    ``hosted-email``, ``securemail`` ...); one spelling per product keeps
    a grant from missing its subscription by a capital letter.
    """
    if not isinstance(value, str) or not _PRODUCT.fullmatch(value):
        raise InvalidInput(
            "A product name is 1 to 64 lower-case letters, digits, '-' or '_', such as 'ada-tv'.",
            field="product",
            code="product.invalid",
        )
    return value


def _practice(act: Acting, practice_id: str) -> Practice:
    practice = act.uow.practices.get(practice_id)
    if practice is None:
        raise NotFound("There is no such practice.", code="practice.not_found")
    return practice


def unlock(service: Service, token: str | Secret[str], *, user_id: str) -> User:
    """Unlock a user's account and clear its failure count (SP-1, LK-2, MF-7).

    The count is cleared even when the account was not locked yet; the
    audit event says how many failures were cleared.
    """
    user_id = text.identifier(user_id, field="user_id")
    with acting(service.deps, token, _UNLOCKED, target=user_id) as act:
        return _unlock(act, user_id)


def _unlock(act: Acting, user_id: str) -> User:
    """Unlock ``user_id`` for ``act``'s actor: support staff, or the operator (OP-1)."""
    user = act.user(user_id)
    act.require(Action.UNLOCK, user)
    was_locked = user.locked
    unlocked = with_lock(user, Lock())
    if unlocked is not user:
        act.uow.users.save(unlocked, expected_version=user.version)
        user = unlocked
    cleared = act.uow.sign_in_failures.count(user.id)
    act.uow.sign_in_failures.reset(user.id)
    audit(
        act.uow, _UNLOCKED, at=act.now, actor=act.actor, subject=user,
        was_locked=str(was_locked).lower(), failures_cleared=str(cleared),
    )  # fmt: skip
    return user


def grant_user_manager(service: Service, token: str | Secret[str], *, user_id: str) -> User:
    """Give a practice user the User Manager role (UM-8); a practice may have any number."""
    user_id = text.identifier(user_id, field="user_id")
    with acting(service.deps, token, _manager_event(grant=True), target=user_id) as act:
        return _set_manager(act, user_id, grant=True)


def revoke_user_manager(service: Service, token: str | Secret[str], *, user_id: str) -> User:
    """Take the User Manager role away from a practice user (UM-8)."""
    user_id = text.identifier(user_id, field="user_id")
    with acting(service.deps, token, _manager_event(grant=False), target=user_id) as act:
        return _set_manager(act, user_id, grant=False)


def _manager_event(*, grant: bool) -> str:
    """Return the audit action of granting (or revoking) the User Manager role."""
    return "role.granted" if grant else "role.revoked"


def _set_manager(act: Acting, user_id: str, *, grant: bool) -> User:
    """Grant or revoke the User Manager role for ``act``'s actor: support staff, or the operator."""
    user = act.user(user_id)
    act.require(Action.GRANT_USER_MANAGER if grant else Action.REVOKE_USER_MANAGER, user)
    roles = user.roles | {Role.USER_MANAGER} if grant else user.roles - {Role.USER_MANAGER}
    if roles == user.roles:
        return user
    updated = revised(user, roles=roles)
    act.uow.users.save(updated, expected_version=user.version)
    audit(
        act.uow, _manager_event(grant=grant), at=act.now, actor=act.actor, subject=updated,
        role=Role.USER_MANAGER.value,
    )  # fmt: skip
    return updated


def edit_practice(
    service: Service,
    token: str | Secret[str],
    *,
    practice_id: str,
    name: str | None = None,
    address: str | None = None,
    phone: str | None = None,
) -> Practice:
    """Change a practice's main account information (PF-2, SP-1).

    A field left as None stays as it is. The name and the address are
    checked as at the practice's creation (IN-1), and the name cannot be
    blank; the phone is stored in E.164 form, and a blank one removes it.
    """
    practice_id = text.identifier(practice_id, field="practice_id")
    region = service.deps.settings.verification.default_region
    with acting(service.deps, token, "practice.edited", target=practice_id) as act:
        act.require(Action.EDIT_PRACTICE, practice_id=practice_id)
        practice = _practice(act, practice_id)
        given: dict[str, Any] = {}
        if name is not None:
            given["name"] = text.practice_name(name)
        if address is not None:
            given["address"] = text.lines(address, field="address")
        if phone is not None:
            entered: object = phone
            blank = isinstance(entered, str) and not entered.strip()
            given["phone"] = (
                "" if blank else parse_phone(phone, kind=PhoneKind.PHONE, region=region).number
            )
        changes = {
            field: value for field, value in given.items() if getattr(practice, field) != value
        }
        if not changes:
            return practice
        updated = revised(practice, **changes)
        act.uow.practices.save(updated, expected_version=practice.version)
        audit(
            act.uow, "practice.edited", at=act.now, actor=act.actor, practice_id=practice_id,
            fields=",".join(changes),
        )  # fmt: skip
        return updated


def subscribe_practice(
    service: Service, token: str | Secret[str], *, practice_id: str, product: str
) -> PracticeSubscription:
    """Subscribe a practice to a product, so it can be granted to its users (SB-1)."""
    practice_id = text.identifier(practice_id, field="practice_id")
    name = product_name(product)
    with acting(service.deps, token, "product.subscribed", target=practice_id) as act:
        act.require(Action.SUBSCRIBE_PRACTICE, practice_id=practice_id)
        _practice(act, practice_id)
        subscription = PracticeSubscription(
            practice_id=practice_id, product=name, subscribed_at=act.now
        )
        if act.uow.subscriptions.subscribe(subscription):
            audit(
                act.uow, "product.subscribed", at=act.now, actor=act.actor,
                practice_id=practice_id, product=name,
            )  # fmt: skip
        return next(
            s for s in act.uow.subscriptions.list_for_practice(practice_id) if s.product == name
        )


def grant_product(
    service: Service, token: str | Secret[str], *, user_id: str, product: str
) -> User:
    """Grant a product of the user's practice to the user (SB-1).

    Refused (``product.not_subscribed``) unless the practice subscribes
    to the product.
    """
    user_id = text.identifier(user_id, field="user_id")
    name = product_name(product)
    with acting(service.deps, token, "product.granted", target=user_id) as act:
        user = act.user(user_id)
        act.require(Action.GRANT_PRODUCT, user)
        practice_id = str(user.practice_id)
        subscribed = {s.product for s in act.uow.subscriptions.list_for_practice(practice_id)}
        if name not in subscribed:
            raise InvalidState(
                "The user's practice does not subscribe to this product.",
                code="product.not_subscribed",
            )
        granted = act.uow.entitlements.grant(
            Entitlement(user_id=user.id, product=name, granted_at=act.now)
        )
        if granted:
            audit(
                act.uow, "product.granted", at=act.now, actor=act.actor, subject=user,
                product=name,
            )  # fmt: skip
        return user


def revoke_product(
    service: Service, token: str | Secret[str], *, user_id: str, product: str
) -> User:
    """Take a product away from a user (SB-1).

    SecureMail that a User Manager pays for is refused
    (``securemail.paid``): it ends with its purchase, not here.
    """
    user_id = text.identifier(user_id, field="user_id")
    name = product_name(product)
    with acting(service.deps, token, "product.revoked", target=user_id) as act:
        user = act.user(user_id)
        act.require(Action.REVOKE_PRODUCT, user)
        if name == SECUREMAIL and act.uow.securemail.active_purchase(user.id) is not None:
            raise InvalidState(
                "A User Manager pays for this user's SecureMail: it ends with the purchase.",
                code="securemail.paid",
            )
        if act.uow.entitlements.revoke(user.id, name):
            audit(
                act.uow, "product.revoked", at=act.now, actor=act.actor, subject=user,
                product=name,
            )  # fmt: skip
        return user


def deactivate(service: Service, token: str | Secret[str], *, user_id: str) -> User:
    """Deactivate a practice user: they cannot sign in, and every session ends (LK-6)."""
    user_id = text.identifier(user_id, field="user_id")
    with acting(service.deps, token, _DEACTIVATED, target=user_id) as act:
        user = act.user(user_id)
        act.require(Action.DEACTIVATE, user)
        return _deactivated(act, user)


def _deactivated(act: Acting, user: User) -> User:
    """Deactivate ``user`` in ``act``'s unit and end every session of theirs (LK-6)."""
    if user.deactivated:
        return user
    updated = revised(user, deactivated=True)
    act.uow.users.save(updated, expected_version=user.version)
    ended = end_sessions(act.uow, user.id)
    audit(
        act.uow, _DEACTIVATED, at=act.now, actor=act.actor, subject=updated,
        sessions_revoked=str(ended),
    )  # fmt: skip
    return updated


def mark_password_compromised(service: Service, token: str | Secret[str], *, user_id: str) -> User:
    """Mark a practice user's password compromised; they are emailed (RC-4).

    Until they choose a new one, the password signs in only as far as the
    change of password, and every session of theirs reaches nothing else
    (PW-5). Support staff neither see nor set the password (PW-9): the mark
    names the password it was made on, so the user's next password clears
    it. Marking a marked password changes nothing and sends nothing. A user
    with no password yet is refused (``password.not_set``).
    """
    user_id = text.identifier(user_id, field="user_id")
    deps = service.deps
    with acting(deps, token, "password.marked_compromised", target=user_id) as act:
        user = act.user(user_id)
        act.require(Action.MARK_PASSWORD_COMPROMISED, user)
        credential = act.uow.credentials.get(user.id)
        if credential is None:
            raise InvalidState("This user has not set a password yet.", code="password.not_set")
        if credential.compromised:
            return user
        act.uow.credentials.save(
            revised(credential, compromised_hash=credential.password_hash),
            expected_version=credential.version,
        )
        audit(
            act.uow, "password.marked_compromised", at=act.now, actor=act.actor, subject=user,
            by="support",
        )  # fmt: skip
    tell_compromised(deps, user)
    return user


def end_user_sessions(service: Service, token: str | Secret[str], *, user_id: str) -> int:
    """End every session of a practice user, who stays active and may sign in again (RC-5).

    For an account that may be in someone else's hands while the user
    recovers it: unlike `deactivate`, nothing else changes. Returns how
    many sessions ended; audited as ``sessions.revoked`` with scope ``all``.
    """
    user_id = text.identifier(user_id, field="user_id")
    with acting(service.deps, token, "sessions.revoked", target=user_id) as act:
        user = act.user(user_id)
        act.require(Action.END_USER_SESSIONS, user)
        ended = end_sessions(act.uow, user.id)
        audit(
            act.uow, "sessions.revoked", at=act.now, actor=act.actor, subject=user, scope="all",
            sessions_revoked=str(ended),
        )  # fmt: skip
        return ended


def clear_code_guesses(service: Service, token: str | Secret[str], *, user_id: str) -> User:
    """Clear a practice user's count of wrong one-time codes, so codes work for them again (MF-8).

    After a run of wrong codes, codes are paused and, at the stop, neither
    sent nor accepted until support staff clear the count; clearing ends a
    pause too. For a user who proved who they are some other way. Audited
    as ``code_guesses.cleared``, with how many wrong codes were cleared.
    """
    user_id = text.identifier(user_id, field="user_id")
    deps = service.deps

    def clear() -> User:
        with acting(deps, token, "code_guesses.cleared", target=user_id) as act:
            user = act.user(user_id)
            act.require(Action.CLEAR_CODE_GUESSES, user)
            ledger = act.uow.code_sends.get(user.id)
            cleared = 0 if ledger is None else ledger.wrong_codes
            if ledger is not None:
                after = guesses.clear(ledger)
                if after is not ledger:
                    save_ledger(act.uow, after)
            audit(
                act.uow, "code_guesses.cleared", at=act.now, actor=act.actor, subject=user,
                wrong_codes_cleared=str(cleared),
            )  # fmt: skip
            return user

    return retry_on_conflict(clear)


def create_support_staff(
    service: Service,
    token: str | Secret[str],
    *,
    email: str,
    first_name: str = "",
    last_name: str = "",
) -> User:
    """Invite a new member of support staff, who registers from the e-mailed link (OP-1).

    They follow a practice user's steps: phone numbers, verification of
    their identity by a code, the Terms of Use, a password under the
    policy. Inviting again someone who has not registered sends a new link
    and voids the earlier ones (RG-4); an email of a practice user or of
    registered staff is refused as `~securepractice.accounts.registration.invite`
    refuses it. Audited as ``support_staff.invited`` and
    ``invitation.sent``; a failed delivery raises `DeliveryFailed`.
    """
    deps = service.deps
    draft = _staff_draft(deps.now(), email, first_name, last_name)
    return _invite_staff(deps, draft, acting(deps, token, _STAFF_INVITED))


def _staff_draft(now: datetime, email: str, first_name: str, last_name: str) -> User:
    """Return the support invitee the form describes, checked before a unit opens (ID-1, IN-1)."""
    return User(
        id=new_id(),
        practice_id=None,
        email=normalize_email(email),
        first_name=text.name(first_name, field="first_name", required=False),
        last_name=text.name(last_name, field="last_name", required=False),
        roles=frozenset({Role.SUPPORT}),
        created_at=now,
    )


def _invite_staff(
    deps: Dependencies, draft: User, acting_as: AbstractContextManager[Acting]
) -> User:
    """Store the support invitee ``draft`` for the actor of ``acting_as``, then e-mail the link."""
    with acting_as as act:
        act.require(Action.CREATE_SUPPORT_STAFF)
        user, again = enrol(act.uow, draft)
        invited_by = act.actor.id
        link = issue_invitation(
            deps, act.uow, user, now=act.now, invited_by=invited_by, again=again
        )
        audit(
            act.uow, _STAFF_INVITED, at=act.now, actor=act.actor, subject=user,
            again=str(again).lower(),
        )  # fmt: skip
    send_invitation(deps, user, link, invited_by=invited_by)
    return user


def list_support_staff(service: Service, token: str | Secret[str]) -> tuple[User, ...]:
    """List the portal's support staff, invited and registered, ordered by email (OP-1)."""
    with acting(service.deps, token, "support_staff.listed") as act:
        return _support_staff(act)


def _support_staff(act: Acting) -> tuple[User, ...]:
    act.require(Action.LIST_SUPPORT_STAFF)
    return tuple(user for user in act.uow.users.list_staff() if is_support(user))


def deactivate_support_staff(service: Service, token: str | Secret[str], *, user_id: str) -> User:
    """Deactivate a member of support staff: they cannot sign in, and every session ends (OP-1).

    The last active member (registered, not deactivated) is never
    deactivated (``support_staff.last_active``), even by two members who
    deactivate each other at once; a deactivated member stays as they are.
    """
    user_id = text.identifier(user_id, field="user_id")
    deps = service.deps
    return retry_on_conflict(
        lambda: _deactivate_staff(acting(deps, token, _DEACTIVATED, target=user_id), user_id)
    )


def _deactivate_staff(acting_as: AbstractContextManager[Acting], user_id: str) -> User:
    """Deactivate the member ``user_id`` for the actor of ``acting_as``, in one unit."""
    with acting_as as act:
        return _deactivate_member(act, user_id)


def _deactivate_member(act: Acting, user_id: str) -> User:
    user = act.user(user_id)
    act.require(Action.DEACTIVATE_SUPPORT_STAFF, user)
    if not _active_staff(user):
        return _deactivated(act, user)
    others = [s for s in act.uow.users.list_staff() if s.id != user.id and _active_staff(s)]
    if not others:
        raise InvalidState(
            "This is the last active member of support staff: invite another one first.",
            code="support_staff.last_active",
        )
    # Saved over the versions read: of two units that deactivate the last two
    # members at once, the second to save conflicts and decides again. Saved in
    # the order of their ids, so that two units never wait for each other.
    for other in sorted((o for o in others if o.id < user.id), key=_by_id):
        act.uow.users.save(revised(other), expected_version=other.version)
    deactivated = _deactivated(act, user)
    for other in sorted((o for o in others if o.id > user.id), key=_by_id):
        act.uow.users.save(revised(other), expected_version=other.version)
    return deactivated


def _by_id(user: User) -> str:
    return user.id


def _active_staff(user: User) -> bool:
    """Whether ``user`` is support staff who can act: registered and not deactivated."""
    return (
        is_support(user) and not user.deactivated and user.status is not RegistrationStatus.INVITED
    )
