"""Registration rules one by one: order, one link error, identity and inputs (RG-1..RG-6, ID)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import attrs
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.link_flows import Flows, LosingStore
from conftest import CHEAP_HASHING, SECRET
from securepractice import (
    AlreadyExists,
    DeliveryFailed,
    InvalidInput,
    InvalidState,
    InvalidToken,
    LinkRules,
    NotFound,
    PasswordHasher,
    Settings,
    SettingsError,
)
from securepractice.accounts.registration import RegistrationStage
from securepractice.dependencies import Dependencies
from securepractice.portal import Accounts, PracticeAdministration
from securepractice.records import Purpose, RegistrationStatus, TokenPurpose, User
from securepractice.secret import Secret
from securepractice.storage.ports import Storage
from securepractice.verification import tokens
from securepractice.verification.tokens import INVALID_LINK_MESSAGE

PASSWORD = "Bright-Smile-2026"
CELL = "+12025550143"


def _snapshot(store: Storage, user_id: str) -> tuple[object, ...]:
    """Everything a registration step may change for the user.

    A refused step leaves one trace, its refusal in the audit log (CX-1):
    that is not a change of the user's registration.
    """
    with store.unit_of_work() as uow:
        return (
            uow.users.get(user_id),
            tuple(uow.terms.list_for_user(user_id)),
            uow.credentials.get(user_id),
            uow.challenges.latest(user_id, Purpose.REGISTRATION),
            len([e for e in uow.audit.events() if e.action != "request.refused"]),
        )


def _invited(flows: Flows, **changes: object) -> tuple[User, str]:
    practice = flows.practice()
    user = flows.accounts.invite(practice_id=practice.id, email="dana@smile.example")
    if changes:
        user = flows.update_user(user.id, **changes)
    return user, flows.token("dana@smile.example")


def _out_of_order(flows: Flows, user: User, action: Callable[[], object]) -> None:
    before = _snapshot(flows.store, user.id)
    sent = len(flows.outbox.sms) + len(flows.outbox.calls)
    with pytest.raises(InvalidState) as refused:
        action()
    assert refused.value.code == "flow.out_of_order"
    assert _snapshot(flows.store, user.id) == before
    assert len(flows.outbox.sms) + len(flows.outbox.calls) == sent


def test_rg_2_nothing_after_the_phones_before_them(flows: Flows) -> None:
    user, token = _invited(flows)
    options = flows.accounts.delivery_options(token)
    assert options == ()
    act = flows.accounts
    _out_of_order(flows, user, lambda: act.accept_terms(token, version="1"))
    _out_of_order(
        flows, user, lambda: act.set_password(token, password=PASSWORD, confirmation=PASSWORD)
    )
    _out_of_order(flows, user, lambda: act.verify_code(token, code="123456"))
    _out_of_order(flows, user, lambda: act.resend_code(token))


def test_rg_2_no_terms_or_password_before_the_code(flows: Flows) -> None:
    user, token = _invited(flows)
    flows.accounts.add_phones(token, cell=CELL)
    act = flows.accounts
    _out_of_order(flows, user, lambda: act.accept_terms(token, version="1"))
    _out_of_order(
        flows, user, lambda: act.set_password(token, password=PASSWORD, confirmation=PASSWORD)
    )


def test_rg_2_no_password_before_the_terms_and_no_going_back(flows: Flows) -> None:
    user, token = _invited(flows)
    step = flows.accounts.add_phones(token, cell=CELL)
    flows.accounts.send_code(token, option=step.delivery_options[0])
    flows.accounts.verify_code(token, code=flows.outbox.last_code(CELL))
    act = flows.accounts
    _out_of_order(
        flows, user, lambda: act.set_password(token, password=PASSWORD, confirmation=PASSWORD)
    )
    _out_of_order(flows, user, lambda: act.add_phones(token, phone=CELL))
    _out_of_order(flows, user, lambda: act.send_code(token, option=step.delivery_options[0]))
    _out_of_order(flows, user, lambda: act.resend_code(token))
    act.accept_terms(token, version="1")
    _out_of_order(flows, user, lambda: act.accept_terms(token, version="1"))


def test_rg_2_phones_can_be_corrected_until_verified(flows: Flows) -> None:
    user, token = _invited(flows)
    step = flows.accounts.add_phones(token, cell="+1 202 555 0100")
    flows.accounts.send_code(token, option=step.delivery_options[0])
    step = flows.accounts.add_phones(token, cell=CELL)
    assert step.stage is RegistrationStage.VERIFY
    assert {o.destination for o in step.delivery_options} == {CELL}
    with pytest.raises(InvalidState) as ended:
        flows.accounts.resend_code(token)
    assert ended.value.code == "verification.not_active"
    assert flows.user(user.id).phones[0].number == CELL


def test_rg_3_terms_are_recorded_with_version_and_time(flows: Flows) -> None:
    """RG-3: only the current Terms of Use are accepted, kept with their version and time."""
    user, token = _invited(flows, two_step_enabled=False)
    flows.accounts.add_phones(token, cell=CELL)
    with pytest.raises(InvalidInput) as outdated:
        flows.accounts.accept_terms(token, version="0")
    assert outdated.value.code == "terms.outdated"
    assert outdated.value.field == "version"
    flows.clock.advance(minutes=3)
    flows.accounts.accept_terms(token, version="1")
    with flows.store.unit_of_work() as uow:
        accepted = uow.terms.list_for_user(user.id)
    assert [(a.version, a.accepted_at) for a in accepted] == [("1", flows.clock.now())]


def test_rg_6_unknown_expired_used_superseded_links_give_one_error(flows: Flows) -> None:
    practice = flows.practice()
    refusals: list[InvalidToken] = []

    def refused(token: str) -> None:
        with pytest.raises(InvalidToken) as error:
            flows.accounts.open_invitation(token)
        refusals.append(error.value)

    # superseded
    flows.accounts.invite(practice_id=practice.id, email="a@smile.example")
    old = flows.token("a@smile.example")
    flows.accounts.invite(practice_id=practice.id, email="a@smile.example")
    refused(old)
    # used
    user = flows.accounts.invite(practice_id=practice.id, email="b@smile.example")
    flows.update_user(user.id, two_step_enabled=False)
    used = flows.token("b@smile.example")
    flows.accounts.add_phones(used, cell=CELL)
    flows.accounts.accept_terms(used, version="1")
    flows.accounts.set_password(used, password=PASSWORD, confirmation=PASSWORD)
    refused(used)
    # unknown, and not a token at all
    refused("A" * 43)
    refused("")
    refused("é" * 10)
    # a reset link is not an invitation
    flows.accounts.forgot_password(email="b@smile.example")
    refused(flows.token("b@smile.example"))
    # expired
    flows.accounts.invite(practice_id=practice.id, email="c@smile.example")
    late = flows.token("c@smile.example")
    flows.clock.advance(days=15)
    refused(late)

    assert {(e.message, e.code, str(e), repr(e)) for e in refusals} == {
        (
            INVALID_LINK_MESSAGE,
            "token.invalid",
            str(InvalidToken(INVALID_LINK_MESSAGE)),
            repr(InvalidToken(INVALID_LINK_MESSAGE)),
        )
    }
    reasons = [e.outcome for e in flows.events("invitation.refused")]
    assert reasons == [
        "superseded",
        "used",
        "unknown",
        "unknown",
        "unknown",
        "wrong_purpose",
        "expired",
    ]


@hypothesis_settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=80))
def test_rg_6_any_text_that_was_never_issued_is_refused_alike(flows: Flows, text: str) -> None:
    with pytest.raises(InvalidToken) as error:
        flows.accounts.open_invitation(text)
    assert error.value.message == INVALID_LINK_MESSAGE


def test_rg_6_a_deactivated_users_link_is_refused(flows: Flows) -> None:
    user, token = _invited(flows, deactivated=True)
    with pytest.raises(InvalidToken):
        flows.accounts.open_invitation(token)
    assert flows.events("invitation.refused")[-1].outcome == "deactivated"
    assert flows.events("invitation.refused")[-1].subject_id == user.id


def test_rg_1_tokens_have_128_bits_and_are_stored_only_hashed(flows: Flows) -> None:
    user, token = _invited(flows)
    assert len(token) >= 22  # 16 bytes or more in URL-safe base64
    with flows.store.unit_of_work() as uow:
        record = uow.link_tokens.get(tokens.hash_token(token))
    assert record is not None
    assert record.user_id == user.id
    assert record.purpose is TokenPurpose.INVITATION
    assert token not in repr(record)


def test_rg_1_set_password_loses_a_race_for_the_link(flows: Flows) -> None:
    """An adapter that lets two completions race: the loser gets the one error, nothing stored."""
    user, token = _invited(flows, two_step_enabled=False)
    flows.accounts.add_phones(token, cell=CELL)
    flows.accounts.accept_terms(token, version="1")
    racing = attrs.evolve(flows.context, storage=LosingStore(flows.store))
    with pytest.raises(InvalidToken):
        Accounts(racing).set_password(token, password=PASSWORD, confirmation=PASSWORD)
    assert flows.credential(user.id) is None
    assert flows.user(user.id).status is RegistrationStatus.INVITED


def test_id_1_emails_are_normalised_and_malformed_ones_refused(flows: Flows) -> None:
    practice = flows.practice()
    user = flows.accounts.invite(practice_id=practice.id, email="  Dr.Smith@Example.COM ")
    assert user.email == "dr.smith@example.com"
    assert flows.outbox.last_email("dr.smith@example.com").to == "dr.smith@example.com"
    with pytest.raises(InvalidInput) as malformed:
        flows.accounts.invite(practice_id=practice.id, email="not an email")
    assert malformed.value.code == "email.malformed"
    assert malformed.value.field == "email"
    assert len(flows.outbox.emails) == 1


def test_id_2_an_email_of_another_practice_is_refused_and_nothing_changes(flows: Flows) -> None:
    smile, other = flows.practice(), flows.practice("Other Dental")
    user = flows.accounts.invite(practice_id=smile.id, email="dana@smile.example")
    token = flows.token("dana@smile.example")
    before = _snapshot(flows.store, user.id)
    with pytest.raises(AlreadyExists) as taken:
        flows.accounts.invite(practice_id=other.id, email="DANA@Smile.example")
    assert taken.value.code == "user.email_taken"
    assert _snapshot(flows.store, user.id) == before
    assert len(flows.outbox.emails) == 1
    with flows.store.unit_of_work() as uow:
        assert uow.users.list_for_practice(other.id) == []
    assert flows.accounts.open_invitation(token).stage is RegistrationStage.PHONES


def test_id_3_a_registered_user_cannot_be_invited_again(flows: Flows) -> None:
    practice = flows.practice()
    user = flows.accounts.invite(practice_id=practice.id, email="dana@smile.example")
    flows.update_user(user.id, status=RegistrationStatus.REGISTERED)
    with pytest.raises(AlreadyExists) as registered:
        flows.accounts.invite(practice_id=practice.id, email="dana@smile.example")
    assert registered.value.code == "user.already_registered"
    assert len(flows.outbox.emails) == 1


def test_id_2_an_unknown_practice_is_not_found(flows: Flows) -> None:
    with pytest.raises(NotFound) as missing:
        flows.accounts.invite(practice_id="nope", email="dana@smile.example")
    assert missing.value.code == "practice.not_found"
    assert flows.outbox.emails == ()


def test_id_2_a_practice_is_created_with_its_main_account_information(flows: Flows) -> None:
    practice = flows.accounts.create_practice(
        name=" Smile Dental ", address=" 1 Main St ", phone="(202) 555-0143"
    )
    with flows.store.unit_of_work() as uow:
        stored = uow.practices.get(practice.id)
    assert stored == practice
    assert (practice.name, practice.address, practice.phone) == (
        "Smile Dental",
        "1 Main St",
        CELL,
    )
    assert flows.events("practice.created")[0].practice_id == practice.id
    with pytest.raises(InvalidInput) as nameless:
        flows.accounts.create_practice(name="  ")
    assert (nameless.value.field, nameless.value.code) == ("name", "text.empty")
    with pytest.raises(InvalidInput) as bad_phone:
        flows.accounts.create_practice(name="X", phone="12")
    assert bad_phone.value.field == "phone"


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({}, "phone", "phone.required"),
        ({"phone": " ", "cell": ""}, "phone", "phone.required"),
        ({"phone": "+1 202 555 0143 ext. 12"}, "phone", "phone.has_extension"),  # VF-3
        ({"cell": "+1 123 456 7890"}, "cell", "phone.not_valid"),  # VF-1
        ({"cell": "call me"}, "cell", "phone.not_a_number"),
    ],
)
def test_vf_1_vf_3_bad_numbers_are_refused_naming_the_field(
    flows: Flows, fields: dict[str, str], field: str, code: str
) -> None:
    user, token = _invited(flows)
    before = _snapshot(flows.store, user.id)
    with pytest.raises(InvalidInput) as refused:
        flows.accounts.add_phones(token, **fields)
    assert (refused.value.field, refused.value.code) == (field, code)
    assert _snapshot(flows.store, user.id) == before


def test_vf_1_an_inviters_bad_number_is_refused_before_anything_is_stored(flows: Flows) -> None:
    practice = flows.practice()
    with pytest.raises(InvalidInput) as refused:
        flows.accounts.invite(practice_id=practice.id, email="d@smile.example", cell="12")
    assert refused.value.field == "cell"
    with flows.store.unit_of_work() as uow:
        assert uow.users.get_by_email("d@smile.example") is None


def test_an_invitation_that_cannot_be_emailed_is_audited_and_can_be_sent_again(
    flows: Flows,
) -> None:
    practice = flows.practice()
    flows.outbox.fail_next("email")
    with pytest.raises(DeliveryFailed) as failed:
        flows.accounts.invite(practice_id=practice.id, email="dana@smile.example")
    assert failed.value.channel == "email"
    event = flows.events("invitation.delivery_failed")[0]
    assert (event.outcome, dict(event.detail)["channel"]) == ("delivery.failed", "email")
    flows.accounts.invite(practice_id=practice.id, email="dana@smile.example")
    token = flows.token("dana@smile.example")
    assert flows.accounts.open_invitation(token).stage is RegistrationStage.PHONES


def test_rs_5_no_invitation_without_the_portals_configured_address(
    context: Dependencies, store: Storage
) -> None:
    unset = attrs.evolve(context, settings=Settings(links=LinkRules(), secret=SECRET))
    actions = Accounts(unset)
    practice = actions.create_practice(name="Smile Dental")
    with pytest.raises(SettingsError) as error:
        actions.invite(practice_id=practice.id, email="dana@smile.example")
    assert error.value.field == "base_url"
    with store.unit_of_work() as uow:
        assert uow.users.get_by_email("dana@smile.example") is None


class _HashThen(PasswordHasher):
    """A hasher that runs ``meanwhile`` while it hashes: what another request does then."""

    def __init__(self, meanwhile: Callable[[], object]) -> None:
        super().__init__(CHEAP_HASHING)
        self.meanwhile = meanwhile

    def hash(self, password: str) -> str:
        self.meanwhile()
        return super().hash(password)


def test_rg_2_a_step_that_stopped_being_next_while_hashing_changes_nothing(flows: Flows) -> None:
    """Two-step turned on by a User Manager while the password was hashed: verify first."""
    user, token = _invited(flows, two_step_enabled=False)
    flows.accounts.add_phones(token, cell=CELL)
    flows.accounts.accept_terms(token, version="1")
    hasher = _HashThen(lambda: flows.update_user(user.id, two_step_enabled=True))
    actions = Accounts(attrs.evolve(flows.context, hasher=hasher))
    with pytest.raises(InvalidState) as refused:
        actions.set_password(token, password=PASSWORD, confirmation=PASSWORD)
    assert refused.value.code == "flow.out_of_order"
    assert flows.credential(user.id) is None
    assert flows.accounts.open_invitation(token).stage is RegistrationStage.VERIFY


def _signed_in_manager(flows: Flows, practice_id: str) -> tuple[User, Secret[str]]:
    """The practice's first user, registered with two-step off and signed in: its User Manager."""
    manager = flows.accounts.invite(practice_id=practice_id, email="owner@smile.example")
    flows.update_user(manager.id, two_step_enabled=False)
    token = flows.token("owner@smile.example")
    flows.accounts.add_phones(token, phone="+442079460958")
    flows.accounts.accept_terms(token, version="1")
    assert flows.accounts.set_password(token, password=PASSWORD, confirmation=PASSWORD).ok
    session = flows.accounts.sign_in(email="owner@smile.example", password=PASSWORD)
    assert session.session_token is not None
    return manager, session.session_token


