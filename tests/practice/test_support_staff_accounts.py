"""Support staff made through the library, never by writing records (OP-1), on every store.

A member of support staff, or the operator (`securepractice.admin`), invites
them; they register from the e-mailed link like a practice user, under the
password policy and two-step verification; the staff are listed and
deactivated, never the last active one. Every step is audited.
"""

from __future__ import annotations

import threading

import pytest

from practice.office import Office, link_token
from securepractice import (
    AlreadyExists,
    InvalidInput,
    InvalidState,
    InvalidToken,
    PermissionDenied,
    Role,
)
from securepractice import admin as operator
from securepractice.accounts.registration import RegistrationStage
from securepractice.policy.roles import is_support
from securepractice.practice import support
from securepractice.records import AuditEvent, RegistrationStatus, User
from securepractice.testing import PASSWORD
from securepractice.verification.codes import VerifyOutcome

NEW = "new.helper@portal.example"
CELL = "+12025550143"
GOOD_PASSWORD = "Harbour-Light-2026"


def events(office: Office, action: str) -> list[AuditEvent]:
    with office.context.storage.unit_of_work() as uow:
        return [e for e in uow.audit.events() if e.action == action]


def stored(office: Office, email: str) -> User | None:
    with office.context.storage.unit_of_work() as uow:
        return uow.users.get_by_email(email)


def register(office: Office, email: str, password: str = GOOD_PASSWORD) -> None:
    """Follow the invitation e-mailed to ``email`` to the end, as the invitee does."""
    token = link_token(office.outbox.last_link(email))
    accounts = office.accounts
    accounts.add_phones(token, cell=CELL)
    accounts.send_code(token, option=accounts.delivery_options(token)[0])
    assert accounts.verify_code(token, code=office.outbox.last_code(CELL)).verified
    accounts.accept_terms(token, version=office.context.terms_version)
    assert accounts.set_password(token, password=password, confirmation=password).ok


def test_op1_support_staff_register_under_the_password_policy_and_two_step(
    office: Office,
) -> None:
    """OP-1: the invitee follows every step; a weak password and a skipped code are refused."""
    invited = support.create_support_staff(
        office.practice, office.support.token, email="New.Helper@Portal.Example", first_name="Ann"
    )
    assert invited.email == NEW
    assert invited.practice_id is None
    assert invited.roles == frozenset({Role.SUPPORT})
    assert invited.status is RegistrationStatus.INVITED
    with office.context.storage.unit_of_work() as uow:
        assert uow.credentials.get(invited.id) is None  # no password is made for them

    token = link_token(office.outbox.last_link(NEW))
    accounts = office.accounts
    assert accounts.open_invitation(token).stage is RegistrationStage.PHONES
    step = accounts.add_phones(token, cell=CELL)
    assert step.stage is RegistrationStage.VERIFY  # two-step applies to staff too
    with pytest.raises(InvalidState) as skipped:
        accounts.accept_terms(token, version=office.context.terms_version)
    assert skipped.value.code == "flow.out_of_order"
    accounts.send_code(token, option=step.delivery_options[0])
    wrong = "000000" if office.outbox.last_code(CELL) != "000000" else "111111"
    assert accounts.verify_code(token, code=wrong).outcome is VerifyOutcome.WRONG_CODE
    assert accounts.verify_code(token, code=office.outbox.last_code(CELL)).verified
    accounts.accept_terms(token, version=office.context.terms_version)

    weak = accounts.set_password(token, password="helper", confirmation="helper")
    assert not weak.ok
    assert {"password.too_short", "password.no_digit"} <= {v.code for v in weak.violations}
    with office.context.storage.unit_of_work() as uow:
        assert uow.credentials.get(invited.id) is None
    assert accounts.set_password(token, password=GOOD_PASSWORD, confirmation=GOOD_PASSWORD).ok

    member = stored(office, NEW)
    assert member is not None
    assert member.status is RegistrationStatus.REGISTERED
    assert is_support(member)
    signed_in = accounts.sign_in(email=NEW, password=GOOD_PASSWORD)
    assert signed_in.ok
    assert signed_in.session_token is not None
    listed = support.list_support_staff(office.practice, signed_in.session_token.reveal())
    assert [u.email for u in listed] == ["help@portal.example", NEW]


def test_op1_creating_support_staff_is_audited_with_its_actor(office: Office) -> None:
    """OP-1: the invitation, the registration and the password are audited, naming the actor."""
    invited = support.create_support_staff(office.practice, office.support.token, email=NEW)
    register(office, NEW)
    [created] = events(office, "support_staff.invited")
    assert (created.actor_id, created.subject_id, created.outcome) == (
        office.support.id,
        invited.id,
        "ok",
    )
    assert dict(created.detail) == {"again": "false"}
    [sent] = events(office, "invitation.sent")
    assert sent.actor_id == office.support.id
    assert sent.subject_id == invited.id
    for action in ("code.verified", "terms.accepted", "invitation.accepted", "password.set"):
        [event] = [e for e in events(office, action) if e.subject_id == invited.id]
        assert event.actor_id == invited.id


