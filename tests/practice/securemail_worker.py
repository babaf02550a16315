"""The worker process of the SecureMail crash test: it buys SecureMail until it is killed (ST-2).

It opens its own portal on the shared SQLite file with a card processor
shared through another file, buys SecureMail for each account it is given
and tells the parent through a pipe how far it got: before each purchase,
right after each charge (from inside the processor call, the moment a
crash used to leave a charge without its record) and after each purchase.
The parent kills it with SIGKILL after a number of messages it picks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from processes_processor import SharedLedgerProcessor
from processes_workers import Store


class _Telling:
    """A processor that tells the parent each charge it made, before returning it."""

    def __init__(self, inner: SharedLedgerProcessor, send: Callable[[object], None]) -> None:
        self._inner = inner
        self._send = send

    def charge(self, *, processor_token: str, amount_cents: int, idempotency_key: str) -> str:
        """Charge through the shared ledger, then report the key."""
        reference = self._inner.charge(
            processor_token=processor_token,
            amount_cents=amount_cents,
            idempotency_key=idempotency_key,
        )
        self._send(("charged", idempotency_key))
        return reference


def keep_buying(
    store: Store,
    progress: object,
    *,
    now: datetime,
    ledger: Path,
    token: str,
    accounts: Sequence[str],
) -> None:
    """Buy SecureMail for each of ``accounts`` in turn with the manager's ``token``.

    ``progress`` is the sending end of a pipe: it gets ``("buying", id)``,
    ``("charged", key)`` and ``("bought", id)`` as the purchases go.
    """
    send: Callable[[object], None] = progress.send  # type: ignore[attr-defined]
    portal, _ = store.portal(now, _Telling(SharedLedgerProcessor(ledger), send))
    with portal:
        for account in accounts:
            send(("buying", account))
            portal.billing.purchase_securemail(token, account_id=account)
            send(("bought", account))
