"""SecureMail as pure rules: who buys for whom, the price, the months, the end (UM-6, UM-7).

Values in, decisions out: nothing here reads storage or the clock. The
billing service (`securepractice.practice.billing`) loads the records, asks
these functions, saves exactly what they return and then charges the card.

Money is integer cents everywhere; `format_cents` turns it into dollars for
display only. A card on file is the payment processor's token and the last
four digits, never the card number (`card_token`).

**A month.** Purchase periods are calendar months counted from the purchase
moment: period *k* starts at `add_months` (purchase, *k*), the same day of
the month and time of day, clamped to the last day of a shorter month, and
always counted from the purchase itself so that a clamp does not stick: a
purchase on January 31 renews on February 28 (29 in a leap year), March 31,
April 30. Period 0 is charged at purchase (`start_purchase`); a billing run
charges every later period once its start has come (`due_periods`,
`renewal`).

**Exactly once.** Each period's charge is keyed by the purchase id and the
period start (`charge_key`): the key is the processor's idempotency key
and the stored payment's id, so a period is paid at most once however many
runs meet it.

**Pending until recorded.** A purchase is stored *pending*, with the card
of its first month, before that month is charged (`start_purchase`), so
the charge's key and card are in the store before the card is charged; it
becomes active when that month's payment is recorded (`paid`). A pending
purchase left by a crash is completed by charging its first month again
under the same key, which makes no second charge: on the manager's retry
(`start_purchase` gives the stored purchase back) or by a billing run once
`PENDING_GRACE` has passed (`due_periods`, `renewal`) (ST-2).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

import attrs

from securepractice.clock import require_utc
from securepractice.errors import AlreadyExists, InvalidInput, InvalidState, PermissionDenied
from securepractice.policy import text
from securepractice.policy.roles import is_user_manager
from securepractice.records import (
    CardOnFile,
    Entitlement,
    Invoice,
    PracticeSubscription,
    SecureMailPayment,
    SecureMailPurchase,
    User,
    revised,
)
from securepractice.settings import BillingRules

__all__ = [
    "PENDING_GRACE",
    "SECUREMAIL",
    "ChargeDue",
    "Ending",
    "FirstMonth",
    "Paid",
    "Period",
    "add_months",
    "card_token",
    "charge_key",
    "due_periods",
    "end",
    "format_cents",
    "in_billing_view",
    "is_paid",
    "paid",
    "period",
    "renewal",
    "start_purchase",
]

#: The product name of SecureMail, as entitlements and subscriptions store it (SB-2).
SECUREMAIL = "securemail"

#: How long a billing run leaves a pending purchase to the call that is completing it.
#: Longer than any one card charge takes; after it, the purchase was left by a crash.
PENDING_GRACE = timedelta(minutes=10)

#: A processor token of 12 or more digits, spaces and dashes only looks like a card number.
_CARD_NUMBER = re.compile(r"[\d -]{12,}")


def format_cents(cents: int) -> str:
    """Show an amount of cents as dollars, for people: ``1000`` is ``$10.00``.

    A negative amount (a refund) puts its sign first: ``-150`` is ``-$1.50``.
    """
    sign = "-" if cents < 0 else ""
    dollars, rest = divmod(abs(cents), 100)
    return f"{sign}${dollars:,}.{rest:02d}"


def add_months(moment: datetime, months: int) -> datetime:
    """Return ``moment`` moved by whole calendar months, the day clamped to the month's end."""
    year, month_index = divmod(moment.month - 1 + months, 12)
    year += moment.year
    month = month_index + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def charge_key(purchase_id: str, period_start: datetime) -> str:
    """Return the key of one period's charge: the payment's id and the idempotency key."""
    return f"securemail:{purchase_id}:{require_utc(period_start).isoformat()}"


def card_token(value: object) -> str:
    """Return ``value`` as a processor's card token; refuse a blank one or a card number (UM-6).

    The card itself stays with the processor: a token that looks like a card
    number is refused (``card.number_given``).
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(
            "Give the payment processor's token for the card.",
            field="processor_token",
            code="card.token_required",
        )
    value = text.identifier(value, field="processor_token")
    if _CARD_NUMBER.fullmatch(value):
        raise InvalidInput(
            "This looks like a card number: give the payment processor's token instead.",
            field="processor_token",
            code="card.number_given",
        )
    return value


@attrs.frozen(kw_only=True)
class Period:
    """One month of a purchase: the index-th, from ``start`` until ``end``."""

    purchase_id: str
    index: int
    start: datetime
    end: datetime

    @property
    def key(self) -> str:
        """The period's charge key: its payment's id and the processor's idempotency key."""
        return charge_key(self.purchase_id, self.start)


