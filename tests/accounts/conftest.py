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
from securepractice.testing import FakeClock, Outbox


@pytest.fixture
def flows(context: Dependencies, outbox: Outbox, clock: FakeClock) -> Flows:
    """Every account action over ``context``."""
    return Flows(context=context, outbox=outbox, clock=clock, accounts=Accounts(context))
