"""Turning two-step verification off needs the password and a code; a manager gives a reason (RC-2).

Either change ends the user's other sessions (RC-5) and the user is told.
Every test runs on each store; codes are read from the outbox, as the user
reads their phone.
"""

from __future__ import annotations

import pytest

from accounts.profile_fixtures import CELL, EMAIL, OFFICE, Portal, at_once, open_portal
from securepractice import (
    DeliveryFailed,
    FakeClock,
    InvalidInput,
    InvalidState,
    Outbox,
    PermissionDenied,
    RateLimited,
    Role,
    SecurePracticeError,
)
from securepractice.dependencies import Dependencies
from securepractice.portal import PracticeAdministration
from securepractice.practice.users import MAX_REASON_LENGTH
from securepractice.records import Challenge, ChallengeState, DeliveryMethod, PhoneKind, Purpose
from securepractice.secret import Secret
from securepractice.testing import PASSWORD
from securepractice.verification.phones import DeliveryOption

WRONG = "Not-the-password-1"
REASON = "Lost her phone on holiday"


@pytest.fixture
def portal(context: Dependencies, outbox: Outbox, clock: FakeClock) -> Portal:
    return open_portal(context, outbox, clock)


def by_text(portal: Portal) -> DeliveryOption:
    """The option "Send a text to" the user's cell phone."""
    [text] = [
        o for o in portal.actions.two_step_off_options(portal.token) if o.method.value == "sms"
    ]
    return text


def send(portal: Portal) -> str:
    """Ask for the code by text; return it as the user reads it on their phone."""
    portal.actions.send_two_step_off_code(portal.token, option=by_text(portal))
    return portal.outbox.last_code(CELL)


def off(portal: Portal, code: str | Secret[str], password: str = PASSWORD) -> object:
    return portal.actions.set_two_step(
        portal.token, enabled=False, current_password=password, code=code
    )


