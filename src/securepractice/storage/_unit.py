"""What the adapters share of a unit of work: the `with` block, the hold on a connection, errors."""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Generic, Protocol, TypeVar

from typing_extensions import Self

from securepractice.errors import InvalidInput, StorageError

__all__ = ["ClosesOnExit", "Held", "Transaction", "TransactionalUnit", "bad_position"]

C = TypeVar("C")


def bad_position() -> InvalidInput:
    """Return the error of an audit feed position that is not one of the store's (CX-2)."""
    return InvalidInput(
        "after must be a position the audit feed gave", field="after", code="audit.bad_position"
    )


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


class ClosesOnExit(abc.ABC):
    """A context manager that closes itself: ``with SQLiteStorage(path) as storage:``.

    The stores are, and so is `~securepractice.portal.Portal`, which closes its store.
    """

    @abc.abstractmethod
    def close(self) -> None:
        """Release what it holds; each says what that is."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Held(Generic[C]):
    """A transaction's hold on one connection: taken once, reached only while held.

    An adapter's transaction begins with `check_unused`, then `hold`s the
    connection it began on; statements reach it through `active`; ending
    starts with `let_go`.
    """

    def __init__(self) -> None:
        self._used = False
        self._connection: C | None = None

    def check_unused(self) -> None:
        """Refuse to begin again a unit that has begun (``storage.unit_reused``)."""
        if self._used:
            raise StorageError("a unit of work can be used only once", code="storage.unit_reused")

    def hold(self, connection: C) -> None:
        """Keep ``connection``, on which the transaction has begun, until `let_go`."""
        self._connection = connection
        self._used = True

    def let_go(self) -> C | None:
        """End the hold: return the connection held, None if the transaction never began."""
        connection, self._connection = self._connection, None
        self._used = True
        return connection

    def active(self) -> C:
        """Return the connection held; ``storage.no_unit`` outside an active unit of work."""
        connection = self._connection
        if connection is None:
            raise StorageError(
                "storage is reached only inside an active unit of work", code="storage.no_unit"
            )
        return connection
