"""Manage Users on both stores: list, edit invited users, re-invite, two-step (UM-2..UM-5, UM-9)."""

from __future__ import annotations

import inspect
import re

import pytest

from practice.office import Office, link_token
from securepractice import (
    AlreadyExists,
    InvalidInput,
    InvalidState,
    InvalidToken,
    NotFound,
    PermissionDenied,
    Phone,
    PhoneKind,
    PracticeAdministration,
    RegistrationStage,
    RegistrationStatus,
)


def invite(office: Office, email: str, practice_id: str = "practice-a") -> tuple[str, str]:
    """Invite through the registration flow; return the user's id and the link's token."""
    user = office.accounts.invite(practice_id=practice_id, email=email, phone="+1 202 555 0143")
    return user.id, link_token(office.outbox.last_link(user.email))


def test_um3_lists_every_user_of_the_practice_with_status(office: Office) -> None:
    """UM-3, ID-3: every user invited to the manager's practice, with their status; no other."""
    listed = office.practice.list_users(office.manager_a.token)
    by_email = {line.email: line for line in listed}
    assert set(by_email) == {"manager@alpha.example", "user@alpha.example", "invited@alpha.example"}
    assert by_email["invited@alpha.example"].status is RegistrationStatus.INVITED
    assert by_email["user@alpha.example"].status is RegistrationStatus.REGISTERED
    assert by_email["manager@alpha.example"].user_manager
    assert not by_email["user@alpha.example"].user_manager
    assert [line.email for line in listed] == sorted(by_email)


def test_um3_a_plain_user_or_support_cannot_list_users(office: Office) -> None:
    """UM-2: Manage Users is a User Manager's view."""
    with pytest.raises(PermissionDenied) as plain:
        office.practice.list_users(office.user_a.token)
    assert plain.value.code == "permission.not_user_manager"
    with pytest.raises(PermissionDenied) as staff:
        office.practice.list_users(office.support.token)
    assert staff.value.code == "permission.not_support_action"


def test_um4_edit_email_of_invited_user_supersedes_links(office: Office) -> None:
    """UM-4: a new email is normalised, kept, and every outstanding invitation link dies."""
    user_id, token = invite(office, "typo@alpha.exmaple")
    registration = office.accounts
    assert registration.open_invitation(token).stage is RegistrationStage.VERIFY

    edited = office.practice.edit_invited_user(
        office.manager_a.token, user_id=user_id, email="  Right@ALPHA.example "
    )

    assert edited.email == "right@alpha.example"
    assert office.get(user_id).email == "right@alpha.example"
    with pytest.raises(InvalidToken):
        registration.open_invitation(token)
    office.practice.reinvite(office.manager_a.token, user_id=user_id)
    fresh = link_token(office.outbox.last_link("right@alpha.example"))
    assert registration.open_invitation(fresh).email == "right@alpha.example"


def test_um4_edit_phone_and_cell_of_invited_user(office: Office) -> None:
    """UM-4, VF-1: numbers are parsed to E.164; a blank one is removed; the link still works."""
    user_id, token = invite(office, "newbie@alpha.example")
    edited = office.practice.edit_invited_user(
        office.manager_a.token, user_id=user_id, phone="", cell="(202) 555-0199"
    )
    assert edited.phones == (Phone(number="+12025550199", kind=PhoneKind.CELL),)
    step = office.accounts.open_invitation(token)
    assert step.stage is RegistrationStage.VERIFY
    events = office_events(office, user_id)
    assert ("user.edited", "ok") in events


def office_events(office: Office, user_id: str) -> list[tuple[str, str]]:
    with office.context.storage.unit_of_work() as uow:
        return [(e.action, e.outcome) for e in uow.audit.events(subject_id=user_id)]


def test_um4_nothing_to_change_changes_nothing(office: Office) -> None:
    """An edit that changes no field writes nothing."""
    before = office_events(office, office.invited_a.id)
    same = office.practice.edit_invited_user(
        office.manager_a.token, user_id=office.invited_a.id, email="INVITED@alpha.example"
    )
    assert same == office.invited_a
    assert office_events(office, office.invited_a.id) == before


def test_um4_registered_users_cannot_be_edited(office: Office) -> None:
    """UM-4: only a user who has not finished registration is edited by the manager."""
    with pytest.raises(InvalidState) as caught:
        office.practice.edit_invited_user(
            office.manager_a.token, user_id=office.user_a.id, email="other@alpha.example"
        )
    assert caught.value.code == "user.already_registered"
    assert office.get(office.user_a.id).email == "user@alpha.example"


@pytest.mark.parametrize(
    ("fields", "error", "code"),
    [
        ({"email": "user@beta.example"}, AlreadyExists, "user.email_taken"),
        ({"email": "not an email"}, InvalidInput, None),
        ({"phone": "12"}, InvalidInput, None),
        ({"cell": "+1 202 555 0143 ext. 7"}, InvalidInput, "phone.has_extension"),
    ],
)
def test_um4_bad_edits_are_refused_and_change_nothing(
    office: Office, fields: dict[str, str], error: type[Exception], code: str | None
) -> None:
    """ID-1, ID-2, VF-1, VF-3: a taken or malformed value is refused; nothing is kept."""
    before = office.get(office.invited_a.id)
    with pytest.raises(error) as caught:
        office.practice.edit_invited_user(
            office.manager_a.token, user_id=office.invited_a.id, **fields
        )
    if code is not None:
        assert getattr(caught.value, "code", None) == code
    assert office.get(office.invited_a.id) == before


