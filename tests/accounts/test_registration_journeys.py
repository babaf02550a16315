"""Registration journeys as the portal's "Login" help page tells them (RG-1..RG-6, ID-1..ID-3).

Each test runs on both stores. Links and codes are read from the outbox, as a
user reads their mail and phone.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from accounts.link_flows import Flows, token_of
from conftest import BASE_URL
from securepractice import InvalidState, InvalidToken
from securepractice.accounts.registration import RegistrationStage
from securepractice.accounts.signin import SignInOutcome
from securepractice.records import (
    DeliveryMethod,
    PhoneKind,
    RegistrationStatus,
    Role,
)
from securepractice.verification.codes import VerifyOutcome
from securepractice.verification.phones import DeliveryOption
from securepractice.verification.tokens import INVALID_LINK_MESSAGE

PASSWORD = "Bright-Smile-2026"
CELL = "+12025550143"
OFFICE = "+442079460958"


def _verify_by_text_then_call(
    flows: Flows, token: str, options: tuple[DeliveryOption, ...]
) -> None:
    """Steps 3-5: a text, "Re-Send Code", "Change Delivery Method" to a call, the code."""
    # A text, then "Re-Send Code": the first code stops working.
    office_call, by_text, _cell_call = options
    flows.accounts.send_code(token, option=by_text)
    first_code = flows.outbox.last_code(CELL)
    flows.clock.advance(minutes=1)
    flows.accounts.resend_code(token)
    second_code = flows.outbox.last_code(CELL)
    assert len(flows.outbox.sms) == 2
    if first_code != second_code:
        stale = flows.accounts.verify_code(token, code=first_code)
        assert stale.outcome is VerifyOutcome.WRONG_CODE  # VF-5

    # "Change Delivery Method": a call to the office; the texted code stops working.
    flows.clock.advance(minutes=1)
    flows.accounts.change_delivery_method(token, option=office_call)
    called_code = flows.outbox.last_code(OFFICE)
    assert len(flows.outbox.calls) == 1
    if second_code != called_code:
        stale = flows.accounts.verify_code(token, code=second_code)
        assert stale.outcome is VerifyOutcome.WRONG_CODE  # VF-6
    verified = flows.accounts.verify_code(token, code=called_code)
    assert verified.outcome is VerifyOutcome.VERIFIED


def test_a_invited_user_registers_by_text_then_call_and_signs_in(flows: Flows) -> None:
    """Steps 1-8: link, phones, text, re-send, call instead, verify, terms, password, sign in."""
    practice = flows.practice()
    manager = flows.accounts.invite(
        practice_id=practice.id, email="owner@smile.example", first_name="Olive"
    )
    user = flows.accounts.invite(
        practice_id=practice.id,
        email="Dr.Smith@Smile.Example",
        first_name="Dana",
        last_name="Smith",
        invited_by=manager.id,
    )
    assert user.email == "dr.smith@smile.example"  # ID-1
    assert user.status is RegistrationStatus.INVITED  # ID-3

    # Step 1: the email's link; the email names the username.
    email = flows.outbox.last_email("dr.smith@smile.example")
    assert "dr.smith@smile.example" in email.body
    link = flows.link("dr.smith@smile.example")
    assert link.startswith(f"{BASE_URL}/register?token=")  # RS-5
    token = token_of(link)
    opened = flows.accounts.open_invitation(token)
    assert opened.stage is RegistrationStage.PHONES
    assert opened.email == "dr.smith@smile.example"

    # Step 2: a cell phone and an office phone.
    step = flows.accounts.add_phones(token, cell="(202) 555-0143", phone="+44 20 7946 0958")
    assert step.stage is RegistrationStage.VERIFY
    assert [(o.method, o.destination) for o in step.delivery_options] == [
        (DeliveryMethod.VOICE, OFFICE),
        (DeliveryMethod.SMS, CELL),
        (DeliveryMethod.VOICE, CELL),
    ]

    _verify_by_text_then_call(flows, token, step.delivery_options)

    # Step 6: the Terms of Use.
    assert flows.accounts.open_invitation(token).stage is RegistrationStage.TERMS
    step = flows.accounts.accept_terms(token, version=flows.context.terms_version)
    assert step.stage is RegistrationStage.PASSWORD

    # Step 7: a password the instructions refuse, then a good one.
    weak = flows.accounts.set_password(token, password="smile", confirmation="smile")
    assert not weak.ok
    assert "password.too_short" in weak.codes
    assert flows.credential(user.id) is None
    report = flows.accounts.set_password(token, password=PASSWORD, confirmation=PASSWORD)
    assert report.ok
    stored = flows.user(user.id)
    assert stored.status is RegistrationStatus.REGISTERED  # ID-3
    credential = flows.credential(user.id)
    assert credential is not None
    assert flows.context.hasher.verify(credential.password_hash, PASSWORD)

    # Registration did not sign in (RG-2); the link is used up (RG-1).
    with pytest.raises(InvalidToken):
        flows.accounts.open_invitation(token)

    # Step 8: the login page.
    signed_in = flows.accounts.sign_in(email="dr.smith@smile.example", password=PASSWORD)
    assert signed_in.outcome is SignInOutcome.OK


def test_a_registration_audits_every_step_with_actor_subject_and_practice(flows: Flows) -> None:
    """AU-1: invitation sent and accepted, codes sent and verified, terms and password."""
    practice = flows.practice()
    manager = flows.accounts.invite(practice_id=practice.id, email="owner@smile.example")
    user = flows.accounts.invite(
        practice_id=practice.id, email="dana@smile.example", cell=CELL, invited_by=manager.id
    )
    token = flows.token("dana@smile.example")
    option = flows.accounts.open_invitation(token).delivery_options[0]
    flows.accounts.send_code(token, option=option)
    flows.accounts.verify_code(token, code="12")  # malformed: not counted
    flows.accounts.verify_code(token, code=flows.outbox.last_code(CELL))
    flows.accounts.accept_terms(token, version="1")
    flows.accounts.set_password(token, password=PASSWORD, confirmation=PASSWORD)

    mine = [e for e in flows.events() if e.subject_id == user.id]
    assert [e.action for e in mine] == [
        "invitation.sent",
        "code.sent",
        "code.failed",
        "code.verified",
        "terms.accepted",
        "invitation.accepted",
        "password.set",
    ]
    assert all(e.practice_id == practice.id for e in mine)
    sent = mine[0]
    assert sent.actor_id == manager.id
    assert all(e.actor_id == user.id for e in mine[1:])
    assert mine[2].outcome == "malformed"
    assert dict(mine[1].detail)["method"] == "sms"
    assert dict(mine[4].detail)["version"] == "1"
    assert dict(mine[5].detail)["status"] == "registered"


def test_g_two_step_turned_off_skips_the_code_step(flows: Flows) -> None:
    """VF-9: with two-step off, phones lead straight to the Terms of Use; status says unverified."""
    practice = flows.practice()
    user = flows.accounts.invite(practice_id=practice.id, email="dana@smile.example")
    flows.update_user(user.id, two_step_enabled=False)
    token = flows.token("dana@smile.example")

    step = flows.accounts.add_phones(token, cell=CELL)
    assert step.stage is RegistrationStage.TERMS
    assert step.delivery_options == ()
    with pytest.raises(InvalidState) as refused:
        flows.accounts.send_code(token, option=flows.accounts.delivery_options(token)[0])
    assert refused.value.code == "flow.out_of_order"
    assert flows.outbox.sms == ()

    flows.accounts.accept_terms(token, version="1")
    assert flows.accounts.set_password(token, password=PASSWORD, confirmation=PASSWORD).ok
    stored = flows.user(user.id)
    assert stored.status is RegistrationStatus.REGISTERED_UNVERIFIED  # ID-3
    assert stored.two_step_enabled is False


def test_vf_9_two_step_is_on_by_default_for_an_invited_user(flows: Flows) -> None:
    practice = flows.practice()
    user = flows.accounts.invite(practice_id=practice.id, email="dana@smile.example", cell=CELL)
    assert user.two_step_enabled is True
    step = flows.accounts.open_invitation(flows.token("dana@smile.example"))
    assert step.stage is RegistrationStage.VERIFY


def test_f_a_re_invite_kills_the_first_link(flows: Flows) -> None:
    """RG-4: inviting again sends a new link; the earlier one is refused with the one error."""
    practice = flows.practice()
    user = flows.accounts.invite(practice_id=practice.id, email="dana@smile.example")
    first = flows.token("dana@smile.example")
    flows.clock.advance(minutes=5)
    again = flows.accounts.invite(practice_id=practice.id, email="DANA@smile.example ")
    assert again.id == user.id
    second = flows.token("dana@smile.example")
    assert second != first

    with pytest.raises(InvalidToken) as refused:
        flows.accounts.open_invitation(first)
    assert refused.value.message == INVALID_LINK_MESSAGE
    assert flows.accounts.open_invitation(second).stage is RegistrationStage.PHONES
    assert flows.events("invitation.refused")[-1].outcome == "superseded"
    sent = flows.events("invitation.sent")
    assert [dict(e.detail)["again"] for e in sent] == ["false", "true"]
    assert dict(sent[-1].detail)["links_superseded"] == "1"


def test_rg_4_a_re_invite_ends_an_open_verification(flows: Flows) -> None:
    practice = flows.practice()
    flows.accounts.invite(practice_id=practice.id, email="dana@smile.example", cell=CELL)
    first = flows.token("dana@smile.example")
    option = flows.accounts.open_invitation(first).delivery_options[0]
    flows.accounts.send_code(first, option=option)
    code = flows.outbox.last_code(CELL)
    flows.clock.advance(minutes=1)
    flows.accounts.invite(practice_id=practice.id, email="dana@smile.example")
    second = flows.token("dana@smile.example")
    with pytest.raises(InvalidState) as refused:
        flows.accounts.verify_code(second, code=code)
    assert refused.value.code == "verification.not_started"


def test_rg_4_a_re_invite_may_correct_names_and_phones(flows: Flows) -> None:
    practice = flows.practice()
    user = flows.accounts.invite(
        practice_id=practice.id, email="dana@smile.example", first_name="Dan", cell=CELL
    )
    again = flows.accounts.invite(
        practice_id=practice.id, email="dana@smile.example", first_name="Dana", phone=OFFICE
    )
    assert again.first_name == "Dana"
    assert [p.kind for p in again.phones] == [PhoneKind.PHONE]
    assert flows.user(user.id) == again
    unchanged = flows.accounts.invite(practice_id=practice.id, email="dana@smile.example")
    assert unchanged == again


def test_rg_5_the_first_user_of_a_practice_is_its_user_manager(flows: Flows) -> None:
    """RG-5: the first user invited to each practice holds User Manager; later ones do not."""
    practice = flows.practice()
    other = flows.practice("Other Dental")
    first = flows.accounts.invite(practice_id=practice.id, email="first@smile.example")
    second = flows.accounts.invite(practice_id=practice.id, email="second@smile.example")
    elsewhere = flows.accounts.invite(practice_id=other.id, email="first@other.example")
    assert first.roles == {Role.USER, Role.USER_MANAGER}
    assert second.roles == {Role.USER}
    assert elsewhere.roles == {Role.USER, Role.USER_MANAGER}
    assert flows.user(first.id).roles == first.roles


def test_rg_1_an_invitation_link_expires_after_14_days(flows: Flows) -> None:
    practice = flows.practice()
    flows.accounts.invite(practice_id=practice.id, email="dana@smile.example")
    token = flows.token("dana@smile.example")
    flows.clock.advance(timedelta(days=14) - timedelta(seconds=1))
    assert flows.accounts.open_invitation(token).stage is RegistrationStage.PHONES
    flows.clock.advance(seconds=1)
    with pytest.raises(InvalidToken) as refused:
        flows.accounts.open_invitation(token)
    assert refused.value.message == INVALID_LINK_MESSAGE
    assert flows.events("invitation.refused")[-1].outcome == "expired"


def test_rg_1_opening_a_link_does_not_use_it_up(flows: Flows) -> None:
    practice = flows.practice()
    flows.accounts.invite(practice_id=practice.id, email="dana@smile.example")
    token = flows.token("dana@smile.example")
    for _ in range(3):
        assert flows.accounts.open_invitation(token).stage is RegistrationStage.PHONES


def test_rg_1_a_flow_cannot_complete_after_its_link_expired(flows: Flows) -> None:
    """The user reached the password step in time, but the link expired before "Continue"."""
    practice = flows.practice()
    user = flows.accounts.invite(practice_id=practice.id, email="dana@smile.example")
    flows.update_user(user.id, two_step_enabled=False)
    token = flows.token("dana@smile.example")
    flows.accounts.add_phones(token, cell=CELL)
    flows.accounts.accept_terms(token, version="1")
    flows.clock.advance(days=14)
    with pytest.raises(InvalidToken):
        flows.accounts.set_password(token, password=PASSWORD, confirmation=PASSWORD)
    assert flows.credential(user.id) is None
    assert flows.user(user.id).status is RegistrationStatus.INVITED
