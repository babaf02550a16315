"""What only the in-memory store has: it lives and dies with its instance (DP-2)."""

from __future__ import annotations

import pytest

from securepractice.errors import StorageError
from securepractice.keys import fingerprint
from securepractice.secret import Secret
from securepractice.storage.memory import MemoryStorage

FIRST, SECOND = (fingerprint(Secret(bytes([n]) * 32)) for n in (1, 2))


def test_dp_2_memory_is_not_persistent_and_each_instance_knows_its_own_secret() -> None:
    """DP-2: an in-memory store may make its own secret: nothing of it outlives the instance."""
    store = MemoryStorage()
    assert store.persistent is False
    store.remember_secret(FIRST)
    fresh = MemoryStorage()
    fresh.remember_secret(SECOND)
    store.remember_secret(FIRST)
    fresh.remember_secret(SECOND)


def test_closed_memory_store_cannot_remember_a_secret() -> None:
    store = MemoryStorage()
    store.close()
    with pytest.raises(StorageError) as closed:
        store.remember_secret(FIRST)
    assert closed.value.code == "storage.closed"
