"""Authenticator apps: time-based one-time passwords, RFC 6238 over RFC 4226 (MF-3).

A seed is 160 random bits (RFC 4226's recommended length) made with
`secrets`; a code is HMAC-SHA1 of the number of 30-second steps since the
Unix epoch, dynamically truncated to 6 digits, as every authenticator app
(Google Authenticator, Microsoft Authenticator, 1Password, FreeOTP) makes
it. Pure functions: the service passes the time and keeps the last step
used, so that each step is accepted once (no replay).
"""

from __future__ import annotations

import base64
import hmac
import secrets
import struct
from datetime import datetime, timezone
from urllib.parse import quote, urlencode

from securepractice.clock import require_utc
from securepractice.secret import Secret
from securepractice.verification.codes import entered_digits

__all__ = [
    "DIGITS",
    "PERIOD_SECONDS",
    "SEED_BYTES",
    "hotp",
    "matching_step",
    "new_seed",
    "provisioning_uri",
    "time_step",
    "totp",
]

#: 160 bits, the seed length RFC 4226 recommends and authenticator apps expect.
SEED_BYTES = 20
#: The code length and the step every authenticator app uses by default.
DIGITS = 6
PERIOD_SECONDS = 30

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MAX_DIGITS = 10  # a 31-bit truncation has 10 decimal digits at most


def new_seed() -> Secret[bytes]:
    """Return a new 160-bit seed for one enrolment, from `secrets`."""
    return Secret(secrets.token_bytes(SEED_BYTES))


def hotp(seed: Secret[bytes], counter: int, *, digits: int = DIGITS) -> Secret[str]:
    """Return the HOTP code of ``counter`` (RFC 4226 5.3: HMAC-SHA1, dynamic truncation)."""
    if not 1 <= digits <= _MAX_DIGITS:
        raise ValueError(f"digits must be 1 to {_MAX_DIGITS}")
    mac = hmac.digest(seed.reveal(), struct.pack(">Q", counter), "sha1")
    offset = mac[-1] & 0x0F
    number = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFF_FFFF
    return Secret(str(number % 10**digits).zfill(digits))


def time_step(now: datetime, *, period: int = PERIOD_SECONDS) -> int:
    """Return RFC 6238's T: whole ``period``-second steps from the Unix epoch to ``now``."""
    return int((require_utc(now) - _EPOCH).total_seconds()) // period


def totp(
    seed: Secret[bytes], now: datetime, *, digits: int = DIGITS, period: int = PERIOD_SECONDS
) -> Secret[str]:
    """Return the code an authenticator app shows at ``now`` (RFC 6238)."""
    return hotp(seed, time_step(now, period=period), digits=digits)


def matching_step(
    seed: Secret[bytes],
    entry: str | Secret[str],
    *,
    now: datetime,
    steps_back: int,
    last_used_step: int | None,
) -> int | None:
    """Return the step whose code ``entry`` is, or None: a wrong code, or one already used.

    The step of ``now`` and ``steps_back`` steps before it are tried, the
    latest first; a step at or before ``last_used_step`` is never accepted
    again, so a code seen over a shoulder cannot be replayed within its
    window. Every candidate is compared in constant time, whether or not
    an earlier one matched.
    """
    typed = entry.reveal() if isinstance(entry, Secret) else entry
    digits = entered_digits(typed, DIGITS)
    current = time_step(now)
    found: int | None = None
    for step in range(current, current - steps_back - 1, -1):
        code = hotp(seed, step).reveal()
        same = hmac.compare_digest(code, digits if digits is not None else "x" * DIGITS)
        if same and found is None and (last_used_step is None or step > last_used_step):
            found = step
    return found


def provisioning_uri(seed: Secret[bytes], *, account: str, issuer: str) -> Secret[str]:
    """Return the ``otpauth://`` URI that enrols ``seed`` in an app (a QR code shows it).

    In the Key URI format apps share: the label is ``issuer:account``, the
    seed in unpadded base32, with the algorithm, digits and period spelled
    out. The URI holds the seed, so it is a `Secret`.
    """
    secret = base64.b32encode(seed.reveal()).decode("ascii").rstrip("=")
    label = quote(f"{issuer}:{account}", safe="@:")
    query = urlencode(
        {
            "secret": secret,
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": PERIOD_SECONDS,
        },
        quote_via=quote,
    )
    return Secret(f"otpauth://totp/{label}?{query}")
