"""Keys derived from the one portal secret, and the fingerprint a store remembers (DP-1, DP-2).

A portal has one secret (`~securepractice.settings.Settings.secret`); every
key the library needs is derived from it by keyed BLAKE2b, one purpose
each, so that processes sharing the secret share every key and no key
leaks another. The fingerprint identifies the secret to a store without
revealing it, and `keyed_name` names a value (an email address that has no
account, IN-4) in a store without revealing the value.
"""

from __future__ import annotations

import hashlib

from securepractice.secret import Secret

__all__ = ["SIGN_IN_COUNTER", "derive_key", "fingerprint", "keyed_name"]

#: The purpose of the key that names the sign-in counter of an email with no account (IN-4).
SIGN_IN_COUNTER = "sign-in-counter"

_BLAKE2B_MAX_KEY = 64


def _keyed(secret: Secret[bytes], label: str) -> hashlib.blake2b:
    key = secret.reveal()
    if len(key) > _BLAKE2B_MAX_KEY:
        key = hashlib.blake2b(key).digest()
    return hashlib.blake2b(f"securepractice.{label}".encode(), key=key, digest_size=32)


def derive_key(secret: Secret[bytes], purpose: str) -> Secret[bytes]:
    """Return the 32-byte key for ``purpose`` (such as ``"verification-code"``) from ``secret``."""
    return Secret(_keyed(secret, f"key.{purpose}").digest())


def fingerprint(secret: Secret[bytes]) -> str:
    """Return a name for ``secret`` that a store may keep: it reveals nothing of the secret."""
    return _keyed(secret, "fingerprint").hexdigest()


def keyed_name(secret: Secret[bytes], purpose: str, text: str) -> str:
    """Return the name of ``text`` under the key for ``purpose``: 64 hex digits.

    The same text has the same name wherever the secret is the same; without
    the secret, the name tells nothing of the text, not even by trying
    every likely one.
    """
    key = derive_key(secret, purpose).reveal()
    data = text.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, key=key, digest_size=32).hexdigest()
