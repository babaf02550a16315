"""Support staff on both stores: unlock, User Manager role, practice info, deactivation.

SP-1, LK-2, UM-8, PF-2, LK-6, AU-1.
"""

from __future__ import annotations

import pytest

from practice.office import SUPPORT, Office
from securepractice import (
    InvalidInput,
    InvalidToken,
    NotFound,
    PermissionDenied,
    Role,
    SignInReason,
)
from securepractice.records import revised
from securepractice.testing import PASSWORD


def test_sp1_lk2_support_unlocks_and_clears_the_failure_count(office: Office) -> None:
    """SP-1, LK-2: a locked user is unlocked by support, the count cleared; they sign in again."""
    signin = office.accounts
    for _ in range(office.context.settings.sign_in.max_failed_sign_ins):
        signin.sign_in(email="user@alpha.example", password="Wrong-password-1")
    assert office.get(office.user_a.id).locked
    assert signin.sign_in(email="user@alpha.example", password=PASSWORD).reason is (
        SignInReason.LOCKED
    )
    with office.context.storage.unit_of_work() as uow:
        failures = uow.sign_in_failures.count(office.user_a.id)
    assert failures >= office.context.settings.sign_in.max_failed_sign_ins

    unlocked = office.practice.unlock(office.support.token, user_id=office.user_a.id)

    assert not unlocked.locked
    with office.context.storage.unit_of_work() as uow:
        assert uow.sign_in_failures.count(office.user_a.id) == 0
        [event] = [
            e
            for e in uow.audit.events(subject_id=office.user_a.id)
            if e.action == "account.unlocked"
        ]
    assert event.actor_id == office.support.id
    assert event.practice_id == "practice-a"
    assert dict(event.detail) == {"was_locked": "true", "failures_cleared": str(failures)}
    assert signin.sign_in(email="user@alpha.example", password=PASSWORD).ok


def test_lk2_unlocking_an_unlocked_user_still_clears_the_count(office: Office) -> None:
    """LK-2: the failure count is cleared even when the account was not locked yet."""
    signin = office.accounts
    signin.sign_in(email="user@alpha.example", password="Wrong-password-1")
    office.practice.unlock(office.support.token, user_id=office.user_a.id)
    with office.context.storage.unit_of_work() as uow:
        assert uow.sign_in_failures.count(office.user_a.id) == 0
        [event] = [
            e
            for e in uow.audit.events(subject_id=office.user_a.id)
            if e.action == "account.unlocked"
        ]
    assert dict(event.detail) == {"was_locked": "false", "failures_cleared": "1"}


def test_sp1_only_support_unlocks(office: Office) -> None:
    """SP-1: a User Manager cannot unlock, even in their own practice."""
    with pytest.raises(PermissionDenied) as caught:
        office.practice.unlock(office.manager_a.token, user_id=office.user_a.id)
    assert caught.value.code == "permission.support_only"


def test_um8_support_grants_and_revokes_user_manager(office: Office) -> None:
    """UM-8: support grants the role (a practice may have many managers) and revokes it."""
    promoted = office.practice.grant_user_manager(office.support.token, user_id=office.user_a.id)
    assert Role.USER_MANAGER in promoted.roles
    assert Role.USER_MANAGER in office.get(office.manager_a.id).roles
    assert len(office.practice.list_users(office.user_a.token)) == 3
    again = office.practice.grant_user_manager(office.support.token, user_id=office.user_a.id)
    assert again == promoted
    demoted = office.practice.revoke_user_manager(office.support.token, user_id=office.user_a.id)
    assert Role.USER_MANAGER not in demoted.roles
    with pytest.raises(PermissionDenied):
        office.practice.list_users(office.user_a.token)
    with office.context.storage.unit_of_work() as uow:
        roles = [
            (e.action, dict(e.detail)["role"])
            for e in uow.audit.events(subject_id=office.user_a.id)
            if e.action.startswith("role.")
        ]
    assert roles == [("role.granted", "user_manager"), ("role.revoked", "user_manager")]


@pytest.mark.parametrize("who", ["manager_a", "user_a"])
def test_um8_only_support_changes_the_role(office: Office, who: str) -> None:
    """UM-8: a User Manager cannot make or unmake managers, not even in their practice."""
    token = getattr(office, who).token
    with pytest.raises(PermissionDenied) as granted:
        office.practice.grant_user_manager(token, user_id=office.user_a.id)
    assert granted.value.code == "permission.support_only"
    with pytest.raises(PermissionDenied):
        office.practice.revoke_user_manager(token, user_id=office.manager_a.id)
    assert Role.USER_MANAGER not in office.get(office.user_a.id).roles
    assert Role.USER_MANAGER in office.get(office.manager_a.id).roles


