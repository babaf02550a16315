"""UM-2: every practice action on another practice, or by the wrong role, is refused unchanged.

Each attempt raises `PermissionDenied` with the rule's code, and the other
practice's users, audit, billing, entitlements, practice record and
mailbox are exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from practice.office import Office
from securepractice import PermissionDenied

Attempt = Callable[[Office], object]

#: Manager A acting on practice B: every practice action that names a user or a practice.
CROSS_PRACTICE: dict[str, tuple[Attempt, str]] = {
    "edit_invited_user": (
        lambda o: o.practice.edit_invited_user(
            o.manager_a.token, user_id=o.invited_b.id, email="x@beta.example"
        ),
        "permission.other_practice",
    ),
    "reinvite": (
        lambda o: o.practice.reinvite(o.manager_a.token, user_id=o.invited_b.id),
        "permission.other_practice",
    ),
    "set_two_step_for": (
        lambda o: o.practice.set_two_step_for(
            o.manager_a.token, user_id=o.user_b.id, enabled=False, reason="Lost her phone"
        ),
        "permission.other_practice",
    ),
    "purchase_securemail": (
        lambda o: o.billing.purchase_securemail(o.manager_a.token, account_id=o.user_b.id),
        "permission.other_practice",
    ),
    "unlock": (
        lambda o: o.practice.unlock(o.manager_a.token, user_id=o.user_b.id),
        "permission.support_only",
    ),
    "grant_user_manager": (
        lambda o: o.practice.grant_user_manager(o.manager_a.token, user_id=o.user_b.id),
        "permission.support_only",
    ),
    "revoke_user_manager": (
        lambda o: o.practice.revoke_user_manager(o.manager_a.token, user_id=o.manager_b.id),
        "permission.support_only",
    ),
    "edit_practice": (
        lambda o: o.practice.edit_practice(
            o.manager_a.token, practice_id="practice-b", name="Taken Over"
        ),
        "permission.support_only",
    ),
    "subscribe_practice": (
        lambda o: o.practice.subscribe_practice(
            o.manager_a.token, practice_id="practice-b", product="ada-tv"
        ),
        "permission.support_only",
    ),
    "grant_product": (
        lambda o: o.practice.grant_product(
            o.manager_a.token, user_id=o.user_b.id, product="ada-tv"
        ),
        "permission.support_only",
    ),
    "revoke_product": (
        lambda o: o.practice.revoke_product(
            o.manager_a.token, user_id=o.user_b.id, product="ada-tv"
        ),
        "permission.support_only",
    ),
    "deactivate": (
        lambda o: o.practice.deactivate(o.manager_a.token, user_id=o.user_b.id),
        "permission.support_only",
    ),
}

#: A plain user of practice A trying the manager actions, on practice B and on their own.
PLAIN_USER: dict[str, Attempt] = {
    "list_users": lambda o: o.practice.list_users(o.user_a.token),
    "edit_invited_user": lambda o: o.practice.edit_invited_user(
        o.user_a.token, user_id=o.invited_a.id, email="x@alpha.example"
    ),
    "reinvite": lambda o: o.practice.reinvite(o.user_a.token, user_id=o.invited_b.id),
    "set_two_step_for": lambda o: o.practice.set_two_step_for(
        o.user_a.token, user_id=o.user_b.id, enabled=False, reason="Lost her phone"
    ),
    "purchase_securemail": lambda o: o.billing.purchase_securemail(
        o.user_a.token, account_id=o.user_b.id
    ),
    "list_payments": lambda o: o.billing.list_payments(o.user_a.token),
    "list_invoices": lambda o: o.billing.list_invoices(o.user_a.token),
    "email_invoices": lambda o: o.billing.email_invoices(o.user_a.token),
}


def practice_b(office: Office) -> tuple[object, ...]:
    """Everything of practice B an action could change."""
    with office.context.storage.unit_of_work() as uow:
        users = tuple(uow.users.list_for_practice("practice-b"))
        return (
            users,
            uow.practices.get("practice-b"),
            tuple(uow.subscriptions.list_for_practice("practice-b")),
            tuple(uow.audit.events(practice_id="practice-b")),
            tuple(tuple(uow.entitlements.list_for_user(u.id)) for u in users),
            tuple(tuple(uow.securemail.payments_for(u.id)) for u in users),
            tuple(uow.securemail.active_purchase(u.id) for u in users),
            tuple(uow.sign_in_failures.count(u.id) for u in users),
            office.outbox.emails,
            office.processor.charges,
        )


@pytest.fixture
def prepared(office: Office) -> Office:
    """Manager A has a card, so only the permission can stop a purchase."""
    office.billing.put_card_on_file(
        office.manager_a.token, processor_token="tok_a", last_four="4242"
    )
    return office


@pytest.mark.parametrize("action", sorted(CROSS_PRACTICE))
def test_um2_every_cross_practice_action_is_refused_and_changes_nothing(
    prepared: Office, action: str
) -> None:
    """UM-2: a User Manager acting on another practice is refused; nothing of it changes."""
    attempt, code = CROSS_PRACTICE[action]
    before = practice_b(prepared)
    with pytest.raises(PermissionDenied) as caught:
        attempt(prepared)
    assert caught.value.code == code
    assert practice_b(prepared) == before


@pytest.mark.parametrize("action", sorted(PLAIN_USER))
def test_um1_a_plain_user_has_no_manager_action(prepared: Office, action: str) -> None:
    """UM-1, UM-2: a user without the User Manager role is refused every manager action."""
    before = practice_b(prepared)
    with pytest.raises(PermissionDenied) as caught:
        PLAIN_USER[action](prepared)
    assert caught.value.code == "permission.not_user_manager"
    assert practice_b(prepared) == before


def test_um2_a_support_member_is_not_a_practice_manager(prepared: Office) -> None:
    """SP-1: support staff cannot use the manager's actions on any practice."""
    before = practice_b(prepared)
    with pytest.raises(PermissionDenied) as caught:
        prepared.practice.set_two_step_for(
            prepared.support.token,
            user_id=prepared.user_b.id,
            enabled=False,
            reason="Lost her phone",
        )
    assert caught.value.code == "permission.not_support_action"
    assert practice_b(prepared) == before
