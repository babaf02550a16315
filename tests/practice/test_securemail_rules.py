"""The SecureMail rules on their own: no store, no clock, no processor (UM-6, UM-7, SB-2).

`securepractice.policy.securemail` decides who may buy for whom, the
price, the months, which months a billing run charges, what a paid month
stores, how a pending purchase is completed (ST-2) and how a purchase ends;
these tests give it values and read its decisions.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from securepractice import (
    AlreadyExists,
    CardOnFile,
    InMemoryPaymentProcessor,
    InvalidInput,
    InvalidState,
    PaymentFailed,
    PermissionDenied,
    Role,
    SecureMailPayment,
    SecureMailPurchase,
    User,
)
from securepractice.policy import securemail
from securepractice.policy.securemail import (
    PENDING_GRACE,
    SECUREMAIL,
    ChargeDue,
    Ending,
    FirstMonth,
    add_months,
    charge_key,
    format_cents,
)
from securepractice.settings import BillingRules

UTC = timezone.utc
NOW = datetime(2026, 1, 31, 12, tzinfo=UTC)
RULES = BillingRules()


def person(
    user_id: str,
    *,
    practice_id: str | None = "practice-a",
    manager: bool = False,
    deactivated: bool = False,
) -> User:
    roles = {Role.USER, Role.USER_MANAGER} if manager else {Role.USER}
    return User(
        id=user_id,
        practice_id=practice_id,
        email=f"{user_id}@alpha.example",
        roles=frozenset(roles),
        deactivated=deactivated,
        created_at=NOW,
    )


MANAGER = person("manager", manager=True)
OTHER_MANAGER = person("other-manager", manager=True)
ACCOUNT = person("account")
CARD = CardOnFile(user_id="manager", processor_token="tok_m", last_four="4242", added_at=NOW)


def purchase_of(
    account: User = ACCOUNT, payer: User = MANAGER, at: datetime = NOW
) -> SecureMailPurchase:
    return SecureMailPurchase(
        id=f"purchase-{account.id}",
        practice_id="practice-a",
        payer_id=payer.id,
        account_id=account.id,
        monthly_cents=1000,
        purchased_at=at,
    )


def buy(
    *,
    manager: User = MANAGER,
    account: User = ACCOUNT,
    card: CardOnFile | None = CARD,
    managers_purchase: SecureMailPurchase | None = None,
    accounts_purchase: SecureMailPurchase | None = None,
    rules: BillingRules = RULES,
) -> FirstMonth:
    """Ask the rules whether ``manager`` may buy SecureMail for ``account`` at NOW."""
    return securemail.start_purchase(
        purchase_id="p1",
        manager=manager,
        account=account,
        card=card,
        managers_purchase=managers_purchase,
        accounts_purchase=accounts_purchase,
        rules=rules,
        now=NOW,
    )


def payment_for(purchase: SecureMailPurchase, index: int) -> SecureMailPayment:
    month = securemail.period(purchase, index)
    return SecureMailPayment(
        id=month.key,
        purchase_id=purchase.id,
        payer_id=purchase.payer_id,
        account_id=purchase.account_id,
        amount_cents=purchase.monthly_cents,
        paid_at=month.start,
    )


# Who may buy for whom (UM-6).


def test_um6_a_manager_with_a_card_buys_the_first_month_at_the_set_price() -> None:
    """UM-6, ST-2: a new purchase, pending with its card, at the price of the rules."""
    first = buy(rules=BillingRules(securemail_monthly_cents=1999))
    due = first.due
    assert first.new
    assert due.purchase == SecureMailPurchase(
        id="p1",
        practice_id="practice-a",
        payer_id="manager",
        account_id="account",
        monthly_cents=1999,
        purchased_at=NOW,
        first_month_card=CARD.processor_token,
    )
    assert due.purchase.pending
    assert due.processor_token == CARD.processor_token
    assert (due.period.index, due.period.start) == (0, NOW)
    assert due.period.key == charge_key("p1", NOW)


def test_um6_the_manager_may_buy_for_their_own_account() -> None:
    """UM-6: the account may be the manager's own; paying for oneself is no bar later."""
    own = buy(account=MANAGER).due.purchase
    assert own.account_id == own.payer_id == "manager"
    assert buy(managers_purchase=own).due.purchase.account_id == "account"