def test_op1_the_operator_creates_support_staff_named_in_the_audit(office: Office) -> None:
    """OP-1: with no session, the operator invites; the audit's actor is ``operator:<name>``."""
    invited = operator.create_support_staff(office.practice, "jane", email=NEW, last_name="Lee")
    assert invited.roles == frozenset({Role.SUPPORT})
    register(office, NEW)
    [created] = events(office, "support_staff.invited")
    assert created.actor_id == "operator:jane"
    assert created.subject_id == invited.id
    [sent] = events(office, "invitation.sent")
    assert sent.actor_id == "operator:jane"
    member = stored(office, NEW)
    assert member is not None
    assert member.status is RegistrationStatus.REGISTERED
    assert member.last_name == "Lee"


def test_op1_inviting_staff_again_voids_the_earlier_link(office: Office) -> None:
    """OP-1, RG-4: a second invitation sends a new link; the first one no longer opens."""
    support.create_support_staff(office.practice, office.support.token, email=NEW)
    first = link_token(office.outbox.last_link(NEW))
    again = operator.create_support_staff(office.practice, "jane", email=NEW)
    second = link_token(office.outbox.last_link(NEW))
    assert first != second
    with pytest.raises(InvalidToken):
        office.accounts.open_invitation(first)
    assert office.accounts.open_invitation(second).stage is RegistrationStage.PHONES
    assert [dict(e.detail)["again"] for e in events(office, "support_staff.invited")] == [
        "false",
        "true",
    ]
    assert again.roles == frozenset({Role.SUPPORT})


def test_op1_only_support_staff_create_support_staff(office: Office) -> None:
    """OP-1: a User Manager or a user is refused, audited, and no one is stored or e-mailed."""
    for actor in (office.manager_a, office.user_a):
        with pytest.raises(PermissionDenied) as refused:
            support.create_support_staff(office.practice, actor.token, email=NEW)
        assert refused.value.code == "permission.support_only"
    assert stored(office, NEW) is None
    assert [e.to for e in office.outbox.emails] == []
    refusals = events(office, "support_staff.invited")
    assert [(e.actor_id, e.outcome) for e in refusals] == [
        (office.manager_a.id, "permission.support_only"),
        (office.user_a.id, "permission.support_only"),
    ]


