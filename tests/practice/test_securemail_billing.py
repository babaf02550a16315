"""SecureMail purchases, monthly billing, payments, invoices, on both stores (UM-6, UM-7, SB-2)."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import attrs
import pytest

from practice.office import MANAGER, Office
from securepractice import (
    AlreadyExists,
    DeliveryFailed,
    FakeClock,
    InvalidInput,
    InvalidState,
    PermissionDenied,
    SecureMailPayment,
    SecureMailPurchase,
)
from securepractice.errors import PaymentFailed
from securepractice.policy.securemail import SECUREMAIL, charge_key
from securepractice.portal import Billing
from securepractice.settings import BillingRules
from securepractice.testing import InMemoryPaymentProcessor, Member

UTC = timezone.utc


CARD = "tok_visa_4242"


def with_card(office: Office, actor: Member, card: str = CARD) -> None:
    office.billing.put_card_on_file(actor.token, processor_token=card, last_four="4242")


def state(office: Office) -> tuple[object, ...]:
    """Everything billing could change, for before/after comparisons."""
    people = (office.manager_a, office.user_a, office.manager_b, office.user_b)
    with office.context.storage.unit_of_work() as uow:
        return (
            tuple(uow.securemail.purchases_paid_by(p.id) for p in people),
            tuple(uow.securemail.payments_for(p.id) for p in people),
            tuple(uow.securemail.invoices_for(p.id) for p in people),
            tuple(uow.entitlements.list_for_user(p.id) for p in people),
            tuple(uow.audit.events(subject_id=p.id) for p in people),
            office.processor.charges,
        )


# Cards on file.


def test_um6_a_card_is_kept_as_processor_token_and_last_four(office: Office) -> None:
    """UM-6, AU-2: only the processor's token and the last four digits; no secret in the audit."""
    card = office.billing.put_card_on_file(
        office.manager_a.token, processor_token="tok_secret_abc", last_four="4242"
    )
    assert card.user_id == office.manager_a.id
    assert "tok_secret_abc" not in repr(card)
    with office.context.storage.unit_of_work() as uow:
        assert uow.cards.get(office.manager_a.id) == card
        events = uow.audit.events(subject_id=office.manager_a.id)
    assert not [e for e in events if "tok_secret_abc" in repr(e)]
    assert ("card.added", "ok") in [(e.action, e.outcome) for e in events]


@pytest.mark.parametrize(
    ("processor_token", "last_four", "code"),
    [
        ("4242 4242 4242 4242", "4242", "card.number_given"),
        ("4242424242424242", "4242", "card.number_given"),
        ("", "4242", "card.token_required"),
        ("tok_visa", "424", "card.last_four_invalid"),
        ("tok_visa", "42a2", "card.last_four_invalid"),
    ],
)
def test_a_card_number_or_malformed_card_is_refused(
    office: Office, processor_token: str, last_four: str, code: str
) -> None:
    """No card number ever enters the library; a bad last four is refused; nothing is kept."""
    with pytest.raises(InvalidInput) as caught:
        office.billing.put_card_on_file(
            office.manager_a.token, processor_token=processor_token, last_four=last_four
        )
    assert caught.value.code == code
    with office.context.storage.unit_of_work() as uow:
        assert uow.cards.get(office.manager_a.id) is None


def test_support_staff_have_no_card(office: Office) -> None:
    """A card is a practice user's own; support staff put none."""
    with pytest.raises(PermissionDenied) as caught:
        with_card(office, office.support)
    assert caught.value.code == "permission.not_support_action"


# Purchases (UM-6, SB-2).


