"""SecureMail bought by a User Manager for their practice's users, billed monthly (UM-6, UM-7).

The rules (who buys for whom, the price, the months, which months are due,
the end of a purchase) are `securepractice.policy.securemail`; the card
processor is the port `securepractice.practice.payments.PaymentProcessor`.
Each action here loads, asks those rules, saves exactly what they returned,
then charges the card and notifies.

**Exactly once.** A month's payment has the month's charge key as its id,
and the key is the processor's idempotency key. A run finds a month whose
payment is stored and charges nothing; two runs that meet one month at the
same moment make one charge (the processor honours the key) and store one
payment (the store refuses a second payment with that id, and the loser
stores nothing).

**No charge without its record (ST-2).** A purchase is stored pending,
with its first month's card, before the card is charged; the charge's key
follows from the stored purchase. The payment, its invoice, SecureMail and
the purchase made active are then stored in one unit. A process that dies
between the charge and that unit leaves a pending purchase, never a charge
nobody knows of: the manager's retry of `purchase_securemail`, or a
`run_billing` once `securemail.PENDING_GRACE` has passed, charges that
month again under the same key (the processor answers with the first
charge) and stores it. The purchase is saved over the version read, so of
two that complete it at once one stores the records and the other, finding
it moved (`Conflict`), stores nothing.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol, TypeVar

import attrs

from securepractice.accounts._shared import (
    audit,
    deliver_or_record,
    new_id,
    send_email,
    send_notice,
)
from securepractice.clock import require_utc
from securepractice.dependencies import Dependencies, Service
from securepractice.errors import AlreadyExists, Conflict, PaymentFailed
from securepractice.policy import securemail, text
from securepractice.policy.roles import Action
from securepractice.practice._base import Acting, acting
from securepractice.practice.payments import PaymentProcessor
from securepractice.records import (
    CardOnFile,
    Invoice,
    SecureMailPayment,
    SecureMailPurchase,
    User,
)
from securepractice.secret import Secret
from securepractice.storage.ports import UnitOfWork

__all__ = [
    "BillingRun",
    "BillingService",
    "email_invoices",
    "list_invoices",
    "list_payments",
    "purchase_securemail",
    "put_card_on_file",
    "put_card_on_file_for",
    "run_billing",
]

#: The audit action of a purchase being stored.
_PURCHASE_STARTED = "securemail.purchase_started"
#: The audit action of a card put on file, by its holder or by support staff.
_CARD_ADDED = "card.added"


class BillingService(Protocol):
    """What the billing actions act through: the dependencies and the card processor."""

    @property
    def deps(self) -> Dependencies:
        """The collaborators every action works with."""
        ...

    @property
    def processor(self) -> PaymentProcessor:
        """The card processor that makes the charges."""
        ...


@attrs.frozen(kw_only=True)
class BillingRun:
    """What one `run_billing` did.

    ``charged`` holds the payments this run stored; ``failed`` the ids of
    purchases whose charge was declined (they ended); ``ended`` the ids of
    purchases ended because the payer or the account can no longer have
    them (see `securepractice.policy.securemail.renewal`).
    """

    at: datetime
    charged: tuple[SecureMailPayment, ...] = ()
    failed: tuple[str, ...] = ()
    ended: tuple[str, ...] = ()


class _Billed(Protocol):
    """A payment or an invoice: an id, a payer and the account it was for."""

    @property
    def id(self) -> str: ...

    @property
    def payer_id(self) -> str: ...

    @property
    def account_id(self) -> str: ...


_B = TypeVar("_B", bound=_Billed)


class _Skipped(enum.Enum):
    """Why a month of a billing run stored no payment."""

    PAID = "paid"
    GONE = "gone"
    ENDED = "ended"
    FAILED = "failed"


def put_card_on_file(
    service: BillingService, token: str | Secret[str], *, processor_token: str, last_four: str
) -> CardOnFile:
    """Keep the signed-in user's card: the processor's token and last four digits only.

    A card number is refused (``card.number_given``): the card itself
    stays with the processor. A new card replaces the earlier one.
    """
    given = securemail.card_token(processor_token)
    with acting(service.deps, token, _CARD_ADDED) as act:
        act.require(Action.PUT_CARD_ON_FILE, act.actor)
        return _put_card(act, act.actor, given, last_four)


def put_card_on_file_for(
    service: Service,
    token: str | Secret[str],
    *,
    user_id: str,
    processor_token: str,
    last_four: str,
) -> CardOnFile:
    """Keep a practice user's card, as support staff, without the cardholder's session (OP-1).

    For the back office: the cardholder (a User Manager, who pays for
    SecureMail) gave their card to the processor by other means, and
    ``processor_token`` is what the processor returned; a card number is
    refused (``card.number_given``). A new card replaces the earlier one.
    Audited as ``card.added`` with ``by=support``; the cardholder is
    emailed a notice (a failed delivery is audited, not raised).
    """
    user_id = text.identifier(user_id, field="user_id")
    given = securemail.card_token(processor_token)
    deps = service.deps
    with acting(deps, token, _CARD_ADDED, target=user_id) as act:
        holder = act.user(user_id)
        act.require(Action.PUT_CARD_ON_FILE_FOR, holder)
        card = _put_card(act, holder, given, last_four, by="support")
    subject, body = deps.settings.messages.render_email(
        "card_put_on_file", {"portal": deps.portal_name, "last_four": card.last_four}
    )
    send_notice(deps, holder, holder.email, subject, body, notice="card_added")
    return card


def _put_card(
    act: Acting, holder: User, processor_token: str, last_four: str, **detail: str
) -> CardOnFile:
    """Keep ``holder``'s card in ``act``'s unit, replacing any earlier one; audit it."""
    card = CardOnFile(
        user_id=holder.id, processor_token=processor_token, last_four=last_four, added_at=act.now
    )
    act.uow.cards.put(card)
    audit(
        act.uow, _CARD_ADDED, at=act.now, actor=act.actor, subject=holder,
        last_four=card.last_four, **detail,
    )  # fmt: skip
    return card


def purchase_securemail(
    service: BillingService, token: str | Secret[str], *, account_id: str
) -> SecureMailPurchase:
    """Buy SecureMail for a user of the manager's practice, charging the first month (UM-6).

    Refused, with nothing changed, unless the actor is a User Manager of
    the account's practice (``permission.*``) and
    `securepractice.policy.securemail.start_purchase` allows it. The
    account may be the manager's own. The purchase is stored pending, the
    card charged, then the month recorded (see the module's "No charge
    without its record"). On a paid charge the account has SecureMail at
    once (SB-2) and the active purchase is returned; a failed charge ends
    the purchase, is audited, grants nothing, and raises `PaymentFailed`.
    Called again after a call that stopped half-way (a crash, a
    `~securepractice.errors.StorageError`), it completes that call's
    pending purchase with the same charge, never charging twice.
    """
    deps = service.deps
    account_id = text.identifier(account_id, field="account_id")
    with acting(deps, token, "securemail.bought", target=account_id) as act:
        account = act.user(account_id)
        act.require(Action.PURCHASE_SECUREMAIL, account)
        manager, uow = act.actor, act.uow
        first = securemail.start_purchase(
            purchase_id=new_id(),
            manager=manager,
            account=account,
            card=uow.cards.get(manager.id),
            managers_purchase=uow.securemail.active_purchase(manager.id),
            accounts_purchase=uow.securemail.active_purchase(account.id),
            rules=deps.settings.billing,
            now=act.now,
        )
        due = first.due
        if first.new:
            uow.securemail.add_purchase(due.purchase)
            audit(
                uow, _PURCHASE_STARTED, at=act.now, actor=manager, subject=account,
                purchase_id=due.purchase.id,
            )  # fmt: skip
    try:
        reference = _charge(service, due)
    except PaymentFailed as failure:
        # A Conflict: another call settled the purchase first, with this same charge.
        with contextlib.suppress(Conflict), deps.unit() as uow:
            ended = securemail.end(due.purchase, act.now)
            uow.securemail.save_purchase(ended, expected_version=due.purchase.version)
            audit(
                uow, "securemail.bought", failure.code, at=act.now, actor=manager,
                subject=account, purchase_id=due.purchase.id,
            )  # fmt: skip
        raise
    paid = securemail.paid(due, reference=reference, now=act.now)
    # A Conflict: a billing run or another call completed the purchase first, with this charge.
    with contextlib.suppress(Conflict), deps.unit() as uow:
        _store_paid(uow, due, paid)
        audit(
            uow, "securemail.bought", at=act.now, actor=manager, subject=account,
            purchase_id=due.purchase.id,
            amount=securemail.format_cents(due.purchase.monthly_cents),
        )  # fmt: skip
    return paid.purchase


def _charge(service: BillingService, due: securemail.ChargeDue) -> str:
    """Charge a month to the payer's card, keyed by the month; return the processor's reference."""
    return service.processor.charge(
        processor_token=due.processor_token,
        amount_cents=due.purchase.monthly_cents,
        idempotency_key=due.period.key,
    )


def _store_paid(uow: UnitOfWork, due: securemail.ChargeDue, paid: securemail.Paid) -> None:
    """In ``uow``, store a charged month: payment, invoice, SecureMail (SB-2), the purchase.

    The purchase is saved only when the month completes it (it was
    pending), over the version ``due`` was decided from: `Conflict` when
    another unit completed it first.
    """
    if paid.completes:
        uow.securemail.save_purchase(paid.purchase, expected_version=due.purchase.version)
    uow.securemail.add_payment(paid.payment)
    uow.securemail.add_invoice(paid.invoice)
    uow.subscriptions.subscribe(paid.subscription)
    uow.entitlements.grant(paid.entitlement)


def run_billing(service: BillingService, now: datetime | None = None) -> BillingRun:
    """Charge every active purchase for each month that has started and is not paid.

    Safe to call twice or from several threads at once: each month is
    charged and stored once (see the module's "Exactly once"). A purchase
    whose payer or account can no longer have it ends instead of being
    charged; a declined charge ends the purchase and takes SecureMail
    away. Both are audited. A purchase left pending by a call that stopped
    half-way is completed once `securemail.PENDING_GRACE` has passed, its
    first month in ``charged``.
    """
    deps = service.deps
    now = require_utc(now) if now is not None else deps.now()
    with deps.unit() as uow:
        plan = [
            (
                p,
                securemail.due_periods(
                    p, now=now, payments=uow.securemail.payments_for(p.account_id)
                ),
            )
            for p in uow.securemail.active_purchases()
        ]
    charged: list[SecureMailPayment] = []
    failed: list[str] = []
    ended: list[str] = []
    for purchase, months in plan:
        for month in months:
            outcome = _bill_month(service, purchase, month, now)
            if isinstance(outcome, SecureMailPayment):
                charged.append(outcome)
                continue
            if outcome is _Skipped.PAID:
                continue
            if outcome is _Skipped.FAILED:
                failed.append(purchase.id)
            elif outcome is _Skipped.ENDED:
                ended.append(purchase.id)
            break
    return BillingRun(at=now, charged=tuple(charged), failed=tuple(failed), ended=tuple(ended))


def _bill_month(
    service: BillingService,
    purchase: SecureMailPurchase,
    month: securemail.Period,
    now: datetime,
) -> SecureMailPayment | _Skipped:
    """Charge one month of ``purchase``; return its payment, or why none was stored."""
    deps = service.deps
    due = _renewal(deps, purchase, month, now)
    if isinstance(due, _Skipped):
        return due
    try:
        reference = _charge(service, due)
    except PaymentFailed as failure:
        # A Conflict means another run ended the purchase first: it has ended all the same.
        with contextlib.suppress(Conflict), deps.unit() as uow:
            _end(uow, due.purchase, now, failure.code)
        return _Skipped.FAILED
    try:
        with deps.unit() as uow:
            if securemail.is_paid(due.period, uow.securemail.payments_for(due.purchase.account_id)):
                return _Skipped.PAID
            paid = securemail.paid(due, reference=reference, now=now)
            _store_paid(uow, due, paid)
            audit(
                uow, "securemail.charged", at=now, actor=due.purchase.payer_id,
                subject=uow.users.get(due.purchase.account_id), purchase_id=due.purchase.id,
                amount=securemail.format_cents(paid.payment.amount_cents),
            )  # fmt: skip
    except (AlreadyExists, Conflict):
        return _Skipped.PAID  # another run, or the purchase's own call, stored this month first
    return paid.payment


def _renewal(
    deps: Dependencies, purchase: SecureMailPurchase, month: securemail.Period, now: datetime
) -> securemail.ChargeDue | _Skipped:
    """Decide one month in a unit of its own: the charge to make, or why there is none.

    A purchase that can no longer be charged is ended in that unit.
    """
    try:
        with deps.unit() as uow:
            current = uow.securemail.active_purchase(purchase.account_id)
            if current is None or current.id != purchase.id:
                return _Skipped.GONE
            if securemail.is_paid(month, uow.securemail.payments_for(current.account_id)):
                return _Skipped.PAID
            decision = securemail.renewal(
                current,
                month,
                payer=uow.users.get(current.payer_id),
                account=uow.users.get(current.account_id),
                card=uow.cards.get(current.payer_id),
            )
            if isinstance(decision, securemail.Ending):
                _end(uow, decision.purchase, now, decision.reason)
                return _Skipped.ENDED
            return decision
    except Conflict:
        return _Skipped.GONE  # another run ended the purchase first


def _end(uow: UnitOfWork, purchase: SecureMailPurchase, now: datetime, why: str) -> None:
    """In ``uow``, end the purchase and take SecureMail from its account, audited with ``why``.

    `~securepractice.errors.Conflict` when another unit changed the purchase first.
    """
    uow.securemail.save_purchase(securemail.end(purchase, now), expected_version=purchase.version)
    uow.entitlements.revoke(purchase.account_id, securemail.SECUREMAIL)
    audit(
        uow, "securemail.ended", why, at=now, actor=purchase.payer_id,
        subject=uow.users.get(purchase.account_id), purchase_id=purchase.id,
    )  # fmt: skip


def _billed(
    service: BillingService,
    token: str | Secret[str],
    event: str,
    records_for: Callable[[UnitOfWork, str], Sequence[_B]],
) -> list[_B]:
    """Return the records of the manager's own account and of accounts they pay for (UM-7).

    `securepractice.policy.securemail.in_billing_view` decides which records show.
    """
    with acting(service.deps, token, event) as act:
        manager, uow = act.actor, act.uow
        act.require(Action.VIEW_BILLING, practice_id=manager.practice_id)
        accounts = {manager.id} | {
            p.account_id for p in uow.securemail.purchases_paid_by(manager.id)
        }
        found = {
            record.id: record
            for account in accounts
            for record in records_for(uow, account)
            if securemail.in_billing_view(
                manager.id, account_id=record.account_id, payer_id=record.payer_id
            )
        }
        audit(uow, event, at=act.now, actor=manager, subject=manager, count=str(len(found)))
        return list(found.values())


def list_payments(
    service: BillingService, token: str | Secret[str]
) -> tuple[SecureMailPayment, ...]:
    """List the SecureMail payments of the manager's account and of those they pay for (UM-7).

    Oldest first.
    """
    payments = _billed(
        service, token, "securemail.payments_listed", lambda uow, a: uow.securemail.payments_for(a)
    )
    return tuple(sorted(payments, key=lambda p: (p.paid_at, p.id)))


def list_invoices(service: BillingService, token: str | Secret[str]) -> tuple[Invoice, ...]:
    """List the invoices of the manager's account and of those they pay for (UM-7).

    Ordered by period, oldest first.
    """
    invoices = _billed(
        service, token, "securemail.invoices_listed", lambda uow, a: uow.securemail.invoices_for(a)
    )
    return tuple(sorted(invoices, key=lambda i: (i.period_start, i.id)))


def email_invoices(service: BillingService, token: str | Secret[str]) -> tuple[Invoice, ...]:
    """Email the invoices of the manager's own account, only to their own address (UM-7).

    Returns the invoices sent. A failed delivery is audited and raises
    `~securepractice.errors.DeliveryFailed`.
    """
    deps = service.deps
    with acting(deps, token, "securemail.invoices_emailed") as act:
        manager = act.actor
        act.require(Action.EMAIL_INVOICES, practice_id=manager.practice_id)
        invoices = tuple(act.uow.securemail.invoices_for(manager.id))
        audit(
            act.uow, "securemail.invoices_emailed", at=act.now, actor=manager, subject=manager,
            count=str(len(invoices)),
        )  # fmt: skip
    messages = deps.settings.messages
    lines = [
        messages.render(
            "invoice_line",
            {
                "start": f"{i.period_start:%Y-%m-%d}",
                "end": f"{i.period_end:%Y-%m-%d}",
                "amount": securemail.format_cents(i.amount_cents),
                "invoice": i.id,
            },
        )
        for i in invoices
    ]
    portal = deps.portal_name
    subject, body = (
        messages.render_email("invoices", {"portal": portal, "invoices": "\n".join(lines)})
        if lines
        else messages.render_email("no_invoices", {"portal": portal})
    )
    deliver_or_record(
        lambda: send_email(deps, manager.email, subject, body),
        lambda failure: _record_failure(deps, manager, failure.code, act.now),
    )
    return invoices


def _record_failure(deps: Dependencies, manager: User, code: str, now: datetime) -> None:
    """Audit a failed delivery of the invoices, in a unit of its own."""
    with deps.unit() as uow:
        audit(uow, "securemail.invoices_emailed", code, at=now, actor=manager, subject=manager)
