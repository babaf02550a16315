"""Users see and end their sessions; support ends them all; a phone change ends the others (RC-5).

Every test that touches a store runs on each store. Sessions are opened
through the real sign-in.
"""

from __future__ import annotations

import string
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accounts.profile_fixtures import EMAIL, Portal, open_portal
from securepractice import (
    FakeClock,
    InvalidInput,
    NotFound,
    Outbox,
    PermissionDenied,
    Role,
    Session,
    SessionInfo,
)
from securepractice.dependencies import Dependencies
from securepractice.policy.sessions import session_token_hash
from securepractice.portal import PracticeAdministration
from securepractice.records import DeliveryMethod, PhoneKind
from securepractice.secret import Secret
from securepractice.testing import PASSWORD

WRONG = "Not-the-password-1"
NEW_CELL = "+12025550178"


@pytest.fixture
def portal(context: Dependencies, outbox: Outbox, clock: FakeClock) -> Portal:
    return open_portal(context, outbox, clock)


def sign_in(portal: Portal) -> Secret[str]:
    """Another session of the user, from another device."""
    return Secret(portal.world.sign_in(EMAIL))


def id_of(portal: Portal, token: Secret[str]) -> str:
    """The public id of the session behind ``token``, as the store names it."""
    with portal.storage.unit_of_work() as uow:
        session = uow.sessions.get(session_token_hash(token))
    assert session is not None
    return session.id


def revocations(portal: Portal) -> list[dict[str, str]]:
    return [dict(e.detail) for e in portal.events("sessions.revoked")]


# Listing (RC-5).


def test_rc_5_the_user_lists_their_live_sessions_the_current_one_marked(portal: Portal) -> None:
    """RC-5: start, last activity and a public id; latest activity first; never a token."""
    started = portal.clock.now()
    laptop = sign_in(portal)
    portal.clock.advance(minutes=5)
    phone = sign_in(portal)
    portal.clock.advance(minutes=5)
    portal.actions.touch_session(laptop)
    portal.clock.advance(minutes=5)
    listed = portal.actions.list_sessions(portal.token)
    now = portal.clock.now()
    assert listed == (
        SessionInfo(
            session_id=id_of(portal, portal.token),
            started_at=started,
            last_active_at=now,
            current=True,
        ),
        SessionInfo(
            session_id=id_of(portal, laptop),
            started_at=started,
            last_active_at=now - timedelta(minutes=5),
            current=False,
        ),
        SessionInfo(
            session_id=id_of(portal, phone),
            started_at=started + timedelta(minutes=5),
            last_active_at=started + timedelta(minutes=5),
            current=False,
        ),
    )
    shown = repr(listed) + str(listed)
    for token in (portal.token, laptop, phone):
        assert token.reveal() not in shown
        assert session_token_hash(token).hex() not in shown
    assert portal.actions.list_sessions(laptop)[0].session_id == id_of(portal, laptop)


def test_rc_5_ended_sessions_are_not_listed(portal: Portal) -> None:
    """RC-5, LK-6, LK-7: signed out, idle or too old, a session is no longer the user's to see."""
    signed_out = sign_in(portal)
    portal.actions.sign_out(signed_out)
    idle = sign_in(portal)
    idle_timeout = portal.context.settings.sign_in.idle_timeout
    portal.clock.advance(idle_timeout / 2)
    portal.actions.touch_session(portal.token)
    portal.clock.advance(idle_timeout / 2)
    assert [s.current for s in portal.actions.list_sessions(portal.token)] == [True]
    assert id_of(portal, idle) not in {
        s.session_id for s in portal.actions.list_sessions(portal.token)
    }


@given(token_hash=st.binary(min_size=16, max_size=64))
def test_rc_5_a_session_id_is_stable_and_tells_nothing_of_the_token(token_hash: bytes) -> None:
    """RC-5, AU-2: the same hash always gives the same id, 32 hex digits, never the hash."""
    at = datetime(2026, 1, 5, tzinfo=timezone.utc)
    session = Session(token_hash=token_hash, user_id="u1", created_at=at, last_active_at=at)
    again = Session(token_hash=token_hash, user_id="u2", created_at=at, last_active_at=at)
    assert session.id == again.id
    assert len(session.id) == 32
    assert set(session.id) <= set(string.hexdigits.lower())
    assert session.id not in token_hash.hex()
    assert token_hash.hex()[:32] != session.id
    assert session.id not in repr(session)


