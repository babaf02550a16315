"""Session rules as pure functions: idle timeout, absolute lifetime, background (LK-6, LK-7)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from securepractice import InvalidInput, InvalidToken, SignInRules
from securepractice.policy.sessions import (
    SESSION_ENDED_MESSAGE,
    SessionState,
    new_session,
    revoke,
    revoke_all,
    session_state,
    session_token_hash,
    touched,
)

START = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
RULES = SignInRules()


def test_lk_6_tokens_are_random_long_and_stored_hashed() -> None:
    """LK-6: at least 128 bits from secrets; only the SHA-256 is in the record."""
    first = new_session(user_id="u1", now=START, rules=RULES)
    second = new_session(user_id="u1", now=START, rules=RULES)
    token = first.token.reveal()
    assert token != second.token.reveal()
    assert len(token) >= 22  # 16 bytes of URL-safe base64 at the least; 32 bytes by default
    assert first.record.token_hash == session_token_hash(first.token)
    assert token.encode() not in first.record.token_hash
    assert token not in repr(first)
    assert token not in repr(first.record)


@pytest.mark.parametrize(
    ("idle", "state"),
    [
        (timedelta(minutes=29, seconds=59), SessionState.ACTIVE),
        (timedelta(minutes=30), SessionState.IDLE),
        (timedelta(minutes=31), SessionState.IDLE),
    ],
)
def test_lk_6_session_ends_after_30_minutes_without_activity(
    idle: timedelta, state: SessionState
) -> None:
    """LK-6: the session ends at the very instant 30 minutes after the last activity."""
    session = new_session(user_id="u1", now=START, rules=RULES).record
    assert session_state(session, now=START + idle, rules=RULES) is state


def test_lk_6_activity_extends_and_background_requests_do_not() -> None:
    """LK-6: a request moves the idle deadline; a background (polling) request does not."""
    session = new_session(user_id="u1", now=START, rules=RULES).record
    later = START + timedelta(minutes=20)
    polled = touched(session, now=later, background=True)
    assert polled == session
    assert (
        session_state(polled, now=START + timedelta(minutes=31), rules=RULES) is SessionState.IDLE
    )
    active = touched(session, now=later, background=False)
    assert active.last_active_at == later
    assert active.version == session.version + 1
    assert (
        session_state(active, now=START + timedelta(minutes=49), rules=RULES) is SessionState.ACTIVE
    )


def test_lk_6_touching_never_moves_activity_backwards() -> None:
    session = new_session(user_id="u1", now=START, rules=RULES).record
    assert touched(session, now=START - timedelta(seconds=5), background=False) == session


def test_lk_6_revoking_ends_a_session_once() -> None:
    """Sign-out, lockout and a new password end a session: one new version, then nothing."""
    session = new_session(user_id="u1", now=START, rules=RULES).record
    ended = revoke(session)
    assert (ended.revoked, ended.version) == (True, session.version + 1)
    assert revoke(ended) is ended


def test_lk_6_revoke_all_returns_only_the_sessions_it_ended() -> None:
    """LK-6: live sessions but the kept one are ended; ended ones are left out, nothing to save."""
    kept, live, ended = (new_session(user_id="u1", now=START, rules=RULES).record for _ in "abc")
    ended = revoke(ended)
    changed = revoke_all([kept, live, ended], keep=kept.token_hash)
    assert changed == (revoke(live),)
    assert len(revoke_all([kept, live, ended])) == 2


def test_lk_6_a_revoked_session_is_never_usable() -> None:
    session = attrs.evolve(new_session(user_id="u1", now=START, rules=RULES).record, revoked=True)
    assert session_state(session, now=START, rules=RULES) is SessionState.REVOKED


@given(st.lists(st.integers(min_value=1, max_value=29 * 60), min_size=1, max_size=60))
def test_lk_7_twelve_hours_end_a_session_whatever_the_activity(gaps: list[int]) -> None:
    """LK-7: however often the user is active, the session ends 12 hours after sign-in."""
    session = new_session(user_id="u1", now=START, rules=RULES).record
    now = START
    for gap in gaps:
        now += timedelta(seconds=gap)
        state = session_state(session, now=now, rules=RULES)
        if now >= START + timedelta(hours=12):
            assert state is SessionState.EXPIRED
            return
        assert state is SessionState.ACTIVE
        session = touched(session, now=now, background=False)
    end = START + timedelta(hours=12)
    assert session_state(session, now=end, rules=RULES) is SessionState.EXPIRED


def test_lk_7_lifetime_and_idle_timeout_are_settings() -> None:
    rules = SignInRules(idle_timeout=timedelta(minutes=5), absolute_lifetime=timedelta(hours=1))
    session = new_session(user_id="u1", now=START, rules=rules).record
    assert session_state(session, now=START + timedelta(minutes=5), rules=rules) is (
        SessionState.IDLE
    )
    fresh = touched(session, now=START + timedelta(minutes=58), background=False)
    assert session_state(fresh, now=START + timedelta(hours=1), rules=rules) is (
        SessionState.EXPIRED
    )


@pytest.mark.parametrize("token", ["", "x" * 600, "tökén", None, b"abc"])
def test_lk_6_anything_that_is_not_a_token_is_one_clear_error(token: object) -> None:
    with pytest.raises(InvalidToken) as caught:
        session_token_hash(token)  # type: ignore[arg-type]
    assert caught.value.code == "session.invalid"
    assert caught.value.message == SESSION_ENDED_MESSAGE


def test_naive_times_are_refused() -> None:
    with pytest.raises(InvalidInput):
        new_session(user_id="u1", now=START.replace(tzinfo=None), rules=RULES)
