"""A new email address takes effect only from the link sent to it, in the user's session (RC-1).

Every test runs on each store (memory, SQLite, PostgreSQL). Links are read
from the outbox, as the user reads their mail.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import attrs
import pytest

from accounts.link_flows import token_of
from accounts.profile_fixtures import EMAIL, Portal, at_once, open_portal
from securepractice import (
    AlreadyExists,
    DeliveryFailed,
    FakeClock,
    InvalidInput,
    InvalidToken,
    LinkRules,
    Outbox,
    SecurePracticeError,
    SettingsError,
    TokenPurpose,
    User,
)
from securepractice.dependencies import Dependencies
from securepractice.secret import Secret
from securepractice.testing import PASSWORD
from securepractice.verification.tokens import INVALID_LINK_MESSAGE, hash_token

if TYPE_CHECKING:
    from accounts.link_flows import Flows

NEW_EMAIL = "robin.lee@newmail.example"
OTHER_EMAIL = "robin@elsewhere.example"
WRONG = "Not-the-password-1"


@pytest.fixture
def portal(context: Dependencies, outbox: Outbox, clock: FakeClock) -> Portal:
    return open_portal(context, outbox, clock)


def ask(portal: Portal, new_email: str = NEW_EMAIL, token: Secret[str] | None = None) -> str:
    """Ask for ``new_email`` as the signed-in user; return the token of the link sent to it."""
    portal.actions.change_email(
        portal.token if token is None else token, current_password=PASSWORD, new_email=new_email
    )
    return token_of(portal.outbox.last_link(new_email))


def confirm(portal: Portal, link: str, token: str | Secret[str] | None = None) -> User:
    return portal.actions.confirm_email_change(
        portal.token if token is None else token, link_token=link
    )


def sign_in_again(portal: Portal) -> Secret[str]:
    """A fresh session of the user, with the address they sign in with now."""
    result = portal.actions.sign_in(email=portal.stored_user().email, password=PASSWORD)
    assert result.session_token is not None
    return result.session_token


def refusals(portal: Portal) -> list[str]:
    return [e.outcome for e in portal.events("email.change_refused")]


def test_rc_1_until_confirmed_sign_in_reset_links_and_notices_use_the_old_address(
    portal: Portal, flows: Flows
) -> None:
    """RC-1: a pending address is used for nothing: not to sign in, reset, or be told things."""
    ask(portal)
    assert portal.stored_user().pending_email == NEW_EMAIL
    assert portal.actions.sign_in(email=EMAIL, password=PASSWORD).ok
    assert not portal.actions.sign_in(email=NEW_EMAIL, password=PASSWORD).ok

    sent_to_new = len([m for m in portal.outbox.emails if m.to == NEW_EMAIL])
    flows.accounts.forgot_password(email=NEW_EMAIL)
    flows.accounts.forgot_password(email=EMAIL)
    assert flows.accounts.open_reset_link(flows.token(EMAIL)).email == EMAIL
    portal.actions.change_password(
        portal.token,
        current_password=PASSWORD,
        new_password="Harbor-Light-77",
        confirmation="Harbor-Light-77",
    )
    assert portal.outbox.last_email(EMAIL).subject == "Your password was changed"
    assert len([m for m in portal.outbox.emails if m.to == NEW_EMAIL]) == sent_to_new


def test_rc_1_the_link_goes_to_the_new_address_and_the_old_one_is_told(portal: Portal) -> None:
    """RC-1: one email each: the link to the new address, a notice (without it) to the old."""
    link = ask(portal)
    [to_new] = [m for m in portal.outbox.emails if m.to == NEW_EMAIL]
    [to_old] = [m for m in portal.outbox.emails if m.to == EMAIL]
    assert portal.outbox.last_link(NEW_EMAIL).startswith(
        f"{portal.context.settings.links.base_url}/confirm-email?token="
    )
    assert "it works for 1 day, once" in to_new.body
    assert to_old.subject == "A change of your email address was requested"
    assert NEW_EMAIL not in to_old.body
    assert link not in to_old.body
    [event] = portal.events("email.change_requested")
    assert (event.actor_id, event.subject_id, event.practice_id) == (
        portal.user.id,
        portal.user.id,
        portal.practice.id,
    )


def test_rc_1_the_link_lasts_24_hours_by_default() -> None:
    """RC-1: 24 hours is the default lifetime, a setting like the other links' lifetimes."""
    assert LinkRules().email_change_lifetime == timedelta(hours=24)
    with pytest.raises(SettingsError):
        LinkRules(email_change_lifetime=timedelta(0))


