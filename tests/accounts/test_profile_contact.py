"""Changing one's email address and phone numbers, on both stores (PF-4, VF-1..VF-10, AU-2)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import attrs
import pytest

from accounts.link_flows import LosingStore, OvertakenStore, token_of
from accounts.profile_fixtures import CELL, EMAIL, OFFICE, Portal, open_portal
from securepractice import (
    Accounts,
    AlreadyExists,
    DeliveryFailed,
    FakeClock,
    InvalidInput,
    InvalidState,
    InvalidToken,
    Outbox,
    RateLimited,
    SecurePracticeError,
)
from securepractice.dependencies import Dependencies
from securepractice.errors import Conflict
from securepractice.records import (
    Challenge,
    ChallengeState,
    DeliveryMethod,
    Phone,
    PhoneKind,
    Purpose,
    revised,
)
from securepractice.storage.ports import UnitOfWork
from securepractice.testing import PASSWORD
from securepractice.verification import codes
from securepractice.verification.codes import VerifyOutcome, VerifyResult
from securepractice.verification.phones import DeliveryOption, delivery_options

if TYPE_CHECKING:
    from accounts.link_flows import Flows

NEW_CELL = "+12025550178"
NEW_PHONE = "+13125550199"
NEW_EMAIL = "robin.lee@newmail.example"
WRONG = "Not-the-password-1"


@pytest.fixture
def portal(context: Dependencies, outbox: Outbox, clock: FakeClock) -> Portal:
    return open_portal(context, outbox, clock)


def start(
    portal: Portal,
    number: str = NEW_CELL,
    kind: PhoneKind = PhoneKind.CELL,
    method: DeliveryMethod = DeliveryMethod.SMS,
    password: str = PASSWORD,
) -> None:
    portal.actions.start_phone_change(
        portal.token, current_password=password, kind=kind, number=number, option_method=method
    )


def phone_challenge(portal: Portal) -> Challenge:
    with portal.storage.unit_of_work() as uow:
        challenge = uow.challenges.latest(portal.user.id, Purpose.NEW_PHONE)
    assert challenge is not None
    return challenge


# Email address.


def test_the_email_address_changes_with_the_password_and_both_addresses_are_told(
    portal: Portal,
) -> None:
    """PF-4, RC-1: the password, then the link sent to the new address; old and new are told."""
    user = portal.actions.change_email(
        portal.token, current_password=PASSWORD, new_email="  Robin.Lee@NewMail.EXAMPLE "
    )
    assert (user.email, user.pending_email) == (EMAIL, NEW_EMAIL)
    assert portal.stored_user().email == EMAIL
    requested = portal.outbox.last_email(EMAIL)
    assert requested.subject == "A change of your email address was requested"
    assert NEW_EMAIL not in requested.body
    link = portal.outbox.last_link(NEW_EMAIL)
    assert portal.actions.sign_in(email=EMAIL, password=PASSWORD).ok
    assert not portal.actions.sign_in(email=NEW_EMAIL, password=PASSWORD).ok

    confirmed = portal.actions.confirm_email_change(portal.token, link_token=token_of(link))
    assert (confirmed.email, confirmed.pending_email) == (NEW_EMAIL, None)
    assert portal.stored_user().email == NEW_EMAIL
    assert portal.outbox.last_email(EMAIL).subject == "Your email address was changed"
    assert portal.outbox.last_email(NEW_EMAIL).subject == "Your email address was changed"
    assert NEW_EMAIL not in portal.outbox.last_email(EMAIL).body
    assert portal.actions.sign_in(email=NEW_EMAIL, password=PASSWORD).ok
    assert not portal.actions.sign_in(email=EMAIL, password=PASSWORD).ok
    [event] = portal.events("email.changed")
    assert (event.actor_id, event.subject_id, event.practice_id) == (
        portal.user.id,
        portal.user.id,
        portal.practice.id,
    )


def test_a_wrong_password_refuses_the_email_change_and_counts(portal: Portal) -> None:
    """PF-4: a wrong password is `InvalidInput` on the password field; it counts (LK-1)."""
    with pytest.raises(InvalidInput) as caught:
        portal.actions.change_email(portal.token, current_password=WRONG, new_email=NEW_EMAIL)
    assert (caught.value.field, caught.value.code) == ("current_password", "password.current_wrong")
    assert portal.stored_user() == portal.user
    assert portal.outbox.emails == ()
    assert portal.failures() == 1


def test_an_email_of_another_user_is_refused(portal: Portal) -> None:
    """ID-2: an email is one user across the portal, whatever its case."""
    portal.world.user("dr.jones@example.com", practice=portal.practice)
    with pytest.raises(AlreadyExists) as caught:
        portal.actions.change_email(
            portal.token, current_password=PASSWORD, new_email="DR.Jones@Example.com"
        )
    assert caught.value.code == "user.email_taken"
    assert portal.stored_user() == portal.user
    assert portal.outbox.emails == ()
    assert [e.outcome for e in portal.events("email.change_refused")] == ["email_taken"]
    # The password was right: the attempt does not count toward lockout.
    assert portal.failures() == 0


@pytest.mark.parametrize("new_email", ["not-an-email", "a@b", "", None, 42, "x" * 300 + "@a.com"])
def test_a_malformed_email_is_refused_before_the_password_is_checked(
    portal: Portal, new_email: object
) -> None:
    with pytest.raises(InvalidInput) as caught:
        portal.actions.change_email(
            portal.token,
            current_password=PASSWORD,
            new_email=new_email,  # type: ignore[arg-type]
        )
    assert (caught.value.field, caught.value.code) == ("email", "email.malformed")
    assert portal.failures() == 0
    assert portal.stored_user() == portal.user


def test_the_same_email_in_another_case_is_no_change(portal: Portal) -> None:
    user = portal.actions.change_email(
        portal.token, current_password=PASSWORD, new_email="DR.SMITH@example.com"
    )
    assert user == portal.user
    assert portal.outbox.emails == ()
    assert portal.events("email.changed") == []


def test_reset_links_sent_to_the_old_address_stop_working(portal: Portal, flows: Flows) -> None:
    """RC-1: whoever reads the old mailbox cannot reset with a link sent there once it changed.

    Until the change is confirmed the old address is the account's, and its
    reset link keeps working.
    """
    flows.accounts.forgot_password(email=EMAIL)
    link_token = flows.token(EMAIL)
    portal.actions.change_email(portal.token, current_password=PASSWORD, new_email=NEW_EMAIL)
    assert flows.accounts.open_reset_link(link_token).email == EMAIL
    portal.actions.confirm_email_change(portal.token, link_token=flows.token(NEW_EMAIL))
    with pytest.raises(InvalidToken):
        flows.accounts.open_reset_link(link_token)


def test_a_failed_notice_is_audited_and_the_change_kept(portal: Portal) -> None:
    """RC-1: a notice that cannot be sent is audited; the request and the change stand."""
    portal.outbox.fail_next("email")
    portal.actions.change_email(portal.token, current_password=PASSWORD, new_email=NEW_EMAIL)
    assert portal.stored_user().pending_email == NEW_EMAIL
    link = portal.outbox.last_link(NEW_EMAIL)
    portal.outbox.fail_next("email")
    portal.actions.confirm_email_change(portal.token, link_token=token_of(link))
    assert portal.stored_user().email == NEW_EMAIL
    assert [e.outcome for e in portal.events("notice.failed")] == ["delivery.failed"] * 2
    assert portal.outbox.last_email(NEW_EMAIL).subject == "Your email address was changed"


# Phone numbers.


def test_a_new_cell_number_is_verified_before_it_is_used(portal: Portal) -> None:
    """PF-4: the code goes to the new number; the user's numbers change only when it is entered."""
    before = delivery_options(portal.stored_user().phones)
    start(portal)
    assert portal.stored_user().phones == portal.user.phones
    assert delivery_options(portal.stored_user().phones) == before
    code = portal.outbox.last_code(NEW_CELL)
    assert portal.outbox.last_sms(NEW_CELL).to == NEW_CELL
    # The challenge remembers the field, on both stores (SQLite keeps it in ``extra``).
    challenge = phone_challenge(portal)
    assert (challenge.phone_kind, challenge.destination) == (PhoneKind.CELL, NEW_CELL)
    assert challenge.method is DeliveryMethod.SMS

    result = portal.actions.verify_phone_code(portal.token, code=code)
    assert result.outcome is VerifyOutcome.VERIFIED
    assert result.challenge.state is ChallengeState.VERIFIED
    phones = portal.stored_user().phones
    assert phones == (
        Phone(number=NEW_CELL, kind=PhoneKind.CELL),
        Phone(number=OFFICE, kind=PhoneKind.PHONE),
    )
    assert DeliveryOption(method=DeliveryMethod.SMS, destination=NEW_CELL, kind=PhoneKind.CELL) in (
        delivery_options(phones)
    )
    assert portal.outbox.last_email(EMAIL).subject == "Your phone number was changed"
    assert CELL not in portal.outbox.last_email(EMAIL).body
    [changed] = portal.events("phone.changed")
    assert dict(changed.detail) == {"kind": "cell", "sessions_revoked": "0"}
    assert changed.practice_id == portal.practice.id
    assert [e.action for e in portal.events() if e.action.startswith("code.")] == [
        "code.sent",
        "code.verified",
    ]