@pytest.mark.parametrize(
    ("changes", "error", "code"),
    [
        ({"card": None}, InvalidState, "securemail.no_card"),
        (
            {"managers_purchase": purchase_of(MANAGER, payer=OTHER_MANAGER)},
            PermissionDenied,
            "securemail.manager_paid_by_other",
        ),
        ({"account": person("account", deactivated=True)}, InvalidState, "user.deactivated"),
        ({"accounts_purchase": purchase_of()}, AlreadyExists, "securemail.already_paid"),
        (
            {"accounts_purchase": purchase_of(payer=OTHER_MANAGER)},
            AlreadyExists,
            "securemail.already_paid",
        ),
        (
            {
                "accounts_purchase": attrs.evolve(
                    purchase_of(payer=OTHER_MANAGER), first_month_card="t"
                )
            },
            InvalidState,
            "securemail.purchase_pending",
        ),
        (
            {"account": person("account", deactivated=True), "accounts_purchase": purchase_of()},
            InvalidState,
            "user.deactivated",
        ),
    ],
)
def test_um6_who_may_not_buy(changes: dict[str, Any], error: type[Exception], code: str) -> None:
    """UM-6: a card on file, not paid for by another manager, an active account not paid for."""
    with pytest.raises(error) as caught:
        buy(**changes)
    assert getattr(caught.value, "code", None) == code


def test_um6_the_card_comes_first() -> None:
    """UM-6: with several reasons to refuse, the missing card is the one given."""
    with pytest.raises(InvalidState) as caught:
        buy(card=None, accounts_purchase=purchase_of())
    assert caught.value.code == "securemail.no_card"


@pytest.mark.parametrize("token", ["4242 4242 4242 4242", "4242-4242-4242-4242", "", "  ", 7])
def test_um6_a_card_is_the_processors_token_never_a_number(token: object) -> None:
    """UM-6: no card number enters the library; a token is required."""
    with pytest.raises(InvalidInput) as caught:
        securemail.card_token(token)
    assert caught.value.code in {"card.number_given", "card.token_required"}
    assert securemail.card_token("tok_visa_4242") == "tok_visa_4242"


# Which months a billing run charges (UM-6).


def test_um6_the_first_month_is_due_at_once_and_the_next_when_it_starts() -> None:
    """UM-6: month 0 starts at the purchase; month 1 on the same day a month later, clamped."""
    purchase = purchase_of()
    assert [m.index for m in securemail.due_periods(purchase, now=NOW, payments=())] == [0]
    paid = [payment_for(purchase, 0)]
    almost = datetime(2026, 2, 28, 11, 59, tzinfo=UTC)
    assert securemail.due_periods(purchase, now=almost, payments=paid) == ()
    [second] = securemail.due_periods(purchase, now=almost + timedelta(minutes=1), payments=paid)
    assert (second.index, second.start) == (1, datetime(2026, 2, 28, 12, tzinfo=UTC))
    assert second.end == datetime(2026, 3, 31, 12, tzinfo=UTC)


def test_um6_a_late_run_owes_every_missed_month_once() -> None:
    """UM-6: months not paid are due, oldest first; paid ones are not."""
    purchase = purchase_of()
    later = datetime(2026, 5, 1, tzinfo=UTC)
    due = securemail.due_periods(purchase, now=later, payments=[payment_for(purchase, 1)])
    assert [m.index for m in due] == [0, 2, 3]
    assert [m.start.date().isoformat() for m in due] == ["2026-01-31", "2026-03-31", "2026-04-30"]
    assert len({m.key for m in due}) == 3