def test_um6_sb2_purchase_grants_securemail_at_once_and_charges_the_month(office: Office) -> None:
    """UM-6, SB-2: the user has SecureMail on the dashboard at once; $10.00 charged to the card."""
    with_card(office, office.manager_a, "tok_manager_a")
    assert office.practice.dashboard_products(office.user_a.token) == ()

    purchase = office.billing.purchase_securemail(
        office.manager_a.token, account_id=office.user_a.id
    )

    assert office.practice.dashboard_products(office.user_a.token) == (SECUREMAIL,)
    [charge] = office.processor.charges
    assert charge.amount_cents == 1000
    assert charge.processor_token == "tok_manager_a"
    assert purchase.payer_id == office.manager_a.id
    assert purchase.monthly_cents == 1000
    with office.context.storage.unit_of_work() as uow:
        [payment] = uow.securemail.payments_for(office.user_a.id)
        [invoice] = uow.securemail.invoices_for(office.user_a.id)
        subscribed = [s.product for s in uow.subscriptions.list_for_practice("practice-a")]
        bought = [
            e
            for e in uow.audit.events(subject_id=office.user_a.id)
            if e.action == "securemail.bought"
        ]
    assert payment.amount_cents == 1000
    assert payment.processor_reference == charge.reference
    assert invoice.period_start == office.context.clock.now()
    assert invoice.period_end == datetime(2026, 2, 5, 9, 0, tzinfo=UTC)
    assert subscribed == [SECUREMAIL]
    assert [(e.outcome, e.actor_id, e.practice_id) for e in bought] == [
        ("ok", office.manager_a.id, "practice-a")
    ]


def test_um6_the_manager_may_pay_for_themself_and_then_for_others(office: Office) -> None:
    """UM-6: the target may be the manager's own account, and paying for oneself is no bar."""
    with_card(office, office.manager_a)
    office.billing.purchase_securemail(office.manager_a.token, account_id=office.manager_a.id)
    office.billing.purchase_securemail(office.manager_a.token, account_id=office.user_a.id)
    office.billing.purchase_securemail(office.manager_a.token, account_id=office.invited_a.id)
    assert len(office.processor.charges) == 3
    assert office.practice.dashboard_products(office.manager_a.token) == (SECUREMAIL,)


def test_um6_a_plain_user_cannot_buy(office: Office) -> None:
    """UM-6: only a User Manager buys SecureMail."""
    with_card(office, office.user_a)
    before = state(office)
    with pytest.raises(PermissionDenied) as caught:
        office.billing.purchase_securemail(office.user_a.token, account_id=office.user_a.id)
    assert caught.value.code == "permission.not_user_manager"
    assert state(office) == before


def test_um6_another_practices_user_is_refused(office: Office) -> None:
    """UM-2, UM-6: a user of another practice cannot be bought for, even with a card."""
    with_card(office, office.manager_a)
    before = state(office)
    with pytest.raises(PermissionDenied) as caught:
        office.billing.purchase_securemail(office.manager_a.token, account_id=office.user_b.id)
    assert caught.value.code == "permission.other_practice"
    assert state(office) == before


def test_um6_without_a_card_is_refused(office: Office) -> None:
    """UM-6: the manager must have a card on file."""
    before = state(office)
    with pytest.raises(InvalidState) as caught:
        office.billing.purchase_securemail(office.manager_a.token, account_id=office.user_a.id)
    assert caught.value.code == "securemail.no_card"
    assert state(office) == before


def test_um6_a_manager_paid_for_by_another_cannot_buy(office: Office) -> None:
    """UM-6: a manager whose own SecureMail another User Manager pays for cannot pay for others."""
    second = office.world.member("second@alpha.example", practice=office.practice_a, roles=MANAGER)
    with_card(office, second)
    with_card(office, office.manager_a)
    office.billing.purchase_securemail(second.token, account_id=office.manager_a.id)
    before = state(office)
    with pytest.raises(PermissionDenied) as caught:
        office.billing.purchase_securemail(office.manager_a.token, account_id=office.user_a.id)
    assert caught.value.code == "securemail.manager_paid_by_other"
    assert state(office) == before


def test_um6_an_account_already_paid_for_is_refused(office: Office) -> None:
    """UM-6: the target must not be paid for already, by this manager or another."""
    second = office.world.member("second@alpha.example", practice=office.practice_a, roles=MANAGER)
    with_card(office, office.manager_a)
    with_card(office, second)
    office.billing.purchase_securemail(office.manager_a.token, account_id=office.user_a.id)
    before = state(office)
    for buyer in (office.manager_a, second):
        with pytest.raises(AlreadyExists) as caught:
            office.billing.purchase_securemail(buyer.token, account_id=office.user_a.id)
        assert caught.value.code == "securemail.already_paid"
    assert state(office)[:4] == before[:4]
    assert len(office.processor.charges) == 1


