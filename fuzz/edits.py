"""Edits at a random place, the same for text and for bytes: what near misses are made of."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TypeVar

__all__ = ["cut", "deleted", "doubled", "inserted", "replaced"]

S = TypeVar("S", str, bytes)


def _spot(rng: random.Random, value: S) -> int:
    return rng.randint(0, len(value))


def inserted(rng: random.Random, value: S, piece: Callable[[], S]) -> S:
    """Return ``value`` with what ``piece`` makes inserted at a random place."""
    at = _spot(rng, value)
    return value[:at] + piece() + value[at:]


def replaced(rng: random.Random, value: S, piece: Callable[[], S]) -> S:
    """Return ``value`` with what ``piece`` makes written over as many items at a random place."""
    at = _spot(rng, value)
    new = piece()
    return value[:at] + new + value[at + len(new) :]


def deleted(rng: random.Random, value: S, most: int) -> S:
    """Return ``value`` with one to ``most`` items deleted at a random place."""
    at = _spot(rng, value)
    return value[:at] + value[at + rng.randint(1, most) :]


def doubled(rng: random.Random, value: S) -> S:
    """Return ``value`` with a random slice of it written twice."""
    start = _spot(rng, value)
    end = rng.randint(start, len(value))
    return value[:end] + value[start:end] + value[end:]


def cut(rng: random.Random, value: S) -> S:
    """Return ``value`` cut off at a random place."""
    return value[: _spot(rng, value)]
