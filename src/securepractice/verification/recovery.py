"""Recovery codes: single-use second factors for a user without their phone or app (MF-4).

A set is `COUNT` codes of 80 random bits each, written as 16 characters of
Crockford's base32 in four groups (``7KQ2-M9XD-...``): no I, L, O or U, so
nothing is misread, and typing is forgiving (any case, any separators, I
and L read as 1, O as 0). Each is shown once and kept only as a salted
BLAKE2b hash bound to its user: 80 random bits cannot be found by trying,
and needing no key, the set outlives a rotation of the portal secret. A
used code's hash is removed from the set. Pure functions: the service
keeps the set and says when.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

from securepractice.secret import Secret

__all__ = ["BITS", "COUNT", "code_hash", "matching_index", "new_codes", "normalize_entry"]

#: How many codes a set has (MF-4's default) and the random bits of each (at least 64).
COUNT = 10
BITS = 80

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32
_CHARACTERS = BITS // 5
_GROUP = 4
_READ_AS = str.maketrans({"I": "1", "L": "1", "O": "0"})
_SEPARATORS = frozenset(" -_.\u00a0\u2009\u202f")
_MAX_ENTRY_LENGTH = 64
_CONTEXT = b"securepractice.recovery-code.v1|"
_SALT_BYTES = 16  # BLAKE2b's salt size


def new_codes(count: int = COUNT) -> tuple[Secret[str], ...]:
    """Return ``count`` new codes, each `BITS` random bits from `secrets`, grouped for reading."""
    codes = []
    for _ in range(count):
        number = secrets.randbits(BITS)
        characters = "".join(
            _ALPHABET[(number >> (5 * i)) & 0x1F] for i in reversed(range(_CHARACTERS))
        )
        groups = [characters[i : i + _GROUP] for i in range(0, _CHARACTERS, _GROUP)]
        codes.append(Secret("-".join(groups)))
    return tuple(codes)


def normalize_entry(entry: str) -> str | None:
    """Return a typed code in its one spelling, or None if it cannot be a code.

    Separators go, letters are upper-cased, and I, L and O are read as the
    digits they look like.
    """
    if len(entry) > _MAX_ENTRY_LENGTH:
        return None
    kept = "".join(c for c in entry if c not in _SEPARATORS).upper().translate(_READ_AS)
    if len(kept) != _CHARACTERS or not all(c in _ALPHABET for c in kept):
        return None
    return kept


def code_hash(code: str | Secret[str], *, user_id: str) -> bytes:
    """Return what a code is kept as: a random salt and the hash of the code, bound to ``user_id``.

    Any spelling of the code gives a hash that `matching_index` finds.
    """
    normal = normalize_entry(code.reveal() if isinstance(code, Secret) else code)
    if normal is None:
        raise ValueError("not a recovery code")
    return _salted(normal, user_id, secrets.token_bytes(_SALT_BYTES))


def _salted(normal: str, user_id: str, salt: bytes) -> bytes:
    mac = hashlib.blake2b(salt=salt, digest_size=32)
    mac.update(_CONTEXT)
    mac.update(f"{len(user_id)}:{user_id},".encode("utf-8", "surrogatepass"))
    mac.update(normal.encode("ascii"))
    return salt + mac.digest()


def matching_index(
    entry: str | Secret[str], hashes: Sequence[bytes | None], *, user_id: str
) -> int | None:
    """Return the index of the unused code ``entry`` is, or None.

    ``hashes`` is the stored set, None where a code was used. Every stored
    hash is compared in constant time, whichever matches.
    """
    normal = normalize_entry(entry.reveal() if isinstance(entry, Secret) else entry)
    if normal is None:
        return None
    found: int | None = None
    for index, stored in enumerate(hashes):
        if stored is None:
            continue
        wanted = _salted(normal, user_id, stored[:_SALT_BYTES])
        if hmac.compare_digest(wanted, stored) and found is None:
            found = index
    return found
