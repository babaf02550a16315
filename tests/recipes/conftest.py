"""Fixtures of the recipes' tests: the portal each example application is built over.

Each recipe of docs/examples is built by its ``create_app(portal)`` over an
in-memory portal that asks a second factor at every sign-in, with the fake
clock and the outbox of the test.
"""

from __future__ import annotations

import attrs
import pytest

from conftest import BASE_URL, CHEAP_HASHING
from recipes.journey import TERMS
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
