"""Password reset as the "Forgot Password" help page tells it (RS-1..RS-5, VF-9, PW-4)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import attrs
import pytest

from accounts.link_flows import Flows, LosingStore, token_of
from conftest import BASE_URL, SECRET
from securepractice import (
    AttemptOutcome,
    InvalidState,
    InvalidToken,
    LinkRules,
    PasswordReport,
    Settings,
    SettingsError,
)
from securepractice.accounts.reset import ResetStage
from securepractice.accounts.signin import SignInOutcome, SignInReason
from securepractice.dependencies import Dependencies
from securepractice.policy.sessions import new_session
from securepractice.portal import Accounts
from securepractice.records import (
    Phone,
    PhoneKind,
    RegistrationStatus,
    TokenPurpose,
    User,
    revised,
)
from securepractice.storage.ports import Storage
from securepractice.testing import World
from securepractice.verification import tokens

EMAIL = "dana@smile.example"
OLD = "Old-Smile-2020"
NEW = "New-Smile-2026"
THIRD = "Third-Smile-2027"
CELL = "+12025550143"


def _registered(flows: Flows, *, two_step: bool = True, password: str = OLD) -> User:
    """A registered user with a cell phone and ``password``, set now."""
    world = World(flows.context)
    cell = Phone(number=CELL, kind=PhoneKind.CELL)
    return world.user(
        EMAIL, practice=world.practice(), password=password, phones=(cell,), two_step=two_step
    )


def _ask(flows: Flows, email: str) -> object:
    """Ask "Forgot Password" and return its answer, which must always be the same."""
    forgot: Callable[..., object] = flows.accounts.forgot_password
    return forgot(email=email)


def _recipients(flows: Flows) -> list[str]:
    """Who was sent an email so far."""
    return [mail.to for mail in flows.outbox.emails]


def _verified_reset_token(flows: Flows) -> str:
    """Steps 2-6: ask, open the email's link, get a text and enter its code."""
    flows.accounts.forgot_password(email=EMAIL)
    token = flows.token(EMAIL)
    step = flows.accounts.open_reset_link(token)
    assert step.stage is ResetStage.VERIFY
    flows.accounts.send_code(token, option=step.delivery_options[0])
    assert flows.accounts.verify_code(token, code=flows.outbox.last_code(CELL)).verified
    return token


def test_rs_2_a_lost_password_is_reset_after_a_code_and_the_user_signs_in(flows: Flows) -> None:
    """RS-4 (lost password): the whole "Forgot Password" page, then the login page."""
    user = _registered(flows)
    assert _ask(flows, " Dana@Smile.Example ") is None
    link = flows.link(EMAIL)
    assert link.startswith(f"{BASE_URL}/reset-password?token=")  # RS-5
    token = token_of(link)
    step = flows.accounts.open_reset_link(token)
    assert step.stage is ResetStage.VERIFY
    assert step.email == EMAIL

    with pytest.raises(InvalidState) as early:
        flows.accounts.reset_password(token, password=NEW, confirmation=NEW)
    assert early.value.code == "flow.out_of_order"

    flows.accounts.send_code(token, option=step.delivery_options[0])
    assert flows.accounts.verify_code(token, code=flows.outbox.last_code(CELL)).verified
    assert flows.accounts.open_reset_link(token).stage is ResetStage.PASSWORD

    mismatch = flows.accounts.reset_password(token, password=NEW, confirmation=NEW + "!")
    assert mismatch.codes == ("password.mismatch",)
    reused = flows.accounts.reset_password(token, password=OLD, confirmation=OLD)
    assert reused.codes == ("password.reused",)  # PW-4: the current one counts
    report = flows.accounts.reset_password(token, password=NEW, confirmation=NEW)
    assert report.ok

    credential = flows.credential(user.id)
    assert credential is not None
    assert flows.context.hasher.verify(credential.password_hash, NEW)
    assert len(credential.history) == 1
    assert flows.context.hasher.verify(credential.history[0], OLD)
    notice = flows.outbox.last_email(EMAIL)
    assert "password was changed" in notice.subject  # RS-3
    with pytest.raises(InvalidToken):
        flows.accounts.open_reset_link(token)
    assert flows.accounts.sign_in(email=EMAIL, password=NEW).outcome is SignInOutcome.OK
    assert (
        flows.accounts.sign_in(email=EMAIL, password=OLD).outcome
        is SignInOutcome.INVALID_CREDENTIALS
    )
    assert flows.events("password.reset")[0].subject_id == user.id


