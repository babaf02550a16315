"""The card processor as a port, and an in-memory processor for tests (UM-6).

No card number ever enters the library: a card is known here only by the
processor's token. A `PaymentProcessor` must honour the idempotency key, as
card processors do: two calls with one key make one charge, which is what
lets a billing run charge each SecureMail month exactly once.
"""

from __future__ import annotations

import threading
import uuid
from typing import Protocol

import attrs

from securepractice.errors import PaymentFailed

__all__ = ["Charge", "InMemoryPaymentProcessor", "PaymentProcessor"]


class PaymentProcessor(Protocol):
    """Charges a card the processor keeps, known here only by the processor's token."""

    def charge(self, *, processor_token: str, amount_cents: int, idempotency_key: str) -> str:
        """Charge ``amount_cents`` and return the processor's reference for the charge.

        Two calls with the same ``idempotency_key`` make one charge and
        return the same reference, or are declined alike. Raises
        `PaymentFailed` when the charge is declined or cannot be made. A
        crashed purchase is completed by charging its key again, so an
        adapter must keep this promise across processes and restarts.
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

    Charges are idempotent by key, as a real processor's are: a key answers
    the same every time, a charge's reference or its decline. Thread-safe.
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
        """Charge the card once per key; raise `PaymentFailed` (``payment.declined``) when told.

        A key declined once is declined again, as a processor replays its answer.
        """
        with self._lock:
            self._calls += 1
            earlier = self._charges.get(idempotency_key)
            if earlier is not None:
                if earlier.amount_cents != amount_cents:
                    msg = "This charge was made before with another amount."
                    raise PaymentFailed(msg, code="payment.idempotency_conflict")
                return earlier.reference
            if idempotency_key in self._declined:
                raise PaymentFailed("The card was declined.", code="payment.declined")
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