def test_a_voice_call_confirms_a_new_phone_and_keeps_the_cell(portal: Portal) -> None:
    """VF-2: a number given as phone gets a call; the cell number stays."""
    start(portal, NEW_PHONE, PhoneKind.PHONE, DeliveryMethod.VOICE)
    call = portal.outbox.last_call(NEW_PHONE)
    assert call.to == NEW_PHONE
    result = portal.actions.verify_phone_code(portal.token, code=portal.outbox.last_code(NEW_PHONE))
    assert result.verified
    assert portal.stored_user().phones == (
        Phone(number=CELL, kind=PhoneKind.CELL),
        Phone(number=NEW_PHONE, kind=PhoneKind.PHONE),
    )


def test_a_number_of_a_kind_the_user_had_not_is_added(portal: Portal) -> None:
    office_only = revised(portal.user, phones=(Phone(number=OFFICE, kind=PhoneKind.PHONE),))
    with portal.storage.unit_of_work() as uow:
        uow.users.save(office_only, expected_version=portal.user.version)
    start(portal)
    portal.actions.verify_phone_code(portal.token, code=portal.outbox.last_code(NEW_CELL))
    assert portal.stored_user().phones == (
        Phone(number=OFFICE, kind=PhoneKind.PHONE),
        Phone(number=NEW_CELL, kind=PhoneKind.CELL),
    )


