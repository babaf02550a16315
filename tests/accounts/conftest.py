"""Fixtures of the account services' tests: a portal's collaborators, once per store.

`store` is parametrised over `MemoryStorage` and `SQLiteStorage`, so every
test that uses it (directly or through `context`) runs on both. Override
`settings` in a test module to run the services under other rules. `flows`
bundles the link flows (registration, verification, reset) with the ways a
test reads the outbox and the store (`accounts.link_flows.Flows`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from accounts.link_flows import BASE_URL, Flows
from conftest import CHEAP_HASHING
from securepractice import FakeClock, LinkRules, Settings
from securepractice.accounts._service import AccountContext
from securepractice.accounts.registration import RegistrationActions
from securepractice.accounts.reset import ResetActions
from securepractice.accounts.verification import VerificationActions
from securepractice.messaging.outbox import Outbox
from securepractice.messaging.ports import Messaging
from securepractice.storage.memory import MemoryStorage
from securepractice.storage.ports import Storage
from securepractice.storage.sqlite import SQLiteStorage

STORES: dict[str, Callable[[Path], Storage]] = {
    "memory": lambda _folder: MemoryStorage(),
    "sqlite": lambda folder: SQLiteStorage(folder / "portal.db"),
}


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    """Each store in turn, empty: in memory, then SQLite in a file."""
    opened = STORES[request.param](tmp_path)
    yield opened
    opened.close()


@pytest.fixture
def outbox() -> Outbox:
    """Every email, text and call the services send, for the test to read."""
    return Outbox()


@pytest.fixture
def settings() -> Settings:
    """The spec's defaults, with cheap hashing and the portal's address set."""
    return Settings(hashing=CHEAP_HASHING, links=LinkRules(base_url=BASE_URL))


@pytest.fixture
def context(store: Storage, outbox: Outbox, settings: Settings, clock: FakeClock) -> AccountContext:
    """The collaborators of every account service: the store, the outbox, the fake clock."""
    return AccountContext(
        storage=store,
        messaging=Messaging.using(outbox),
        settings=settings,
        clock=clock,
        portal_name="MySecurePractice",
    )


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
