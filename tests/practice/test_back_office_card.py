"""The back office's card on file: support staff keep a User Manager's card from a processor token.

OP-1, UM-6: without the cardholder's session; refused to anyone but support
staff; audited with ``by=support``; the cardholder is e-mailed a notice.
"""

from __future__ import annotations

import pytest

from practice.office import Office
from securepractice import InvalidInput, NotFound, PermissionDenied
from securepractice.practice import billing
from securepractice.records import AuditEvent, CardOnFile

TOKEN = "tok_backoffice_visa_01"


def card_of(office: Office, user_id: str) -> CardOnFile | None:
    with office.context.storage.unit_of_work() as uow:
        return uow.cards.get(user_id)


def put(
    office: Office,
    token: str,
    *,
    user_id: str | None = None,
    processor_token: str = TOKEN,
    last_four: str = "4242",
) -> CardOnFile:
    """Put a card on file for ``user_id`` (the manager of practice A) as the actor of ``token``."""
    return billing.put_card_on_file_for(
        office.practice,
        token,
        user_id=office.manager_a.id if user_id is None else user_id,
        processor_token=processor_token,
        last_four=last_four,
    )


def card_events(office: Office) -> list[AuditEvent]:
    with office.context.storage.unit_of_work() as uow:
        return [e for e in uow.audit.events() if e.action == "card.added"]


def test_op1_support_put_a_card_on_file_without_the_cardholders_session(office: Office) -> None:
    """OP-1, UM-6: the manager is signed out; support keep their card; it pays for SecureMail."""
    office.accounts.sign_out(office.manager_a.token)
    card = put(office, office.support.token)
    assert (card.user_id, card.processor_token, card.last_four) == (
        office.manager_a.id,
        TOKEN,
        "4242",
    )
    assert card_of(office, office.manager_a.id) == card

    manager = office.world.sign_in("manager@alpha.example")
    office.billing.purchase_securemail(manager, account_id=office.user_a.id)
    [charge] = office.processor.charges
    assert charge.processor_token == TOKEN


def test_op1_the_back_office_card_is_audited_by_support_without_the_token(office: Office) -> None:
    put(office, office.support.token)
    [event] = card_events(office)
    assert (event.outcome, event.actor_id, event.subject_id, event.practice_id) == (
        "ok",
        office.support.id,
        office.manager_a.id,
        "practice-a",
    )
    assert dict(event.detail) == {"by": "support", "last_four": "4242"}
    assert TOKEN not in repr(event)


def test_op1_the_cardholder_is_emailed_a_notice(office: Office) -> None:
    put(office, office.support.token)
    [notice] = office.outbox.emails
    assert notice.to == "manager@alpha.example"
    assert "MySecurePractice" in notice.subject
    assert "4242" in notice.body
    assert "Support staff" in notice.body
    assert TOKEN not in notice.body


def test_op1_a_later_card_replaces_the_earlier_one(office: Office) -> None:
    for token, digits in ((TOKEN, "4242"), ("tok_backoffice_mc_02", "4444")):
        put(office, office.support.token, processor_token=token, last_four=digits)
    card = card_of(office, office.manager_a.id)
    assert card is not None
    assert (card.processor_token, card.last_four) == ("tok_backoffice_mc_02", "4444")


@pytest.mark.parametrize("who", ["manager_b", "manager_a", "user_a"])
def test_op1_only_support_staff_put_a_card_on_file_for_someone_else(
    office: Office, who: str
) -> None:
    """OP-1: another practice's manager, the cardholder's own manager or user are all refused."""
    actor = getattr(office, who)
    with pytest.raises(PermissionDenied) as refused:
        put(office, actor.token)
    assert refused.value.code == "permission.support_only"
    assert card_of(office, office.manager_a.id) is None
    assert office.outbox.emails == ()
    [refusal] = card_events(office)
    assert (refusal.actor_id, refusal.outcome) == (actor.id, "permission.support_only")
    assert dict(refusal.detail) == {"target": office.manager_a.id}


def test_op1_no_card_on_file_for_support_staff(office: Office) -> None:
    with pytest.raises(PermissionDenied) as refused:
        put(office, office.support.token, user_id=office.support.id)
    assert refused.value.code == "permission.not_practice_user"
    assert card_of(office, office.support.id) is None


@pytest.mark.parametrize(
    ("processor_token", "last_four", "code"),
    [
        ("4242424242424242", "4242", "card.number_given"),
        ("4242 4242 4242 4242", "4242", "card.number_given"),
        ("", "4242", "card.token_required"),
        ("tok\u202evisa", "4242", "text.bidi_control"),
        (TOKEN, "42", "card.last_four_invalid"),
        (TOKEN, "42a4", "card.last_four_invalid"),
    ],
)
def test_op1_a_card_number_or_a_malformed_card_is_refused(
    office: Office, processor_token: str, last_four: str, code: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        put(office, office.support.token, processor_token=processor_token, last_four=last_four)
    assert refused.value.code == code
    assert processor_token not in str(refused.value) or not processor_token
    assert card_of(office, office.manager_a.id) is None
    assert office.outbox.emails == ()


@pytest.mark.parametrize("user_id", ["no-such-user", "x" * 129])
def test_op1_an_unknown_cardholder_is_refused(office: Office, user_id: str) -> None:
    with pytest.raises((NotFound, InvalidInput)):
        put(office, office.support.token, user_id=user_id)
    assert office.outbox.emails == ()