def test_a_code_works_once(portal: Portal) -> None:
    """VF-7: the right code, entered again, does nothing more."""
    start(portal)
    code = portal.outbox.last_code(NEW_CELL)
    assert portal.actions.verify_phone_code(portal.token, code=code).verified
    again = portal.actions.verify_phone_code(portal.token, code=code)
    assert again.outcome is VerifyOutcome.ALREADY_VERIFIED
    assert len(portal.events("phone.changed")) == 1


def test_wrong_codes_count_and_void_the_change_at_the_limit(portal: Portal) -> None:
    """VF-7: five wrong entries void the verification; the right code then fails too."""
    start(portal)
    code = portal.outbox.last_code(NEW_CELL)
    wrong = "000000" if code != "000000" else "111111"
    limit = portal.context.settings.verification.max_wrong_codes
    outcomes = [portal.actions.verify_phone_code(portal.token, code=wrong) for _ in range(limit)]
    assert [r.attempts_left for r in outcomes] == [*range(limit - 1, 0, -1), 0]
    assert outcomes[-1].outcome is VerifyOutcome.TOO_MANY_WRONG
    assert phone_challenge(portal).wrong_attempts == limit
    assert portal.actions.verify_phone_code(portal.token, code=code).outcome is VerifyOutcome.VOID
    assert portal.stored_user().phones == portal.user.phones
    assert [e.outcome for e in portal.events("code.failed")] == [
        *["wrong_code"] * (limit - 1),
        "too_many_wrong",
        "void",
    ]


def test_resending_kills_the_previous_code_and_keeps_the_count(portal: Portal) -> None:
    """VF-5, VF-7: the re-sent code works, the earlier one no longer does."""
    start(portal)
    first = portal.outbox.last_code(NEW_CELL)
    wrong = "000000" if first != "000000" else "111111"
    portal.actions.verify_phone_code(portal.token, code=wrong)
    portal.actions.resend_phone_code(portal.token)
    second = portal.outbox.last_code(NEW_CELL)
    assert len(portal.outbox.sms) == 2
    if first != second:
        stale = portal.actions.verify_phone_code(portal.token, code=first)
        assert stale.outcome is VerifyOutcome.WRONG_CODE
    assert phone_challenge(portal).wrong_attempts == (2 if first != second else 1)
    assert portal.actions.verify_phone_code(portal.token, code=second).verified