def test_um6_a_deactivated_account_is_refused(office: Office) -> None:
    """A deactivated user cannot be bought for."""
    with_card(office, office.manager_a)
    office.practice.deactivate(office.support.token, user_id=office.user_a.id)
    with pytest.raises(InvalidState) as caught:
        office.billing.purchase_securemail(office.manager_a.token, account_id=office.user_a.id)
    assert caught.value.code == "user.deactivated"
    assert office.processor.charges == ()


def test_um6_a_declined_charge_is_recorded_and_grants_nothing(office: Office) -> None:
    """UM-6: a failed charge raises PaymentFailed, is audited, and gives no SecureMail."""
    with_card(office, office.manager_a)
    office.processor.decline_next()
    with pytest.raises(PaymentFailed) as caught:
        office.billing.purchase_securemail(office.manager_a.token, account_id=office.user_a.id)
    assert caught.value.code == "payment.declined"
    assert office.practice.dashboard_products(office.user_a.token) == ()
    with office.context.storage.unit_of_work() as uow:
        assert uow.securemail.active_purchase(office.user_a.id) is None
        assert uow.securemail.payments_for(office.user_a.id) == []
        outcomes = [
            (e.action, e.outcome)
            for e in uow.audit.events(subject_id=office.user_a.id)
            if e.action == "securemail.bought"
        ]
    assert outcomes == [("securemail.bought", "payment.declined")]
    assert len(office.processor.declined) == 1
    office.billing.purchase_securemail(office.manager_a.token, account_id=office.user_a.id)
    assert office.practice.dashboard_products(office.user_a.token) == (SECUREMAIL,)


def test_um6_the_price_is_the_setting(office: Office, clock: FakeClock) -> None:
    """UM-6: the monthly amount comes from the settings, in integer cents."""
    context = attrs.evolve(
        office.context,
        settings=attrs.evolve(
            office.context.settings, billing=BillingRules(securemail_monthly_cents=1999)
        ),
    )
    billing = Billing(context, office.processor)
    with_card(office, office.manager_a)
    billing.purchase_securemail(office.manager_a.token, account_id=office.user_a.id)
    assert [c.amount_cents for c in office.processor.charges] == [1999]
    clock.advance(days=31)
    billing.run_billing()
    assert [c.amount_cents for c in office.processor.charges] == [1999, 1999]


# The monthly run.


def bought(office: Office) -> None:
    with_card(office, office.manager_a)
    office.billing.purchase_securemail(office.manager_a.token, account_id=office.user_a.id)


def test_um6_run_billing_charges_each_month_once(office: Office, clock: FakeClock) -> None:
    """UM-6: charged at purchase and again every month, once per month however often it runs."""
    bought(office)
    assert office.billing.run_billing().charged == ()
    clock.advance(days=30)
    assert office.billing.run_billing().charged == ()
    clock.advance(days=1)
    first = office.billing.run_billing()
    second = office.billing.run_billing()
    assert [p.account_id for p in first.charged] == [office.user_a.id]
    assert second.charged == ()
    assert len(office.processor.charges) == 2
    with office.context.storage.unit_of_work() as uow:
        starts = [i.period_start for i in uow.securemail.invoices_for(office.user_a.id)]
    assert starts == [datetime(2026, 1, 5, 9, tzinfo=UTC), datetime(2026, 2, 5, 9, tzinfo=UTC)]


def test_run_billing_catches_up_every_missed_month_once(office: Office, clock: FakeClock) -> None:
    """A run after three missed months charges each of them, once."""
    bought(office)
    clock.advance(days=95)
    run = office.billing.run_billing()
    assert len(run.charged) == 3
    assert len({p.id for p in run.charged}) == 3
    assert office.billing.run_billing().charged == ()
    assert len(office.processor.charges) == 4


def test_um6_run_billing_from_eight_threads_charges_once(office: Office, clock: FakeClock) -> None:
    """UM-6: eight simultaneous runs charge each due month once and store one payment."""
    bought(office)
    clock.advance(days=31)
    barrier = threading.Barrier(8)
    charged: list[SecureMailPayment] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run() -> None:
        try:
            barrier.wait()
            result = office.billing.run_billing()
            with lock:
                charged.extend(result.charged)
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(charged) == 1
    assert len(office.processor.charges) == 2
    with office.context.storage.unit_of_work() as uow:
        assert len(uow.securemail.payments_for(office.user_a.id)) == 2
        assert len(uow.securemail.invoices_for(office.user_a.id)) == 2


