"""Known-compromised passwords from a range API, by k-anonymity (PW-10, RC-3).

A range API of the "Have I Been Pwned" kind answers, for the first five hex
characters of a password's SHA-1, every listed hash that starts with them:
one ``SUFFIX:COUNT`` line each, the other 35 hex characters and how often
the password was seen. Only those five characters leave the portal; the
password and its full hash never do.

The library makes no network call: the application hands
`CompromisedPasswordRange` its own HTTP call, a `RangeFetch`, so that it
keeps its client, timeouts, proxy and retries. When that call fails, or
answers something that is not a range, the source raises
`CompromisedCheckFailed`; what the services then do is in
`~securepractice.policy.password.PasswordPolicy.check` (a new password is
refused for now) and in sign-in (a right password is never blocked).
"""

from __future__ import annotations

import hashlib
import re
from typing import Protocol

from securepractice.errors import SecurePracticeError, SettingsError

__all__ = ["CompromisedCheckFailed", "CompromisedPasswordRange", "RangeFetch"]

#: A line of a range: the hash's other 35 hex characters and a count; padding counts 0.
_RANGE_LINE = re.compile(r"([0-9A-Fa-f]{35}):([0-9]{1,20})")
_PREFIX_LENGTH = 5


class CompromisedCheckFailed(SecurePracticeError):
    """A compromised-password source could not answer: its call failed, or its answer was garbled.

    A source of one's own raises it too when it cannot answer, so that the
    services treat the outage as one (`CompromisedPasswordRange` does).
    """

    default_code = "compromised.unavailable"


class RangeFetch(Protocol):
    """The application's HTTP call to a range API: any function of this shape.

    Given the five upper-case hex characters that start a SHA-1, return the
    body of the answer as text: ``SUFFIX:COUNT`` lines. Raise anything
    when the call fails (a timeout, a status other than 200); the source
    turns it into `CompromisedCheckFailed`.
    """

    def __call__(self, prefix: str, /) -> str:
        """Return the range of hashes that start with ``prefix``."""
        ...


class CompromisedPasswordRange:
    """Known-compromised passwords asked of a range API through the application's call.

    ``fetch`` is a `RangeFetch`: for the Pwned Passwords API, a GET of
    ``https://api.pwnedpasswords.com/range/{prefix}`` with the header
    ``Add-Padding: true`` (padding lines have the count 0 and are ignored).
    The password is hashed as the policy gives it, in its NFKC form, in
    UTF-8: for the passwords people type, the form the breach lists hold.
    """

    def __init__(self, fetch: RangeFetch) -> None:
        if not callable(fetch):
            raise SettingsError(
                "fetch", f"must be a function of the prefix, not {type(fetch).__name__}"
            )
        self._fetch = fetch

    def is_compromised(self, password: str) -> bool:
        """Return whether the range API lists ``password``.

        Raises `CompromisedCheckFailed`: ``compromised.unavailable`` when
        the call fails, ``compromised.bad_response`` when its answer is not
        a range.
        """
        digest = hashlib.sha1(
            password.encode("utf-8", "surrogatepass"), usedforsecurity=False
        ).hexdigest()
        prefix, suffix = digest[:_PREFIX_LENGTH].upper(), digest[_PREFIX_LENGTH:].upper()
        try:
            body = self._fetch(prefix)
        except Exception as failure:  # whatever the application's client raises
            msg = "the compromised-password range could not be fetched"
            raise CompromisedCheckFailed(msg, code="compromised.unavailable") from failure
        return suffix in _listed(body)

    def __repr__(self) -> str:
        return f"CompromisedPasswordRange({getattr(self._fetch, '__name__', 'fetch')})"


def _listed(body: object) -> frozenset[str]:
    """Return the upper-case suffixes a range answer lists with a count above 0.

    Blank lines are skipped and every other line must be ``SUFFIX:COUNT``;
    anything else raises `CompromisedCheckFailed`
    (``compromised.bad_response``) naming the first bad line by number, not
    by content.
    """
    if not isinstance(body, str):
        msg = f"the compromised-password range must be text (str), not {type(body).__name__}"
        raise CompromisedCheckFailed(msg, code="compromised.bad_response")
    listed: set[str] = set()
    for number, line in enumerate(body.splitlines(), start=1):
        entry = line.strip()
        if not entry:
            continue
        match = _RANGE_LINE.fullmatch(entry)
        if match is None:
            msg = f"line {number} of the compromised-password range is not SUFFIX:COUNT"
            raise CompromisedCheckFailed(msg, code="compromised.bad_response")
        if int(match[2]) > 0:
            listed.add(match[1].upper())
    return frozenset(listed)