def other_than(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def challenge(portal: Portal) -> Challenge:
    with portal.storage.unit_of_work() as uow:
        found = uow.challenges.latest(portal.user.id, Purpose.TWO_STEP_OFF)
    assert found is not None
    return found


def second_session(portal: Portal) -> str:
    return portal.world.sign_in(EMAIL)


def refused_code(portal: Portal, code: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        off(portal, code)
    assert caught.value.field == "code"
    return caught.value


# The user's own switch (PF-3, RC-2, RC-5).


def test_rc_2_off_with_the_password_and_a_code_ends_other_sessions_and_tells_the_user(
    portal: Portal,
) -> None:
    """RC-2, RC-5: password and code turn it off; other sessions end, this one goes on."""
    # VF-2: a call to either number, a text to the cell phone only.
    assert set(portal.actions.two_step_off_options(portal.token)) == {
        DeliveryOption(method=DeliveryMethod.VOICE, destination=OFFICE, kind=PhoneKind.PHONE),
        DeliveryOption(method=DeliveryMethod.VOICE, destination=CELL, kind=PhoneKind.CELL),
        DeliveryOption(method=DeliveryMethod.SMS, destination=CELL, kind=PhoneKind.CELL),
    }
    elsewhere = second_session(portal)
    code = send(portal)
    assert "turn off two-step verification" in portal.outbox.last_sms(CELL).text
    user = off(portal, code)
    assert portal.stored_user() == user
    assert portal.stored_user().two_step_enabled is False
    assert portal.session_ended(elsewhere)
    assert not portal.session_ended(portal.token)
    notice = portal.outbox.last_email(EMAIL)
    assert notice.subject == "Two-step verification was turned off"
    assert "reset your password now" in notice.body
    [event] = portal.events("two_step.toggled")
    assert dict(event.detail) == {"enabled": "off", "sessions_revoked": "1"}
    assert event.actor_id == event.subject_id == portal.user.id
    assert [
        (e.action, dict(e.detail)["purpose"]) for e in portal.events() if "code." in e.action
    ] == [
        ("code.sent", "two_step_off"),
        ("code.verified", "two_step_off"),
    ]
    assert portal.failures() == 0


def test_rc_2_a_voice_call_brings_the_code_too(portal: Portal) -> None:
    """RC-2, VF-2: any offered option works: a call to the office phone."""
    [call] = [
        o for o in portal.actions.two_step_off_options(portal.token) if o.destination == OFFICE
    ]
    portal.actions.send_two_step_off_code(portal.token, option=call)
    assert portal.outbox.last_call(OFFICE).to == OFFICE
    off(portal, portal.outbox.last_code(OFFICE))
    assert portal.stored_user().two_step_enabled is False


def test_rc_2_without_a_code_sent_nothing_is_checked_or_counted(portal: Portal) -> None:
    """RC-2: no code was asked for: refused before the password is checked."""
    with pytest.raises(InvalidState) as caught:
        off(portal, "123456", password=WRONG)
    assert caught.value.code == "verification.not_started"
    assert portal.failures() == 0
    assert portal.stored_user().two_step_enabled is True


def test_rc_2_a_wrong_password_counts_toward_lockout_and_spends_no_code(portal: Portal) -> None:
    """RC-2, LK-1: a wrong password is a failed sign-in; the code is not even compared."""
    code = send(portal)
    with pytest.raises(InvalidInput) as caught:
        off(portal, code, password=WRONG)
    assert (caught.value.field, caught.value.code) == ("current_password", "password.current_wrong")
    assert portal.failures() == 1
    assert challenge(portal).wrong_attempts == 0
    assert portal.stored_user().two_step_enabled is True
    off(portal, code)
    assert portal.failures() == 0
    assert portal.stored_user().two_step_enabled is False


def test_rc_2_wrong_passwords_lock_the_account(portal: Portal) -> None:
    """RC-2, LK-1: the fifth wrong password locks the account and ends every session."""
    code = send(portal)
    limit = portal.context.settings.sign_in.max_failed_sign_ins
    for _ in range(limit):
        with pytest.raises(InvalidInput):
            off(portal, code, password=WRONG)
    assert portal.stored_user().locked is True
    assert portal.session_ended(portal.token)
    assert portal.stored_user().two_step_enabled is True


def test_rc_2_wrong_codes_count_and_void_the_code_at_the_limit(portal: Portal) -> None:
    """RC-2, VF-7: each wrong code says how many tries are left; the last one voids the code."""
    code = send(portal)
    limit = portal.context.settings.verification.max_wrong_codes
    refusals = [refused_code(portal, other_than(code)) for _ in range(limit)]
    assert [r.code for r in refusals] == [
        *["verification.wrong_code"] * (limit - 1),
        "verification.too_many_wrong",
    ]
    assert [r.message.split(" more tries")[0][-1] for r in refusals[:-1]] == [
        str(left) for left in range(limit - 1, 0, -1)
    ]
    assert challenge(portal).state is ChallengeState.VOID
    assert refused_code(portal, code).code == "verification.code_used"
    assert portal.stored_user().two_step_enabled is True
    assert portal.failures() == 0
    # A new verification, within the send limit, works again.
    off(portal, send(portal))
    assert portal.stored_user().two_step_enabled is False


def test_rc_2_an_entry_that_cannot_be_a_code_is_not_counted(portal: Portal) -> None:
    """RC-2, VF-7: letters, or too few digits, cannot be the code: not counted."""
    send(portal)
    for entry in ("12ab56", "123", "1234567"):
        assert refused_code(portal, entry).code == "verification.malformed"
    assert challenge(portal).wrong_attempts == 0


def test_rc_2_a_code_expires(portal: Portal) -> None:
    """RC-2, VF-4: after its lifetime the code is not compared; a re-sent one works."""
    code = send(portal)
    portal.clock.advance(portal.context.settings.verification.code_lifetime)
    assert refused_code(portal, code).code == "verification.expired"
    assert challenge(portal).wrong_attempts == 0
    portal.actions.resend_two_step_off_code(portal.token)
    off(portal, portal.outbox.last_code(CELL))
    assert portal.stored_user().two_step_enabled is False


def test_rc_2_resending_kills_the_previous_code_and_keeps_the_count(portal: Portal) -> None:
    """RC-2, VF-5, VF-7: the new code works; the earlier one no longer does."""
    first = send(portal)
    refused_code(portal, other_than(first))
    portal.actions.resend_two_step_off_code(portal.token)
    second = portal.outbox.last_code(CELL)
    assert len(portal.outbox.sms) == 2
    if first != second:
        assert refused_code(portal, first).code == "verification.wrong_code"
    assert challenge(portal).wrong_attempts == (2 if first != second else 1)
    off(portal, second)
    assert portal.stored_user().two_step_enabled is False


def test_rc_2_asking_again_ends_the_earlier_code(portal: Portal) -> None:
    """RC-2: a new request starts a new verification; the earlier code dies with its own."""
    first = send(portal)
    earlier = challenge(portal)
    second = send(portal)
    with portal.storage.unit_of_work() as uow:
        cancelled = uow.challenges.get(earlier.id)
    assert cancelled is not None
    assert cancelled.state is ChallengeState.VOID
    if first != second:
        assert refused_code(portal, first).code == "verification.wrong_code"
    off(portal, second)


def test_rc_2_the_send_limit_bounds_the_codes(portal: Portal) -> None:
    """RC-2, VF-8: requests and re-sends count together toward the user's send limit."""
    rules = portal.context.settings.verification
    send(portal)
    for _ in range(rules.send_limit - 1):
        portal.actions.resend_two_step_off_code(portal.token)
    with pytest.raises(RateLimited) as caught:
        portal.actions.resend_two_step_off_code(portal.token)
    assert caught.value.code == "verification.rate_limited"
    with pytest.raises(RateLimited):
        send(portal)
    assert len(portal.outbox.sms) == rules.send_limit


def test_rc_2_a_failed_delivery_voids_the_code_and_reaches_the_caller(portal: Portal) -> None:
    """RC-2, VF-10: `DeliveryFailed`; no code works until a re-send."""
    portal.outbox.fail_next("sms")
    with pytest.raises(DeliveryFailed):
        portal.actions.send_two_step_off_code(portal.token, option=by_text(portal))
    assert challenge(portal).code_hash is None
    assert refused_code(portal, "123456").code == "verification.no_active_code"
    portal.actions.resend_two_step_off_code(portal.token)
    off(portal, portal.outbox.last_code(CELL))
    assert portal.stored_user().two_step_enabled is False


def test_rc_2_a_code_of_another_purpose_does_not_turn_it_off(portal: Portal) -> None:
    """RC-2, VF-7: a code sent to confirm a new phone is no code to turn two-step off."""
    code = send(portal)
    portal.actions.start_phone_change(
        portal.token,
        current_password=PASSWORD,
        kind=PhoneKind.CELL,
        number="+12025550178",
        option_method=DeliveryMethod.SMS,
    )
    phone_code = portal.outbox.last_code("+12025550178")
    if phone_code != code:
        assert refused_code(portal, phone_code).code == "verification.wrong_code"
    off(portal, code)
    assert portal.stored_user().two_step_enabled is False


def test_rc_2_a_code_works_once(portal: Portal) -> None:
    """RC-2, VF-7: after on again, the code that turned it off turns nothing off."""
    code = send(portal)
    off(portal, code)
    portal.actions.set_two_step(portal.token, enabled=True)
    assert refused_code(portal, code).code == "verification.code_used"
    assert portal.stored_user().two_step_enabled is True


def test_rc_2_off_already_asks_for_nothing(portal: Portal) -> None:
    """RC-2: when it is off, turning it off checks nothing, counts nothing, sends nothing."""
    portal.two_step_off()
    sent = (len(portal.outbox.emails), len(portal.outbox.sms))
    user = off(portal, "not a code", password=WRONG)
    assert user == portal.stored_user()
    assert portal.failures() == 0
    assert (len(portal.outbox.emails), len(portal.outbox.sms)) == sent
    with pytest.raises(InvalidState) as caught:
        portal.actions.send_two_step_off_code(
            portal.token,
            option=DeliveryOption(method=DeliveryMethod.SMS, destination=CELL, kind=PhoneKind.CELL),
        )
    assert caught.value.code == "two_step.already_off"
    assert len(portal.events("two_step.toggled")) == 1


@pytest.mark.parametrize(
    ("password", "code", "field", "error"),
    [
        (None, "123456", "current_password", "password.not_text"),
        (42, "123456", "current_password", "password.not_text"),
        (PASSWORD, None, "code", "code.not_text"),
        (PASSWORD, 123456, "code", "code.not_text"),
    ],
)
def test_rc_2_off_without_both_is_refused_before_anything_is_counted(
    portal: Portal, password: object, code: object, field: str, error: str
) -> None:
    """RC-2: the password and the code are required; nothing is counted without them."""
    send(portal)
    with pytest.raises(InvalidInput) as caught:
        portal.actions.set_two_step(
            portal.token,
            enabled=False,
            current_password=password,  # type: ignore[arg-type]
            code=code,  # type: ignore[arg-type]
        )
    assert (caught.value.field, caught.value.code) == (field, error)
    assert portal.failures() == 0
    assert challenge(portal).wrong_attempts == 0
    assert portal.stored_user().two_step_enabled is True


def test_rc_2_an_option_the_numbers_do_not_offer_sends_nothing(portal: Portal) -> None:
    """RC-2, VF-2: a text to the office phone, or to a number not the user's, is refused."""
    for option in (
        DeliveryOption(method=DeliveryMethod.SMS, destination=OFFICE, kind=PhoneKind.PHONE),
        DeliveryOption(method=DeliveryMethod.SMS, destination="+12025550178", kind=PhoneKind.CELL),
        "sms",
    ):
        with pytest.raises(InvalidInput) as caught:
            portal.actions.send_two_step_off_code(portal.token, option=option)  # type: ignore[arg-type]
        assert caught.value.code == "verification.option_not_offered"
    assert portal.outbox.sms == ()
    assert portal.outbox.calls == ()


def test_rc_5_turning_it_on_asks_nothing_and_ends_other_sessions(portal: Portal) -> None:
    """RC-5, RC-2: on needs no code; it is audited, told, and the other sessions end."""
    portal.two_step_off()
    elsewhere = second_session(portal)
    user = portal.actions.set_two_step(portal.token, enabled=True)
    assert user.two_step_enabled is True
    assert portal.session_ended(elsewhere)
    assert not portal.session_ended(portal.token)
    assert portal.outbox.last_email(EMAIL).subject == "Two-step verification was turned on"
    assert [dict(e.detail) for e in portal.events("two_step.toggled")][-1] == {
        "enabled": "on",
        "sessions_revoked": "1",
    }


def test_rc_2_two_simultaneous_switches_turn_it_off_once(portal: Portal) -> None:
    """RC-2, VF-7: the same code entered twice at once turns it off once, audited once."""
    code = send(portal)

    def enter() -> str:
        try:
            off(portal, code)
        except SecurePracticeError as refused:
            return refused.code
        return "ok"

    outcomes = at_once(enter)
    assert outcomes in (["ok", "ok"], ["ok", "verification.code_used"])
    assert len(portal.events("two_step.toggled")) == 1
    assert len(portal.events("code.verified")) == 1


# A User Manager's switch (UM-5, RC-2).


@pytest.fixture
def manager(portal: Portal) -> Secret[str]:
    """A User Manager of the user's practice, signed in."""
    member = portal.world.member(
        "manager@example.com", practice=portal.practice, roles=(Role.USER, Role.USER_MANAGER)
    )
    return Secret(member.token)


def admin(portal: Portal) -> PracticeAdministration:
    return PracticeAdministration(portal.context)


def test_rc_2_a_managers_switch_off_carries_a_reason_that_is_audited_and_told(
    portal: Portal, manager: Secret[str]
) -> None:
    """RC-2, UM-5, RC-5: the reason is audited and in the email; every session of the user ends."""
    elsewhere = second_session(portal)
    user = admin(portal).set_two_step_for(
        manager, user_id=portal.user.id, enabled=False, reason=f"  {REASON} "
    )
    assert user.two_step_enabled is False
    assert portal.session_ended(portal.token)
    assert portal.session_ended(elsewhere)
    notice = portal.outbox.last_email(EMAIL)
    assert notice.subject == "Two-step verification was turned off for you"
    assert REASON in notice.body
    [event] = portal.events("two_step.toggled")
    assert dict(event.detail) == {"enabled": "off", "reason": REASON, "sessions_revoked": "2"}
    assert event.actor_id != event.subject_id == portal.user.id
    assert event.practice_id == portal.practice.id


def test_rc_5_a_managers_switch_on_ends_the_sessions_and_tells_the_user(
    portal: Portal, manager: Secret[str]
) -> None:
    """RC-5, UM-5: turning it on needs no reason; the user is told, their sessions end."""
    portal.two_step_off()
    admin(portal).set_two_step_for(manager, user_id=portal.user.id, enabled=True)
    assert portal.session_ended(portal.token)
    assert portal.outbox.last_email(EMAIL).subject == "Two-step verification was turned on for you"
    assert dict(portal.events("two_step.toggled")[-1].detail) == {
        "enabled": "on",
        "sessions_revoked": "1",
    }


@pytest.mark.parametrize(
    ("reason", "error"),
    [
        (None, "text.empty"),
        ("", "text.empty"),
        ("   ", "text.empty"),
        (42, "text.not_text"),
        ("Lost\nher phone", "text.control_character"),
        ("Lost her phone\u202e", "text.bidi_control"),
        ("x" * (MAX_REASON_LENGTH + 1), "text.too_long"),
    ],
)
def test_rc_2_a_manager_cannot_switch_it_off_without_a_reason(
    portal: Portal, manager: Secret[str], reason: object, error: str
) -> None:
    """RC-2, IN-1: the reason is required and checked as every text is; nothing changes."""
    with pytest.raises(InvalidInput) as caught:
        admin(portal).set_two_step_for(
            manager,
            user_id=portal.user.id,
            enabled=False,
            reason=reason,  # type: ignore[arg-type]
        )
    assert (caught.value.field, caught.value.code) == ("reason", error)
    assert portal.stored_user() == portal.user
    assert not portal.session_ended(portal.token)
    assert portal.outbox.emails == ()


def test_rc_2_a_manager_turns_their_own_off_in_their_profile(
    portal: Portal, manager: Secret[str]
) -> None:
    """RC-2: Manage Users never turns the manager's own off: that needs a password and a code."""
    practice = admin(portal)
    me = practice.list_users(manager)
    [own] = [line for line in me if line.email == "manager@example.com"]
    with pytest.raises(PermissionDenied) as caught:
        practice.set_two_step_for(manager, user_id=own.user_id, enabled=False, reason=REASON)
    assert caught.value.code == "two_step.own_account"
    assert practice.list_users(manager) == me
    with portal.storage.unit_of_work() as uow:
        refused = [e for e in uow.audit.events() if e.action == "two_step.toggled"]
    assert [(e.outcome, dict(e.detail)) for e in refused] == [
        ("two_step.own_account", {"target": own.user_id})
    ]


def test_au_2_no_password_code_or_token_reaches_an_event_or_an_error(portal: Portal) -> None:
    """AU-2: the code is in the text message only."""
    code = send(portal)
    errors: list[SecurePracticeError] = []
    with pytest.raises(InvalidInput) as wrong_password:
        off(portal, code, password=WRONG)
    errors.append(wrong_password.value)
    errors.append(refused_code(portal, other_than(code)))
    off(portal, code)
    texts = [repr(e) for e in portal.all_events()] + [f"{e!s} {e!r}" for e in errors]
    texts += [m.body for m in portal.outbox.emails] + [repr(challenge(portal))]
    for text in texts:
        for secret in (code, PASSWORD, WRONG, portal.token.reveal()):
            assert secret not in text
