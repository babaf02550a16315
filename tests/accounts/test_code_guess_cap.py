"""A cap on guessing one-time codes across verifications (MF-8).

Wrong codes of every kind count on one ledger per user, whatever the
verification; only a right code clears the count. From the tenth in a row
no code is accepted for a while, doubling; at the hundredth none is sent or
accepted until support staff clear it. Every test runs on each store.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings

from accounts.factor_fixtures import (
    Enter,
    app_code,
    app_of,
    enrol,
    enter,
    ledger,
    make_codes,
    other_code,
    outcome,
    recovery_code,
    with_verification,
    wrong_app_code,
    wrong_codes,
)
from accounts.link_flows import token_of
from accounts.profile_fixtures import CELL, EMAIL, Portal, at_once, open_portal
from securepractice import (
    FakeClock,
    InvalidInput,
    InvalidState,
    Outbox,
    PermissionDenied,
    PhoneKind,
    RateLimited,
    Role,
    Secret,
    VerifyOutcome,
)
from securepractice.dependencies import Dependencies
from securepractice.portal import PracticeAdministration
from securepractice.records import DeliveryMethod
from securepractice.testing import PASSWORD
from strategies import ANY_TEXT

NEW_CELL = "+12025550178"
SUPPORT_EMAIL = "help@portal.example"


@pytest.fixture
def portal(context: Dependencies, outbox: Outbox, clock: FakeClock) -> Portal:
    return open_portal(context, outbox, clock)


def reset_link(portal: Portal) -> str:
    """Ask for a new reset link, as anyone who knows the email can; return its token."""
    portal.actions.forgot_password(email=EMAIL)
    return token_of(portal.outbox.last_link(EMAIL))


def send_reset_code(portal: Portal, link: str) -> str:
    """Send a code on a reset link by text; return it as the phone shows it."""
    option = portal.actions.delivery_options(link)[0]
    portal.actions.send_code(link, option=option)
    return portal.outbox.last_code(option.destination)


def support(portal: Portal) -> Secret[str]:
    portal.world.user(SUPPORT_EMAIL, password=PASSWORD, roles=(Role.SUPPORT,))
    return Secret(portal.world.sign_in(SUPPORT_EMAIL))


def subjects(portal: Portal) -> list[str]:
    return [mail.subject for mail in portal.outbox.emails if mail.to == EMAIL]


def most_in_a_day(times: list[datetime]) -> int:
    """The most of ``times`` that fall within any 24 hours."""
    return max(sum(start <= t < start + timedelta(days=1) for t in times) for start in times)


def test_mf_8_new_verifications_do_not_reset_the_count_and_the_cap_holds(portal: Portal) -> None:
    """MF-8: an attacker drives new verifications (send, wrong codes, new send...) until the cap.

    With five sends a quarter hour and five guesses each, a six-digit code
    could be guessed 2,400 times a day. Across verifications the count goes
    on: pauses from the tenth wrong code, and at the hundredth no code is
    sent or checked, however long one waits; the owner is told once of each.
    """
    rules = portal.context.settings.verification
    checked: list[datetime] = []
    pauses: set[str] = set()
    stopped: InvalidState | None = None
    while stopped is None:
        link = reset_link(portal)
        try:
            wrong = other_code(send_reset_code(portal, link))
        except InvalidState as refused:
            stopped = refused
            break
        for _ in range(rules.max_wrong_codes):
            try:
                result = portal.actions.verify_code(link, code=wrong)
            except RateLimited as paused:
                pauses.add(paused.code)
                portal.clock.advance(paused.retry_after)
                break
            except InvalidState as refused:
                stopped = refused
                break
            checked.append(portal.clock.now())
            if result.outcome is not VerifyOutcome.WRONG_CODE:
                break
    assert stopped is not None
    assert stopped.code == "verification.codes_stopped"
    assert pauses == {"verification.codes_paused"}
    assert len(checked) == rules.stop_at_wrong_codes
    assert most_in_a_day(checked) <= 2 * rules.pause_from_wrong_codes
    assert wrong_codes(portal) == rules.stop_at_wrong_codes
    # However long one waits, no code is sent or checked, not even the right one.
    portal.clock.advance(days=30)
    link = reset_link(portal)
    with pytest.raises(InvalidState) as caught:
        send_reset_code(portal, link)
    assert caught.value.code == "verification.codes_stopped"
    # The owner was told once of the first pause and once of the stop; each step is audited.
    name = portal.context.portal_name
    told = [s for s in subjects(portal) if s.startswith("Codes are")]
    assert told == [
        f"Codes are paused on your {name} account",
        f"Codes are stopped on your {name} account",
    ]
    pause_events = portal.events("code_guesses.paused")
    assert len(pause_events) == rules.stop_at_wrong_codes - rules.pause_from_wrong_codes
    assert [dict(e.detail)["wrong_codes"] for e in pause_events] == [
        str(n) for n in range(rules.pause_from_wrong_codes, rules.stop_at_wrong_codes)
    ]
    [stop] = portal.events("code_guesses.stopped")
    assert dict(stop.detail) == {"wrong_codes": str(rules.stop_at_wrong_codes)}
    # Support staff clear the count: codes work again.
    staff = PracticeAdministration(portal.context)
    staff.clear_code_guesses(support(portal), user_id=portal.user.id)
    assert wrong_codes(portal) == 0
    link = reset_link(portal)
    right = send_reset_code(portal, link)
    assert portal.actions.verify_code(link, code=right).verified


def test_mf_8_wrong_codes_of_every_kind_count_on_one_ledger(portal: Portal) -> None:
    """MF-8: text, call, authenticator and recovery codes, in any flow, add to one count."""
    app = enrol(portal)
    make_codes(portal)
    now = portal.clock.now()
    link = reset_link(portal)
    wrong = other_code(send_reset_code(portal, link))
    assert portal.actions.verify_code(link, code=wrong).outcome is VerifyOutcome.WRONG_CODE
    assert wrong_codes(portal) == 1
    portal.actions.start_phone_change(
        portal.token,
        current_password=PASSWORD,
        kind=PhoneKind.CELL,
        number=NEW_CELL,
        option_method=DeliveryMethod.SMS,
    )
    wrong = other_code(portal.outbox.last_code(NEW_CELL))
    assert not portal.actions.verify_phone_code(portal.token, code=wrong).verified
    assert wrong_codes(portal) == 2
    [by_call] = [
        o
        for o in portal.actions.two_step_off_options(portal.token)
        if o.method is DeliveryMethod.VOICE and o.destination == CELL
    ]
    portal.actions.send_two_step_off_code(portal.token, option=by_call)
    wrong = other_code(portal.outbox.last_code(CELL))
    with pytest.raises(InvalidInput):
        portal.actions.set_two_step(
            portal.token, enabled=False, current_password=PASSWORD, code=wrong
        )
    assert wrong_codes(portal) == 3
    assert enter(portal, app_code, wrong_app_code(app, now)).reason == "wrong"
    assert enter(portal, recovery_code, "0000-0000-0000-0000").reason == "wrong"
    assert wrong_codes(portal) == 5
    # Only a right code clears it, of any kind.
    portal.clock.advance(seconds=30)
    assert enter(portal, app_code, app.at(portal.clock.now())).accepted
    assert wrong_codes(portal) == 0


def test_mf_8_while_paused_even_a_right_code_is_refused_unchecked(portal: Portal) -> None:
    """MF-8: from the tenth wrong code in a row, nothing is checked until the pause ends."""
    rules = portal.context.settings.verification
    app = enrol(portal)
    codes = make_codes(portal)
    for _ in range(rules.pause_from_wrong_codes):
        assert enter(portal, app_code, wrong_app_code(app, portal.clock.now())).reason == "wrong"
    paused = ledger(portal)
    assert paused is not None
    assert paused.paused_until == portal.clock.now() + rules.first_code_pause
    assert enter(portal, app_code, app.at(portal.clock.now())).reason == "paused"
    assert enter(portal, recovery_code, codes[0]).reason == "paused"
    link = reset_link(portal)
    right = send_reset_code(portal, link)  # a pause does not stop sending
    with pytest.raises(RateLimited) as caught:
        portal.actions.verify_code(link, code=right)
    assert caught.value.code == "verification.codes_paused"
    assert caught.value.retry_after == rules.first_code_pause
    after = ledger(portal)
    assert after is not None
    assert (after.wrong_codes, after.paused_until) == (paused.wrong_codes, paused.paused_until)
    assert portal.actions.recovery_codes_left(portal.token) == len(codes)
    refused = [e.outcome for e in portal.events() if e.action.endswith(".failed")]
    assert refused[-2:] == ["paused", "paused"]
    # One more wrong code after the pause doubles it.
    portal.clock.advance(caught.value.retry_after)
    assert enter(portal, app_code, wrong_app_code(app, portal.clock.now())).reason == "wrong"
    doubled = ledger(portal)
    assert doubled is not None
    assert doubled.paused_until == portal.clock.now() + 2 * rules.first_code_pause
    portal.clock.advance(2 * rules.first_code_pause)
    assert enter(portal, recovery_code, codes[0]).accepted
    assert wrong_codes(portal) == 0


@pytest.fixture
def quick_stop(context: Dependencies) -> Dependencies:
    """Rules that stop codes after three wrong ones, pausing from the second."""
    return with_verification(
        context,
        pause_from_wrong_codes=2,
        stop_at_wrong_codes=3,
        first_code_pause=timedelta(minutes=1),
    )


def test_mf_8_once_stopped_no_flow_sends_or_takes_a_code(
    quick_stop: Dependencies, outbox: Outbox, clock: FakeClock
) -> None:
    """MF-8: every way a code is sent refuses, and every entry is refused unchecked."""
    portal = open_portal(quick_stop, outbox, clock)
    app = enrol(portal)
    codes = make_codes(portal)
    for _ in range(3):
        assert enter(portal, app_code, wrong_app_code(app, clock.now())).reason == "wrong"
        clock.advance(minutes=5)
    assert wrong_codes(portal) == 3
    options = portal.actions.two_step_off_options(portal.token)
    link = reset_link(portal)
    sends = {
        "reset": lambda: portal.actions.send_code(link, option=options[0]),
        "two_step_off": lambda: portal.actions.send_two_step_off_code(
            portal.token, option=options[0]
        ),
        "phone": lambda: portal.actions.start_phone_change(
            portal.token,
            current_password=PASSWORD,
            kind=PhoneKind.CELL,
            number=NEW_CELL,
            option_method=DeliveryMethod.SMS,
        ),
    }
    texts = len(outbox.sms) + len(outbox.calls)
    for name, send in sends.items():
        assert outcome(send) == "verification.codes_stopped", name
    assert len(outbox.sms) + len(outbox.calls) == texts
    clock.advance(days=365)
    assert enter(portal, app_code, app.at(clock.now())).reason == "stopped"
    assert enter(portal, recovery_code, codes[0]).reason == "stopped"
    assert wrong_codes(portal) == 3


def test_mf_8_a_code_being_confirmed_is_refused_while_stopped(
    quick_stop: Dependencies, outbox: Outbox, clock: FakeClock
) -> None:
    """MF-8: confirming an app raises the pause as `RateLimited` and the stop as `InvalidState`."""
    portal = open_portal(quick_stop, outbox, clock)
    app = app_of(portal.actions.start_authenticator(portal.token))
    with pytest.raises(InvalidInput):
        portal.actions.confirm_authenticator(portal.token, code=wrong_app_code(app, clock.now()))
    with pytest.raises(InvalidInput):
        portal.actions.confirm_authenticator(portal.token, code=wrong_app_code(app, clock.now()))
    with pytest.raises(RateLimited) as paused:
        portal.actions.confirm_authenticator(portal.token, code=app.at(clock.now()))
    assert paused.value.code == "verification.codes_paused"
    assert paused.value.retry_after == timedelta(minutes=1)
    clock.advance(paused.value.retry_after)
    with pytest.raises(InvalidInput):
        portal.actions.confirm_authenticator(portal.token, code=wrong_app_code(app, clock.now()))
    with pytest.raises(InvalidState) as stopped:
        portal.actions.confirm_authenticator(portal.token, code=app.at(clock.now()))
    assert stopped.value.code == "verification.codes_stopped"
    assert "contact support" in stopped.value.message


def test_mf_8_only_support_staff_clear_the_count(
    quick_stop: Dependencies, outbox: Outbox, clock: FakeClock
) -> None:
    """MF-8, SP-1: a User Manager cannot clear it; support staff can, and it is audited."""
    portal = open_portal(quick_stop, outbox, clock)
    codes = make_codes(portal)
    for _ in range(3):
        assert enter(portal, recovery_code, "0000-0000-0000-0000").reason == "wrong"
        clock.advance(minutes=5)
    staff = PracticeAdministration(portal.context)
    manager = portal.world.member(
        "manager@example.com", practice=portal.practice, roles=(Role.USER, Role.USER_MANAGER)
    )
    with pytest.raises(PermissionDenied) as caught:
        staff.clear_code_guesses(Secret(manager.token), user_id=portal.user.id)
    assert caught.value.code == "permission.support_only"
    with pytest.raises(PermissionDenied):
        staff.clear_code_guesses(portal.token, user_id=portal.user.id)
    assert wrong_codes(portal) == 3
    cleared = staff.clear_code_guesses(support(portal), user_id=portal.user.id)
    assert cleared.id == portal.user.id
    assert ledger(portal) is not None
    assert wrong_codes(portal) == 0
    [event] = [e for e in portal.events("code_guesses.cleared") if e.outcome == "ok"]
    assert dict(event.detail) == {"wrong_codes_cleared": "3"}
    assert enter(portal, recovery_code, codes[0]).accepted


@pytest.fixture
def roomy(context: Dependencies) -> Dependencies:
    """Rules that pause only far past 50 wrong codes: every simultaneous entry is checked."""
    return with_verification(context, pause_from_wrong_codes=100, stop_at_wrong_codes=200)


def test_mf_8_fifty_simultaneous_wrong_codes_count_fifty(
    roomy: Dependencies, outbox: Outbox, clock: FakeClock
) -> None:
    """MF-8: the count is exact under threads: 50 wrong entries at once count 50."""
    portal = open_portal(roomy, outbox, clock)
    app = app_of(portal.actions.start_authenticator(portal.token))
    wrong = wrong_app_code(app, clock.now())
    said = at_once(
        lambda: outcome(lambda: portal.actions.confirm_authenticator(portal.token, code=wrong)),
        times=50,
    )
    assert said == ["authenticator.wrong_code"] * 50
    assert wrong_codes(portal) == 50


def test_mf_8_fifty_simultaneous_wrong_codes_stop_at_the_pause(portal: Portal) -> None:
    """MF-8: of 50 wrong entries at once, exactly ten are checked; the rest meet the pause."""
    rules = portal.context.settings.verification
    app = enrol(portal)
    wrong = wrong_app_code(app, portal.clock.now())
    said = at_once(lambda: outcome(lambda: enter(portal, app_code, wrong)), times=50)
    assert said.count("wrong") == rules.pause_from_wrong_codes
    assert said.count("paused") == 50 - rules.pause_from_wrong_codes
    assert wrong_codes(portal) == rules.pause_from_wrong_codes
    assert len(portal.events("code_guesses.paused")) == 1
    assert (
        subjects(portal).count(f"Codes are paused on your {portal.context.portal_name} account")
        == 1
    )


@pytest.mark.parametrize("how", [app_code, recovery_code], ids=["authenticator", "recovery"])
@hypothesis_settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(typed=ANY_TEXT)
def test_mf_8_in_1_any_text_is_refused_with_a_code_or_checked_and_counted(
    portal: Portal, how: Enter, typed: str
) -> None:
    """MF-8, IN-1: an entry is refused unread with a stable code, or checked; only wrong counts."""
    if portal.credential().authenticator is None:
        enrol(portal)
        make_codes(portal)
    before = wrong_codes(portal)
    said = outcome(lambda: enter(portal, how, typed))
    counted = wrong_codes(portal) - before
    assert said.startswith(("text.", "authenticator.", "recovery_code.")) or said in {
        "wrong",
        "paused",
    }
    assert counted == (1 if said == "wrong" else 0)
