"""Changing one's password while signed in, on both stores (PW-4, PW-5, PW-6, PW-9, LK-1, LK-6)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import attrs
import pytest

from accounts.profile_fixtures import EMAIL, Portal, open_portal
from securepractice import (
    CorruptHash,
    FakeClock,
    InvalidInput,
    InvalidState,
    InvalidToken,
    Outbox,
    PasswordHasher,
    Role,
    StorageError,
)
from securepractice.accounts import profile
from securepractice.accounts.profile import ChangePasswordResult
from securepractice.accounts.signin import SignInOutcome, SignInReason
from securepractice.dependencies import Dependencies
from securepractice.portal import Accounts
from securepractice.records import AttemptOutcome, DeliveryMethod, PhoneKind, revised
from securepractice.secret import Secret
from securepractice.testing import PASSWORD, FaultyStorage

if TYPE_CHECKING:
    from accounts.link_flows import Flows

NEW = "Harbor-Light-77"
HISTORY = [f"Harbor-{n}-Light!" for n in range(1, 7)]


@pytest.fixture
def portal(context: Dependencies, outbox: Outbox, clock: FakeClock) -> Portal:
    return open_portal(context, outbox, clock)


def change(
    portal: Portal,
    token: str | Secret[str],
    current: str,
    new: str,
    confirmation: str | None = None,
) -> ChangePasswordResult:
    return portal.actions.change_password(
        token,
        current_password=current,
        new_password=new,
        confirmation=new if confirmation is None else confirmation,
    )


def test_journey_expired_password_history_and_sign_in(portal: Portal) -> None:
    """Journey (c): expiry after 90 days, nothing but the change, six remembered (PW-5, PW-4)."""
    actions, clock = portal.actions, portal.clock
    clock.advance(days=90)
    expired = actions.sign_in(email=EMAIL, password=PASSWORD)
    assert expired.outcome is SignInOutcome.PASSWORD_EXPIRED
    assert expired.session_token is not None
    token = expired.session_token

    # PW-5: the expired session reaches nothing but the change of password.
    refused_actions: list[Callable[[], object]] = [
        lambda: actions.update_profile(token, first_name="Robin"),
        lambda: actions.set_two_step(token, enabled=True),
        lambda: actions.set_two_step(
            token, enabled=False, current_password=PASSWORD, code="123456"
        ),
        lambda: actions.two_step_off_options(token),
        lambda: actions.resend_two_step_off_code(token),
        lambda: actions.change_email(token, current_password=PASSWORD, new_email="x@example.com"),
        lambda: actions.list_sessions(token),
        lambda: actions.end_other_sessions(token, current_password=PASSWORD),
        lambda: actions.start_phone_change(
            token,
            current_password=PASSWORD,
            kind=PhoneKind.CELL,
            number="+12025550178",
            option_method=DeliveryMethod.SMS,
        ),
        lambda: actions.resend_phone_code(token),
        lambda: actions.verify_phone_code(token, code="123456"),
    ]
    for refused in refused_actions:
        with pytest.raises(InvalidState) as caught:
            refused()
        assert caught.value.code == "password.expired"
    assert portal.stored_user() == portal.user
    assert portal.failures() == 0

    # Set six passwords one after another, each through change_password.
    current = PASSWORD
    for password in HISTORY:
        clock.advance(minutes=1)
        result = change(portal, token, current, password)
        assert result.ok, result.report.codes
        assert result.session_token is not None
        token, current = result.session_token, password

    # PW-4: none of the last six (the current one included) is accepted ...
    for old in HISTORY:
        result = change(portal, token, current, old)
        assert result.report.codes == ("password.reused",)
        assert result.session_token is None
    # ... the seventh one back is.
    result = change(portal, token, current, PASSWORD)
    assert result.ok

    signed_in = actions.sign_in(email=EMAIL, password=PASSWORD)
    assert signed_in.outcome is SignInOutcome.OK
    assert not actions.touch_session(signed_in.session_token or "").must_change_password


def test_history_keeps_the_hashes_of_the_previous_passwords_only(portal: Portal) -> None:
    """PW-4: the history holds the last ``history - 1`` earlier hashes, newest first."""
    token, current = portal.token, PASSWORD
    hashes = [portal.credential().password_hash]
    for password in [*HISTORY, NEW]:
        result = change(portal, token, current, password)
        assert result.session_token is not None
        token, current = result.session_token, password
        hashes.append(portal.credential().password_hash)
    credential = portal.credential()
    history = portal.context.settings.password.history
    assert credential.password_hash == hashes[-1]
    assert credential.history == tuple(reversed(hashes[-history:-1]))
    assert credential.set_at == portal.clock.now()


def test_wrong_current_password_is_refused_and_changes_nothing(portal: Portal) -> None:
    """PW-6: the current password is required; a wrong one changes no password or session."""
    before = portal.credential()
    result = change(portal, portal.token, "Not-the-password-1", "weak", "weak!")
    assert not result.ok
    assert result.session_token is None
    assert result.report.codes[0] == "password.current_wrong"
    # The form shows every other problem at once (PW-8).
    assert {"password.too_short", "password.mismatch"} <= set(result.report.codes)
    assert portal.credential() == before
    assert portal.actions.touch_session(portal.token).user_id == portal.user.id
    assert portal.outbox.emails == ()
    [event] = portal.events("password.recheck")
    assert (event.outcome, dict(event.detail)) == (
        "wrong_password",
        {"purpose": "change_password"},
    )


def test_wrong_current_password_does_not_reveal_old_passwords(portal: Portal) -> None:
    """Without the current password the history is not checked: no oracle for old passwords."""
    first = change(portal, portal.token, PASSWORD, NEW)
    assert first.session_token is not None
    result = change(portal, first.session_token, "Not-the-password-1", PASSWORD)
    assert result.report.codes == ("password.current_wrong",)


def test_wrong_current_passwords_count_toward_lockout(portal: Portal) -> None:
    """LK-1: wrong current passwords are failed sign-ins; the fifth locks the account."""
    limit = portal.context.settings.sign_in.max_failed_sign_ins
    for _ in range(2):
        assert not portal.actions.sign_in(email=EMAIL, password="Wrong-password-1").ok
    for attempt in range(3, limit + 1):
        assert not change(portal, portal.token, "Wrong-password-1", NEW).ok
        assert portal.failures() == attempt
    assert portal.stored_user().locked
    # A lock revokes every session (LK-6) ...
    with pytest.raises(InvalidToken):
        portal.actions.touch_session(portal.token)
    # ... and even the right password is refused now (LK-1).
    refused = portal.actions.sign_in(email=EMAIL, password=PASSWORD)
    assert refused.reason is SignInReason.LOCKED
    assert [e.action for e in portal.events("account.locked")] == ["account.locked"]


def test_right_current_password_clears_the_failure_count(portal: Portal) -> None:
    """Proving the password clears earlier failures, as a successful sign-in does (LK-3)."""
    assert not portal.actions.sign_in(email=EMAIL, password="Wrong-password-1").ok
    assert not change(portal, portal.token, "Wrong-password-1", NEW).ok
    assert portal.failures() == 2
    assert change(portal, portal.token, PASSWORD, NEW).ok
    assert portal.failures() == 0


def test_a_weak_new_password_is_reported_and_nothing_changes(portal: Portal) -> None:
    """PW-1..PW-3 through the policy: every violation reported, the password kept."""
    before = portal.credential()
    result = change(portal, portal.token, PASSWORD, "short", "other")
    assert set(result.report.codes) >= {"password.too_short", "password.mismatch"}
    assert "password.current_wrong" not in result.report.codes
    assert portal.credential() == before
    assert portal.actions.touch_session(portal.token).user_id == portal.user.id
    [event] = portal.events("password.change_refused")
    assert dict(event.detail)["violations"] == ",".join(result.report.codes)


def test_change_revokes_other_sessions_and_renews_the_current_one(portal: Portal) -> None:
    """LK-6: other sessions end; the current one continues with a new token (LK-7 kept)."""
    started = portal.clock.now()
    phone_session = portal.world.sign_in(EMAIL)
    tablet_session = portal.world.sign_in(EMAIL)
    portal.clock.advance(minutes=20)
    result = change(portal, portal.token, PASSWORD, NEW)
    assert result.session_token is not None
    for ended in (phone_session, tablet_session, portal.token):
        with pytest.raises(InvalidToken):
            portal.actions.touch_session(ended)
    status = portal.actions.touch_session(result.session_token)
    assert status.user_id == portal.user.id
    assert not status.must_change_password
    # The session continues: a change of password does not extend its absolute lifetime.
    assert status.ends_at == started + portal.context.settings.sign_in.absolute_lifetime
    [event] = portal.events("password.changed")
    assert dict(event.detail)["sessions_revoked"] == "3"
    assert not portal.actions.sign_in(email=EMAIL, password=PASSWORD).ok
    assert portal.actions.sign_in(email=EMAIL, password=NEW).ok


def test_the_user_is_emailed_after_the_change(portal: Portal) -> None:
    """The change is notified by email, which holds neither password."""
    assert change(portal, portal.token, PASSWORD, NEW).ok
    email = portal.outbox.last_email(EMAIL)
    assert email.subject == "Your password was changed"
    assert PASSWORD not in email.body
    assert NEW not in email.body


def test_a_failed_notice_does_not_undo_the_change_or_lose_the_token(portal: Portal) -> None:
    """The change is committed before the email; a failed email is audited, not raised."""
    portal.outbox.fail_next("email")
    result = change(portal, portal.token, PASSWORD, NEW)
    assert result.session_token is not None
    assert portal.actions.touch_session(result.session_token).user_id == portal.user.id
    [event] = portal.events("notice.failed")
    assert (event.outcome, dict(event.detail)) == (
        "delivery.failed",
        {"notice": "password_changed"},
    )


def test_outstanding_reset_links_stop_working(portal: Portal, flows: Flows) -> None:
    """A reset link sent before the change no longer works after it."""
    flows.accounts.forgot_password(email=EMAIL)
    link_token = flows.token(EMAIL)
    assert change(portal, portal.token, PASSWORD, NEW).ok
    with pytest.raises(InvalidToken):
        flows.accounts.open_reset_link(link_token)


def test_a_password_changed_meanwhile_is_not_overwritten(portal: Portal) -> None:
    """When the credential changes while the new one is hashed, nothing is written."""
    other_hash = portal.context.hasher.hash("Someone-Else-9")

    class RacingHasher(PasswordHasher):
        def hash(self, password: str) -> str:
            with portal.storage.unit_of_work() as uow:
                stored = uow.credentials.get(portal.user.id)
                assert stored is not None
                replaced = revised(stored, password_hash=other_hash, set_at=portal.clock.now())
                uow.credentials.save(replaced, expected_version=stored.version)
            return super().hash(password)

    racing = Accounts(
        attrs.evolve(portal.context, hasher=RacingHasher(portal.context.settings.hashing))
    )
    with pytest.raises(InvalidState) as caught:
        racing.change_password(
            portal.token, current_password=PASSWORD, new_password=NEW, confirmation=NEW
        )
    assert caught.value.code == "password.changed_meanwhile"
    assert portal.credential().password_hash == other_hash
    assert portal.actions.touch_session(portal.token).user_id == portal.user.id
    # DP-5: the right current password was neither a failure nor left in flight.
    assert portal.failures() == 0
    assert attempts_counted(portal) == 0


def attempts_counted(portal: Portal) -> int:
    """The failures on record plus the attempts in flight: what the next attempt counts after."""
    now = portal.clock.now()
    timeout = portal.context.settings.sign_in.attempt_timeout
    with portal.storage.unit_of_work() as uow:
        counted = uow.sign_in_failures.start(
            portal.user.id, now=now, abandoned_before=now - timeout
        )
        uow.sign_in_failures.finish(portal.user.id, started=now, outcome=AttemptOutcome.NOT_COUNTED)
    return counted - 1


def test_dp_5_a_right_current_password_never_counts_when_the_change_fails(
    portal: Portal,
) -> None:
    """DP-5, LK-8: storage failing at each operation of a change never counts the right password.

    The change fails at its k-th storage operation, for every k in turn
    until it gets through: each time nothing changed, the one failure on
    record stays one, and no attempt is left in flight to count later.
    """
    assert not portal.actions.sign_in(email=EMAIL, password="Wrong-password-1").ok
    faulty = FaultyStorage(portal.storage)
    actions = Accounts(attrs.evolve(portal.context, storage=faulty))
    before = portal.credential()
    failed_at = []
    for operation in range(1, 100):
        faulty.fail_at(operation)
        try:
            result = actions.change_password(
                portal.token, current_password=PASSWORD, new_password=NEW, confirmation=NEW
            )
        except StorageError:
            failed_at.append(operation)
        else:
            break
        finally:
            faulty.fail_at(None)
        assert portal.credential() == before
        assert attempts_counted(portal) == 1
        assert not portal.stored_user().locked
    assert failed_at == list(range(1, len(failed_at) + 1))
    assert len(failed_at) >= 8  # both units of the change, each operation of them
    assert result.ok
    assert portal.failures() == 0
    assert portal.credential() != before


def test_a_corrupt_stored_hash_is_an_error_and_not_a_failure(portal: Portal) -> None:
    """LK-8: an unreadable hash raises CorruptHash and does not count toward lockout."""
    stored = portal.credential()
    broken = revised(stored, password_hash="$argon2id$broken")
    with portal.storage.unit_of_work() as uow:
        uow.credentials.save(broken, expected_version=stored.version)
    with pytest.raises(CorruptHash):
        change(portal, portal.token, PASSWORD, NEW)
    assert portal.failures() == 0
    assert [e.outcome for e in portal.events("password.recheck")] == ["corrupt_hash"]


@pytest.mark.parametrize("field", ["current_password", "new_password", "confirmation"])
@pytest.mark.parametrize("value", [None, b"Sunshine-2026", 12345678])
def test_a_password_that_is_not_text_is_refused_before_anything_counts(
    portal: Portal, field: str, value: object
) -> None:
    arguments: dict[str, object] = {
        "current_password": PASSWORD,
        "new_password": NEW,
        "confirmation": NEW,
        field: value,
    }
    before = portal.credential()
    with pytest.raises(InvalidInput) as caught:
        portal.actions.change_password(portal.token, **arguments)  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.code) == (field, "password.not_text")
    assert portal.failures() == 0
    assert portal.credential() == before


@pytest.mark.parametrize("token", ["", "not-a-session", "x" * 43])
def test_an_unknown_session_cannot_change_a_password(portal: Portal, token: str) -> None:
    before = portal.credential()
    with pytest.raises(InvalidToken) as caught:
        change(portal, Secret(token), PASSWORD, NEW)
    assert caught.value.code == "session.invalid"
    assert portal.credential() == before


def test_an_idle_session_cannot_change_a_password(portal: Portal) -> None:
    portal.clock.advance(portal.context.settings.sign_in.idle_timeout)
    with pytest.raises(InvalidToken):
        change(portal, portal.token, PASSWORD, NEW)


def test_nothing_lets_anyone_but_the_user_set_their_password(portal: Portal) -> None:
    """PW-9: every action acts on the session's own user; none takes another user to act on."""
    own = [
        member
        for member in (getattr(profile, name) for name in profile.__all__)
        if inspect.isfunction(member)
    ]
    assert len(own) == 14
    for member in own:
        parameters = set(inspect.signature(member).parameters)
        assert not parameters & {"user_id", "user", "subject", "target", "email"}, member
    assert "current_password" in inspect.signature(profile.change_password).parameters

    portal.world.user("help@portal.example", password="Support-Desk-1", roles=(Role.SUPPORT,))
    victim_before = portal.credential()
    staff_token = portal.world.sign_in("help@portal.example", "Support-Desk-1")
    assert change(portal, staff_token, "Support-Desk-1", NEW).ok
    assert portal.credential() == victim_before
    assert portal.actions.sign_in(email="help@portal.example", password=NEW).ok