def test_a_code_expires(portal: Portal) -> None:
    """VF-4: after ten minutes the code is not compared; a re-sent one works."""
    start(portal)
    code = portal.outbox.last_code(NEW_CELL)
    portal.clock.advance(portal.context.settings.verification.code_lifetime)
    assert (
        portal.actions.verify_phone_code(portal.token, code=code).outcome is VerifyOutcome.EXPIRED
    )
    portal.actions.resend_phone_code(portal.token)
    assert portal.actions.verify_phone_code(
        portal.token, code=portal.outbox.last_code(NEW_CELL)
    ).verified


def test_starting_again_cancels_the_earlier_change(portal: Portal) -> None:
    start(portal)
    first_challenge = phone_challenge(portal)
    first = portal.outbox.last_code(NEW_CELL)
    start(portal, NEW_PHONE, PhoneKind.PHONE, DeliveryMethod.VOICE)
    with portal.storage.unit_of_work() as uow:
        cancelled = uow.challenges.get(first_challenge.id)
    assert cancelled is not None
    assert cancelled.state is ChallengeState.VOID
    result = portal.actions.verify_phone_code(portal.token, code=first)
    assert not result.verified
    assert portal.stored_user().phones == portal.user.phones


def test_a_failed_delivery_voids_the_code_and_reaches_the_caller(portal: Portal) -> None:
    """VF-10: the caller gets DeliveryFailed; the code is void; a re-send works."""
    portal.outbox.fail_next("sms")
    with pytest.raises(DeliveryFailed) as caught:
        start(portal)
    assert caught.value.channel == "sms"
    challenge = phone_challenge(portal)
    assert challenge.code_hash is None
    assert challenge.state is ChallengeState.ACTIVE
    assert [e.outcome for e in portal.events("code.delivery_failed")] == ["delivery.failed"]
    outcome = portal.actions.verify_phone_code(portal.token, code="123456").outcome
    assert outcome is VerifyOutcome.NO_ACTIVE_CODE
    portal.actions.resend_phone_code(portal.token)
    assert portal.actions.verify_phone_code(
        portal.token, code=portal.outbox.last_code(NEW_CELL)
    ).verified


def test_the_send_limit_bounds_phone_codes(portal: Portal) -> None:
    """VF-8: five codes per user per fifteen minutes, starts and re-sends together."""
    limit = portal.context.settings.verification.send_limit
    start(portal)
    for _ in range(limit - 1):
        portal.actions.resend_phone_code(portal.token)
    with pytest.raises(RateLimited) as caught:
        portal.actions.resend_phone_code(portal.token)
    assert caught.value.code == "verification.rate_limited"
    assert caught.value.retry_after > portal.context.settings.verification.send_window * 0
    with pytest.raises(RateLimited):
        start(portal, NEW_PHONE, PhoneKind.PHONE, DeliveryMethod.VOICE)
    assert len(portal.outbox.sms) == limit
    portal.clock.advance(portal.context.settings.verification.send_window)
    portal.actions.resend_phone_code(portal.token)
    assert len(portal.outbox.sms) == limit + 1


def test_a_wrong_password_sends_no_code_and_counts(portal: Portal) -> None:
    """PF-4: changing a phone number needs the current password."""
    with pytest.raises(InvalidInput) as caught:
        start(portal, password=WRONG)
    assert caught.value.code == "password.current_wrong"
    assert portal.outbox.sms == ()
    assert portal.failures() == 1
    with pytest.raises(InvalidState):
        portal.actions.verify_phone_code(portal.token, code="123456")