def period(purchase: SecureMailPurchase, index: int) -> Period:
    """Return the ``index``-th month of ``purchase``; month 0 starts at the purchase."""
    return Period(
        purchase_id=purchase.id,
        index=index,
        start=add_months(purchase.purchased_at, index),
        end=add_months(purchase.purchased_at, index + 1),
    )


def _started(purchase: SecureMailPurchase, now: datetime) -> Iterator[Period]:
    """Yield every period of ``purchase`` that has started by ``now``, oldest first."""
    index = 0
    while (month := period(purchase, index)).start <= now:
        yield month
        index += 1


def due_periods(
    purchase: SecureMailPurchase, *, now: datetime, payments: Iterable[SecureMailPayment]
) -> tuple[Period, ...]:
    """Return the periods a billing run at ``now`` charges: started, not paid, oldest first.

    ``payments`` are the stored payments of the purchase's account; an
    ended purchase has no period due, and neither has a pending one until
    `PENDING_GRACE` has passed since it was made: until then the call that
    made it is completing it.
    """
    if purchase.ended_at is not None:
        return ()
    if purchase.pending and now < purchase.purchased_at + PENDING_GRACE:
        return ()
    stored = tuple(payments)
    return tuple(month for month in _started(purchase, now) if not is_paid(month, stored))


def is_paid(month: Period, payments: Iterable[SecureMailPayment]) -> bool:
    """Whether ``payments`` (of the purchase's account) hold the payment of ``month``."""
    return any(payment.id == month.key for payment in payments)


@attrs.frozen(kw_only=True)
class ChargeDue:
    """A charge to make: one period of a purchase, to a card of the payer.

    ``processor_token`` is the processor's token of the card to charge, a
    credential at the processor, so it stays out of ``repr``.
    """

    purchase: SecureMailPurchase
    period: Period
    processor_token: str = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class FirstMonth:
    """What buying SecureMail decided: the first month to charge, of a new or a pending purchase.

    ``new`` tells whether ``due.purchase`` is to be stored (pending) before
    the charge; when False it is stored pending already, by an earlier call
    of the same manager that did not finish, and the charge completes it.
    """

    due: ChargeDue
    new: bool


def _first_month(purchase: SecureMailPurchase, card: str) -> ChargeDue:
    """Return the charge of the first month of ``purchase``, to ``card``."""
    return ChargeDue(purchase=purchase, period=period(purchase, 0), processor_token=card)


@attrs.frozen(kw_only=True)
class Ending:
    """A purchase that can no longer be charged, and why (a stable code)."""

    purchase: SecureMailPurchase
    reason: str


def start_purchase(
    *,
    purchase_id: str,
    manager: User,
    account: User,
    card: CardOnFile | None,
    managers_purchase: SecureMailPurchase | None,
    accounts_purchase: SecureMailPurchase | None,
    rules: BillingRules,
    now: datetime,
) -> FirstMonth:
    """Decide a User Manager's purchase of SecureMail for ``account``: its first month to charge.

    The role rule (`securepractice.policy.roles.decide`) has allowed the
    manager to act on the account. ``managers_purchase`` and
    ``accounts_purchase`` are the purchases not ended of the manager's own
    account and of the target account, or None. Refused unless the manager
    has a card (``securemail.no_card``), is not paid for by another User
    Manager (``securemail.manager_paid_by_other``), and the account is
    active (``user.deactivated``) and not paid for already
    (``securemail.already_paid``) (UM-6). The account may be the manager's
    own; the price is ``rules.securemail_monthly_cents``. The new purchase
    is pending, its first month to be charged to ``card``.

    When the account's purchase is pending, its first month is not
    recorded: the manager who made it gets it back, to complete with the
    charge it was made with (same key, same card: no second charge); any
    other manager is refused (``securemail.purchase_pending``), since it is
    not theirs to complete.
    """
    if card is None:
        raise InvalidState(
            "Put a credit card on file before buying SecureMail for a user.",
            code="securemail.no_card",
        )
    if managers_purchase is not None and managers_purchase.payer_id != manager.id:
        raise PermissionDenied(
            "Your own SecureMail is paid for by another User Manager, "
            "so you cannot pay for other accounts.",
            code="securemail.manager_paid_by_other",
        )
    if account.deactivated:
        raise InvalidState("This user has been deactivated.", code="user.deactivated")
    if accounts_purchase is not None:
        return FirstMonth(due=_pending_first_month(accounts_purchase, manager), new=False)
    purchase = SecureMailPurchase(
        id=purchase_id,
        practice_id=str(manager.practice_id),
        payer_id=manager.id,
        account_id=account.id,
        monthly_cents=rules.securemail_monthly_cents,
        purchased_at=now,
        first_month_card=card.processor_token,
    )
    return FirstMonth(due=_first_month(purchase, card.processor_token), new=True)


