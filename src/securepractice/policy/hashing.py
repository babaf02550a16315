"""argon2id password hashing with bounded concurrency (PW-7, LK-5).

Passwords are hashed in their NFKC form, so a differently-normalised spelling
of a password verifies against its hash. Each hash holds ``memory_cost`` KiB
while it runs; a semaphore bounds how many run at once, and callers beyond
the bound wait their turn instead of exhausting memory.
"""

from __future__ import annotations

import base64
import os
import secrets
import threading
from collections.abc import Iterable

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from securepractice.errors import CorruptHash
from securepractice.policy.password import normalize_password
from securepractice.settings import HashParameters

__all__ = ["PasswordHasher"]


def _encode(password: str) -> bytes:
    # surrogatepass: a password holding a lone surrogate (which the policy never
    # lets anyone set) is still hashed at full cost instead of crashing.
    return normalize_password(password).encode("utf-8", "surrogatepass")


def _is_argon2(stored: object) -> bool:
    return isinstance(stored, str) and stored.startswith("$argon2")


def _unmatchable_hash(parameters: HashParameters) -> str:
    """Return an argon2id hash at ``parameters`` that no password matches.

    Its salt and tag are random bytes rather than the result of hashing a
    password, so it costs nothing to make, and verifying against it costs
    what verifying against a real hash does (LK-5): no first sign-in of a
    process pays for making it.
    """

    def encoded(size: int) -> str:
        return base64.b64encode(secrets.token_bytes(size)).decode("ascii").rstrip("=")

    p = parameters
    return (
        f"$argon2id$v={argon2.low_level.ARGON2_VERSION}"
        f"$m={p.memory_cost},t={p.time_cost},p={p.parallelism}"
        f"${encoded(p.salt_len)}${encoded(p.hash_len)}"
    )


class PasswordHasher:
    """Hashes and verifies passwords with argon2id under one set of `HashParameters`.

    Thread-safe. At most ``parameters.max_concurrent`` hashes run at once.
    """

    def __init__(self, parameters: HashParameters = HashParameters.RFC_9106_LOW_MEMORY) -> None:
        self.parameters = parameters
        self._argon2 = argon2.PasswordHasher(
            time_cost=parameters.time_cost,
            memory_cost=parameters.memory_cost,
            parallelism=parameters.parallelism,
            hash_len=parameters.hash_len,
            salt_len=parameters.salt_len,
            type=argon2.Type.ID,
        )
        self._slots = threading.BoundedSemaphore(parameters.max_concurrent)
        self._dummy = _unmatchable_hash(parameters)

    def __repr__(self) -> str:
        p = self.parameters
        return (
            f"PasswordHasher(argon2id t={p.time_cost} m={p.memory_cost}KiB p={p.parallelism},"
            f" max_concurrent={p.max_concurrent})"
        )

    def hash(self, password: str) -> str:
        """Return the argon2id hash (PHC string) of ``password``."""
        encoded = _encode(password)
        with self._slots:
            return self._argon2.hash(encoded)

    def verify(self, stored: str, password: str) -> bool:
        """Return whether ``password`` matches the ``stored`` hash.

        A stored hash that is truncated, altered or not argon2 raises
        `CorruptHash`: it never verifies and never crashes the caller.
        """
        if not _is_argon2(stored):
            raise CorruptHash("the stored password hash is not an argon2 hash")
        encoded = _encode(password)
        try:
            with self._slots:
                return self._argon2.verify(stored, encoded)
        except VerifyMismatchError:
            return False
        except (InvalidHashError, VerificationError) as error:
            raise CorruptHash("the stored password hash is corrupt or truncated") from error

    def matches_any(self, password: str, stored: Iterable[str]) -> bool:
        """Return whether ``password`` matches any of the ``stored`` hashes (PW-4).

        argon2 releases the GIL, so the hashes are verified on as many threads
        as there are cores not already used by argon2's own lanes: with one
        lane on two cores, two at a time; with four lanes, one at a time.
        """
        hashes = tuple(stored)
        workers = min(len(hashes), (os.cpu_count() or 1) // self.parameters.parallelism)
        if workers <= 1:
            return any(self.verify(h, password) for h in hashes)
        # Imported here: the pool (and logging with it) loads only when needed.
        from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

        with ThreadPoolExecutor(max_workers=workers) as pool:
            return any(pool.map(lambda h: self.verify(h, password), hashes))

    def needs_rehash(self, stored: str) -> bool:
        """Return whether ``stored`` was made with other parameters than these (PW-7)."""
        try:
            return self._argon2.check_needs_rehash(stored)
        except (InvalidHashError, VerificationError, ValueError) as error:
            raise CorruptHash("the stored password hash is corrupt or truncated") from error

    def dummy_verify(self, password: str) -> None:
        """Spend one verification at these parameters and learn nothing (LK-5).

        Called for unknown or locked users, so that their sign-in takes as long
        as a real one.
        """
        self.verify(self._dummy, password)