# Ending one, or all the others (RC-5).


def test_rc_5_the_user_ends_one_session_with_their_password(portal: Portal) -> None:
    """RC-5: the session named ends; the others go on."""
    laptop, phone = sign_in(portal), sign_in(portal)
    portal.actions.end_session(
        portal.token, session_id=id_of(portal, laptop), current_password=PASSWORD
    )
    assert portal.session_ended(laptop)
    assert not portal.session_ended(phone)
    assert not portal.session_ended(portal.token)
    assert revocations(portal) == [{"scope": "one", "current": "false", "sessions_revoked": "1"}]
    assert portal.failures() == 0


def test_rc_5_ending_the_current_session_signs_out(portal: Portal) -> None:
    portal.actions.end_session(
        portal.token, session_id=id_of(portal, portal.token), current_password=PASSWORD
    )
    assert portal.session_ended(portal.token)
    assert revocations(portal) == [{"scope": "one", "current": "true", "sessions_revoked": "1"}]


def test_rc_5_a_wrong_password_ends_nothing_and_counts(portal: Portal) -> None:
    """RC-5, LK-1: as for a change of email, a wrong password is a failed sign-in."""
    laptop = sign_in(portal)
    with pytest.raises(InvalidInput) as one:
        portal.actions.end_session(
            portal.token, session_id=id_of(portal, laptop), current_password=WRONG
        )
    with pytest.raises(InvalidInput) as others:
        portal.actions.end_other_sessions(portal.token, current_password=WRONG)
    for caught in (one, others):
        assert (caught.value.field, caught.value.code) == (
            "current_password",
            "password.current_wrong",
        )
    assert portal.failures() == 2
    assert not portal.session_ended(laptop)
    assert revocations(portal) == []


def test_rc_5_wrong_passwords_lock_the_account_and_end_every_session(portal: Portal) -> None:
    """RC-5, LK-1, LK-6: the fifth wrong password locks; a lock ends every session."""
    laptop = sign_in(portal)
    for _ in range(portal.context.settings.sign_in.max_failed_sign_ins):
        with pytest.raises(InvalidInput):
            portal.actions.end_other_sessions(portal.token, current_password=WRONG)
    assert portal.stored_user().locked
    assert portal.session_ended(laptop)
    assert portal.session_ended(portal.token)


def test_rc_5_an_id_of_no_live_session_of_the_user_is_not_found_before_the_password(
    portal: Portal,
) -> None:
    """RC-5: another user's session, an ended one, or no session: `NotFound`, nothing counted."""
    other = portal.world.member("dr.jones@example.com", practice=portal.practice)
    theirs = Secret(other.token)
    gone = sign_in(portal)
    portal.actions.sign_out(gone)
    for session_id in (id_of(portal, theirs), id_of(portal, gone), "0" * 32):
        with pytest.raises(NotFound) as caught:
            portal.actions.end_session(portal.token, session_id=session_id, current_password=WRONG)
        assert caught.value.code == "session.unknown_id"
    assert portal.failures() == 0
    assert not portal.session_ended(theirs)


@pytest.mark.parametrize(
    ("session_id", "password", "field", "code"),
    [
        (None, PASSWORD, "session_id", "text.not_text"),
        (42, PASSWORD, "session_id", "text.not_text"),
        ("abc\x00", PASSWORD, "session_id", "text.control_character"),
        ("\u202eabc", PASSWORD, "session_id", "text.bidi_control"),
        ("x" * 10_000, PASSWORD, "session_id", "text.too_long"),
        ("0" * 32, None, "current_password", "password.not_text"),
    ],
)
def test_rc_5_bad_input_is_refused_before_anything_is_counted(
    portal: Portal, session_id: object, password: object, field: str, code: str
) -> None:
    """RC-5, IN-1: a clear error naming the field; nothing counted, nothing ended."""
    with pytest.raises(InvalidInput) as caught:
        portal.actions.end_session(
            portal.token,
            session_id=session_id,  # type: ignore[arg-type]
            current_password=password,  # type: ignore[arg-type]
        )
    assert (caught.value.field, caught.value.code) == (field, code)
    assert portal.failures() == 0
    assert not portal.session_ended(portal.token)


