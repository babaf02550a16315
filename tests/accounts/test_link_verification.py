"""The "Verify your Identity" screen on a link: options, sends, re-sends, failures (VF-2..VF-10)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import attrs
import pytest

from accounts.link_flows import Flows, LosingStore, OvertakenStore
from securepractice import DeliveryFailed, InvalidInput, InvalidState, RateLimited
from securepractice.errors import Conflict
from securepractice.messaging.ports import SmsMessage
from securepractice.portal import Accounts
from securepractice.records import Challenge, ChallengeState, DeliveryMethod, Purpose, User
from securepractice.verification import codes
from securepractice.verification.codes import VerifyOutcome, VerifyResult

CELL = "+12025550143"
OFFICE = "+442079460958"


def _at_verify(flows: Flows, **phones: str) -> tuple[User, str]:
    practice = flows.practice()
    user = flows.accounts.invite(
        practice_id=practice.id, email="dana@smile.example", **(phones or {"cell": CELL})
    )
    return user, flows.token("dana@smile.example")


def _challenge(flows: Flows, user: User) -> Challenge:
    with flows.store.unit_of_work() as uow:
        found = uow.challenges.latest(user.id, Purpose.REGISTRATION)
    assert found is not None
    return found


def test_vf_2_only_the_options_the_numbers_allow(flows: Flows) -> None:
    _, office_only = _at_verify(flows, phone=OFFICE)
    assert [(o.method, o.destination) for o in flows.accounts.delivery_options(office_only)] == [
        (DeliveryMethod.VOICE, OFFICE)
    ]
    practice = flows.practice("Other")
    flows.accounts.invite(practice_id=practice.id, email="c@other.example", cell=CELL)
    cell_only = flows.token("c@other.example")
    assert [o.method for o in flows.accounts.delivery_options(cell_only)] == [
        DeliveryMethod.SMS,
        DeliveryMethod.VOICE,
    ]


def test_vf_2_an_option_not_offered_is_refused(flows: Flows) -> None:
    _, token = _at_verify(flows, phone=OFFICE)
    practice = flows.practice("Other")
    flows.accounts.invite(practice_id=practice.id, email="c@other.example", cell=CELL)
    foreign = flows.accounts.delivery_options(flows.token("c@other.example"))[0]
    with pytest.raises(InvalidInput) as refused:
        flows.accounts.send_code(token, option=foreign)
    assert refused.value.code == "verification.option_not_offered"
    assert flows.outbox.sms == ()
    assert flows.events("code.sent") == []


def test_vf_4_a_code_expires_after_ten_minutes(flows: Flows) -> None:
    _, token = _at_verify(flows)
    flows.accounts.send_code(token, option=flows.accounts.delivery_options(token)[0])
    code = flows.outbox.last_code(CELL)
    flows.clock.advance(minutes=10)
    result = flows.accounts.verify_code(token, code=code)
    assert result.outcome is VerifyOutcome.EXPIRED
    assert not result.verified


def test_vf_5_re_send_uses_the_method_chosen_last(flows: Flows) -> None:
    _, token = _at_verify(flows)
    sms, voice = flows.accounts.delivery_options(token)
    flows.accounts.send_code(token, option=sms)
    flows.accounts.change_delivery_method(token, option=voice)
    flows.accounts.resend_code(token)
    assert len(flows.outbox.sms) == 1
    assert len(flows.outbox.calls) == 2
    kinds = [dict(e.detail)["kind"] for e in flows.events("code.sent")]
    assert kinds == ["new", "change_method", "resend"]
    result = flows.accounts.verify_code(token, code=flows.outbox.last_code(CELL))
    assert result.verified


def test_vf_6_changing_to_the_same_option_is_refused(flows: Flows) -> None:
    _, token = _at_verify(flows)
    sms, _ = flows.accounts.delivery_options(token)
    flows.accounts.send_code(token, option=sms)
    with pytest.raises(InvalidInput) as same:
        flows.accounts.change_delivery_method(token, option=sms)
    assert same.value.code == "verification.same_option"


def test_vf_7_five_wrong_codes_void_the_verification_whatever_the_re_sends(flows: Flows) -> None:
    user, token = _at_verify(flows)
    flows.accounts.send_code(token, option=flows.accounts.delivery_options(token)[0])
    wrong = "000000" if flows.outbox.last_code(CELL) != "000000" else "111111"
    results: list[VerifyResult] = []
    for attempt in range(5):
        if attempt == 3:
            flows.accounts.resend_code(token)
            wrong = "000000" if flows.outbox.last_code(CELL) != "000000" else "111111"
        results.append(flows.accounts.verify_code(token, code=wrong))
    assert [r.outcome for r in results] == [VerifyOutcome.WRONG_CODE] * 4 + [
        VerifyOutcome.TOO_MANY_WRONG
    ]
    assert [r.attempts_left for r in results] == [4, 3, 2, 1, 0]
    late = flows.accounts.verify_code(token, code=flows.outbox.last_code(CELL))
    assert late.outcome is VerifyOutcome.VOID
    stored = _challenge(flows, user)
    assert stored.state is ChallengeState.VOID
    with pytest.raises(InvalidState) as ended:
        flows.accounts.resend_code(token)
    assert ended.value.code == "verification.not_active"
    # A new verification starts over, within the send limit.
    flows.accounts.send_code(token, option=flows.accounts.delivery_options(token)[0])
    assert flows.accounts.verify_code(token, code=flows.outbox.last_code(CELL)).verified
    failed = flows.events("code.failed")
    assert [e.outcome for e in failed] == ["wrong_code"] * 4 + ["too_many_wrong", "void"]


def test_vf_7_a_code_works_once(flows: Flows) -> None:
    _, token = _at_verify(flows)
    flows.accounts.send_code(token, option=flows.accounts.delivery_options(token)[0])
    code = flows.outbox.last_code(CELL)
    assert flows.accounts.verify_code(token, code=code).verified
    again = flows.accounts.verify_code(token, code=code)
    assert again.outcome is VerifyOutcome.ALREADY_VERIFIED


def test_verifying_or_re_sending_before_any_code_was_sent(flows: Flows) -> None:
    _, token = _at_verify(flows)
    for action in (
        lambda: flows.accounts.verify_code(token, code="123456"),
        lambda: flows.accounts.resend_code(token),
    ):
        with pytest.raises(InvalidState) as refused:
            action()
        assert refused.value.code == "verification.not_started"


def test_vf_8_the_sixth_send_in_fifteen_minutes_is_refused(flows: Flows) -> None:
    user, token = _at_verify(flows)
    flows.accounts.send_code(token, option=flows.accounts.delivery_options(token)[0])
    for _ in range(4):
        flows.clock.advance(minutes=1)
        flows.accounts.resend_code(token)
    flows.clock.advance(minutes=1)
    with pytest.raises(RateLimited) as limited:
        flows.accounts.resend_code(token)
    assert limited.value.retry_after == timedelta(minutes=10)
    assert limited.value.code == "verification.rate_limited"
    assert len(flows.outbox.sms) == 5
    with pytest.raises(RateLimited):
        flows.accounts.send_code(token, option=flows.accounts.delivery_options(token)[0])
    assert _challenge(flows, user).state is ChallengeState.ACTIVE
    flows.clock.advance(minutes=10)
    flows.accounts.resend_code(token)
    assert len(flows.outbox.sms) == 6


def test_vf_10_a_failed_text_voids_its_code_and_a_re_send_works(flows: Flows) -> None:
    user, token = _at_verify(flows)
    sms, voice = flows.accounts.delivery_options(token)
    flows.outbox.fail_next("sms")
    with pytest.raises(DeliveryFailed) as failed:
        flows.accounts.send_code(token, option=sms)
    assert failed.value.channel == "sms"
    stored = _challenge(flows, user)
    assert stored.code_hash is None
    assert stored.state is ChallengeState.ACTIVE
    event = flows.events("code.delivery_failed")[0]
    assert dict(event.detail)["channel"] == "sms"
    assert event.subject_id == user.id
    # No code works; a re-send does.
    assert flows.accounts.verify_code(token, code="123456").outcome is (
        VerifyOutcome.NO_ACTIVE_CODE
    )
    flows.accounts.resend_code(token)
    assert flows.accounts.verify_code(token, code=flows.outbox.last_code(CELL)).verified
    assert voice.method is DeliveryMethod.VOICE


def test_vf_10_failed_calls_still_count_toward_the_send_limit(flows: Flows) -> None:
    _, token = _at_verify(flows, phone=OFFICE)
    (call,) = flows.accounts.delivery_options(token)
    flows.outbox.fail_next("voice", times=5)
    with pytest.raises(DeliveryFailed):
        flows.accounts.send_code(token, option=call)
    for _ in range(4):
        with pytest.raises(DeliveryFailed) as failed:
            flows.accounts.resend_code(token)
        assert failed.value.channel == "voice"
    with pytest.raises(RateLimited):  # VF-8
        flows.accounts.resend_code(token)
    assert flows.outbox.calls == ()


@pytest.mark.parametrize("attempt", range(3))
def test_rs_5_two_simultaneous_right_entries_verify_once(flows: Flows, attempt: int) -> None:
    user, token = _at_verify(flows)
    flows.accounts.send_code(token, option=flows.accounts.delivery_options(token)[0])
    code = flows.outbox.last_code(CELL)
    barrier = threading.Barrier(2)
    results: list[VerifyOutcome] = []
    lock = threading.Lock()

    def enter() -> None:
        barrier.wait()
        outcome = flows.accounts.verify_code(token, code=code).outcome
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=enter) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.value for r in results) == ["already_verified", "verified"], attempt
    assert len(flows.events("code.verified")) == 1
    assert _challenge(flows, user).state is ChallengeState.VERIFIED


def test_vf_10_a_verification_that_moved_on_is_not_voided_by_a_late_failure(
    flows: Flows,
) -> None:
    """The SMS provider fails after the verification changed (ended, here): it stays as it is."""
    user, token = _at_verify(flows)
    (sms, _voice) = flows.accounts.delivery_options(token)

    class EndsThenFails:
        def send_sms(self, message: SmsMessage) -> None:
            with flows.store.unit_of_work() as uow:
                current = uow.challenges.latest(user.id, Purpose.REGISTRATION)
                assert current is not None
                uow.challenges.save(codes.cancel(current), expected_version=current.version)
            raise DeliveryFailed(f"provider down for {message.to}", channel="sms")

    messaging = attrs.evolve(flows.context.messaging, sms=EndsThenFails())
    actions = Accounts(attrs.evolve(flows.context, messaging=messaging))
    with pytest.raises(DeliveryFailed):
        actions.send_code(token, option=sms)
    stored = _challenge(flows, user)
    assert stored.state is ChallengeState.VOID
    assert flows.events("code.delivery_failed")[0].outcome == "delivery.failed"


@pytest.mark.parametrize("attempt", range(3))
def test_vf_7_simultaneous_wrong_entries_each_count(flows: Flows, attempt: int) -> None:
    """VF-7: four wrong codes entered at once count four, each with its own attempts left."""
    user, token = _at_verify(flows)
    flows.accounts.send_code(token, option=flows.accounts.delivery_options(token)[0])
    wrong = "000000" if flows.outbox.last_code(CELL) != "000000" else "111111"
    barrier = threading.Barrier(4)
    results: list[VerifyResult] = []
    lock = threading.Lock()

    def enter() -> None:
        barrier.wait()
        result = flows.accounts.verify_code(token, code=wrong)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=enter) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {r.outcome for r in results} == {VerifyOutcome.WRONG_CODE}, attempt
    assert sorted(r.attempts_left for r in results) == [1, 2, 3, 4]
    assert _challenge(flows, user).wrong_attempts == 4
    assert len(flows.events("code.failed")) == 4


def _overtaken(flows: Flows, rival: Callable[[], object]) -> Accounts:
    """The account actions over a store where ``rival`` saves the verification first."""
    return Accounts(attrs.evolve(flows.context, storage=OvertakenStore(flows.store, rival)))


def test_rs_5_a_right_code_overtaken_by_the_same_code_is_already_verified(flows: Flows) -> None:
    """RS-5, VF-7: the entry that loses the race is decided again: ALREADY_VERIFIED."""
    user, token = _at_verify(flows)
    flows.accounts.send_code(token, option=flows.accounts.delivery_options(token)[0])
    code = flows.outbox.last_code(CELL)
    rivals: list[VerifyResult] = []
    racing = _overtaken(flows, lambda: rivals.append(flows.accounts.verify_code(token, code=code)))
    late = racing.verify_code(token, code=code)
    assert [r.outcome for r in rivals] == [VerifyOutcome.VERIFIED]
    assert late.outcome is VerifyOutcome.ALREADY_VERIFIED
    assert not late.verified
    assert _challenge(flows, user).state is ChallengeState.VERIFIED
    assert len(flows.events("code.verified")) == 1
    assert [e.outcome for e in flows.events("code.failed")] == ["already_verified"]


def test_vf_7_a_wrong_code_overtaken_by_another_wrong_code_still_counts(flows: Flows) -> None:
    """VF-7: the entry that loses the race is decided again over the other one's count."""
    user, token = _at_verify(flows)
    flows.accounts.send_code(token, option=flows.accounts.delivery_options(token)[0])
    wrong = "000000" if flows.outbox.last_code(CELL) != "000000" else "111111"
    rivals: list[VerifyResult] = []
    racing = _overtaken(flows, lambda: rivals.append(flows.accounts.verify_code(token, code=wrong)))
    late = racing.verify_code(token, code=wrong)
    assert [(r.outcome, r.attempts_left) for r in rivals] == [(VerifyOutcome.WRONG_CODE, 4)]
    assert (late.outcome, late.attempts_left) == (VerifyOutcome.WRONG_CODE, 3)
    assert _challenge(flows, user).wrong_attempts == 2
    assert len(flows.events("code.failed")) == 2


def test_vf_7_an_entry_that_keeps_losing_is_a_storage_error_after_a_few_tries(
    flows: Flows,
) -> None:
    """VF-7: deciding again is bounded; past it the caller gets `Conflict`, and nothing counted."""
    user, token = _at_verify(flows)
    flows.accounts.send_code(token, option=flows.accounts.delivery_options(token)[0])
    losing = LosingStore(flows.store, repository="challenges")
    racing = Accounts(attrs.evolve(flows.context, storage=losing))
    with pytest.raises(Conflict) as caught:
        racing.verify_code(token, code="000000")
    assert caught.value.code == "storage.conflict"
    assert 1 < losing.lost <= 25
    assert _challenge(flows, user).wrong_attempts == 0
    assert flows.events("code.failed") == []
