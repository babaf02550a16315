"""Fixtures of the account services' tests.

`store`, `outbox`, `settings` and `context` come from the suite's conftest
(every store in turn). Override `settings` in a test module to run the
services under other rules. `flows` holds every account action (the
`Accounts` facade) with the ways a test reads the outbox and the store
(`accounts.link_flows.Flows`).
"""

from __future__ import annotations

import pytest

from accounts.link_flows import Flows
from securepractice.dependencies import Dependencies
from securepractice.portal import Accounts
from securepractice.testing import FakeClock, FaultyStorage, Outbox


@pytest.fixture
def flows(context: Dependencies, outbox: Outbox, clock: FakeClock) -> Flows:
    """Every account action over ``context``."""
    return Flows(context=context, outbox=outbox, clock=clock, accounts=Accounts(context))


def recording(
    context: Dependencies, monkeypatch: pytest.MonkeyPatch
) -> tuple[FaultyStorage, list[str]]:
    """Wrap ``context``'s store so that every operation's name is recorded, in order (IN-4).

    The store is `FaultyStorage` failing nothing: where it counts each
    operation (each unit's begin, each repository method, each commit), the
    name is also appended to the list returned.
    """
    storage = FaultyStorage(context.storage)
    calls: list[str] = []
    count = storage._plan.tick  # where every operation is seen, by name

    def record(operation: str) -> None:
        calls.append(operation)
        count(operation)

    monkeypatch.setattr(storage._plan, "tick", record)
    return storage, calls