@pytest.mark.parametrize(
    ("number", "kind", "method", "field", "code"),
    [
        (
            "+1 202 555 0178 ext. 12",
            PhoneKind.CELL,
            DeliveryMethod.SMS,
            "cell",
            "phone.has_extension",
        ),
        ("+1 123 456 7890", PhoneKind.PHONE, DeliveryMethod.VOICE, "phone", "phone.not_valid"),
        ("call me", PhoneKind.CELL, DeliveryMethod.SMS, "cell", "phone.not_a_number"),
        ("", PhoneKind.CELL, DeliveryMethod.SMS, "cell", "phone.empty"),
        (12025550178, PhoneKind.CELL, DeliveryMethod.SMS, "cell", "phone.not_text"),
        ("9" * 500, PhoneKind.CELL, DeliveryMethod.SMS, "cell", "phone.too_long"),
        (
            NEW_CELL,
            PhoneKind.PHONE,
            DeliveryMethod.SMS,
            "method",
            "verification.option_not_offered",
        ),
        (
            OFFICE[:-1] + "9",
            PhoneKind.CELL,
            DeliveryMethod.SMS,
            "method",
            "verification.option_not_offered",
        ),
        (NEW_CELL, "cell", DeliveryMethod.SMS, "kind", "phone.kind"),
        (NEW_CELL, PhoneKind.CELL, "sms", "method", "verification.option_not_offered"),
        (CELL, PhoneKind.CELL, DeliveryMethod.SMS, "cell", "phone.unchanged"),
    ],
)
def test_bad_phone_changes_are_refused_before_anything_is_counted_or_sent(
    portal: Portal, *, number: object, kind: object, method: object, field: str, code: str
) -> None:
    """VF-1, VF-2, VF-3: a clear error naming the field; no code, no count, no change."""
    with pytest.raises(InvalidInput) as caught:
        portal.actions.start_phone_change(
            portal.token,
            current_password=PASSWORD,
            kind=kind,  # type: ignore[arg-type]
            number=number,  # type: ignore[arg-type]
            option_method=method,  # type: ignore[arg-type]
        )
    assert (caught.value.field, caught.value.code) == (field, code)
    assert portal.failures() == 0
    assert portal.outbox.sms == ()
    assert portal.outbox.calls == ()
    assert portal.stored_user() == portal.user


def test_codes_without_a_change_under_way_are_out_of_order(portal: Portal) -> None:
    for action in (
        lambda: portal.actions.verify_phone_code(portal.token, code="123456"),
        lambda: portal.actions.resend_phone_code(portal.token),
    ):
        with pytest.raises(InvalidState) as caught:
            action()
        assert caught.value.code == "verification.not_started"


def test_resending_after_the_change_is_done_is_refused(portal: Portal) -> None:
    start(portal)
    portal.actions.verify_phone_code(portal.token, code=portal.outbox.last_code(NEW_CELL))
    with pytest.raises(InvalidState) as caught:
        portal.actions.resend_phone_code(portal.token)
    assert caught.value.code == "verification.not_active"


def test_a_code_for_another_purpose_is_not_a_phone_code(portal: Portal) -> None:
    """VF-7: a registration code of the same user does not confirm a new phone."""
    start(portal)
    rules = portal.context.settings.verification
    now = portal.clock.now()
    offered = delivery_options(portal.user.phones)
    other = codes.issue(
        user_id=portal.user.id,
        purpose=Purpose.REGISTRATION,
        option=offered[0],
        offered=offered,
        ledger=None,
        now=now,
        rules=rules,
    )
    phone_code = portal.outbox.last_code(NEW_CELL)
    if other.code.reveal() != phone_code:
        result = portal.actions.verify_phone_code(portal.token, code=other.code.reveal())
        assert result.outcome is VerifyOutcome.WRONG_CODE
    assert portal.actions.verify_phone_code(portal.token, code=phone_code).verified


def test_a_verification_that_names_no_field_changes_no_number(portal: Portal) -> None:
    """A new-phone challenge stored without ``phone_kind`` cannot install a number."""
    rules = portal.context.settings.verification
    option = DeliveryOption(method=DeliveryMethod.SMS, destination=NEW_CELL, kind=PhoneKind.CELL)
    issued = codes.issue(
        user_id=portal.user.id,
        purpose=Purpose.NEW_PHONE,
        option=option,
        offered=(option,),
        ledger=None,
        now=portal.clock.now(),
        rules=rules,
    )
    with portal.storage.unit_of_work() as uow:
        uow.challenges.add(issued.challenge)
    with pytest.raises(InvalidState) as caught:
        portal.actions.verify_phone_code(portal.token, code=issued.code.reveal())
    assert caught.value.code == "verification.no_phone_kind"
    assert portal.stored_user().phones == portal.user.phones
    assert phone_challenge(portal).state is ChallengeState.ACTIVE


# AU-2 across every profile action.


