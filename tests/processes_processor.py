"""A card processor whose charges live in a SQLite file, so that processes share it.

Each process of the billing test has its own `SharedLedgerProcessor` on one
file: a charge with an idempotency key already used returns the first
charge's reference, as a real processor does, and the file tells the test
how many charges were really made.
"""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing
from pathlib import Path


class SharedLedgerProcessor:
    """A `PaymentProcessor` over a SQLite file: one charge per idempotency key, across processes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        with closing(self._connect()) as db, db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS charges (key TEXT PRIMARY KEY, reference TEXT, "
                "token TEXT, cents INTEGER)"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._path, timeout=30, isolation_level="IMMEDIATE")

    def charge(self, *, processor_token: str, amount_cents: int, idempotency_key: str) -> str:
        """Charge once per ``idempotency_key``; return the charge's reference."""
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT INTO charges VALUES (?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                (idempotency_key, f"ch_{uuid.uuid4().hex}", processor_token, amount_cents),
            )
            found = db.execute(
                "SELECT reference FROM charges WHERE key = ?", (idempotency_key,)
            ).fetchone()
            return str(found[0])

    def charges(self) -> list[tuple[str, int]]:
        """Every charge really made: (idempotency key, amount in cents)."""
        with closing(self._connect()) as db:
            return [(str(k), int(c)) for k, c in db.execute("SELECT key, cents FROM charges")]