def test_um6_an_ended_purchase_owes_nothing() -> None:
    """UM-6: a billing run charges no month of an ended purchase."""
    ended = securemail.end(purchase_of(), NOW)
    assert securemail.due_periods(ended, now=add_months(NOW, 5), payments=()) == ()


def test_um6_a_payment_pays_its_own_purchases_month_only() -> None:
    """A payment counts for its own purchase's month only: the key holds the purchase id."""
    purchase = purchase_of()
    other = payment_for(attrs.evolve(purchase, id="another-purchase"), 0)
    assert not securemail.is_paid(securemail.period(purchase, 0), [other])
    assert securemail.is_paid(securemail.period(purchase, 0), [payment_for(purchase, 0)])


# Whether a due month is charged or the purchase ends (UM-6, SB-2).

PURCHASE = purchase_of()
MONTH = securemail.period(PURCHASE, 1)


def renew(
    *,
    payer: User | None = MANAGER,
    account: User | None = ACCOUNT,
    card: CardOnFile | None = CARD,
) -> ChargeDue | Ending:
    """Ask the rules what a billing run does with MONTH of PURCHASE."""
    return securemail.renewal(PURCHASE, MONTH, payer=payer, account=account, card=card)


def test_um6_a_due_month_is_charged_to_the_payers_card() -> None:
    """UM-6: while payer and account can have SecureMail, the month is charged."""
    assert renew() == ChargeDue(purchase=PURCHASE, period=MONTH, processor_token="tok_m")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"account": None}, "account.deactivated"),
        ({"account": person("account", deactivated=True)}, "account.deactivated"),
        ({"payer": None}, "payer.deactivated"),
        ({"payer": person("manager", manager=True, deactivated=True)}, "payer.deactivated"),
        ({"payer": person("manager")}, "payer.not_user_manager"),
        (
            {"payer": person("manager", manager=True, practice_id="practice-b")},
            "payer.not_user_manager",
        ),
        ({"card": None}, "securemail.no_card"),
    ],
)
def test_um6_a_purchase_ends_when_payer_or_account_can_no_longer_have_it(
    changes: dict[str, Any], reason: str
) -> None:
    """UM-6: a gone or deactivated account or payer, a payer no longer its manager, no card."""
    assert renew(**changes) == Ending(purchase=PURCHASE, reason=reason)


def test_sb2_a_paid_month_stores_payment_invoice_and_securemail() -> None:
    """SB-2, UM-7: the payment is keyed by the month; the account has SecureMail at once."""
    due = ChargeDue(purchase=PURCHASE, period=MONTH, processor_token="tok_m")
    at = MONTH.start + timedelta(hours=1)
    paid = securemail.paid(due, reference="ch_1", now=at)
    assert (paid.purchase, paid.completes) == (PURCHASE, False)
    assert paid.payment == SecureMailPayment(
        id=MONTH.key,
        purchase_id=PURCHASE.id,
        payer_id="manager",
        account_id="account",
        amount_cents=1000,
        paid_at=at,
        processor_reference="ch_1",
    )
    assert (paid.invoice.payment_id, paid.invoice.payer_id, paid.invoice.account_id) == (
        MONTH.key,
        "manager",
        "account",
    )
    assert (paid.invoice.period_start, paid.invoice.period_end) == (
        datetime(2026, 2, 28, 12, tzinfo=UTC),
        datetime(2026, 3, 31, 12, tzinfo=UTC),
    )
    assert (paid.entitlement.user_id, paid.entitlement.product) == ("account", SECUREMAIL)
    assert (paid.subscription.practice_id, paid.subscription.product) == ("practice-a", SECUREMAIL)


# A purchase is pending until its first month is recorded (UM-6, ST-2).

PENDING = buy().due.purchase
NEW_CARD = attrs.evolve(CARD, processor_token="tok_new")