@pytest.mark.parametrize("lifetime", [None, timedelta(hours=2)], ids=["default", "set"])
def test_rc_1_the_link_works_until_its_lifetime_ends(
    context: Dependencies, outbox: Outbox, clock: FakeClock, lifetime: timedelta | None
) -> None:
    """RC-1: the link works just before its lifetime ends and is refused from then on.

    The user signs in again after a day (sessions end sooner, LK-7): the link
    needs the user's session, not the one it was asked from.
    """
    if lifetime is not None:
        links = attrs.evolve(context.settings.links, email_change_lifetime=lifetime)
        context = attrs.evolve(context, settings=attrs.evolve(context.settings, links=links))
    portal = open_portal(context, outbox, clock)
    span = context.settings.links.email_change_lifetime
    late = ask(portal)
    portal.clock.advance(span)
    with pytest.raises(InvalidToken) as caught:
        confirm(portal, late, sign_in_again(portal))
    assert caught.value.code == "token.invalid"
    assert refusals(portal) == ["expired"]

    in_time = ask(portal, token=sign_in_again(portal))
    portal.clock.advance(span - timedelta(seconds=1))
    assert confirm(portal, in_time, sign_in_again(portal)).email == NEW_EMAIL


def test_rc_1_a_new_request_replaces_the_earlier_one(portal: Portal) -> None:
    """RC-1: the earlier link stops working; the latest address is the one that takes effect."""
    first = ask(portal)
    second = ask(portal, OTHER_EMAIL)
    assert portal.stored_user().pending_email == OTHER_EMAIL
    with pytest.raises(InvalidToken):
        confirm(portal, first)
    assert refusals(portal) == ["superseded"]
    assert portal.stored_user().email == EMAIL
    assert confirm(portal, second).email == OTHER_EMAIL
    assert [
        dict(e.detail)["links_superseded"] for e in portal.events("email.change_requested")
    ] == [
        "0",
        "1",
    ]


def test_rc_1_a_link_works_once(portal: Portal) -> None:
    """RC-1: a used link is refused, with the one message of every refused link (RG-6)."""
    link = ask(portal)
    confirm(portal, link)
    with pytest.raises(InvalidToken) as caught:
        confirm(portal, link)
    assert (caught.value.code, caught.value.message) == ("token.invalid", INVALID_LINK_MESSAGE)
    assert refusals(portal) == ["used"]
    assert len(portal.events("email.changed")) == 1


def test_rc_1_a_link_works_only_in_the_users_own_session(portal: Portal) -> None:
    """RC-1: opened in another user's session it is refused; without a session too.

    Whoever reads the new mailbox cannot take the account with the link
    alone, nor with a session of their own; the user, signed in, still can.
    """
    link = ask(portal)
    other = portal.world.member("dr.jones@example.com", practice=portal.practice)
    with pytest.raises(InvalidToken) as theirs:
        confirm(portal, link, other.token)
    assert theirs.value.code == "token.invalid"
    assert refusals(portal) == ["other_user"]
    for session in ("not-a-session", "", "x" * 10_000):
        with pytest.raises(InvalidToken) as none:
            confirm(portal, link, session)
        assert none.value.code == "session.invalid"
    portal.actions.sign_out(portal.token)
    with pytest.raises(InvalidToken) as signed_out:
        confirm(portal, link)
    assert signed_out.value.code == "session.invalid"
    assert portal.stored_user().email == EMAIL
    assert portal.stored_user(other.id).email == "dr.jones@example.com"

    assert confirm(portal, link, sign_in_again(portal)).email == NEW_EMAIL


