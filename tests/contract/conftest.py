"""The adapter contract: one fixture gives every store, so each test runs against all (ST-1).

The `store` fixture is the suite's (tests/conftest.py): a new adapter
(PostgreSQL, Redis) joins by adding a factory to its `STORES`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from securepractice import FakeClock
from securepractice.records import (
    Challenge,
    DeliveryMethod,
    LinkToken,
    Practice,
    Purpose,
    Role,
    TokenPurpose,
    User,
)
from securepractice.storage.ports import Storage


@pytest.fixture
def now(clock: FakeClock) -> datetime:
    """The fake clock's current time."""
    return clock.now()


@pytest.fixture
def practice(store: Storage, now: datetime) -> Practice:
    """A practice stored in ``store``."""
    record = Practice(id="p1", name="Smile Dental", address="1 Main St", created_at=now)
    with store.unit_of_work() as uow:
        uow.practices.add(record)
    return record


@pytest.fixture
def user(store: Storage, practice: Practice, now: datetime) -> User:
    """A User Manager of ``practice``, stored."""
    record = User(
        id="u1",
        practice_id=practice.id,
        email="ada@example.com",
        roles=frozenset({Role.USER, Role.USER_MANAGER}),
        created_at=now,
    )
    with store.unit_of_work() as uow:
        uow.users.add(record)
    return record


@pytest.fixture
def other_user(store: Storage, user: User, now: datetime) -> User:
    """A second user of the same practice, stored."""
    record = User(id="u2", practice_id=user.practice_id, email="grace@example.com", created_at=now)
    with store.unit_of_work() as uow:
        uow.users.add(record)
    return record


@pytest.fixture
def make_challenge(user: User, now: datetime) -> Callable[..., Challenge]:
    """Build (not store) a challenge of ``user``; keyword arguments override fields."""

    def make(**changes: object) -> Challenge:
        fields: dict[str, object] = {
            "id": "c1",
            "user_id": user.id,
            "purpose": Purpose.REGISTRATION,
            "method": DeliveryMethod.SMS,
            "destination": "+12025550143",
            "code_hash": b"h" * 32,
            "issued_at": now,
            "expires_at": now + timedelta(minutes=10),
        }
        fields.update(changes)
        return Challenge(**fields)  # type: ignore[arg-type]

    return make


@pytest.fixture
def make_token(user: User, now: datetime) -> Callable[..., LinkToken]:
    """Build (not store) a link token of ``user``; keyword arguments override fields."""

    def make(**changes: object) -> LinkToken:
        fields: dict[str, object] = {
            "token_hash": b"t" * 32,
            "user_id": user.id,
            "purpose": TokenPurpose.INVITATION,
            "created_at": now,
            "expires_at": now + timedelta(days=14),
        }
        fields.update(changes)
        return LinkToken(**fields)  # type: ignore[arg-type]

    return make
