"""The check every store makes when told the portal secret's fingerprint (DP-2).

`~securepractice.storage.ports.Storage.remember_secret` is the same decision
in every adapter; only where the fingerprint is kept differs. The messages
say what to do and never show a secret or a fingerprint.
"""

from __future__ import annotations

from securepractice.errors import SettingsError

__all__ = ["fingerprint_to_store"]

_MISMATCH = (
    "this store was first used with another portal secret; start with that secret, "
    "or rotate: give the new secret as secret and the old one as previous_secret"
)
_WRONG_PREVIOUS = (
    "neither secret nor previous_secret is the portal secret this store was first used "
    "with; to rotate, give that old secret as previous_secret"
)


def fingerprint_to_store(stored: str | None, fingerprint: str, replacing: str | None) -> bool:
    """Return whether ``fingerprint`` must be written over ``stored`` (None: nothing stored).

    Nothing stored yet, or ``replacing`` is the stored one (key rotation):
    True. The stored one again: False. Anything else raises `SettingsError`
    (``settings.secret_mismatch``) on the field ``secret``.
    """
    if stored == fingerprint:
        return False
    if stored is None or stored == replacing:
        return True
    raise SettingsError(
        "secret",
        _MISMATCH if replacing is None else _WRONG_PREVIOUS,
        code="settings.secret_mismatch",
    )