def test_a_declined_monthly_charge_ends_access(office: Office, clock: FakeClock) -> None:
    """A failed monthly charge is recorded, ends the purchase and takes SecureMail away."""
    bought(office)
    office.processor.decline_card(CARD)
    clock.advance(days=31)
    run = office.billing.run_billing()
    assert run.charged == ()
    assert len(run.failed) == 1
    assert office.practice.dashboard_products(office.world.sign_in("user@alpha.example")) == ()
    with office.context.storage.unit_of_work() as uow:
        assert uow.securemail.active_purchase(office.user_a.id) is None
        ended = [
            e
            for e in uow.audit.events(subject_id=office.user_a.id)
            if e.action == "securemail.ended"
        ]
    assert [e.outcome for e in ended] == ["payment.declined"]
    assert office.billing.run_billing().failed == ()


@pytest.mark.parametrize("change", ["deactivate_payer", "revoke_role", "deactivate_account"])
def test_a_purchase_ends_when_payer_or_account_can_no_longer_have_it(
    office: Office, clock: FakeClock, change: str
) -> None:
    """The paid month runs out; then a purchase whose payer or account is gone ends, uncharged."""
    bought(office)
    staff = office.practice
    if change == "deactivate_payer":
        staff.deactivate(office.support.token, user_id=office.manager_a.id)
    elif change == "revoke_role":
        staff.revoke_user_manager(office.support.token, user_id=office.manager_a.id)
    else:
        staff.deactivate(office.support.token, user_id=office.user_a.id)
    assert office.billing.run_billing().ended == ()
    clock.advance(days=31)
    run = office.billing.run_billing()
    assert len(run.ended) == 1
    assert run.charged == ()
    assert len(office.processor.charges) == 1
    with office.context.storage.unit_of_work() as uow:
        assert uow.securemail.active_purchase(office.user_a.id) is None
        assert uow.entitlements.list_for_user(office.user_a.id) == []


def test_a_purchase_ends_when_the_payer_has_no_card(office: Office, clock: FakeClock) -> None:
    """With no card to charge, the purchase ends at its next month.

    The first month was paid; the payer has no card on file when the next one starts.
    """
    now = clock.now()
    purchase = SecureMailPurchase(
        id="purchase-without-card",
        practice_id="practice-a",
        payer_id=office.manager_a.id,
        account_id=office.user_a.id,
        monthly_cents=1000,
        purchased_at=now,
    )
    with office.context.storage.unit_of_work() as uow:
        uow.securemail.add_purchase(purchase)
        uow.securemail.add_payment(
            SecureMailPayment(
                id=charge_key(purchase.id, now),
                purchase_id=purchase.id,
                payer_id=purchase.payer_id,
                account_id=purchase.account_id,
                amount_cents=1000,
                paid_at=now,
            )
        )
    assert office.billing.run_billing().ended == ()
    clock.advance(days=31)
    assert len(office.billing.run_billing().ended) == 1
    assert office.processor.calls == 0
    with office.context.storage.unit_of_work() as uow:
        assert uow.securemail.active_purchase(office.user_a.id) is None
        ended = [
            e.outcome
            for e in uow.audit.events(subject_id=office.user_a.id)
            if e.action == "securemail.ended"
        ]
    assert ended == ["securemail.no_card"]


def test_run_billing_takes_an_aware_time(office: Office) -> None:
    """A naive datetime has no instant: refused."""
    with pytest.raises(InvalidInput):
        office.billing.run_billing(datetime(2026, 3, 1))  # noqa: DTZ001 - the point of the test
    run = office.billing.run_billing(datetime(2026, 3, 1, tzinfo=UTC))
    assert run.at == datetime(2026, 3, 1, tzinfo=UTC)


# Payments and invoices (UM-7).