def test_d_forgot_password_for_an_unknown_email_answers_alike_and_sends_nothing(
    flows: Flows,
) -> None:
    """RS-1: unknown, malformed and known emails all get None; only the known one gets mail."""
    _registered(flows)
    answers = [_ask(flows, address) for address in ("nobody@smile.example", "not an email", "")]
    assert _recipients(flows) == []
    answers.append(_ask(flows, EMAIL))
    assert answers == [None, None, None, None]
    assert _recipients(flows) == [EMAIL]
    requested = flows.events("password.reset_requested")
    assert [(e.outcome, e.subject_id is None) for e in requested] == [
        ("unknown_user", True),
        ("unknown_user", True),
        ("unknown_user", True),
        ("ok", False),
    ]


def test_rs_1_an_invited_user_who_never_registered_is_sent_back_to_the_invitation(
    flows: Flows,
) -> None:
    practice = flows.practice()
    user = flows.accounts.invite(practice_id=practice.id, email=EMAIL)
    invitation = flows.token(EMAIL)
    assert _ask(flows, EMAIL) is None
    mail = flows.outbox.last_email(EMAIL)
    assert "not finished registering" in mail.body
    assert "http" not in mail.body
    assert flows.events("password.reset_requested")[0].outcome == "not_registered"
    with flows.store.unit_of_work() as uow:
        assert uow.credentials.get(user.id) is None
    assert flows.accounts.open_invitation(invitation).email == EMAIL


def test_rs_1_a_deactivated_user_gets_nothing(flows: Flows) -> None:
    user = _registered(flows)
    flows.update_user(user.id, deactivated=True)
    assert _ask(flows, EMAIL) is None
    assert flows.outbox.emails == ()
    assert flows.events("password.reset_requested")[0].outcome == "deactivated"


def test_rs_1_a_reset_link_works_for_one_hour_and_a_new_one_replaces_it(flows: Flows) -> None:
    _registered(flows, two_step=False)
    flows.accounts.forgot_password(email=EMAIL)
    first = flows.token(EMAIL)
    flows.clock.advance(minutes=1)
    flows.accounts.forgot_password(email=EMAIL)
    second = flows.token(EMAIL)
    with pytest.raises(InvalidToken):
        flows.accounts.open_reset_link(first)
    flows.clock.advance(timedelta(hours=1) - timedelta(seconds=1))
    assert flows.accounts.open_reset_link(second).stage is ResetStage.PASSWORD
    flows.clock.advance(seconds=1)
    with pytest.raises(InvalidToken):
        flows.accounts.open_reset_link(second)
    assert [e.outcome for e in flows.events("password.reset_refused")] == [
        "superseded",
        "expired",
    ]


def test_rs_3_a_reset_unlocks_clears_failures_revokes_sessions_and_other_links(
    flows: Flows,
) -> None:
    """RS-4 (locked account): five wrong passwords lock it; a reset opens it again (LK-2)."""
    user = _registered(flows)
    session = flows.accounts.sign_in(email=EMAIL, password=OLD)
    assert session.session_token is not None
    for _ in range(5):
        flows.accounts.sign_in(email=EMAIL, password="Wrong-Guess-1")
    assert flows.user(user.id).locked
    with flows.store.unit_of_work() as uow:
        uow.sessions.add(
            new_session(
                user_id=user.id, now=flows.clock.now(), rules=flows.context.settings.sign_in
            ).record
        )
    assert flows.accounts.sign_in(email=EMAIL, password=OLD).reason is SignInReason.LOCKED

    token = _verified_reset_token(flows)
    other = tokens.issue_token(
        user_id=user.id,
        purpose=TokenPurpose.PASSWORD_RESET,
        now=flows.clock.now(),
        rules=flows.context.settings.links,
    )
    with flows.store.unit_of_work() as uow:
        uow.link_tokens.add(other.record)
        now = flows.clock.now()
        uow.sign_in_failures.start(user.id, now=now, abandoned_before=now)
        uow.sign_in_failures.finish(user.id, started=now, outcome=AttemptOutcome.WRONG)
    assert flows.accounts.reset_password(token, password=NEW, confirmation=NEW).ok

    assert not flows.user(user.id).locked
    with flows.store.unit_of_work() as uow:
        assert uow.sign_in_failures.count(user.id) == 0
        stored_other = uow.link_tokens.get(other.record.token_hash)
    assert stored_other is not None
    assert stored_other.superseded
    with pytest.raises(InvalidToken):
        flows.accounts.open_reset_link(other.token.reveal())
    with pytest.raises(InvalidToken):
        flows.accounts.touch_session(session.session_token)
    event = flows.events("password.reset")[0]
    assert dict(event.detail) == {
        "sessions_revoked": "1",
        "was_locked": "true",
        "devices_forgotten": "0",
    }
    assert flows.events("account.unlocked")[0].subject_id == user.id
    assert flows.outbox.last_email(EMAIL).subject.endswith("password was changed")
    assert flows.accounts.sign_in(email=EMAIL, password=NEW).outcome is SignInOutcome.OK


