"""Products, subscriptions and the dashboard on both stores (SB-1, SB-2)."""

from __future__ import annotations

import pytest

from practice.office import Office
from securepractice import FakeClock, InvalidInput, InvalidState, NotFound, PermissionDenied
from securepractice.policy.securemail import SECUREMAIL
from securepractice.practice.support import product_name


def test_sb1_support_grants_a_subscribed_product_to_one_user(office: Office) -> None:
    """SB-1: the practice subscribes; support grants per user; some users see fewer products."""
    staff, token = office.practice, office.support.token
    for product in ("ada-tv", "hosted-email"):
        staff.subscribe_practice(token, practice_id="practice-a", product=product)
    staff.grant_product(token, user_id=office.user_a.id, product="ada-tv")
    staff.grant_product(token, user_id=office.user_a.id, product="hosted-email")
    staff.grant_product(token, user_id=office.manager_a.id, product="ada-tv")

    assert office.practice.dashboard_products(office.user_a.token) == ("ada-tv", "hosted-email")
    assert office.practice.dashboard_products(office.manager_a.token) == ("ada-tv",)
    assert office.practice.dashboard_products(office.user_b.token) == ()
    assert office.practice.dashboard_products(office.support.token) == ()


def test_sb1_a_product_the_practice_lacks_cannot_be_granted(office: Office) -> None:
    """SB-1: only a product of the user's own practice's subscriptions is granted."""
    staff, token = office.practice, office.support.token
    staff.subscribe_practice(token, practice_id="practice-b", product="launch-services")
    with pytest.raises(InvalidState) as caught:
        staff.grant_product(token, user_id=office.user_a.id, product="launch-services")
    assert caught.value.code == "product.not_subscribed"
    assert office.practice.dashboard_products(office.user_a.token) == ()


def test_sb1_subscribing_twice_keeps_the_first(office: Office, clock: FakeClock) -> None:
    """A second subscription to the same product changes nothing."""
    staff, token = office.practice, office.support.token
    first = staff.subscribe_practice(token, practice_id="practice-a", product="ada-tv")
    clock.advance(minutes=5)
    second = staff.subscribe_practice(token, practice_id="practice-a", product="ada-tv")
    assert second == first


def test_sb1_revoking_takes_the_product_off_the_dashboard(office: Office) -> None:
    """SB-1: a revoked product no longer shows; revoking twice is harmless."""
    staff, token = office.practice, office.support.token
    staff.subscribe_practice(token, practice_id="practice-a", product="ada-tv")
    staff.grant_product(token, user_id=office.user_a.id, product="ada-tv")
    staff.revoke_product(token, user_id=office.user_a.id, product="ada-tv")
    staff.revoke_product(token, user_id=office.user_a.id, product="ada-tv")
    assert office.practice.dashboard_products(office.user_a.token) == ()
    with office.context.storage.unit_of_work() as uow:
        actions = [
            e.action
            for e in uow.audit.events(subject_id=office.user_a.id)
            if e.action.startswith("product.")
        ]
    assert actions == ["product.granted", "product.revoked"]


def test_sb2_paid_securemail_is_not_revoked_by_support(office: Office) -> None:
    """SB-2: SecureMail a manager pays for ends with the purchase, not by a support revoke."""
    office.billing.put_card_on_file(
        office.manager_a.token, processor_token="tok_a", last_four="1111"
    )
    office.billing.purchase_securemail(office.manager_a.token, account_id=office.user_a.id)
    with pytest.raises(InvalidState) as caught:
        office.practice.revoke_product(
            office.support.token, user_id=office.user_a.id, product=SECUREMAIL
        )
    assert caught.value.code == "securemail.paid"
    assert office.practice.dashboard_products(office.user_a.token) == (SECUREMAIL,)


@pytest.mark.parametrize("who", ["manager_a", "user_a"])
def test_sb1_only_support_grants_products(office: Office, who: str) -> None:
    """SB-1: practice users, managers included, cannot grant or subscribe."""
    token = getattr(office, who).token
    staff = office.practice
    with pytest.raises(PermissionDenied):
        staff.subscribe_practice(token, practice_id="practice-a", product="ada-tv")
    with pytest.raises(PermissionDenied):
        staff.grant_product(token, user_id=office.user_a.id, product="ada-tv")
    with pytest.raises(PermissionDenied):
        staff.revoke_product(token, user_id=office.user_a.id, product="ada-tv")


@pytest.mark.parametrize("bad", ["", "ADA TV", "ada tv", "-tv", "x" * 65, 7, "ada\ntv"])
def test_sb1_product_names_have_one_spelling(bad: object) -> None:
    """A product name is lower-case letters, digits, - and _: one spelling per product."""
    with pytest.raises(InvalidInput) as caught:
        product_name(bad)
    assert caught.value.code == "product.invalid"
    assert product_name("launch-services") == "launch-services"


def test_sb1_unknown_practice_cannot_subscribe(office: Office) -> None:
    """A subscription names an existing practice."""
    with pytest.raises(NotFound):
        office.practice.subscribe_practice(
            office.support.token, practice_id="nope", product="ada-tv"
        )