def test_rc_5_the_user_ends_every_other_session(portal: Portal) -> None:
    """RC-5: all others end, the current one goes on; the count is returned and audited."""
    others = [sign_in(portal) for _ in range(3)]
    portal.actions.sign_out(others[0])
    assert portal.actions.end_other_sessions(portal.token, current_password=PASSWORD) == 2
    assert all(portal.session_ended(token) for token in others)
    assert not portal.session_ended(portal.token)
    assert [s.current for s in portal.actions.list_sessions(portal.token)] == [True]
    assert revocations(portal) == [{"scope": "others", "sessions_revoked": "2"}]
    assert portal.actions.end_other_sessions(portal.token, current_password=PASSWORD) == 0


# Support staff (RC-5).


@pytest.fixture
def support(portal: Portal) -> Secret[str]:
    member = portal.world.member("help@portal.example", roles=(Role.SUPPORT,))
    return Secret(member.token)


def test_rc_5_support_ends_every_session_of_a_user_who_stays_active(
    portal: Portal, support: Secret[str]
) -> None:
    """RC-5: every session ends, nothing else changes; the user signs in again; audited."""
    laptop = sign_in(portal)
    ended_count = PracticeAdministration(portal.context).end_user_sessions(
        support, user_id=portal.user.id
    )
    assert ended_count == 2
    assert portal.session_ended(portal.token)
    assert portal.session_ended(laptop)
    stored = portal.stored_user()
    assert (stored.deactivated, stored.locked, stored.version) == (
        False,
        False,
        portal.user.version,
    )
    assert portal.actions.sign_in(email=EMAIL, password=PASSWORD).ok
    [event] = portal.events("sessions.revoked")
    assert dict(event.detail) == {"scope": "all", "sessions_revoked": "2"}
    assert event.actor_id != portal.user.id
    assert event.practice_id == portal.practice.id


def test_rc_5_only_support_ends_another_users_sessions(
    portal: Portal, support: Secret[str]
) -> None:
    """RC-5, SP-1, UM-2: a User Manager, a user or support on support staff: refused, audited."""
    manager = portal.world.member(
        "manager@example.com", practice=portal.practice, roles=(Role.USER, Role.USER_MANAGER)
    )
    practice = PracticeAdministration(portal.context)
    staff = portal.world.user("help2@portal.example", roles=(Role.SUPPORT,))
    attempts = (
        (Secret(manager.token), portal.user.id, "permission.support_only"),
        (portal.token, portal.user.id, "permission.support_only"),
        (support, staff.id, "permission.not_practice_user"),
    )
    for token, user_id, code in attempts:
        with pytest.raises(PermissionDenied) as caught:
            practice.end_user_sessions(token, user_id=user_id)
        assert caught.value.code == code
    with pytest.raises(NotFound) as missing:
        practice.end_user_sessions(support, user_id="no-such-user")
    assert missing.value.code == "user.not_found"
    assert not portal.session_ended(portal.token)
    with portal.storage.unit_of_work() as uow:
        refused = [e.outcome for e in uow.audit.events() if e.action == "sessions.revoked"]
    assert refused == [code for _token, _id, code in attempts] + ["user.not_found"]


# A change of phone number ends the other sessions (RC-5).


def test_rc_5_a_new_phone_number_ends_the_other_sessions(portal: Portal) -> None:
    """RC-5, PF-4: once the new number is verified, the other sessions end; this one goes on."""
    laptop = sign_in(portal)
    portal.actions.start_phone_change(
        portal.token,
        current_password=PASSWORD,
        kind=PhoneKind.CELL,
        number=NEW_CELL,
        option_method=DeliveryMethod.SMS,
    )
    assert not portal.session_ended(laptop)
    code = portal.outbox.last_code(NEW_CELL)
    assert portal.actions.verify_phone_code(portal.token, code=code).verified
    assert portal.session_ended(laptop)
    assert not portal.session_ended(portal.token)
    [changed] = portal.events("phone.changed")
    assert dict(changed.detail)["sessions_revoked"] == "1"
    assert "other sessions were signed out" in portal.outbox.last_email(EMAIL).body
