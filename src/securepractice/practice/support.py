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
"""

from __future__ import annotations

import re
from typing import Any

from securepractice.accounts._shared import audit, end_sessions, retry_on_conflict, save_ledger
from securepractice.accounts.signin import tell_compromised
from securepractice.dependencies import Service
from securepractice.errors import InvalidInput, InvalidState, NotFound
from securepractice.policy import text
from securepractice.policy.lockout import Lock, with_lock
from securepractice.policy.roles import Action
from securepractice.policy.securemail import SECUREMAIL
from securepractice.practice._base import Acting, acting
from securepractice.records import (
    Entitlement,
    PhoneKind,
    Practice,
    PracticeSubscription,
    Role,
    User,
    revised,
)
from securepractice.secret import Secret
from securepractice.verification import guesses
from securepractice.verification.phones import parse_phone

__all__ = [
    "clear_code_guesses",
    "deactivate",
    "edit_practice",
    "end_user_sessions",
    "grant_product",
    "grant_user_manager",
    "mark_password_compromised",
    "product_name",
    "revoke_product",
    "revoke_user_manager",
    "subscribe_practice",
    "unlock",
]

_PRODUCT = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


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
    with acting(service.deps, token, "account.unlocked", target=user_id) as act:
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
            act.uow, "account.unlocked", at=act.now, actor=act.actor, subject=user,
            was_locked=str(was_locked).lower(), failures_cleared=str(cleared),
        )  # fmt: skip
        return user


def grant_user_manager(service: Service, token: str | Secret[str], *, user_id: str) -> User:
    """Give a practice user the User Manager role (UM-8); a practice may have any number."""
    return _set_manager(service, token, user_id, grant=True)


def revoke_user_manager(service: Service, token: str | Secret[str], *, user_id: str) -> User:
    """Take the User Manager role away from a practice user (UM-8)."""
    return _set_manager(service, token, user_id, grant=False)


def _set_manager(service: Service, token: str | Secret[str], user_id: str, *, grant: bool) -> User:
    user_id = text.identifier(user_id, field="user_id")
    action = Action.GRANT_USER_MANAGER if grant else Action.REVOKE_USER_MANAGER
    event = "role.granted" if grant else "role.revoked"
    with acting(service.deps, token, event, target=user_id) as act:
        user = act.user(user_id)
        act.require(action, user)
        roles = user.roles | {Role.USER_MANAGER} if grant else user.roles - {Role.USER_MANAGER}
        if roles == user.roles:
            return user
        updated = revised(user, roles=roles)
        act.uow.users.save(updated, expected_version=user.version)
        audit(
            act.uow, event, at=act.now, actor=act.actor, subject=updated,
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
    with acting(service.deps, token, "account.deactivated", target=user_id) as act:
        user = act.user(user_id)
        act.require(Action.DEACTIVATE, user)
        if user.deactivated:
            return user
        updated = revised(user, deactivated=True)
        act.uow.users.save(updated, expected_version=user.version)
        ended = end_sessions(act.uow, user.id)
        audit(
            act.uow, "account.deactivated", at=act.now, actor=act.actor, subject=updated,
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
