"""Fixtures of the recipes' tests: each example application, over the portal it serves.

Each recipe of docs/examples is built by its ``create_app(portal)`` over an
in-memory portal that asks a second factor at every sign-in, with the fake
clock and the outbox of the test; a test that takes ``serve`` or ``journey``
runs once for each framework.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import attrs
import pytest

from conftest import BASE_URL, CHEAP_HASHING
from recipes.browsers import SERVERS, Open
from recipes.journey import ADDRESS, TERMS, Journey
from securepractice import (
    FakeClock,
    LinkRules,
    Messaging,
    Outbox,
    Portal,
    Settings,
    SignInRules,
)
from securepractice.settings import SecondFactor

#: The recipes, by the framework each is written for.
FRAMEWORKS = tuple(SERVERS)


def recipe_portal(outbox: Outbox, clock: FakeClock, *, throttle_limit: int | None = None) -> Portal:
    """An in-memory portal that asks a second factor at every sign-in (MF-1)."""
    rules = SignInRules(second_factor=SecondFactor.ALWAYS)
    if throttle_limit is not None:
        rules = attrs.evolve(rules, throttle_limit=throttle_limit)
    settings = Settings(hashing=CHEAP_HASHING, links=LinkRules(base_url=BASE_URL), sign_in=rules)
    return Portal.in_memory(
        messaging=Messaging.using(outbox), clock=clock, settings=settings, terms_version=TERMS
    )


@pytest.fixture
def outbox() -> Outbox:
    """Every email, text and call the portal sends."""
    return Outbox()


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when the test advances it."""
    return FakeClock()


@pytest.fixture
def portal(outbox: Outbox, clock: FakeClock) -> Portal:
    """The portal the recipe under test is built over."""
    return recipe_portal(outbox, clock)


@pytest.fixture
def throttled_portal(outbox: Outbox, clock: FakeClock) -> Portal:
    """A portal whose sign-in throttle refuses an address after two failures (CX-3)."""
    return recipe_portal(outbox, clock, throttle_limit=2)


@pytest.fixture(params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> str:
    """The framework whose recipe is under test."""
    name: str = request.param
    return name


@pytest.fixture
def serve(framework: str) -> Iterator[Callable[[Portal], Open]]:
    """Serve the framework's recipe over a portal; its test clients are closed after the test."""
    with ExitStack() as stack:
        yield lambda portal: SERVERS[framework](portal, stack)


@pytest.fixture
def journey(
    portal: Portal, outbox: Outbox, clock: FakeClock, serve: Callable[[Portal], Open]
) -> Journey:
    """A user's browser on the recipe, from `ADDRESS`."""
    return Journey(portal, outbox, clock, serve(portal)(ADDRESS))
