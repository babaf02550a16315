"""Fixtures of the account services' tests.

`store`, `outbox`, `settings` and `context` come from the suite's conftest
(every store in turn). Override `settings` in a test module to run the
services under other rules. `flows` bundles the link flows (registration,
verification, reset) with the ways a test reads the outbox and the store
(`accounts.link_flows.Flows`).
"""

from __future__ import annotations

import pytest

from accounts.link_flows import Flows
from securepractice import FakeClock
from securepractice.accounts._service import AccountContext
from securepractice.accounts.registration import RegistrationActions
from securepractice.accounts.reset import ResetActions
from securepractice.accounts.verification import VerificationActions
from securepractice.messaging.outbox import Outbox


@pytest.fixture
def flows(context: AccountContext, outbox: Outbox, clock: FakeClock) -> Flows:
    """Registration, verification and reset over ``context``."""
    return Flows(
        context=context,
        outbox=outbox,
        clock=clock,
        registration=RegistrationActions(context),
        verification=VerificationActions(context),
        reset=ResetActions(context),
    )