@pytest.mark.parametrize("again", ["invite", "reinvite"])
@pytest.mark.parametrize(
    "clock_moves",
    [timedelta(0), -timedelta(minutes=5)],
    ids=["clock_standing_still", "clock_stepped_back"],
)
def test_rg_4_rg_2_vf_9_a_new_invitation_link_needs_its_own_verification(
    flows: Flows, again: str, clock_moves: timedelta
) -> None:
    """RG-4, RG-2, VF-9: a code verified on one invitation link never counts for the next.

    The user verified on the first link and reached the Terms of Use; then
    they are invited again (``invite`` once more, or a User Manager's
    re-invitation) in the same instant, or at an earlier time by a clock
    stepped back. The new link starts at the verification: its flow id is
    not the one the code was verified for.
    """
    practice = flows.practice()
    manager, session = _signed_in_manager(flows, practice.id)
    user = flows.accounts.invite(
        practice_id=practice.id, email="dana@smile.example", cell=CELL, invited_by=manager.id
    )
    first = flows.token("dana@smile.example")
    step = flows.accounts.open_invitation(first)
    flows.accounts.send_code(first, option=step.delivery_options[0])
    assert flows.accounts.verify_code(first, code=flows.outbox.last_code(CELL)).verified
    assert flows.accounts.open_invitation(first).stage is RegistrationStage.TERMS

    flows.clock.set(flows.clock.now() + clock_moves)
    if again == "invite":
        flows.accounts.invite(practice_id=practice.id, email="dana@smile.example")
    else:
        PracticeAdministration(flows.context).reinvite(session, user_id=user.id)
    second = flows.token("dana@smile.example")
    assert second != first
    with pytest.raises(InvalidToken):
        flows.accounts.open_invitation(first)

    step = flows.accounts.open_invitation(second)
    assert step.stage is RegistrationStage.VERIFY
    act = flows.accounts
    _out_of_order(flows, user, lambda: act.accept_terms(second, version="1"))
    _out_of_order(
        flows, user, lambda: act.set_password(second, password=PASSWORD, confirmation=PASSWORD)
    )

    # The second link's own verification leads on to the Terms of Use.
    flows.accounts.send_code(second, option=step.delivery_options[0])
    assert flows.accounts.verify_code(second, code=flows.outbox.last_code(CELL)).verified
    assert flows.accounts.accept_terms(second, version="1").stage is RegistrationStage.PASSWORD
    assert flows.accounts.set_password(second, password=PASSWORD, confirmation=PASSWORD).ok
    assert flows.user(user.id).status is RegistrationStatus.REGISTERED