def test_pf2_support_edits_the_practice_main_account(office: Office) -> None:
    """PF-2, SP-1: name, address and phone (E.164) are changed by support; audited."""
    edited = office.practice.edit_practice(
        office.support.token,
        practice_id="practice-b",
        name="  Beta Medical Group ",
        address="1 Main St",
        phone="(202) 555-0143",
    )
    assert (edited.name, edited.address, edited.phone) == (
        "Beta Medical Group",
        "1 Main St",
        "+12025550143",
    )
    cleared = office.practice.edit_practice(
        office.support.token, practice_id="practice-b", phone=" "
    )
    assert cleared.phone == ""
    assert cleared.name == "Beta Medical Group"
    same = office.practice.edit_practice(office.support.token, practice_id="practice-b")
    assert same == cleared
    with office.context.storage.unit_of_work() as uow:
        assert uow.practices.get("practice-b") == cleared
        events = [
            e for e in uow.audit.events(practice_id="practice-b") if e.action == "practice.edited"
        ]
    assert [dict(e.detail)["fields"] for e in events] == ["name,address,phone", "phone"]
    assert {e.actor_id for e in events} == {office.support.id}


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"name": "  "}, "text.empty"),
        ({"address": 7}, "text.not_text"),
        ({"name": "Beta\u202e"}, "text.bidi_control"),
        ({"name": "B" * 1_000_000}, "text.too_long"),
        ({"address": "1 Main St\x00"}, "text.control_character"),
        ({"phone": "12"}, None),
    ],
)
def test_pf2_bad_practice_info_is_refused(
    office: Office, fields: dict[str, object], code: str | None
) -> None:
    """A blank name, non-text address or bad phone is refused; the practice is unchanged."""
    with pytest.raises(InvalidInput) as caught:
        office.practice.edit_practice(
            office.support.token,
            practice_id="practice-a",
            **fields,  # type: ignore[arg-type]
        )
    if code is not None:
        assert caught.value.code == code
    with office.context.storage.unit_of_work() as uow:
        assert uow.practices.get("practice-a") == office.practice_a


def test_pf2_a_manager_cannot_edit_their_practice(office: Office) -> None:
    """PF-2: the practice's main account information is changed only by support staff."""
    with pytest.raises(PermissionDenied) as caught:
        office.practice.edit_practice(office.manager_a.token, practice_id="practice-a", name="Mine")
    assert caught.value.code == "permission.support_only"


def test_pf2_unknown_practice_is_not_found(office: Office) -> None:
    """An unknown practice id is a clear NotFound."""
    with pytest.raises(NotFound) as caught:
        office.practice.edit_practice(office.support.token, practice_id="nope", name="X")
    assert caught.value.code == "practice.not_found"


def test_lk6_deactivation_ends_every_session_and_sign_in(office: Office) -> None:
    """LK-6: deactivating a user revokes every session; they cannot sign in."""
    second_session = office.world.sign_in("user@alpha.example")
    deactivated = office.practice.deactivate(office.support.token, user_id=office.user_a.id)
    assert deactivated.deactivated
    signin = office.accounts
    for token in (office.user_a.token, second_session):
        with pytest.raises(InvalidToken):
            signin.touch_session(token)
    result = signin.sign_in(email="user@alpha.example", password=PASSWORD)
    assert result.reason is SignInReason.DEACTIVATED
    again = office.practice.deactivate(office.support.token, user_id=office.user_a.id)
    assert again == deactivated
    with office.context.storage.unit_of_work() as uow:
        [event] = [
            e
            for e in uow.audit.events(subject_id=office.user_a.id)
            if e.action == "account.deactivated"
        ]
    assert dict(event.detail) == {"sessions_revoked": "2"}


def test_sp1_support_does_not_act_on_other_staff(office: Office) -> None:
    """Support actions apply to practice users; other staff are out of reach."""
    other = office.world.member("other@portal.example", roles=SUPPORT)
    with pytest.raises(PermissionDenied) as caught:
        office.practice.deactivate(office.support.token, user_id=other.id)
    assert caught.value.code == "permission.not_practice_user"
    assert not office.get(other.id).deactivated


def test_a_deactivated_or_locked_actor_can_do_nothing(office: Office) -> None:
    """A deactivated support member's session is gone: the action is refused, nothing changes."""
    other = office.world.member("other@portal.example", roles=SUPPORT)
    office.practice.deactivate(office.support.token, user_id=office.manager_a.id)
    with pytest.raises(InvalidToken):
        office.practice.list_users(office.manager_a.token)
    with office.context.storage.unit_of_work() as uow:
        user = uow.users.get(other.id)
        assert user is not None
        uow.users.save(revised(user, locked=True), expected_version=user.version)
    with pytest.raises(InvalidToken):
        office.practice.unlock(other.token, user_id=office.user_a.id)
