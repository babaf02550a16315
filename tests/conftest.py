"""Fixtures shared by every test: a fake clock, cheap settings, each store, a service context.

`store` is parametrised over `STORES`, so every test that uses it (directly
or through `context`) runs on each adapter: in memory, SQLite in a file, and
PostgreSQL on a throwaway server that the tests start (`pgserver`), one
fresh database per test. A new adapter joins every such test by adding a
factory to `STORES`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

import pgserver
from securepractice import (
    FakeClock,
    HashParameters,
    LinkRules,
    MemoryStorage,
    Messaging,
    Outbox,
    PasswordHasher,
    Secret,
    Settings,
    SQLiteStorage,
)
from securepractice.dependencies import Dependencies
from securepractice.storage.ports import Storage

hypothesis_settings.register_profile(
    "ci",
    deadline=None,
    max_examples=200,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
hypothesis_settings.register_profile("dev", deadline=None, max_examples=100)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")

#: argon2id at its cheapest, so that tests that hash run in microseconds.
CHEAP_HASHING = HashParameters(time_cost=1, memory_cost=8, parallelism=1)

#: The portal's address in tests: every e-mailed link starts with it.
BASE_URL = "https://portal.example"

#: The portal secret of the tests (DP-2): a store kept in a file needs one, always the same.
SECRET: Secret[bytes] = Secret(bytes(range(32)))

STORES: dict[str, Callable[[Path], Storage]] = {
    "memory": lambda _folder: MemoryStorage(),
    # Service tests need no fsync per commit; the contract suite keeps the default FULL.
    "sqlite": lambda folder: SQLiteStorage(folder / "portal.db", synchronous="OFF"),
    "postgres": lambda _folder: pgserver.throwaway_storage(),  # closing it drops its database
}


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when the test advances it."""
    return FakeClock()


@pytest.fixture
def settings() -> Settings:
    """The spec's defaults, with cheap hashing, the portal's address and the tests' secret set."""
    return Settings(hashing=CHEAP_HASHING, links=LinkRules(base_url=BASE_URL), secret=SECRET)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[pgserver.PostgresServer]:
    """Start the throwaway server once (skipped locally, failed in CI, without PostgreSQL)."""
    yield pgserver.server()
    pgserver.stop()


@pytest.fixture
def postgres_dsn(postgres_server: pgserver.PostgresServer) -> Iterator[str]:
    """Give the DSN of a new, empty database on the server, dropped after the test."""
    name = postgres_server.create_database()
    yield postgres_server.dsn(name)
    postgres_server.drop_database(name)


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    """Each store in turn, empty: in memory, SQLite in a file, PostgreSQL on its own database."""
    if request.param == "postgres":
        request.getfixturevalue("postgres_server")  # started once, stopped after the run
    opened = STORES[request.param](tmp_path)
    yield opened
    opened.close()


@pytest.fixture
def outbox() -> Outbox:
    """Every email, text and call the services send, for the test to read."""
    return Outbox()


@pytest.fixture
def context(store: Storage, outbox: Outbox, settings: Settings, clock: FakeClock) -> Dependencies:
    """The collaborators of every service: the store, the outbox, the fake clock."""
    return Dependencies(
        storage=store,
        messaging=Messaging.using(outbox),
        settings=settings,
        clock=clock,
        portal_name="MySecurePractice",
    )


@pytest.fixture
def hasher() -> PasswordHasher:
    """A password hasher with cheap parameters."""
    return PasswordHasher(CHEAP_HASHING)
