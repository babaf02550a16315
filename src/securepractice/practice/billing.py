"""SecureMail bought by a User Manager for their practice's users, billed monthly (UM-6, UM-7).

Money is integer cents everywhere; `format_cents` turns it into dollars for
display only. No card number ever enters the library: a card on file is
the payment processor's token and the last four digits.

**A month.** Purchase periods are calendar months counted from the purchase
moment: period *k* starts at `add_months` (purchase, *k*), the same day of
the month and time of day, clamped to the last day of a shorter month, and
always counted from the purchase itself so that a clamp does not stick: a
purchase on January 31 renews on February 28 (29 in a leap year), March 31,
April 30. Period 0 is charged at purchase; `BillingActions.run_billing`
charges every later period once its start has come.

**Exactly once.** Each charge is keyed by the purchase id and its period
start (`charge_key`). The key is the processor's idempotency key and the
stored payment's id, so a payment is stored at most once per period, and a
second run (or a concurrent one) finds it and charges nothing. A
`PaymentProcessor` must honour the idempotency key, as card processors do:
two calls with one key make one charge.
"""

from __future__ import annotations

import calendar
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Protocol, TypeVar

import attrs

from securepractice.accounts._service import AccountContext, new_id
from securepractice.clock import require_utc
from securepractice.errors import (
    AlreadyExists,
    InvalidInput,
    InvalidState,
    PaymentFailed,
    PermissionDenied,
)
from securepractice.policy.roles import Action, is_user_manager
from securepractice.practice._base import PracticeService
from securepractice.records import (
    CardOnFile,
    Entitlement,
    Invoice,
    PracticeSubscription,
    SecureMailPayment,
    SecureMailPurchase,
    User,
)
from securepractice.secret import Secret
from securepractice.storage.ports import UnitOfWork

__all__ = [
    "SECUREMAIL",
    "BillingActions",
    "BillingRun",
    "Charge",
    "InMemoryPaymentProcessor",
    "PaymentProcessor",
    "add_months",
    "charge_key",
    "format_cents",
]

#: The product name of SecureMail, as entitlements and subscriptions store it (SB-2).
SECUREMAIL = "securemail"

#: The audit action of a purchase being stored.
_PURCHASE_STARTED = "securemail.purchase_started"
#: A processor token of 12 or more digits, spaces and dashes only looks like a card number.
_CARD_NUMBER = re.compile(r"[\d -]{12,}")


class _Billed(Protocol):
    """A payment or an invoice: both have an id and a payer."""

    @property
    def id(self) -> str: ...

    @property
    def payer_id(self) -> str: ...


_B = TypeVar("_B", bound=_Billed)


class PaymentProcessor(Protocol):
    """Charges a card the processor keeps, known here only by the processor's token."""

    def charge(self, *, processor_token: str, amount_cents: int, idempotency_key: str) -> str:
        """Charge ``amount_cents`` and return the processor's reference for the charge.

        Two calls with the same ``idempotency_key`` make one charge and
        return the same reference. Raises `PaymentFailed` when the charge is
        declined or cannot be made.
        """
        ...


@attrs.frozen(kw_only=True)
class Charge:
    """One charge made by `InMemoryPaymentProcessor`."""

    reference: str
    amount_cents: int
    idempotency_key: str
    processor_token: str = attrs.field(repr=False)


