"""Usernames are email addresses (ID-1): one normal form, one clear error.

An email is trimmed, normalised with Unicode NFKC and lower-cased in both
its local part and its domain, so that ``" Dr.Smith@Example.COM "`` and
``"dr.smith@example.com"`` are one user. Lower-casing the local part is
stricter than RFC 5321 allows a mail server to be, and is what every portal
user expects: nobody has two mailboxes that differ by case.
"""

from __future__ import annotations

import re
import unicodedata

from securepractice.errors import InvalidInput

__all__ = ["normalize_email"]

MAX_EMAIL_LENGTH = 254
MAX_LOCAL_LENGTH = 64
MAX_LABEL_LENGTH = 63
MIN_DOMAIN_LABELS = 2

# RFC 5322 "dot-atom" characters, plus any non-ASCII letter or digit (RFC 6531).
_LOCAL_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")


def _malformed(reason: str) -> InvalidInput:
    return InvalidInput(
        f"Enter a valid email address: {reason}.", field="email", code="email.malformed"
    )


def _check_local(local: str) -> None:
    if not local or len(local.encode("utf-8")) > MAX_LOCAL_LENGTH:
        raise _malformed("the part before @ must have 1 to 64 characters")
    for atom in local.split("."):
        if not atom:
            raise _malformed("dots cannot start, end or repeat before the @")
        if not all(_LOCAL_ATOM.fullmatch(ch) or (not ch.isascii() and ch.isalnum()) for ch in atom):
            raise _malformed("the part before @ holds a character addresses cannot have")


def _check_domain(domain: str) -> None:
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise _malformed("the domain after @ is not a valid domain name") from None
    labels = ascii_domain.split(".")
    if len(labels) < MIN_DOMAIN_LABELS or len(ascii_domain) > MAX_EMAIL_LENGTH:
        raise _malformed("the domain after @ needs a name and an ending, such as example.com")
    for label in labels:
        if len(label) > MAX_LABEL_LENGTH or not _LABEL.fullmatch(label):
            raise _malformed("the domain after @ is not a valid domain name")
    if labels[-1].isdigit():
        raise _malformed("the domain after @ cannot be a number")


def normalize_email(email: str) -> str:
    """Return the stored form of ``email``, or raise `InvalidInput` (``email.malformed``).

    Quoted local parts, IP-address domains and comments are refused: no
    portal user has one, and each is a way to smuggle odd text into a username.
    """
    if not isinstance(email, str):
        raise _malformed("it must be text")
    stripped = email.strip()
    if not stripped.isprintable():
        raise _malformed("it holds a character that cannot be typed")
    normalized = unicodedata.normalize("NFKC", stripped).lower()
    if len(normalized) > MAX_EMAIL_LENGTH:
        raise _malformed("it is longer than 254 characters")
    local, at, domain = normalized.rpartition("@")
    if not at:
        raise _malformed("it needs an @")
    _check_local(local)
    _check_domain(domain)
    return normalized
