"""Fixtures shared by every test: a fake clock and cheap settings."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from securepractice import FakeClock, HashParameters, PasswordHasher, Settings

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


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when the test advances it."""
    return FakeClock()


@pytest.fixture
def settings() -> Settings:
    """The spec's defaults, with cheap hashing parameters."""
    return Settings(hashing=CHEAP_HASHING)


@pytest.fixture
def hasher() -> PasswordHasher:
    """A password hasher with cheap parameters."""
    return PasswordHasher(CHEAP_HASHING)
