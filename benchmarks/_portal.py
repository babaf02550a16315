"""A service context over a fresh SQLite file, with registered users, for the benchmarks."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from securepractice import (
    Credential,
    FakeClock,
    HashParameters,
    LinkRules,
    Messaging,
    Outbox,
    Practice,
    RegistrationStatus,
    Settings,
    SQLiteStorage,
    User,
)
from securepractice.dependencies import Dependencies

START = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)


def sqlite_context(folder: Path, hashing: HashParameters | None = None) -> Dependencies:
    """Services' collaborators over ``folder``/portal.db, with one practice, ``p1``."""
    folder.mkdir(exist_ok=True)
    context = Dependencies(
        storage=SQLiteStorage(folder / "portal.db"),
        messaging=Messaging.using(Outbox()),
        settings=Settings(
            hashing=hashing or HashParameters(), links=LinkRules(base_url="https://portal.example")
        ),
        clock=FakeClock(START),
    )
    with context.storage.unit_of_work() as uow:
        uow.practices.add(Practice(id="p1", name="Smile Dental", created_at=START))
    return context


def add_user(
    context: Dependencies, user_id: str, *, password: str | None, locked: bool = False
) -> None:
    """Store a registered user ``<user_id>@example.com`` of ``p1``, with ``password`` if given."""
    with context.storage.unit_of_work() as uow:
        uow.users.add(
            User(
                id=user_id,
                practice_id="p1",
                email=f"{user_id}@example.com",
                status=RegistrationStatus.REGISTERED,
                locked=locked,
                created_at=START,
            )
        )
        if password is not None:
            stored = context.hasher.hash(password)
            uow.credentials.add(Credential(user_id=user_id, password_hash=stored, set_at=START))
