r"""Usernames are email addresses (ID-1, IN-2): one normal form, one clear error.

`normalize_email` is the one function every store keys users on: two emails
are one user exactly when their normal forms are equal. The normal form:

* trimmed; no control, invisible, bidirectional, private-use or unassigned
  character anywhere (`securepractice.policy.text`), zero width joiners
  included, so ``dr.smith@smile.exa\ufeffmple`` is refused rather than
  mapped to ``smile.example``;
* the local part (before the @) in Unicode NFKC and lower-cased, so that
  ``" Dr.Smith@Example.COM "`` and ``"dr.smith@example.com"`` are one user.
  Lower-casing is stricter than RFC 5321 allows a mail server to be, and is
  what every portal user expects: nobody has two mailboxes that differ by
  case. It is a dot-atom of ASCII "atext" and non-ASCII letters and digits;
* the domain checked and mapped by IDNA 2008 with the UTS #46 mapping (by
  the `email-validator` package, syntax only: it never looks anything up),
  and kept as its Unicode labels decoded from its ASCII form, so that
  ``user@münchen.de``, ``user@MÜNCHEN.DE`` and ``user@xn--mnchen-3ya.de`` are
  one user, stored as ``user@münchen.de``. Two domains are equal exactly when
  their IDNA ASCII forms are.

Refused besides: quoted local parts, IP-address domains and comments (no
portal user has one, and each is a way to smuggle odd text into a
username); a local part or domain label that mixes letters of Latin, Greek,
Cyrillic, Armenian or Cherokee, the alphabets whose letters look alike
(``ex\u0430mple``, whose "a" is Cyrillic); and domains under the special-use names
that can reach a machine on the portal's own network or no mail system at
all (``.test``, ``.local``, ``.localhost``, ``.internal``, ``.invalid``,
``.onion``, ``.alt``, ``.arpa``). ``.example`` and ``example.com`` are
accepted: they are reserved for documentation and tests, and no one can
receive mail there.
"""

from __future__ import annotations

import re
import unicodedata

from securepractice.errors import InvalidInput
from securepractice.policy.text import MAX_COMPOSITION_RATIO, refused_characters

__all__ = ["normalize_email"]

MAX_EMAIL_LENGTH = 254
MAX_LOCAL_LENGTH = 64

#: RFC 5322 "atext": what an ASCII character of a local part may be, besides a dot.
_ATEXT = frozenset("abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+/=?^_`{|}~-")
#: Top-level domains of special use (RFC 6761, 6762, 7686, 9476, ICANN's
#: ``.internal``) whose mail would stay on a local network, or go nowhere.
_SPECIAL_USE = frozenset(
    {"alt", "arpa", "internal", "invalid", "local", "localhost", "onion", "test"}
)
#: The alphabets whose letters look alike, as the Unicode blocks of their letters.
_LOOK_ALIKE_ALPHABETS: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = (
    (
        "Latin",
        (
            (0x0041, 0x005A),
            (0x0061, 0x007A),
            (0x00C0, 0x02AF),
            (0x1D00, 0x1DBF),
            (0x1E00, 0x1EFF),
            (0x2C60, 0x2C7F),
            (0xA720, 0xA7FF),
            (0xAB30, 0xAB6F),
        ),
    ),
    ("Greek", ((0x0370, 0x03FF), (0x1F00, 0x1FFF))),
    ("Cyrillic", ((0x0400, 0x052F), (0x1C80, 0x1C8F), (0x2DE0, 0x2DFF), (0xA640, 0xA69F))),
    ("Armenian", ((0x0530, 0x058F), (0xFB13, 0xFB17))),
    ("Cherokee", ((0x13A0, 0x13FF), (0xAB70, 0xABBF))),
)


def _malformed(reason: str) -> InvalidInput:
    return InvalidInput(
        f"Enter a valid email address: {reason}.", field="email", code="email.malformed"
    )


def _alphabet(char: str) -> str | None:
    point = ord(char)
    for alphabet, blocks in _LOOK_ALIKE_ALPHABETS:
        if any(low <= point <= high for low, high in blocks):
            return alphabet
    return None


def _mixes_alphabets(part: str) -> bool:
    """Whether the letters of ``part`` come from two alphabets whose letters look alike."""
    if part.isascii():
        return False
    found = {_alphabet(c) for c in part if unicodedata.category(c).startswith("L")}
    return len(found - {None}) > 1


def _check_local(local: str) -> None:
    if not local or len(local.encode("utf-8")) > MAX_LOCAL_LENGTH:
        raise _malformed("the part before @ must have 1 to 64 characters")
    for atom in local.split("."):
        if not atom:
            raise _malformed("dots cannot start, end or repeat before the @")
        if not all(c in _ATEXT or (not c.isascii() and c.isalnum()) for c in atom):
            raise _malformed("the part before @ holds a character addresses cannot have")
        if _mixes_alphabets(atom):
            raise _malformed("the part before @ mixes letters of alphabets that look alike")


def _domain(local: str, domain: str) -> str:
    """Return the domain as its Unicode labels, after IDNA 2008 and UTS #46 (IN-2).

    The whole address is given to `email-validator`, which also bounds its
    length in octets as it would be sent.
    """
    # email-validator is imported here, when an email is first checked, so that
    # importing the library stays cheap (P6). It imports idna, and never DNS.
    from email_validator import validate_email  # noqa: PLC0415

    try:
        checked = validate_email(f"{local}@{domain}", check_deliverability=False)
    except ValueError as refused:  # EmailNotValidError, and idna's errors if any escape
        # Its reason, without the characters it quotes from the input after a
        # colon or in brackets: a password typed in the email field stays out of logs.
        reason = re.split(r"[:(]", str(refused), maxsplit=1)[0].rstrip(" .")
        raise InvalidInput(
            f"Enter a valid email address. {reason}.", field="email", code="email.malformed"
        ) from None
    if checked.ascii_domain.rpartition(".")[2] in _SPECIAL_USE:
        raise _malformed("the domain after @ is reserved for a local network or for no one")
    unicode_domain: str = checked.domain
    if any(_mixes_alphabets(label) for label in unicode_domain.split(".")):
        raise _malformed("the domain after @ mixes letters of alphabets that look alike")
    return unicode_domain


def normalize_email(email: str) -> str:
    """Return the stored form of ``email``, or raise `InvalidInput` (``email.malformed``).

    Idempotent, and raises nothing else for any text (IN-1).
    """
    if not isinstance(email, str):
        raise _malformed("it must be text")
    # Bounded before anything else: a huge string costs nothing.
    if len(email) > MAX_EMAIL_LENGTH * MAX_COMPOSITION_RATIO:
        raise _malformed("it is longer than 254 characters")
    stripped = email.strip()
    if refused_characters(stripped, joiners=False):
        raise _malformed("it holds an invisible character or one that cannot be typed")
    normalized = unicodedata.normalize("NFKC", stripped).lower()
    if len(normalized) > MAX_EMAIL_LENGTH:
        raise _malformed("it is longer than 254 characters")
    local, at, domain = normalized.rpartition("@")
    if not at:
        raise _malformed("it needs an @")
    _check_local(local)
    return f"{local}@{_domain(local, domain)}"