def test_rs_4_an_expired_password_is_recovered_by_a_reset(flows: Flows) -> None:
    """PW-5: after 90 days the password only reaches "must change"; a reset gives full access."""
    _registered(flows)
    flows.clock.advance(days=91)
    assert (
        flows.accounts.sign_in(email=EMAIL, password=OLD).outcome is SignInOutcome.PASSWORD_EXPIRED
    )
    token = _verified_reset_token(flows)
    assert flows.accounts.reset_password(token, password=NEW, confirmation=NEW).ok
    assert flows.accounts.sign_in(email=EMAIL, password=NEW).outcome is SignInOutcome.OK


def test_vf_9_with_two_step_off_the_code_step_is_skipped_and_stays_off(flows: Flows) -> None:
    user = _registered(flows, two_step=False)
    flows.accounts.forgot_password(email=EMAIL)
    token = flows.token(EMAIL)
    step = flows.accounts.open_reset_link(token)
    assert (step.stage, step.delivery_options) == (ResetStage.PASSWORD, ())
    with pytest.raises(InvalidState):
        flows.accounts.send_code(token, option=flows.accounts.delivery_options(token)[0])
    assert flows.accounts.reset_password(token, password=NEW, confirmation=NEW).ok
    assert flows.user(user.id).two_step_enabled is False


def test_pw_4_history_keeps_the_last_passwords_and_refuses_them(flows: Flows) -> None:
    """The current password and the five before it are refused; older ones drop out."""
    hasher = flows.context.hasher
    user = _registered(flows, two_step=False, password="Pass-Word-0")
    history = tuple(hasher.hash(f"Pass-Word-{n}") for n in range(1, 7))
    with flows.store.unit_of_work() as uow:
        current = uow.credentials.get(user.id)
        assert current is not None
        uow.credentials.save(revised(current, history=history), expected_version=current.version)
    flows.accounts.forgot_password(email=EMAIL)
    token = flows.token(EMAIL)
    for n in range(6):
        assert flows.accounts.reset_password(
            token, password=f"Pass-Word-{n}", confirmation=f"Pass-Word-{n}"
        ).codes == ("password.reused",)
    assert flows.accounts.reset_password(
        token, password="Pass-Word-6", confirmation="Pass-Word-6"
    ).ok
    credential = flows.credential(user.id)
    assert credential is not None
    assert len(credential.history) == 5
    assert hasher.verify(credential.history[0], "Pass-Word-0")
    assert hasher.verify(credential.history[-1], "Pass-Word-4")