def test_st2_the_managers_retry_completes_the_pending_purchase_with_the_same_charge() -> None:
    """UM-6, ST-2: the retry gets the stored purchase back: same key, same card, nothing new.

    The card replaced since does not change the charge: a processor answers
    a repeated key only when it is the same charge.
    """
    first = buy(card=NEW_CARD, accounts_purchase=PENDING)
    assert first == FirstMonth(
        due=ChargeDue(
            purchase=PENDING, period=securemail.period(PENDING, 0), processor_token="tok_m"
        ),
        new=False,
    )
    assert first.due.period.key == buy().due.period.key


def test_um6_a_pending_purchase_is_not_another_managers_to_complete() -> None:
    """UM-6: another manager is told the purchase is pending, not that it is paid."""
    with pytest.raises(InvalidState) as caught:
        buy(manager=OTHER_MANAGER, accounts_purchase=PENDING)
    assert caught.value.code == "securemail.purchase_pending"


def test_um6_the_retry_is_refused_like_a_purchase() -> None:
    """UM-6: the manager's retry passes the same checks, in the same order, first the card."""
    with pytest.raises(InvalidState) as caught:
        buy(card=None, accounts_purchase=PENDING)
    assert caught.value.code == "securemail.no_card"


def test_st2_a_paid_first_month_makes_the_purchase_active_and_lets_the_card_go() -> None:
    """ST-2, SB-2: the first month's payment completes the purchase: a new version to save."""
    paid = securemail.paid(buy().due, reference="ch_1", now=NOW)
    assert paid.completes
    assert paid.purchase == attrs.evolve(PENDING, first_month_card=None, version=1)
    assert not paid.purchase.pending
    assert paid.payment.id == charge_key(PENDING.id, NOW)
    assert paid.entitlement.user_id == ACCOUNT.id


def test_st2_a_billing_run_leaves_a_pending_purchase_to_its_call_for_the_grace() -> None:
    """ST-2: a run completes a pending purchase's first month only once the grace has passed."""
    assert securemail.due_periods(PENDING, now=NOW, payments=()) == ()
    almost = NOW + PENDING_GRACE - timedelta(microseconds=1)
    assert securemail.due_periods(PENDING, now=almost, payments=()) == ()
    [first] = securemail.due_periods(PENDING, now=NOW + PENDING_GRACE, payments=())
    assert first == securemail.period(PENDING, 0)
    later = add_months(NOW, 1)
    assert [m.index for m in securemail.due_periods(PENDING, now=later, payments=())] == [0, 1]


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"payer": None},
        {"payer": person("manager")},
        {"account": person("account", deactivated=True)},
        {"card": None},
        {"card": NEW_CARD},
    ],
)
def test_st2_a_run_completes_a_pending_purchase_whatever_changed(changes: dict[str, Any]) -> None:
    """ST-2: the first charge may have been taken: it is made again as it was, never dropped."""
    month = securemail.period(PENDING, 0)
    decision = securemail.renewal(
        PENDING, month, **{"payer": MANAGER, "account": ACCOUNT, "card": CARD, **changes}
    )
    assert decision == ChargeDue(purchase=PENDING, period=month, processor_token="tok_m")


def test_st2_a_declined_first_month_ends_the_purchase_and_lets_the_card_go() -> None:
    """ST-2: an ended purchase is not pending, and keeps no card."""
    ended = securemail.end(PENDING, NOW)
    assert ended == attrs.evolve(PENDING, ended_at=NOW, first_month_card=None, version=1)
    assert not ended.pending


def test_a_purchases_card_stays_out_of_its_repr() -> None:
    """AU-2: the first month's card is a credential at the processor."""
    assert "tok_m" not in repr(PENDING)
    assert "tok_m" not in repr(buy().due)


# The end of a purchase.


def test_ending_a_purchase_revises_it_once() -> None:
    """End is a transition: the next version, with the time it ended; it ends only once."""
    later = add_months(NOW, 1)
    ended = securemail.end(PURCHASE, later)
    assert ended == attrs.evolve(PURCHASE, ended_at=later, version=PURCHASE.version + 1)
    with pytest.raises(InvalidState) as caught:
        securemail.end(ended, later)
    assert caught.value.code == "securemail.ended"
    with pytest.raises(InvalidInput):
        securemail.end(PURCHASE, datetime(2026, 3, 1))  # noqa: DTZ001 - the point of the test


