"""Signed-in sessions as pure rules: idle timeout, absolute lifetime, background requests.

Rules LK-6 and LK-7. A session ends 30 minutes (*default*) after its last
activity and 12 hours (*default*) after sign-in, whatever the activity. A
request the application marks as background (polling) proves nothing about
the person, so it does not extend the session. Session tokens are random
(``session_token_bytes``, at least 16) and stored only as their SHA-256.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Iterable
from datetime import datetime

import attrs

from securepractice.clock import require_utc
from securepractice.errors import InvalidToken
from securepractice.records import Session, revised
from securepractice.secret import Secret
from securepractice.settings import SignInRules
from securepractice.verification.tokens import hash_token

__all__ = [
    "SESSION_ENDED_MESSAGE",
    "NewSession",
    "SessionState",
    "new_session",
    "revoke",
    "revoke_all",
    "session_state",
    "session_token_hash",
    "touched",
]

#: The one message for a session that is unknown, revoked, idle or too old.
SESSION_ENDED_MESSAGE = "You are not signed in, or your session has ended: please sign in."


class SessionState(enum.Enum):
    """Whether a session may still be used, and if not, why (for audit only)."""

    ACTIVE = "active"
    IDLE = "idle"
    EXPIRED = "expired"
    REVOKED = "revoked"


@attrs.frozen(kw_only=True)
class NewSession:
    """A new session: the record to store and the token to hand to the browser."""

    record: Session
    token: Secret[str]


def session_token_hash(token: str | Secret[str]) -> bytes:
    """Return the hash a session is stored under; `InvalidToken` for anything not a token."""
    try:
        return hash_token(token)
    except InvalidToken:
        raise InvalidToken(SESSION_ENDED_MESSAGE, code="session.invalid") from None


def new_session(*, user_id: str, now: datetime, rules: SignInRules) -> NewSession:
    """Start a session for ``user_id`` at ``now``."""
    now = require_utc(now)
    token = Secret(secrets.token_urlsafe(rules.session_token_bytes))
    record = Session(
        token_hash=session_token_hash(token), user_id=user_id, created_at=now, last_active_at=now
    )
    return NewSession(record=record, token=token)


def session_state(session: Session, *, now: datetime, rules: SignInRules) -> SessionState:
    """Return whether ``session`` is usable at ``now`` (LK-6, LK-7).

    The session ends at the very instant ``idle_timeout`` after its last
    activity, or ``absolute_lifetime`` after it began.
    """
    now = require_utc(now)
    if session.revoked:
        return SessionState.REVOKED
    if now >= session.created_at + rules.absolute_lifetime:
        return SessionState.EXPIRED
    if now >= session.last_active_at + rules.idle_timeout:
        return SessionState.IDLE
    return SessionState.ACTIVE


def touched(session: Session, *, now: datetime, background: bool) -> Session:
    """Return ``session`` after a request at ``now``, revised when its activity moved on.

    Background requests change nothing, and neither does a request no later
    than the last activity: activity never moves backwards, and an unchanged
    session needs no save.
    """
    if background:
        return session
    now = require_utc(now)
    if now <= session.last_active_at:
        return session
    return revised(session, last_active_at=now)


def revoke(session: Session) -> Session:
    """Return ``session`` ended for good: sign-out, lockout, a new password."""
    return session if session.revoked else revised(session, revoked=True)


def revoke_all(sessions: Iterable[Session], *, keep: bytes | None = None) -> tuple[Session, ...]:
    """Return the live sessions among ``sessions`` ended, to save; the one hashed ``keep`` stays.

    Sessions already revoked are left out, as there is nothing to save (LK-6).
    """
    return tuple(
        revised(s, revoked=True) for s in sessions if not s.revoked and s.token_hash != keep
    )
