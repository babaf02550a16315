"""E-mailed link tokens: invitations, password resets and confirmations of a new email address.

Rules RG-1, RG-4, RG-6, RS-1, RS-5 and RC-1 of SPEC.md. A token is
``token_bytes`` random bytes from `secrets` (URL-safe base64), stored only
as its SHA-256. A fast unkeyed hash is enough here, unlike for codes or
passwords: a token has at least 128 bits of entropy, so nobody holding the
stored hashes can search for a token that hashes to one of them, and an
unsalted hash lets storage find a token's record by an index lookup.

A token is usable while it is not used, not superseded and not expired.
Opening a link checks it (`open_token`) without using it up; completing the
flow uses it (`use_token` returns the next version, which storage saves only
over the version read, so of simultaneous uses one wins: RS-5). Every
refusal is the same `InvalidToken`, whatever the reason (RG-6);
`token_problem` gives the true reason for the audit log.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from urllib.parse import urlencode

import attrs

from securepractice.clock import require_utc
from securepractice.errors import InvalidToken, SettingsError
from securepractice.records import LinkToken, TokenPurpose, revised
from securepractice.secret import Secret
from securepractice.settings import LinkRules

__all__ = [
    "INVALID_LINK_MESSAGE",
    "IssuedToken",
    "TokenProblem",
    "build_link",
    "hash_token",
    "issue_token",
    "open_token",
    "supersede",
    "token_problem",
    "use_token",
]

#: The one message of every refused link (RG-6): it does not say why.
INVALID_LINK_MESSAGE = (
    "This link is not valid: it may have expired or been used or replaced. Ask for a new one."
)

#: A token longer than this is not one of ours; it is refused before hashing.
_MAX_TOKEN_LENGTH = 512


class TokenProblem(enum.Enum):
    """Why a link token was refused: for the audit log only, never for the user (RG-6)."""

    UNKNOWN = "unknown"
    WRONG_PURPOSE = "wrong_purpose"
    USED = "used"
    SUPERSEDED = "superseded"
    EXPIRED = "expired"


@attrs.frozen(kw_only=True)
class IssuedToken:
    """A new link token: the record to store, and the token to put in the link."""

    record: LinkToken
    token: Secret[str]


def _lifetime(purpose: TokenPurpose, rules: LinkRules) -> timedelta:
    return {
        TokenPurpose.INVITATION: rules.invitation_lifetime,
        TokenPurpose.PASSWORD_RESET: rules.reset_lifetime,
        TokenPurpose.EMAIL_CHANGE: rules.email_change_lifetime,
        TokenPurpose.SIGN_IN: rules.sign_in_lifetime,
        TokenPurpose.TRUSTED_DEVICE: rules.trusted_device_lifetime,
    }[purpose]


def _path(purpose: TokenPurpose, rules: LinkRules) -> str:
    return {
        TokenPurpose.INVITATION: rules.invitation_path,
        TokenPurpose.PASSWORD_RESET: rules.reset_path,
        TokenPurpose.EMAIL_CHANGE: rules.email_change_path,
    }[purpose]


def hash_token(token: str | Secret[str]) -> bytes:
    """Return the SHA-256 under which a token is stored and looked up.

    Raises `InvalidToken` for anything that cannot be one of our tokens (not
    text, empty, or absurdly long), with the same message as every other refusal.
    """
    text: object = token.reveal() if isinstance(token, Secret) else token
    if not isinstance(text, str) or not 0 < len(text) <= _MAX_TOKEN_LENGTH or not text.isascii():
        raise InvalidToken(INVALID_LINK_MESSAGE)
    return hashlib.sha256(text.encode("ascii")).digest()


def issue_token(
    *, user_id: str, purpose: TokenPurpose, now: datetime, rules: LinkRules
) -> IssuedToken:
    """Make a new token for ``user_id`` and ``purpose``, expiring after its lifetime (RG-1, RS-1).

    Store the record and `supersede` the user's older tokens of this purpose
    in the same unit of work (RG-4).
    """
    now = require_utc(now)
    token = Secret(secrets.token_urlsafe(rules.token_bytes))
    record = LinkToken(
        id=uuid.uuid4().hex,
        token_hash=hash_token(token),
        user_id=user_id,
        purpose=purpose,
        created_at=now,
        expires_at=now + _lifetime(purpose, rules),
    )
    return IssuedToken(record=record, token=token)


def supersede(
    tokens: Iterable[LinkToken], *, user_id: str, purpose: TokenPurpose
) -> tuple[LinkToken, ...]:
    """Return the tokens of ``user_id`` and ``purpose`` that this supersedes, revised to save.

    Only unused tokens that are not superseded yet change; the others are
    left out, as there is nothing to save. Re-inviting (RG-4), changing a
    user's email (UM-4, RC-1), completing a reset (RS-3) and asking for
    another new email address (RC-1) supersede the older links.
    """
    return tuple(
        revised(t, superseded=True)
        for t in tokens
        if t.user_id == user_id and t.purpose is purpose and t.used_at is None and not t.superseded
    )


def token_problem(
    token: str | Secret[str],
    record: LinkToken | None,
    *,
    purpose: TokenPurpose,
    now: datetime,
) -> TokenProblem | None:
    """Return why ``token`` cannot be used with ``record`` at ``now``, or None if it can.

    ``record`` is what storage found under `hash_token` of the token (None
    if nothing); the hash is compared again, in constant time, so a record
    looked up by mistake cannot pass.
    """
    checked = _check(token, record, purpose=purpose, now=now)
    return checked if isinstance(checked, TokenProblem) else None


def _check(
    token: str | Secret[str],
    record: LinkToken | None,
    *,
    purpose: TokenPurpose,
    now: datetime,
) -> LinkToken | TokenProblem:
    now = require_utc(now)
    try:
        digest = hash_token(token)
    except InvalidToken:
        return TokenProblem.UNKNOWN
    if record is None or not hmac.compare_digest(digest, record.token_hash):
        return TokenProblem.UNKNOWN
    checks = (
        (record.purpose is not purpose, TokenProblem.WRONG_PURPOSE),
        (record.used_at is not None, TokenProblem.USED),
        (record.superseded, TokenProblem.SUPERSEDED),
        (now >= record.expires_at, TokenProblem.EXPIRED),
    )
    return next((problem for failed, problem in checks if failed), record)


def open_token(
    token: str | Secret[str],
    record: LinkToken | None,
    *,
    purpose: TokenPurpose,
    now: datetime,
) -> LinkToken:
    """Check a link being opened; return its record, unchanged: opening does not use it up.

    Raises `InvalidToken` with `INVALID_LINK_MESSAGE` for an unknown,
    expired, used or superseded token, whichever it is (RG-6).
    """
    checked = _check(token, record, purpose=purpose, now=now)
    if isinstance(checked, TokenProblem):
        raise InvalidToken(INVALID_LINK_MESSAGE)
    return checked


def use_token(
    token: str | Secret[str],
    record: LinkToken | None,
    *,
    purpose: TokenPurpose,
    now: datetime,
) -> LinkToken:
    """Use a token up as its flow completes; return the record marked used at ``now``.

    The checks of `open_token` run again at completion, so a flow opened
    from a link cannot complete after the link expires (RG-1).
    """
    record = open_token(token, record, purpose=purpose, now=now)
    return revised(record, used_at=require_utc(now))


def build_link(token: Secret[str], *, purpose: TokenPurpose, rules: LinkRules) -> Secret[str]:
    """Return the link to e-mail: the configured ``base_url``, the purpose's path, the token.

    The address comes from the settings only, never from request data
    (RS-5). Raises `SettingsError` if ``base_url`` is not set. The link holds
    the token, so it is returned as a `Secret` too.
    """
    if rules.base_url is None:
        raise SettingsError(
            "base_url",
            "must be set to the portal's address (for example https://portal.example.com) "
            "before links can be e-mailed",
        )
    query = urlencode({"token": token.reveal()})
    return Secret(f"{rules.base_url.rstrip('/')}{_path(purpose, rules)}?{query}")