def test_the_two_step_setting_survives_a_change_of_password(portal: Portal) -> None:
    """VF-9: the user's two-step setting is theirs; changing the password leaves it off."""
    portal.two_step_off()
    result = change(portal, portal.token, PASSWORD, NEW)
    assert result.session_token is not None
    assert portal.stored_user().two_step_enabled is False


def test_the_change_is_audited_with_actor_subject_and_practice(portal: Portal) -> None:
    """AU-1: who, on whom, which practice, what, when, outcome."""
    portal.clock.advance(timedelta(minutes=3))
    assert change(portal, portal.token, PASSWORD, NEW).ok
    [event] = portal.events("password.changed")
    assert event.outcome == "ok"
    assert event.actor_id == event.subject_id == portal.user.id
    assert event.practice_id == portal.practice.id
    assert event.at == portal.clock.now()


def test_attempts_past_the_threshold_are_never_checked(portal: Portal) -> None:
    """LK-4: once the count is past the limit, even the right password is not looked at."""
    limit = portal.context.settings.sign_in.max_failed_sign_ins
    now = portal.clock.now()
    with portal.storage.unit_of_work() as uow:
        for _ in range(limit):
            uow.sign_in_failures.start(portal.user.id, now=now, abandoned_before=now)
            uow.sign_in_failures.finish(portal.user.id, started=now, outcome=AttemptOutcome.WRONG)
    assert not portal.stored_user().locked
    result = change(portal, portal.token, PASSWORD, NEW)
    assert result.report.codes[0] == "password.current_wrong"
    assert portal.failures() == limit + 1
    assert portal.stored_user().locked
    assert not portal.actions.sign_in(email=EMAIL, password=NEW).ok
