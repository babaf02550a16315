"""A wrapper that keeps secrets out of ``repr``, ``str`` and logs (AU-2)."""

from __future__ import annotations

import hmac
from typing import Generic, TypeVar

__all__ = ["Secret"]

T = TypeVar("T", str, bytes)


class Secret(Generic[T]):
    """Holds a password, code, token or key; shows itself only as ``Secret('***')``.

    Call `reveal` at the one place that must use the value (hashing it,
    putting it in the message to its owner).
    """

    __slots__ = ("_value",)
    _value: T

    def __init__(self, value: T) -> None:
        self._value = value

    def reveal(self) -> T:
        """Return the secret value itself."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        mine: object = self._value
        theirs: object = other._value
        if isinstance(mine, str) and isinstance(theirs, str):
            return hmac.compare_digest(mine.encode(), theirs.encode())
        if isinstance(mine, bytes) and isinstance(theirs, bytes):
            return hmac.compare_digest(mine, theirs)
        return False

    __hash__ = None  # type: ignore[assignment]