def test_no_secret_reaches_an_audit_event_an_error_or_a_repr(portal: Portal) -> None:
    """AU-2: passwords, codes, tokens and hashes never appear in audit events, errors or reprs."""
    errors: list[SecurePracticeError] = []
    secrets_seen = [PASSWORD, WRONG, "Harbor-Light-77", portal.token.reveal()]

    def attempt(action: object) -> None:
        try:
            action()  # type: ignore[operator]
        except SecurePracticeError as error:
            errors.append(error)

    attempt(lambda: start(portal, password=WRONG))
    start(portal)
    code = portal.outbox.last_code(NEW_CELL)
    attempt(lambda: portal.actions.verify_phone_code(portal.token, code="000000"))
    portal.actions.verify_phone_code(portal.token, code=code)
    portal.outbox.fail_next("voice")
    attempt(lambda: start(portal, NEW_PHONE, PhoneKind.PHONE, DeliveryMethod.VOICE))
    attempt(
        lambda: portal.actions.change_email(
            portal.token, current_password=WRONG, new_email=NEW_EMAIL
        )
    )
    credential = portal.credential()
    result = portal.actions.change_password(
        portal.token,
        current_password=PASSWORD,
        new_password="Harbor-Light-77",
        confirmation="Harbor-Light-77",
    )
    assert result.session_token is not None
    secrets_seen += [
        code,
        result.session_token.reveal(),
        credential.password_hash,
        portal.credential().password_hash,
        *(c.hex() for c in [phone_challenge(portal).code_hash or b""] if c),
    ]
    attempt(
        lambda: portal.actions.change_password(
            portal.token, current_password=PASSWORD, new_password=WRONG, confirmation=WRONG
        )
    )
    texts = [repr(result), str(result), repr(portal.credential()), repr(phone_challenge(portal))]
    texts += [repr(e) for e in portal.all_events()]
    texts += [f"{error!s} {error!r}" for error in errors]
    assert len(errors) >= 4
    for text in texts:
        for secret in secrets_seen:
            assert secret not in text


def test_two_simultaneous_right_entries_verify_once(portal: Portal) -> None:
    """RS-5, VF-7: of two simultaneous entries of the right code, exactly one verifies."""
    start(portal)
    code = portal.outbox.last_code(NEW_CELL)
    barrier = threading.Barrier(2)
    outcomes: list[VerifyOutcome] = []

    def enter() -> None:
        barrier.wait()
        outcomes.append(portal.actions.verify_phone_code(portal.token, code=code).outcome)

    threads = [threading.Thread(target=enter) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(o.value for o in outcomes) == ["already_verified", "verified"]
    assert len(portal.events("phone.changed")) == 1


def _latest_phone_challenge(uow: UnitOfWork, portal: Portal) -> Challenge:
    challenge = uow.challenges.latest(portal.user.id, Purpose.NEW_PHONE)
    assert challenge is not None
    return challenge


@pytest.mark.parametrize("right", [True, False], ids=["right", "wrong"])
def test_an_entry_that_loses_the_race_to_save_is_decided_again(portal: Portal, right: bool) -> None:
    """RS-5, VF-7: an entry saved over a version that moved is decided over what won.

    The same entry made by another request is saved first: of two right
    entries the second is ``ALREADY_VERIFIED``, and two wrong ones count two.
    """
    start(portal)
    code = portal.outbox.last_code(NEW_CELL)
    entry = code if right else ("000000" if code != "000000" else "111111")
    rules = portal.context.settings.verification
    rivals: list[VerifyResult] = []
    overtaken = OvertakenStore(
        portal.storage,
        lambda: rivals.append(portal.actions.verify_phone_code(portal.token, code=entry)),
    )
    racing = Accounts(attrs.evolve(portal.context, storage=overtaken))
    result = racing.verify_phone_code(portal.token, code=entry)
    stored = phone_challenge(portal)
    assert len(rivals) == 1
    if right:
        assert rivals[0].outcome is VerifyOutcome.VERIFIED
        assert result.outcome is VerifyOutcome.ALREADY_VERIFIED
        assert stored.state is ChallengeState.VERIFIED
    else:
        assert result.outcome is VerifyOutcome.WRONG_CODE
        assert stored.wrong_attempts == 2
        assert result.attempts_left == rules.max_wrong_codes - 2
    assert result.challenge == stored
    assert portal.events("code.failed")[-1].outcome == result.outcome.value


def test_an_entry_that_keeps_losing_the_race_is_a_conflict(portal: Portal) -> None:
    """A store that never saves the entry does not loop: the `Conflict` reaches the caller."""
    start(portal)
    code = portal.outbox.last_code(NEW_CELL)
    losing = LosingStore(portal.storage, repository="challenges")
    racing = Accounts(attrs.evolve(portal.context, storage=losing))
    with pytest.raises(Conflict):
        racing.verify_phone_code(portal.token, code=code)
    assert losing.lost > 1  # decided again, a bounded number of times
    assert phone_challenge(portal).state is ChallengeState.ACTIVE
    assert portal.actions.verify_phone_code(portal.token, code=code).verified