class InMemoryPaymentProcessor:
    """A payment processor in memory, for tests: it records charges and declines when told.

    Charges are idempotent by key, as a real processor's are; thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._charges: dict[str, Charge] = {}
        self._declines_left = 0
        self._declined_tokens: set[str] = set()
        self._declined: list[str] = []
        self._calls = 0

    def decline_next(self, times: int = 1) -> None:
        """Decline the next ``times`` new charges."""
        with self._lock:
            self._declines_left += times

    def decline_card(self, processor_token: str) -> None:
        """Decline every new charge to this card from now on."""
        with self._lock:
            self._declined_tokens.add(processor_token)

    def charge(self, *, processor_token: str, amount_cents: int, idempotency_key: str) -> str:
        """Charge the card once per key; raise `PaymentFailed` (``payment.declined``) when told."""
        with self._lock:
            self._calls += 1
            earlier = self._charges.get(idempotency_key)
            if earlier is not None:
                if earlier.amount_cents != amount_cents:
                    msg = "This charge was made before with another amount."
                    raise PaymentFailed(msg, code="payment.idempotency_conflict")
                return earlier.reference
            if self._declines_left > 0 or processor_token in self._declined_tokens:
                self._declines_left = max(0, self._declines_left - 1)
                self._declined.append(idempotency_key)
                raise PaymentFailed("The card was declined.", code="payment.declined")
            reference = f"ch_{uuid.uuid4().hex}"
            self._charges[idempotency_key] = Charge(
                reference=reference,
                amount_cents=amount_cents,
                idempotency_key=idempotency_key,
                processor_token=processor_token,
            )
            return reference

    @property
    def charges(self) -> tuple[Charge, ...]:
        """Every charge made, in order."""
        with self._lock:
            return tuple(self._charges.values())

    @property
    def declined(self) -> tuple[str, ...]:
        """The idempotency keys of the declined charges, in order."""
        with self._lock:
            return tuple(self._declined)

    @property
    def calls(self) -> int:
        """How many times `charge` was called, charged or not."""
        with self._lock:
            return self._calls


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


def format_cents(cents: int) -> str:
    """Show an amount of cents as dollars, for people: ``1000`` is ``$10.00``."""
    return f"${cents // 100:,}.{cents % 100:02d}"


@attrs.frozen(kw_only=True)
class BillingRun:
    """What one `BillingActions.run_billing` did.

    ``charged`` holds the payments this run stored; ``failed`` the ids of
    purchases whose charge was declined (they ended); ``ended`` the ids of
    purchases ended because the payer or the account can no longer have
    them (see the guide's decisions).
    """

    at: datetime
    charged: tuple[SecureMailPayment, ...] = ()
    failed: tuple[str, ...] = ()
    ended: tuple[str, ...] = ()


def _periods_due(purchase: SecureMailPurchase, now: datetime) -> Iterable[int]:
    """Yield the index of every period of ``purchase`` that has started by ``now``."""
    index = 0
    while add_months(purchase.purchased_at, index) <= now:
        yield index
        index += 1


def _period_key(purchase: SecureMailPurchase, index: int) -> str:
    return charge_key(purchase.id, add_months(purchase.purchased_at, index))


def _is_paid(uow: UnitOfWork, purchase: SecureMailPurchase, key: str) -> bool:
    return any(payment.id == key for payment in uow.securemail.payments_for(purchase.account_id))


class BillingActions(PracticeService):
    """Cards on file, SecureMail purchases, the monthly run, payments and invoices (UM-6, UM-7)."""

    def __init__(self, context: AccountContext, processor: PaymentProcessor) -> None:
        super().__init__(context)
        self._processor = processor

    def put_card_on_file(
        self, token: str | Secret[str], *, processor_token: str, last_four: str
    ) -> CardOnFile:
        """Keep the signed-in user's card: the processor's token and last four digits only.

        A card number is refused (``card.number_given``): the card itself
        stays with the processor. A new card replaces the earlier one.
        """
        given: object = processor_token
        if not isinstance(given, str) or not given.strip():
            raise InvalidInput(
                "Give the payment processor's token for the card.",
                field="processor_token",
                code="card.token_required",
            )
        if _CARD_NUMBER.fullmatch(processor_token):
            raise InvalidInput(
                "This looks like a card number: give the payment processor's token instead.",
                field="processor_token",
                code="card.number_given",
            )
        with self._acting(token, "card.added") as act:
            act.require(Action.PUT_CARD_ON_FILE, act.actor)
            card = CardOnFile(
                user_id=act.actor.id,
                processor_token=processor_token,
                last_four=last_four,
                added_at=act.now,
            )
            act.uow.cards.put(card)
            self._audit(
                act.uow,
                "card.added",
                at=act.now,
                actor=act.actor,
                subject=act.actor,
                last_four=card.last_four,
            )
            return card

    def purchase_securemail(
        self, token: str | Secret[str], *, account_id: str
    ) -> SecureMailPurchase:
        """Buy SecureMail for a user of the manager's practice, charging the first month (UM-6).

        Refused, with nothing changed, unless the actor is a User Manager of
        the account's practice (``permission.*``), has a card on file
        (``securemail.no_card``), is not paid for by another User Manager
        (``securemail.manager_paid_by_other``), and the account is active
        (``user.deactivated``) and not paid for already
        (``securemail.already_paid``). The account may be the manager's own.
        On a paid charge the account has SecureMail at once (SB-2); a failed
        charge is recorded, grants nothing, and raises `PaymentFailed`.
        """
        with self._acting(token, "securemail.bought", target=account_id) as act:
            account = act.user(account_id)
            act.require(Action.PURCHASE_SECUREMAIL, account)
            manager, uow = act.actor, act.uow
            card = uow.cards.get(manager.id)
            if card is None:
                raise InvalidState(
                    "Put a credit card on file before buying SecureMail for a user.",
                    code="securemail.no_card",
                )
            own = uow.securemail.active_purchase(manager.id)
            if own is not None and own.payer_id != manager.id:
                raise PermissionDenied(
                    "Your own SecureMail is paid for by another User Manager, "
                    "so you cannot pay for other accounts.",
                    code="securemail.manager_paid_by_other",
                )
            if account.deactivated:
                raise InvalidState("This user has been deactivated.", code="user.deactivated")
            if uow.securemail.active_purchase(account.id) is not None:
                raise AlreadyExists(
                    "SecureMail for this account is paid for already.",
                    code="securemail.already_paid",
                )
            purchase = SecureMailPurchase(
                id=new_id(),
                practice_id=str(manager.practice_id),
                payer_id=manager.id,
                account_id=account.id,
                monthly_cents=self._context.settings.billing.securemail_monthly_cents,
                purchased_at=act.now,
            )
            uow.securemail.add_purchase(purchase)
            self._audit(
                uow, _PURCHASE_STARTED, at=act.now, actor=manager, subject=account,
                purchase_id=purchase.id,
            )  # fmt: skip
        try:
            reference = self._charge(card, purchase, 0)
        except PaymentFailed as failure:
            with self._unit() as uow:
                uow.securemail.end_purchase(purchase.id, act.now)
                self._audit(
                    uow, "securemail.bought", failure.code, at=act.now, actor=manager,
                    subject=account, purchase_id=purchase.id,
                )  # fmt: skip
            raise
        with self._unit() as uow:
            self._record_paid(uow, purchase, 0, reference, act.now)
            self._audit(
                uow, "securemail.bought", at=act.now, actor=manager, subject=account,
                purchase_id=purchase.id, amount=format_cents(purchase.monthly_cents),
            )  # fmt: skip
        return purchase

    def _charge(self, card: CardOnFile, purchase: SecureMailPurchase, index: int) -> str:
        return self._processor.charge(
            processor_token=card.processor_token,
            amount_cents=purchase.monthly_cents,
            idempotency_key=_period_key(purchase, index),
        )

    @staticmethod
    def _record_paid(
        uow: UnitOfWork, purchase: SecureMailPurchase, index: int, reference: str, now: datetime
    ) -> SecureMailPayment | None:
        """Store the payment and invoice of one period and grant SecureMail (SB-2).

        Returns None, storing nothing, when the period was paid already.
        """
        key = _period_key(purchase, index)
        if _is_paid(uow, purchase, key):
            return None
        payment = SecureMailPayment(
            id=key,
            purchase_id=purchase.id,
            payer_id=purchase.payer_id,
            account_id=purchase.account_id,
            amount_cents=purchase.monthly_cents,
            paid_at=now,
            processor_reference=reference,
        )
        uow.securemail.add_payment(payment)
        uow.securemail.add_invoice(
            Invoice(
                id=f"invoice:{key}",
                payment_id=payment.id,
                payer_id=purchase.payer_id,
                account_id=purchase.account_id,
                amount_cents=purchase.monthly_cents,
                period_start=add_months(purchase.purchased_at, index),
                period_end=add_months(purchase.purchased_at, index + 1),
                issued_at=now,
            )
        )
        uow.subscriptions.subscribe(
            PracticeSubscription(
                practice_id=purchase.practice_id, product=SECUREMAIL, subscribed_at=now
            )
        )
        uow.entitlements.grant(
            Entitlement(user_id=purchase.account_id, product=SECUREMAIL, granted_at=now)
        )
        return payment

    def run_billing(self, now: datetime | None = None) -> BillingRun:
        """Charge every active purchase for each period that has started and is not paid.

        Safe to call twice or from several threads at once: each period is
        charged and stored once (see the module's "Exactly once"). A
        purchase whose payer is deactivated, no longer a User Manager of the
        practice, or without a card, or whose account is deactivated, ends
        instead of being charged; a declined charge ends the purchase and
        takes SecureMail away. Both are audited.
        """
        now = require_utc(now) if now is not None else self._now()
        with self._unit() as uow:
            purchases = list(uow.securemail.active_purchases())
        charged: list[SecureMailPayment] = []
        failed: list[str] = []
        ended: list[str] = []
        for purchase in purchases:
            for index in _periods_due(purchase, now):
                outcome = self._bill_period(purchase, index, now)
                if isinstance(outcome, SecureMailPayment):
                    charged.append(outcome)
                elif outcome == "failed":
                    failed.append(purchase.id)
                elif outcome == "ended":
                    ended.append(purchase.id)
                if outcome in {"failed", "ended", "gone"}:
                    break
        return BillingRun(at=now, charged=tuple(charged), failed=tuple(failed), ended=tuple(ended))

    def _bill_period(
        self, purchase: SecureMailPurchase, index: int, now: datetime
    ) -> SecureMailPayment | str:
        """Charge one period; return its payment, or what happened instead."""
        key = _period_key(purchase, index)
        with self._unit() as uow:
            current = uow.securemail.active_purchase(purchase.account_id)
            if current is None or current.id != purchase.id:
                return "gone"
            if _is_paid(uow, purchase, key):
                return "paid"
            problem, card = self._payer_problem(uow, purchase)
            if card is None:
                self._end(uow, purchase, now, problem)
                return "ended"
        try:
            reference = self._charge(card, purchase, index)
        except PaymentFailed as failure:
            with self._unit() as uow:
                self._end(uow, purchase, now, failure.code)
            return "failed"
        with self._unit() as uow:
            payment = self._record_paid(uow, purchase, index, reference, now)
            if payment is None:
                return "paid"
            self._audit(
                uow, "securemail.charged", at=now, actor=purchase.payer_id,
                subject=uow.users.get(purchase.account_id), purchase_id=purchase.id,
                amount=format_cents(payment.amount_cents),
            )  # fmt: skip
            return payment

    @staticmethod
    def _payer_problem(
        uow: UnitOfWork, purchase: SecureMailPurchase
    ) -> tuple[str, CardOnFile | None]:
        """Return why the purchase can no longer be charged, or the card to charge."""
        payer = uow.users.get(purchase.payer_id)
        account = uow.users.get(purchase.account_id)
        card = uow.cards.get(purchase.payer_id)
        if account is None or account.deactivated:
            return "account.deactivated", None
        if payer is None or payer.deactivated:
            return "payer.deactivated", None
        if not is_user_manager(payer) or payer.practice_id != purchase.practice_id:
            return "payer.not_user_manager", None
        if card is None:
            return "securemail.no_card", None
        return "ok", card

    def _end(self, uow: UnitOfWork, purchase: SecureMailPurchase, now: datetime, why: str) -> None:
        """End the purchase and take SecureMail away from its account, audited with ``why``."""
        if not uow.securemail.end_purchase(purchase.id, now):
            return
        uow.entitlements.revoke(purchase.account_id, SECUREMAIL)
        self._audit(
            uow, "securemail.ended", why, at=now, actor=purchase.payer_id,
            subject=uow.users.get(purchase.account_id), purchase_id=purchase.id,
        )  # fmt: skip

    def _billed(
        self,
        token: str | Secret[str],
        event: str,
        records_for: Callable[[UnitOfWork, str], Sequence[_B]],
    ) -> list[_B]:
        """Return the manager's own account's records and those of accounts they pay for (UM-7).

        For the manager's own account every record counts, whoever paid; for
        the accounts they pay or paid for, only the ones this manager paid.
        """
        with self._acting(token, event) as act:
            manager, uow = act.actor, act.uow
            act.require(Action.VIEW_BILLING, practice_id=manager.practice_id)
            accounts = {manager.id} | {
                p.account_id for p in uow.securemail.purchases_paid_by(manager.id)
            }
            found = {
                record.id: record
                for account in accounts
                for record in records_for(uow, account)
                if manager.id in {account, record.payer_id}
            }
            self._audit(
                uow, event, at=act.now, actor=manager, subject=manager, count=str(len(found))
            )
            return list(found.values())

    def list_payments(self, token: str | Secret[str]) -> tuple[SecureMailPayment, ...]:
        """List the SecureMail payments of the manager's account and of those they pay for (UM-7).

        Oldest first.
        """
        payments = self._billed(
            token, "securemail.payments_listed", lambda uow, a: uow.securemail.payments_for(a)
        )
        return tuple(
            sorted(
                payments,
                key=lambda p: (p.paid_at, p.id),
            )
        )

    def list_invoices(self, token: str | Secret[str]) -> tuple[Invoice, ...]:
        """List the invoices of the manager's account and of those they pay for (UM-7).

        Ordered by period, oldest first.
        """
        invoices = self._billed(
            token, "securemail.invoices_listed", lambda uow, a: uow.securemail.invoices_for(a)
        )
        return tuple(
            sorted(
                invoices,
                key=lambda i: (i.period_start, i.id),
            )
        )

    def email_invoices(self, token: str | Secret[str]) -> tuple[Invoice, ...]:
        """Email the invoices of the manager's own account, only to their own address (UM-7).

        Returns the invoices sent. A failed delivery is audited and raises
        `~securepractice.errors.DeliveryFailed`.
        """
        with self._acting(token, "securemail.invoices_emailed") as act:
            manager = act.actor
            act.require(Action.EMAIL_INVOICES, practice_id=manager.practice_id)
            invoices = tuple(act.uow.securemail.invoices_for(manager.id))
            self._audit(
                act.uow, "securemail.invoices_emailed", at=act.now, actor=manager, subject=manager,
                count=str(len(invoices)),
            )  # fmt: skip
        lines = [
            f"{i.period_start:%Y-%m-%d} to {i.period_end:%Y-%m-%d}: "
            f"{format_cents(i.amount_cents)} (invoice {i.id})"
            for i in invoices
        ]
        body = (
            "Your SecureMail invoices:\n\n" + "\n".join(lines) + "\n"
            if lines
            else "You have no SecureMail invoices yet.\n"
        )
        name = self._context.portal_name
        self._deliver_or_record(
            lambda: self._email(manager.email, f"Your SecureMail invoices from {name}", body),
            lambda failure: self._record_failure(manager, failure.code, act.now),
        )
        return invoices

    def _record_failure(self, manager: User, code: str, now: datetime) -> None:
        with self._unit() as uow:
            self._audit(
                uow, "securemail.invoices_emailed", code, at=now, actor=manager, subject=manager
            )