def _pending_first_month(purchase: SecureMailPurchase, manager: User) -> ChargeDue:
    """Return the charge that completes ``purchase`` for ``manager``'s retry; refuse otherwise."""
    if purchase.first_month_card is None:
        raise AlreadyExists(
            "SecureMail for this account is paid for already.",
            code="securemail.already_paid",
        )
    if purchase.payer_id != manager.id:
        raise InvalidState(
            "Another User Manager's purchase of SecureMail for this account is being completed.",
            code="securemail.purchase_pending",
        )
    return _first_month(purchase, purchase.first_month_card)


def renewal(
    purchase: SecureMailPurchase,
    month: Period,
    *,
    payer: User | None,
    account: User | None,
    card: CardOnFile | None,
) -> ChargeDue | Ending:
    """Decide a due month of a purchase: charge the payer's card, or end the purchase.

    A purchase ends, uncharged, when its account is gone or deactivated
    (``account.deactivated``), its payer is gone or deactivated
    (``payer.deactivated``), no longer a User Manager of the practice
    (``payer.not_user_manager``), or without a card (``securemail.no_card``).

    A pending purchase is completed instead, whatever changed since it was
    made: its first month is charged again as it was made, to its
    ``first_month_card`` under its key, so that a charge the processor took
    before a crash is recorded, not lost (ST-2).
    """
    if purchase.first_month_card is not None:
        return _first_month(purchase, purchase.first_month_card)
    if account is None or account.deactivated:
        return Ending(purchase=purchase, reason="account.deactivated")
    if payer is None or payer.deactivated:
        return Ending(purchase=purchase, reason="payer.deactivated")
    if not is_user_manager(payer) or payer.practice_id != purchase.practice_id:
        return Ending(purchase=purchase, reason="payer.not_user_manager")
    if card is None:
        return Ending(purchase=purchase, reason="securemail.no_card")
    return ChargeDue(purchase=purchase, period=month, processor_token=card.processor_token)


@attrs.frozen(kw_only=True)
class Paid:
    """What a paid month stores: its payment and invoice, and SecureMail for the account (SB-2).

    ``purchase`` is the purchase once the month is paid; ``completes`` tells
    whether it is a new version to save: the month was the first of a
    pending purchase, which is active from now on.
    """

    payment: SecureMailPayment
    invoice: Invoice
    subscription: PracticeSubscription
    entitlement: Entitlement
    purchase: SecureMailPurchase
    completes: bool


def paid(charge: ChargeDue, *, reference: str, now: datetime) -> Paid:
    """Return the records of ``charge`` made at ``now``, the processor's ``reference`` kept.

    The payment's id is the period's key, so a period is stored once. The
    account has SecureMail from the first paid month (SB-2), and its practice
    subscribes to it. A pending purchase becomes active, its card let go.
    """
    purchase, month = charge.purchase, charge.period
    completes = purchase.pending
    payment = SecureMailPayment(
        id=month.key,
        purchase_id=purchase.id,
        payer_id=purchase.payer_id,
        account_id=purchase.account_id,
        amount_cents=purchase.monthly_cents,
        paid_at=now,
        processor_reference=reference,
    )
    return Paid(
        payment=payment,
        invoice=Invoice(
            id=f"invoice:{month.key}",
            payment_id=payment.id,
            payer_id=purchase.payer_id,
            account_id=purchase.account_id,
            amount_cents=purchase.monthly_cents,
            period_start=month.start,
            period_end=month.end,
            issued_at=now,
        ),
        subscription=PracticeSubscription(
            practice_id=purchase.practice_id, product=SECUREMAIL, subscribed_at=now
        ),
        entitlement=Entitlement(user_id=purchase.account_id, product=SECUREMAIL, granted_at=now),
        purchase=revised(purchase, first_month_card=None) if completes else purchase,
        completes=completes,
    )


def end(purchase: SecureMailPurchase, at: datetime) -> SecureMailPurchase:
    """Return ``purchase`` ended at ``at``; `InvalidState` (``securemail.ended``) if it was.

    A pending purchase that ends (its first charge declined) lets its card go.
    """
    if purchase.ended_at is not None:
        raise InvalidState("This SecureMail purchase has ended already.", code="securemail.ended")
    return revised(purchase, ended_at=require_utc(at), first_month_card=None)


def in_billing_view(viewer_id: str, *, account_id: str, payer_id: str) -> bool:
    """Whether a payment or invoice shows in a User Manager's billing view (UM-7).

    Every record of the manager's own account shows, whoever paid; of the
    accounts they pay or paid for, only the ones this manager paid.
    """
    return viewer_id in {account_id, payer_id}