def test_rs_5_two_simultaneous_uses_of_one_reset_link_one_succeeds(flows: Flows) -> None:
    user = _registered(flows, two_step=False)
    flows.accounts.forgot_password(email=EMAIL)
    token = flows.token(EMAIL)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def use(password: str) -> None:
        barrier.wait()
        try:
            report = flows.accounts.reset_password(token, password=password, confirmation=password)
            outcome = "ok" if report.ok else "weak"
        except InvalidToken:
            outcome = "refused"
        with lock:
            outcomes.append(outcome)

    threads = [
        threading.Thread(target=use, args=(p,)) for p in ("First-Try-2026", "Other-Try-2026")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok", "refused"]
    assert len(flows.events("password.reset")) == 1
    credential = flows.credential(user.id)
    assert credential is not None
    assert len(credential.history) == 1
    notices = [e for e in flows.outbox.emails if e.subject.endswith("password was changed")]
    assert len(notices) == 1


def test_rs_3_a_failed_notice_does_not_undo_the_reset(flows: Flows) -> None:
    user = _registered(flows, two_step=False)
    flows.accounts.forgot_password(email=EMAIL)
    token = flows.token(EMAIL)
    flows.outbox.fail_next("email")
    report: PasswordReport = flows.accounts.reset_password(token, password=NEW, confirmation=NEW)
    assert report.ok
    credential = flows.credential(user.id)
    assert credential is not None
    assert flows.context.hasher.verify(credential.password_hash, NEW)
    assert flows.events("password.reset_notice_failed")[0].outcome == "delivery.failed"


def test_rs_1_a_reset_email_that_cannot_be_sent_still_answers_alike(flows: Flows) -> None:
    _registered(flows)
    flows.outbox.fail_next("email")
    assert _ask(flows, EMAIL) is None
    assert flows.outbox.emails == ()
    assert dict(flows.events("password.reset_email_failed")[0].detail)["channel"] == "email"


def test_rs_5_no_reset_without_the_portals_configured_address(
    context: Dependencies, store: Storage
) -> None:
    """Refused alike for every email, so the setting does not tell who has an account."""
    actions = Accounts(attrs.evolve(context, settings=Settings(links=LinkRules(), secret=SECRET)))
    for email in ("nobody@smile.example", "bad"):
        with pytest.raises(SettingsError) as error:
            actions.forgot_password(email=email)
        assert error.value.field == "base_url"
    with store.unit_of_work() as uow:
        assert uow.audit.events() == []


def test_rs_2_a_user_without_phones_cannot_skip_the_code(flows: Flows) -> None:
    user = _registered(flows)
    flows.update_user(user.id, phones=(Phone(number=CELL, kind=PhoneKind.PHONE),))
    flows.accounts.forgot_password(email=EMAIL)
    token = flows.token(EMAIL)
    step = flows.accounts.open_reset_link(token)
    assert step.stage is ResetStage.VERIFY
    assert [o.destination for o in step.delivery_options] == [CELL]
    with pytest.raises(InvalidState):
        flows.accounts.reset_password(token, password=NEW, confirmation=NEW)


def test_rs_5_a_reset_that_loses_the_race_for_its_link_changes_nothing(flows: Flows) -> None:
    user = _registered(flows, two_step=False)
    flows.accounts.forgot_password(email=EMAIL)
    token = flows.token(EMAIL)
    racing = Accounts(attrs.evolve(flows.context, storage=LosingStore(flows.store)))
    with pytest.raises(InvalidToken):
        racing.reset_password(token, password=NEW, confirmation=NEW)
    credential = flows.credential(user.id)
    assert credential is not None
    assert flows.context.hasher.verify(credential.password_hash, OLD)
    assert flows.events("password.reset_refused")[-1].outcome == "used"


def _signed_up(flows: Flows) -> User:
    """A user who registered through the invitation with two-step verification on."""
    practice = flows.practice()
    user = flows.accounts.invite(practice_id=practice.id, email=EMAIL, cell=CELL)
    token = flows.token(EMAIL)
    step = flows.accounts.open_invitation(token)
    flows.accounts.send_code(token, option=step.delivery_options[0])
    assert flows.accounts.verify_code(token, code=flows.outbox.last_code(CELL)).verified
    flows.accounts.accept_terms(token, version=flows.context.terms_version)
    assert flows.accounts.set_password(token, password=OLD, confirmation=OLD).ok
    registered = flows.user(user.id)
    assert registered.status is RegistrationStatus.REGISTERED
    assert registered.two_step_enabled  # VF-9: on by default
    return registered


@pytest.mark.parametrize("first_reset", ["completed", "abandoned"])
@pytest.mark.parametrize(
    "clock_moves",
    [timedelta(0), -timedelta(minutes=5)],
    ids=["clock_standing_still", "clock_stepped_back"],
)
def test_rs_2_vf_9_a_verification_belongs_to_its_reset_link(
    flows: Flows, first_reset: str, clock_moves: timedelta
) -> None:
    """RS-2, VF-9: a code verified on one reset link never counts for another one.

    The second link is made in the same instant as the first verification, or
    earlier by a clock stepped back: the verification is the link's own (its
    flow id), whatever the timestamps say.
    """
    user = _signed_up(flows)
    first = _verified_reset_token(flows)
    if first_reset == "completed":
        assert flows.accounts.reset_password(first, password=NEW, confirmation=NEW).ok
    flows.clock.set(flows.clock.now() + clock_moves)
    flows.accounts.forgot_password(email=EMAIL)
    second = flows.token(EMAIL)
    assert second != first
    before = flows.credential(user.id)

    step = flows.accounts.open_reset_link(second)
    assert step.stage is ResetStage.VERIFY
    assert step.delivery_options != ()
    with pytest.raises(InvalidState) as refused:
        flows.accounts.reset_password(second, password=THIRD, confirmation=THIRD)
    assert refused.value.code == "flow.out_of_order"
    assert flows.credential(user.id) == before
    with pytest.raises(InvalidState) as not_started:
        flows.accounts.resend_code(second)
    assert not_started.value.code == "verification.not_started"

    # The second link's own verification opens its password step.
    flows.accounts.send_code(second, option=step.delivery_options[0])
    assert flows.accounts.verify_code(second, code=flows.outbox.last_code(CELL)).verified
    assert flows.accounts.open_reset_link(second).stage is ResetStage.PASSWORD
    assert flows.accounts.reset_password(second, password=THIRD, confirmation=THIRD).ok
    assert flows.accounts.sign_in(email=EMAIL, password=THIRD).outcome is SignInOutcome.OK