def test_um7_lists_own_and_paid_for_accounts_only(office: Office, clock: FakeClock) -> None:
    """UM-7: the manager sees payments and invoices of their own account and those they pay for."""
    second = office.world.member("second@alpha.example", practice=office.practice_a, roles=MANAGER)
    with_card(office, office.manager_a)
    with_card(office, second)
    office.billing.purchase_securemail(office.manager_a.token, account_id=office.manager_a.id)
    office.billing.purchase_securemail(office.manager_a.token, account_id=office.user_a.id)
    office.billing.purchase_securemail(second.token, account_id=office.invited_a.id)
    clock.advance(days=31)
    office.billing.run_billing()

    token = office.world.sign_in("manager@alpha.example")
    payments = office.billing.list_payments(token)
    invoices = office.billing.list_invoices(token)

    accounts = {office.manager_a.id, office.user_a.id}
    assert {p.account_id for p in payments} == accounts
    assert len(payments) == 4
    assert [p.paid_at for p in payments] == sorted(p.paid_at for p in payments)
    assert {i.account_id for i in invoices} == accounts
    assert len(invoices) == 4
    others = office.billing.list_payments(office.world.sign_in("second@alpha.example"))
    assert {p.account_id for p in others} == {office.invited_a.id}


def test_um7_own_account_paid_by_another_is_listed(office: Office) -> None:
    """UM-7: a manager's own account's payments are theirs to see, whoever paid."""
    second = office.world.member("second@alpha.example", practice=office.practice_a, roles=MANAGER)
    with_card(office, second)
    office.billing.purchase_securemail(second.token, account_id=office.manager_a.id)
    [payment] = office.billing.list_payments(office.manager_a.token)
    assert payment.payer_id == second.id


def test_um7_email_invoices_sends_own_invoices_to_own_address(office: Office) -> None:
    """UM-7: only the manager's own account's invoices, only to the manager's own email."""
    with_card(office, office.manager_a)
    office.billing.purchase_securemail(office.manager_a.token, account_id=office.manager_a.id)
    office.billing.purchase_securemail(office.manager_a.token, account_id=office.user_a.id)
    office.outbox.clear()

    sent = office.billing.email_invoices(office.manager_a.token)

    assert [i.account_id for i in sent] == [office.manager_a.id]
    [email] = office.outbox.emails
    assert email.to == "manager@alpha.example"
    assert "$10.00" in email.body
    assert "2026-01-05 to 2026-02-05" in email.body
    assert sent[0].id in email.body
    assert office.user_a.id not in email.body


def test_um7_email_without_invoices_says_so(office: Office) -> None:
    """A manager with no invoices is told there are none."""
    assert office.billing.email_invoices(office.manager_a.token) == ()
    assert "no SecureMail invoices" in office.outbox.last_email("manager@alpha.example").body


def test_um7_a_failed_email_is_audited_and_raised(office: Office) -> None:
    """A delivery failure reaches the caller and is recorded."""
    office.outbox.fail_next("email")
    with pytest.raises(DeliveryFailed):
        office.billing.email_invoices(office.manager_a.token)
    with office.context.storage.unit_of_work() as uow:
        outcomes = [
            e.outcome
            for e in uow.audit.events(subject_id=office.manager_a.id)
            if e.action == "securemail.invoices_emailed"
        ]
    assert outcomes == ["ok", "delivery.failed"]


@pytest.mark.parametrize("who", ["user_a", "support"])
def test_um7_only_a_user_manager_sees_billing(office: Office, who: str) -> None:
    """UM-7: payments and invoices are a User Manager's view."""
    actor: Member = getattr(office, who)
    for view in (
        office.billing.list_payments,
        office.billing.list_invoices,
        office.billing.email_invoices,
    ):
        with pytest.raises(PermissionDenied):
            view(actor.token)


# The in-memory processor.


def test_the_in_memory_processor_is_idempotent() -> None:
    """A repeated key makes no second charge; another amount under one key is refused."""
    processor = InMemoryPaymentProcessor()
    first = processor.charge(processor_token="tok", amount_cents=1000, idempotency_key="k")
    assert processor.charge(processor_token="tok", amount_cents=1000, idempotency_key="k") == first
    assert len(processor.charges) == 1
    assert processor.calls == 2
    with pytest.raises(PaymentFailed) as caught:
        processor.charge(processor_token="tok", amount_cents=999, idempotency_key="k")
    assert caught.value.code == "payment.idempotency_conflict"
    processor.decline_next(2)
    for key in ("a", "b"):
        with pytest.raises(PaymentFailed):
            processor.charge(processor_token="tok", amount_cents=1, idempotency_key=key)
    processor.charge(processor_token="tok", amount_cents=1, idempotency_key="c")
    assert processor.declined == ("a", "b")