def test_rc_1_an_address_taken_meanwhile_ends_the_change(portal: Portal) -> None:
    """RC-1, ID-2: checked again at confirmation; the change ends, the account keeps its address."""
    link = ask(portal)
    portal.world.user(NEW_EMAIL, practice=portal.practice)
    with pytest.raises(AlreadyExists) as caught:
        confirm(portal, link)
    assert caught.value.code == "user.email_taken"
    stored = portal.stored_user()
    assert (stored.email, stored.pending_email) == (EMAIL, None)
    assert refusals(portal) == ["email_taken"]
    with pytest.raises(InvalidToken):
        confirm(portal, link)
    assert portal.actions.sign_in(email=EMAIL, password=PASSWORD).ok


def test_rc_1_asking_for_the_current_address_withdraws_a_pending_change(portal: Portal) -> None:
    """RC-1: the pending address is dropped and its link stops working; nothing is sent."""
    link = ask(portal)
    sent = len(portal.outbox.emails)
    user = portal.actions.change_email(
        portal.token, current_password=PASSWORD, new_email=EMAIL.upper()
    )
    assert (user.email, user.pending_email) == (EMAIL, None)
    assert portal.stored_user() == user
    assert len(portal.outbox.emails) == sent
    assert [dict(e.detail) for e in portal.events("email.change_withdrawn")] == [
        {"links_superseded": "1"}
    ]
    with pytest.raises(InvalidToken):
        confirm(portal, link)
    assert portal.stored_user().email == EMAIL


def test_rc_1_a_link_that_cannot_be_sent_reaches_the_caller_and_a_new_one_can_be(
    portal: Portal,
) -> None:
    """RC-1: the request stays; the caller learns no link went; asking again sends one."""
    portal.outbox.fail_next("email", times=2)
    with pytest.raises(DeliveryFailed) as caught:
        portal.actions.change_email(portal.token, current_password=PASSWORD, new_email=NEW_EMAIL)
    assert caught.value.channel == "email"
    assert portal.stored_user().pending_email == NEW_EMAIL
    assert [e.outcome for e in portal.events("email.change_link_failed")] == ["delivery.failed"]
    assert [dict(e.detail)["notice"] for e in portal.events("notice.failed")] == [
        "email_change_requested"
    ]
    assert confirm(portal, ask(portal)).email == NEW_EMAIL


def test_rc_1_the_pending_address_and_its_link_are_kept_by_every_store(portal: Portal) -> None:
    """RC-1, ST-1: a pending address and a link of its purpose are read back as written."""
    link = ask(portal)
    with portal.storage.unit_of_work() as uow:
        stored = uow.link_tokens.get(hash_token(link))
        listed = uow.link_tokens.list_for_user(portal.user.id, TokenPurpose.EMAIL_CHANGE)
    assert stored is not None
    assert stored.purpose is TokenPurpose.EMAIL_CHANGE
    assert (
        stored.expires_at - stored.created_at == portal.context.settings.links.email_change_lifetime
    )
    assert list(listed) == [stored]
    assert portal.stored_user().pending_email == NEW_EMAIL
    assert portal.stored_user().email == EMAIL


def test_rc_1_a_confirmation_link_opens_no_other_flow(portal: Portal, flows: Flows) -> None:
    """RC-1, VF-7: the link confirms an address only; no code or reset step opens from it."""
    link = ask(portal)
    for attempt in (
        lambda: flows.accounts.delivery_options(link),
        lambda: flows.accounts.verify_code(link, code="123456"),
        lambda: flows.accounts.open_reset_link(link),
        lambda: flows.accounts.open_invitation(link),
    ):
        with pytest.raises(InvalidToken):
            attempt()
    assert confirm(portal, link).email == NEW_EMAIL


@pytest.mark.parametrize("link", [None, 42, "", "x" * 10_000, "\ud800", "not-a-link"])
def test_rc_1_a_malformed_link_is_the_one_refusal(portal: Portal, link: object) -> None:
    """RC-1, IN-1, RG-6: whatever is given as the link, the one `InvalidToken`; nothing changes."""
    ask(portal)
    with pytest.raises(InvalidToken) as caught:
        portal.actions.confirm_email_change(portal.token, link_token=link)  # type: ignore[arg-type]
    assert caught.value.code == "token.invalid"
    assert portal.stored_user().pending_email == NEW_EMAIL
    assert portal.stored_user().email == EMAIL


