"""The storage contract of `securepractice.testing.contract`, on each store we ship (ST-1).

A new adapter (PostgreSQL, Redis) joins with a subclass of its own here.
The SQLite store keeps its production durability (``synchronous=FULL``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from securepractice.storage.memory import MemoryStorage
from securepractice.storage.ports import Storage
from securepractice.storage.sqlite import SQLiteStorage
from securepractice.testing.contract import StorageContract


class TestMemoryStorage(StorageContract):
    """The in-memory store keeps the contract."""

    @pytest.fixture
    def storage(self) -> Iterator[Storage]:
        store = MemoryStorage()
        yield store
        store.close()


class TestSQLiteStorage(StorageContract):
    """The SQLite store keeps the contract, in a file, with its default durability."""

    @pytest.fixture
    def storage(self, tmp_path: Path) -> Iterator[Storage]:
        store = SQLiteStorage(tmp_path / "portal.db")
        yield store
        store.close()