@pytest.mark.parametrize(
    ("email", "code"),
    [
        ("user@alpha.example", "user.email_taken"),
        ("invited@alpha.example", "user.email_taken"),
        ("help@portal.example", "user.already_registered"),
    ],
)
def test_op1_an_email_in_use_is_refused(office: Office, email: str, code: str) -> None:
    """OP-1, ID-2: a practice user's email, or registered staff's, cannot become a new invitee."""
    before = stored(office, email)
    with pytest.raises(AlreadyExists) as refused:
        support.create_support_staff(office.practice, office.support.token, email=email)
    assert refused.value.code == code
    assert office.outbox.emails == ()
    assert stored(office, email) == before


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"email": "not an email"}, "email"),
        ({"email": NEW, "first_name": "Ann\u202e"}, "first_name"),
        ({"email": NEW, "last_name": "x" * 101}, "last_name"),
    ],
)
def test_op1_bad_invitee_details_are_refused_before_anything_is_stored(
    office: Office, given: dict[str, str], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        support.create_support_staff(office.practice, office.support.token, **given)
    assert refused.value.field == field
    assert stored(office, NEW) is None
    assert office.outbox.emails == ()


@pytest.mark.parametrize("name", ["", "   ", "jane\nroot", "j\u200bane"])
def test_op1_the_operator_must_give_a_plain_name(office: Office, name: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        operator.create_support_staff(office.practice, name, email=NEW)
    assert refused.value.field == "by"
    assert stored(office, NEW) is None


def test_op1_support_staff_are_listed_without_practice_users(office: Office) -> None:
    """OP-1: the list holds the staff, invited and registered, by email; managers are refused."""
    support.create_support_staff(
        office.practice, office.support.token, email="a.new@portal.example"
    )
    listed = support.list_support_staff(office.practice, office.support.token)
    assert [(u.email, u.status) for u in listed] == [
        ("a.new@portal.example", RegistrationStatus.INVITED),
        ("help@portal.example", RegistrationStatus.REGISTERED),
    ]
    assert [u.email for u in operator.list_support_staff(office.practice, "jane")] == [
        "a.new@portal.example",
        "help@portal.example",
    ]
    with pytest.raises(PermissionDenied) as refused:
        support.list_support_staff(office.practice, office.manager_a.token)
    assert refused.value.code == "permission.support_only"


def test_op1_support_staff_are_deactivated_and_lose_their_sessions(office: Office) -> None:
    """OP-1, LK-6: a deactivated member's sessions end and they cannot sign in again."""
    second = office.world.member("second@portal.example", roles=(Role.SUPPORT,))
    done = support.deactivate_support_staff(
        office.practice, office.support.token, user_id=second.id
    )
    assert done.deactivated
    with pytest.raises(InvalidToken):
        support.list_support_staff(office.practice, second.token)
    assert not office.accounts.sign_in(email="second@portal.example", password=PASSWORD).ok
    [event] = [e for e in events(office, "account.deactivated") if e.subject_id == second.id]
    assert event.actor_id == office.support.id
    assert dict(event.detail) == {"sessions_revoked": "1"}


def test_op1_the_last_active_member_is_never_deactivated(office: Office) -> None:
    """OP-1: neither the member themselves nor the operator deactivate the last active one."""
    invitee = support.create_support_staff(office.practice, office.support.token, email=NEW)
    with pytest.raises(InvalidState) as own:
        support.deactivate_support_staff(
            office.practice, office.support.token, user_id=office.support.id
        )
    assert own.value.code == "support_staff.last_active"
    with pytest.raises(InvalidState) as by_operator:
        operator.deactivate_support_staff(office.practice, "jane", user_id=office.support.id)
    assert by_operator.value.code == "support_staff.last_active"
    assert not office.get(office.support.id).deactivated
    refusals = [e for e in events(office, "account.deactivated") if e.outcome != "ok"]
    assert [(e.actor_id, e.outcome) for e in refusals] == [
        (office.support.id, "support_staff.last_active"),
        ("operator:jane", "support_staff.last_active"),
    ]
    # An invitee who never registered is not active: withdrawing them is always possible.
    assert operator.deactivate_support_staff(
        office.practice, "jane", user_id=invitee.id
    ).deactivated


def test_op1_of_the_last_two_deactivated_at_once_one_stays_active(office: Office) -> None:
    """OP-1: two deactivations racing for the last two active members leave one of them."""
    second = office.world.member("second@portal.example", roles=(Role.SUPPORT,))
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def deactivate(user_id: str) -> None:
        start.wait()
        try:
            operator.deactivate_support_staff(office.practice, "jane", user_id=user_id)
            outcomes.append("ok")
        except InvalidState as refused:
            outcomes.append(refused.code)

    threads = [
        threading.Thread(target=deactivate, args=(user_id,))
        for user_id in (office.support.id, second.id)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok", "support_staff.last_active"]
    active = [
        u for u in (office.get(office.support.id), office.get(second.id)) if not u.deactivated
    ]
    assert len(active) == 1


def test_op1_staff_actions_apply_to_staff_and_practice_actions_to_practice_users(
    office: Office,
) -> None:
    """OP-1, SP-1: no deactivating a practice user as staff, nor unlocking staff as support."""
    with pytest.raises(PermissionDenied) as not_staff:
        support.deactivate_support_staff(
            office.practice, office.support.token, user_id=office.user_a.id
        )
    assert not_staff.value.code == "permission.not_support_staff"
    assert not office.get(office.user_a.id).deactivated
    second = office.world.member("second@portal.example", roles=(Role.SUPPORT,))
    with pytest.raises(PermissionDenied) as staff:
        operator.unlock(office.practice, "jane", user_id=second.id)
    assert staff.value.code == "permission.not_practice_user"
    with pytest.raises(PermissionDenied) as by_manager:
        support.deactivate_support_staff(office.practice, office.manager_a.token, user_id=second.id)
    assert by_manager.value.code == "permission.support_only"


def test_op1_the_operator_unlocks_and_sets_the_user_manager_role(office: Office) -> None:
    """OP-1, SP-1, LK-2, UM-8: the operator acts as support does, audited as operator:<name>."""
    for _ in range(office.context.settings.sign_in.max_failed_sign_ins):
        office.accounts.sign_in(email="user@alpha.example", password="Wrong-password-1")
    assert office.get(office.user_a.id).locked
    assert not operator.unlock(office.practice, "jane", user_id=office.user_a.id).locked
    assert office.accounts.sign_in(email="user@alpha.example", password=PASSWORD).ok

    promoted = operator.grant_user_manager(office.practice, "jane", user_id=office.user_a.id)
    assert Role.USER_MANAGER in promoted.roles
    demoted = operator.revoke_user_manager(office.practice, "jane", user_id=office.user_a.id)
    assert Role.USER_MANAGER not in demoted.roles
    for action in ("account.unlocked", "role.granted", "role.revoked"):
        [event] = events(office, action)
        assert (event.actor_id, event.subject_id, event.practice_id) == (
            "operator:jane",
            office.user_a.id,
            "practice-a",
        )


def test_op1_an_operator_refusal_is_audited_and_changes_nothing(office: Office) -> None:
    with pytest.raises(PermissionDenied):
        operator.grant_user_manager(office.practice, "jane", user_id=office.support.id)
    assert Role.USER_MANAGER not in office.get(office.support.id).roles
    [refusal] = events(office, "role.granted")
    assert refusal.outcome == "permission.not_practice_user"
    assert refusal.actor_id == "operator:jane"
    assert dict(refusal.detail) == {"target": office.support.id}
