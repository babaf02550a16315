"""Fixtures of the practice-administration tests: every service test runs on both stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import CHEAP_HASHING
from practice.office import Office
from securepractice import (
    FakeClock,
    LinkRules,
    MemoryStorage,
    Messaging,
    Outbox,
    Settings,
    SQLiteStorage,
)
from securepractice.accounts._service import AccountContext
from securepractice.practice.billing import InMemoryPaymentProcessor
from securepractice.storage.ports import Storage


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    """Each store the library ships, empty."""
    storage: Storage = (
        MemoryStorage() if request.param == "memory" else SQLiteStorage(tmp_path / "portal.db")
    )
    yield storage
    storage.close()


@pytest.fixture
def context(store: Storage, clock: FakeClock) -> AccountContext:
    """Services' collaborators: the store, an outbox, a fake clock, cheap hashing."""
    return AccountContext(
        storage=store,
        messaging=Messaging.using(Outbox()),
        settings=Settings(
            hashing=CHEAP_HASHING, links=LinkRules(base_url="https://portal.example")
        ),
        clock=clock,
    )


@pytest.fixture
def processor() -> InMemoryPaymentProcessor:
    """A payment processor that records charges."""
    return InMemoryPaymentProcessor()


@pytest.fixture
def office(context: AccountContext, processor: InMemoryPaymentProcessor) -> Office:
    """Two practices with a manager, a user and an invited user each, and support staff."""
    return Office(context, processor)
