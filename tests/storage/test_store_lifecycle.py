"""Opening and closing stores: context managers, and SQLite names that are not files (ST-1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from securepractice import InvalidInput, MemoryStorage, StorageError
from securepractice.storage.sqlite import SQLiteStorage
from securepractice.testing import FaultyStorage


def test_a_sqlite_store_closes_at_the_end_of_its_with_block(tmp_path: Path) -> None:
    with (
        SQLiteStorage(tmp_path / "portal.db", synchronous="OFF") as storage,
        storage.unit_of_work() as uow,
    ):
        assert uow.users.get("nobody") is None
    with pytest.raises(StorageError) as raised:
        storage.unit_of_work().__enter__()
    assert raised.value.code == "storage.closed"


def test_a_sqlite_store_closes_when_its_with_block_raises(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), SQLiteStorage(tmp_path / "portal.db") as storage:
        raise RuntimeError("the application failed")
    with pytest.raises(StorageError) as raised:
        storage.connection()
    assert raised.value.code == "storage.closed"


def test_the_memory_store_and_the_faulty_wrapper_are_context_managers() -> None:
    inner = MemoryStorage()
    with FaultyStorage(inner) as wrapped:
        assert wrapped.inner is inner
        with wrapped.unit_of_work() as uow:
            assert uow.users.get("nobody") is None
    with MemoryStorage() as storage, storage.unit_of_work() as uow:
        assert uow.users.get("nobody") is None


@pytest.mark.parametrize("name", [":memory:", ""])
def test_sqlite_refuses_a_database_of_one_connection_and_writes_no_file(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ ":memory:" would be a private database per thread, and was once a file named so."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInput) as raised:
        SQLiteStorage(name)
    assert raised.value.code == "storage.bad_option"
    assert raised.value.field == "path"
    assert "MemoryStorage" in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_a_file_named_like_memory_in_a_folder_is_a_file(tmp_path: Path) -> None:
    """Only the bare names are refused: a path that merely ends so is an ordinary file."""
    with SQLiteStorage(tmp_path / ":memory:", synchronous="OFF") as storage:
        assert storage.persistent
    assert (tmp_path / ":memory:").is_file()