def test_reinvite_sends_a_new_link_and_kills_the_old(office: Office) -> None:
    """RG-4, UM-4: a re-invitation by the manager is the registration flow's invitation."""
    user_id, old = invite(office, "late@alpha.example")
    office.outbox.clear()
    office.practice.reinvite(office.manager_a.token, user_id=user_id)
    email = office.outbox.last_email("late@alpha.example")
    assert "invited" in email.subject
    new = link_token(office.outbox.last_link("late@alpha.example"))
    registration = office.accounts
    assert registration.open_invitation(new).email == "late@alpha.example"
    with pytest.raises(InvalidToken):
        registration.open_invitation(old)
    with office.context.storage.unit_of_work() as uow:
        sent = [e for e in uow.audit.events(subject_id=user_id) if e.action == "invitation.sent"]
    assert sent[-1].actor_id == office.manager_a.id


def test_reinvite_refuses_registered_and_deactivated_users(office: Office) -> None:
    """Only a user still invited gets a new link; nothing is sent otherwise."""
    office.outbox.clear()
    with pytest.raises(InvalidState) as registered:
        office.practice.reinvite(office.manager_a.token, user_id=office.user_a.id)
    assert registered.value.code == "user.already_registered"
    office.practice.deactivate(office.support.token, user_id=office.invited_a.id)
    with pytest.raises(InvalidState) as gone:
        office.practice.reinvite(office.manager_a.token, user_id=office.invited_a.id)
    assert gone.value.code == "user.deactivated"
    assert office.outbox.emails == ()


def test_reinvite_unknown_user_is_not_found(office: Office) -> None:
    """A re-invitation names an existing user: it never creates one (UM-9)."""
    with pytest.raises(NotFound) as caught:
        office.practice.reinvite(office.manager_a.token, user_id="no-such-user")
    assert caught.value.code == "user.not_found"


def test_um5_manager_turns_two_step_off_and_on(office: Office) -> None:
    """UM-5, VF-9, RC-2: the manager toggles two-step verification for a user of the practice."""
    off = office.practice.set_two_step_for(
        office.manager_a.token, user_id=office.user_a.id, enabled=False, reason="Lost her phone"
    )
    assert not off.two_step_enabled
    assert not office.get(office.user_a.id).two_step_enabled
    again = office.practice.set_two_step_for(
        office.manager_a.token, user_id=office.user_a.id, enabled=False, reason="Lost her phone"
    )
    assert again == off
    on = office.practice.set_two_step_for(
        office.manager_a.token, user_id=office.user_a.id, enabled=True
    )
    assert on.two_step_enabled
    with office.context.storage.unit_of_work() as uow:
        toggles = [
            dict(e.detail)["enabled"]
            for e in uow.audit.events(subject_id=office.user_a.id)
            if e.action == "two_step.toggled"
        ]
    assert toggles == ["off", "on"]


def test_um5_two_step_flag_must_be_a_bool(office: Office) -> None:
    """A truthy string is not a yes: the flag is True or False."""
    with pytest.raises(InvalidInput) as caught:
        office.practice.set_two_step_for(
            office.manager_a.token,
            user_id=office.user_a.id,
            enabled="no",  # type: ignore[arg-type]
        )
    assert caught.value.code == "profile.not_bool"


def test_um9_manage_users_has_no_invite_action() -> None:
    """UM-9: new users arrive by invitation only; Manage Users cannot invite anyone."""
    names = [name for name, _ in inspect.getmembers(PracticeAdministration, inspect.isfunction)]
    assert "reinvite" in names
    assert not [n for n in names if re.search(r"(^|_)invite(_|s?$)", n)]
    assert not hasattr(PracticeAdministration, "invite")
    assert "email" not in inspect.signature(PracticeAdministration.reinvite).parameters


def test_a_refusal_is_audited_without_touching_the_subject(office: Office) -> None:
    """AU-1, UM-2: a refused attempt is recorded for the actor, not on the other user."""
    before = office_events(office, office.user_b.id)
    with pytest.raises(PermissionDenied):
        office.practice.set_two_step_for(
            office.manager_a.token, user_id=office.user_b.id, enabled=False, reason="Lost her phone"
        )
    assert office_events(office, office.user_b.id) == before
    with office.context.storage.unit_of_work() as uow:
        refused = [e for e in uow.audit.events(practice_id="practice-a") if e.outcome != "ok"]
    assert refused[-1].action == "two_step.toggled"
    assert refused[-1].outcome == "permission.other_practice"
    assert refused[-1].actor_id == office.manager_a.id
    assert dict(refused[-1].detail) == {"target": office.user_b.id}


def test_an_ended_session_cannot_manage_users(office: Office) -> None:
    """Every action needs a live session; a bad token is the session error, not audited."""
    with pytest.raises(InvalidToken) as caught:
        office.practice.list_users("not-a-session")
    assert caught.value.code == "session.invalid"