# Who sees which payments and invoices (UM-7).


@pytest.mark.parametrize(
    ("account_id", "payer_id", "shown"),
    [
        ("manager", "manager", True),
        ("manager", "other-manager", True),
        ("account", "manager", True),
        ("account", "other-manager", False),
    ],
)
def test_um7_a_manager_sees_their_own_account_and_what_they_paid(
    account_id: str, payer_id: str, shown: bool
) -> None:
    """UM-7: every record of the manager's own account; of others, only what the manager paid."""
    assert securemail.in_billing_view("manager", account_id=account_id, payer_id=payer_id) is shown


# Months, keys, money.


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (datetime(2026, 1, 31, 12, tzinfo=UTC), 1, datetime(2026, 2, 28, 12, tzinfo=UTC)),
        (datetime(2028, 1, 31, 12, tzinfo=UTC), 1, datetime(2028, 2, 29, 12, tzinfo=UTC)),
        (datetime(2026, 1, 31, 12, tzinfo=UTC), 2, datetime(2026, 3, 31, 12, tzinfo=UTC)),
        (datetime(2026, 1, 31, 12, tzinfo=UTC), 3, datetime(2026, 4, 30, 12, tzinfo=UTC)),
        (datetime(2026, 12, 15, tzinfo=UTC), 1, datetime(2027, 1, 15, tzinfo=UTC)),
        (datetime(2026, 3, 31, tzinfo=UTC), 11, datetime(2027, 2, 28, tzinfo=UTC)),
    ],
)
def test_a_month_is_a_calendar_month_clamped_to_its_end(
    start: datetime, months: int, expected: datetime
) -> None:
    """Jan 31 renews Feb 28 (29 in a leap year), then Mar 31: counted from the purchase."""
    assert add_months(start, months) == expected


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis adds the zone
        max_value=datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    st.integers(min_value=0, max_value=240),
)
def test_months_move_forward_by_exactly_that_many(start: datetime, months: int) -> None:
    """A month later is the same time of day, never a later day of the month, and in order."""
    later = add_months(start, months)
    assert (later.year * 12 + later.month) - (start.year * 12 + start.month) == months
    assert later.time() == start.time()
    assert later.day <= start.day
    assert later >= start
    assert add_months(start, months + 1) > later
    if start.day <= 28:
        assert later.day == start.day


def test_the_charge_key_is_purchase_and_period() -> None:
    """One key per purchase and period start; the same period gives the same key."""
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    assert charge_key("p1", start) == charge_key(
        "p1", start.astimezone(timezone(timedelta(hours=2)))
    )
    assert charge_key("p1", start) != charge_key("p1", add_months(start, 1))
    assert charge_key("p1", start) != charge_key("p2", start)


@pytest.mark.parametrize(
    ("cents", "text"),
    [
        (0, "$0.00"),
        (5, "$0.05"),
        (1000, "$10.00"),
        (123456, "$1,234.56"),
        (-150, "-$1.50"),  # a refund; floor division once showed "$-2.50"
        (-5, "-$0.05"),
    ],
)
def test_money_is_shown_as_dollars(cents: int, text: str) -> None:
    """Integer cents, shown as dollars for people only."""
    assert format_cents(cents) == text


def test_um_6_a_declined_key_is_declined_again() -> None:
    """The in-memory processor answers a key the same every time, a decline included."""
    processor = InMemoryPaymentProcessor()
    processor.decline_next()
    for _ in range(2):
        with pytest.raises(PaymentFailed):
            processor.charge(processor_token="tok", amount_cents=500, idempotency_key="k1")
    assert processor.charge(processor_token="tok", amount_cents=500, idempotency_key="k2")
    assert [charge.idempotency_key for charge in processor.charges] == ["k2"]
