"""A service context over a fresh SQLite file, for the benchmarks.

The benchmarks store their practice and users with `securepractice.testing.World`.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from pathlib import Path

from securepractice import (
    FakeClock,
    HashParameters,
    LinkRules,
    Messaging,
    Outbox,
    Secret,
    Settings,
    SQLiteStorage,
)
from securepractice.dependencies import Dependencies

START = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)


def sqlite_context(folder: Path, hashing: HashParameters | None = None) -> Dependencies:
    """Services' collaborators over ``folder``/portal.db, empty, with the clock at `START`."""
    folder.mkdir(exist_ok=True)
    return Dependencies(
        storage=SQLiteStorage(folder / "portal.db"),
        messaging=Messaging.using(Outbox()),
        settings=Settings(
            hashing=hashing or HashParameters(),
            links=LinkRules(base_url="https://portal.example"),
            # A fresh secret per run: each benchmark's database is new and of this process only.
            secret=Secret(secrets.token_bytes(32)),
        ),
        clock=FakeClock(START),
    )
