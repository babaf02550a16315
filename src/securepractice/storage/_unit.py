"""The context-manager half of a unit of work, shared by the adapters."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

from typing_extensions import Self

__all__ = ["Transaction", "TransactionalUnit"]


class Transaction(Protocol):
    """What an adapter's unit of work begins and ends."""

    def begin(self) -> None:
        """Start the transaction; `StorageError` if the store cannot."""
        ...

    def end(self, *, commit: bool) -> None:
        """Commit it, or roll it back when ``commit`` is False."""
        ...


class TransactionalUnit:
    """Begins its transaction on ``with`` and commits it only if the block ends normally."""

    _tx: Transaction

    def __enter__(self) -> Self:
        self._tx.begin()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._tx.end(commit=exc_type is None)
