"""Secrets that must be read back, sealed with AES-256-GCM under the portal's key (MF-10).

An authenticator app's seed is the one secret the library must read again,
so it cannot be hashed: it is kept sealed. A sealed value is a version
byte, an 8-byte id of the key it was sealed under, a random 96-bit nonce
and the AEAD ciphertext with its tag; the associated data binds it to its
owner (a user's id), so a sealed seed copied to another user's row does not
open. Keys come from the portal secret (`securepractice.keys.derive_key`);
when the secret rotates, values sealed under the previous one still open
and are sealed again under the current one when next used.

The cipher is the `cryptography` package's (an optional extra,
``securepractice[authenticator]``), imported when first needed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from securepractice.errors import CorruptSecret, SettingsError
from securepractice.secret import Secret

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["is_sealed_under", "key_id", "open_sealed", "seal"]

_VERSION = b"\x01"
_KEY_ID_BYTES = 8
_NONCE_BYTES = 12
_HEADER = len(_VERSION) + _KEY_ID_BYTES + _NONCE_BYTES


def _cipher(key: Secret[bytes]) -> AESGCM:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415
    except ImportError as missing:
        raise SettingsError(
            "authenticator",
            "authenticator apps need the cryptography package: "
            "pip install 'securepractice[authenticator]'",
            code="settings.missing_extra",
        ) from missing
    return AESGCM(key.reveal())


def key_id(key: Secret[bytes]) -> bytes:
    """Return the 8 bytes that name ``key`` in what it seals; they reveal nothing of it."""
    return hashlib.blake2b(
        b"securepractice.sealed.key-id", key=key.reveal()[:64], digest_size=8
    ).digest()


def seal(value: Secret[bytes], *, key: Secret[bytes], owner: str) -> bytes:
    """Return ``value`` sealed under ``key`` (32 bytes) for ``owner``."""
    nonce = os.urandom(_NONCE_BYTES)
    header = _VERSION + key_id(key) + nonce
    return header + _cipher(key).encrypt(nonce, value.reveal(), _associated(header, owner))


def is_sealed_under(sealed: bytes, key: Secret[bytes]) -> bool:
    """Return whether ``sealed`` was sealed under ``key``: if not, seal it again when it is used."""
    return sealed[len(_VERSION) : len(_VERSION) + _KEY_ID_BYTES] == key_id(key)


def open_sealed(sealed: bytes, *, keys: Sequence[Secret[bytes]], owner: str) -> Secret[bytes]:
    """Return the value ``sealed`` holds, with whichever of ``keys`` sealed it.

    `CorruptSecret` (``secret.unreadable``) when no key of ``keys`` sealed it,
    or it was altered, cut short, or sealed for another owner.
    """
    if len(sealed) < _HEADER or not sealed.startswith(_VERSION):
        raise CorruptSecret("the sealed secret is not in a form this library wrote")
    header, body = sealed[:_HEADER], sealed[_HEADER:]
    nonce = header[-_NONCE_BYTES:]
    for key in keys:
        if is_sealed_under(sealed, key):
            from cryptography.exceptions import InvalidTag  # noqa: PLC0415

            try:
                return Secret(_cipher(key).decrypt(nonce, body, _associated(header, owner)))
            except InvalidTag:
                break
    raise CorruptSecret("the sealed secret cannot be opened with the portal's keys")


def _associated(header: bytes, owner: str) -> bytes:
    return header + owner.encode("utf-8", "surrogatepass")