def test_rc_1_a_portal_without_its_address_is_refused_before_the_password_counts(
    context: Dependencies, outbox: Outbox, clock: FakeClock
) -> None:
    """RC-1, RS-5: no link can be built without ``base_url``: a settings error, nothing counted."""
    links = attrs.evolve(context.settings.links, base_url=None)
    context = attrs.evolve(context, settings=attrs.evolve(context.settings, links=links))
    portal = open_portal(context, outbox, clock)
    with pytest.raises(SettingsError):
        portal.actions.change_email(portal.token, current_password=WRONG, new_email=NEW_EMAIL)
    assert portal.failures() == 0
    assert portal.stored_user() == portal.user


def test_rc_1_two_simultaneous_confirmations_change_the_email_once(portal: Portal) -> None:
    """RC-1, RS-5: of two simultaneous uses of one link, exactly one changes the address."""
    link = ask(portal)

    def use() -> str:
        try:
            return confirm(portal, link).email
        except InvalidToken as refused:
            return refused.code

    assert at_once(use) == sorted([NEW_EMAIL, "token.invalid"])
    assert len(portal.events("email.changed")) == 1
    assert portal.stored_user().email == NEW_EMAIL


def test_au_2_no_link_token_or_password_reaches_an_event_an_error_or_a_repr(
    portal: Portal,
) -> None:
    """AU-2: the link's token is in the email to the new address only."""
    link = ask(portal)
    superseding = ask(portal, OTHER_EMAIL)
    with pytest.raises(InvalidToken) as superseded:
        confirm(portal, link)
    with pytest.raises(InvalidInput) as wrong:
        portal.actions.change_email(portal.token, current_password=WRONG, new_email=NEW_EMAIL)
    errors: list[SecurePracticeError] = [superseded.value, wrong.value]
    user = confirm(portal, superseding)
    texts = [repr(user), str(user), *(repr(e) for e in portal.all_events())]
    texts += [f"{error!s} {error!r}" for error in errors]
    links = [m for m in portal.outbox.emails if m.subject.startswith("Confirm your new email")]
    assert [m.to for m in links] == [NEW_EMAIL, OTHER_EMAIL]
    texts += [m.body for m in portal.outbox.emails if m not in links]
    for text in texts:
        for secret in (link, superseding, PASSWORD, WRONG, portal.token.reveal()):
            assert secret not in text
    assert NEW_EMAIL not in repr(user) + repr(portal.stored_user())


def test_rc_1_every_action_asks_for_the_session_first(portal: Portal) -> None:
    """RC-1: an ended session asks for nothing and changes nothing."""
    link = ask(portal)
    portal.clock.advance(portal.context.settings.sign_in.idle_timeout)
    with pytest.raises(InvalidToken) as asking:
        portal.actions.change_email(portal.token, current_password=PASSWORD, new_email=OTHER_EMAIL)
    with pytest.raises(InvalidToken) as confirming:
        confirm(portal, link)
    assert (asking.value.code, confirming.value.code) == ("session.invalid", "session.invalid")
    assert portal.stored_user().pending_email == NEW_EMAIL
    assert portal.failures() == 0


def test_rc_1_a_malformed_new_address_is_refused_before_the_password_counts(
    portal: Portal,
) -> None:
    """RC-1, ID-1: the address is checked first; a pending change stays as it was."""
    ask(portal)
    with pytest.raises(InvalidInput) as caught:
        portal.actions.change_email(portal.token, current_password=WRONG, new_email="a@b")
    assert caught.value.code == "email.malformed"
    assert portal.failures() == 0
    assert portal.stored_user().pending_email == NEW_EMAIL


def test_rc_1_only_a_confirmation_link_with_an_address_pending_confirms(
    portal: Portal, flows: Flows
) -> None:
    """RC-1, RG-6: a reset link, or a link whose address is no longer pending, is refused."""
    flows.accounts.forgot_password(email=EMAIL)
    with pytest.raises(InvalidToken):
        confirm(portal, flows.token(EMAIL))
    link = ask(portal)
    flows.update_user(portal.user.id, pending_email=None)
    with pytest.raises(InvalidToken):
        confirm(portal, link)
    assert refusals(portal) == ["wrong_purpose", "nothing_pending"]
    assert portal.stored_user().email == EMAIL
