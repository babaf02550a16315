"""What each worker process of the multi-process tests does (DP-1, DP-3).

A worker opens its own portal on the shared store, as a worker process of a
real deployment does, waits at a barrier so that all of them act at once,
does one action and reports what came of it as plain values (error codes,
outcome names), which cross a process boundary without pickling library
objects.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Protocol

import attrs

from securepractice import (
    DeliveryOption,
    FakeClock,
    HashParameters,
    LinkRules,
    Messaging,
    Outbox,
    PasswordReport,
    PaymentProcessor,
    Portal,
    Secret,
    SecurePracticeError,
    Settings,
    SignInRules,
)
from securepractice.portal import Accounts
from securepractice.settings import SecondFactor

#: The portal secret every process shares (DP-1): the same in each worker.
SECRET = Secret(b"a portal secret of 32 bytes or more for the tests!")
CHEAP = HashParameters(time_cost=1, memory_cost=8, parallelism=1)
BASE_URL = "https://portal.example"
PASSWORD = "Sunshine-2026"


class Barrier(Protocol):
    """The part of a multiprocessing barrier a worker uses."""

    def wait(self, timeout: float | None = None) -> int:
        """Block until every party has arrived."""
        ...


@attrs.frozen(kw_only=True)
class Store:
    """Where the shared store is: a SQLite file or a PostgreSQL connection string."""

    sqlite: Path | None = None
    postgres: str | None = None

    def portal(
        self, now: datetime, processor: PaymentProcessor | None = None
    ) -> tuple[Portal, Outbox]:
        """Open a portal of this process on the shared store, its clock standing at ``now``."""
        outbox = Outbox()
        messaging = Messaging.using(outbox)
        settings = Settings(secret=SECRET, hashing=CHEAP, links=LinkRules(base_url=BASE_URL))
        clock = FakeClock(now)
        if self.sqlite is not None:
            portal = Portal.sqlite(
                self.sqlite,
                messaging=messaging,
                settings=settings,
                clock=clock,
                payment_processor=processor,
            )
        else:
            assert self.postgres is not None
            portal = Portal.postgres(
                self.postgres,
                messaging=messaging,
                settings=settings,
                clock=clock,
                payment_processor=processor,
            )
        return portal, outbox


def _outcome(action: Callable[[], object]) -> str:
    """Run ``action``; return its outcome's name, or the code of the library error it raised."""
    try:
        result = action()
    except SecurePracticeError as error:
        return error.code
    if isinstance(result, PasswordReport):
        return "ok" if result.ok else "refused:" + ",".join(result.codes)
    outcome = getattr(result, "outcome", None)
    reason = getattr(result, "reason", None)
    if reason is not None:
        return str(reason.value)
    if outcome is not None:
        return str(outcome.value)
    return "ok"


def wrong_sign_ins(
    store: Store, now: datetime, barrier: Barrier, email: str, times: int
) -> list[str]:
    """Sign in ``times`` times with a wrong password; return each attempt's true reason."""
    portal, _ = store.portal(now)
    with portal:
        barrier.wait(timeout=60)
        return [
            _outcome(lambda: portal.accounts.sign_in(email=email, password="Wrong-pass-1"))
            for _ in range(times)
        ]


def reset_with(store: Store, now: datetime, barrier: Barrier, token: str, password: str) -> str:
    """Complete a password reset with ``token``: ``ok`` or the refusal's code."""
    portal, _ = store.portal(now)
    with portal:
        barrier.wait(timeout=60)
        return _outcome(
            lambda: portal.accounts.reset_password(token, password=password, confirmation=password)
        )


def enter_code(store: Store, now: datetime, barrier: Barrier, token: str, code: str) -> str:
    """Enter ``code`` on the verification of the link ``token``: the outcome's name."""
    portal, _ = store.portal(now)
    with portal:
        barrier.wait(timeout=60)
        return _outcome(lambda: portal.accounts.verify_code(token, code=code))


def send_code(store: Store, now: datetime, token: str, option: DeliveryOption) -> str:
    """Send a code on the link ``token`` from this process; return the code the phone got."""
    portal, outbox = store.portal(now)
    with portal:
        portal.accounts.send_code(token, option=option)
    return outbox.last_code(option.destination)


def run_billing(store: Store, now: datetime, barrier: Barrier, ledger: Path) -> int:
    """Run the monthly billing with a processor shared through ``ledger``; return charges made."""
    from processes_processor import SharedLedgerProcessor  # noqa: PLC0415 - the worker's own

    portal, _ = store.portal(now, SharedLedgerProcessor(ledger))
    with portal:
        barrier.wait(timeout=60)
        return len(portal.billing.run_billing().charged)


def keep_resetting(store: Store, now: datetime, email: str, run: int, progress: object) -> None:
    """Request and complete resets for ever, telling ``progress`` after each step, until killed.

    ``progress`` is the sending end of a pipe; the parent kills this process
    with SIGKILL at a moment it picks, in the middle of some step.
    """
    portal, outbox = store.portal(now)
    send = progress.send  # type: ignore[attr-defined]
    turn = 0
    while True:
        turn += 1
        portal.accounts.forgot_password(email=email)
        send(("requested", turn))
        link = outbox.last_link(email)
        token = link.rsplit("token=", 1)[1]
        password = f"Sunshine-{run:03d}-{turn:04d}!"
        portal.accounts.reset_password(token, password=password, confirmation=password)
        send(("reset", turn))


def wrong_recovery_codes(
    store: Store, now: datetime, barrier: Barrier, email: str, times: int
) -> list[str]:
    """Sign in where a second factor is asked, then give ``times`` wrong recovery codes (MF-8)."""
    portal, _ = store.portal(now)
    with portal:
        deps = portal.deps
        rules = SignInRules(second_factor=SecondFactor.ALWAYS)
        asking = Accounts(attrs.evolve(deps, settings=attrs.evolve(deps.settings, sign_in=rules)))
        pending = asking.sign_in(email=email, password=PASSWORD).pending_token
        assert pending is not None
        barrier.wait(timeout=60)
        return [
            _outcome(lambda: asking.finish_sign_in(pending, recovery_code="0000-0000-0000-0000"))
            for _ in range(times)
        ]
