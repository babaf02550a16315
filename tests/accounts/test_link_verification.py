"""The "Verify your Identity" screen on a link: options, sends, re-sends, failures (VF-2..VF-10)."""

from __future__ import annotations

import threading
from datetime import timedelta

import attrs
import pytest

from accounts.link_flows import Flows
from securepractice import DeliveryFailed, InvalidInput, InvalidState, RateLimited
from securepractice.accounts.verification import VerificationActions
from securepractice.messaging.ports import SmsMessage
from securepractice.records import Challenge, ChallengeState, DeliveryMethod, Purpose, User
from securepractice.verification import codes
from securepractice.verification.codes import VerifyOutcome, VerifyResult

CELL = "+12025550143"
OFFICE = "+442079460958"


def _at_verify(flows: Flows, **phones: str) -> tuple[User, str]:
    practice = flows.practice()
    user = flows.registration.invite(
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
    assert [
        (o.method, o.destination) for o in flows.verification.delivery_options(office_only)
    ] == [(DeliveryMethod.VOICE, OFFICE)]
    practice = flows.practice("Other")
    flows.registration.invite(practice_id=practice.id, email="c@other.example", cell=CELL)
    cell_only = flows.token("c@other.example")
    assert [o.method for o in flows.verification.delivery_options(cell_only)] == [
        DeliveryMethod.SMS,
        DeliveryMethod.VOICE,
    ]


def test_vf_2_an_option_not_offered_is_refused(flows: Flows) -> None:
    _, token = _at_verify(flows, phone=OFFICE)
    practice = flows.practice("Other")
    flows.registration.invite(practice_id=practice.id, email="c@other.example", cell=CELL)
    foreign = flows.verification.delivery_options(flows.token("c@other.example"))[0]
    with pytest.raises(InvalidInput) as refused:
        flows.verification.send_code(token, option=foreign)
    assert refused.value.code == "verification.option_not_offered"
    assert flows.outbox.sms == ()
    assert flows.events("code.sent") == []


def test_vf_4_a_code_expires_after_ten_minutes(flows: Flows) -> None:
    _, token = _at_verify(flows)
    flows.verification.send_code(token, option=flows.verification.delivery_options(token)[0])
    code = flows.outbox.last_code(CELL)
    flows.clock.advance(minutes=10)
    result = flows.verification.verify_code(token, code=code)
    assert result.outcome is VerifyOutcome.EXPIRED
    assert not result.verified


def test_vf_5_re_send_uses_the_method_chosen_last(flows: Flows) -> None:
    _, token = _at_verify(flows)
    sms, voice = flows.verification.delivery_options(token)
    flows.verification.send_code(token, option=sms)
    flows.verification.change_delivery_method(token, option=voice)
    flows.verification.resend_code(token)
    assert len(flows.outbox.sms) == 1
    assert len(flows.outbox.calls) == 2
    kinds = [dict(e.detail)["kind"] for e in flows.events("code.sent")]
    assert kinds == ["new", "change_method", "resend"]
    result = flows.verification.verify_code(token, code=flows.outbox.last_code(CELL))
    assert result.verified


def test_vf_6_changing_to_the_same_option_is_refused(flows: Flows) -> None:
    _, token = _at_verify(flows)
    sms, _ = flows.verification.delivery_options(token)
    flows.verification.send_code(token, option=sms)
    with pytest.raises(InvalidInput) as same:
        flows.verification.change_delivery_method(token, option=sms)
    assert same.value.code == "verification.same_option"


def test_vf_7_five_wrong_codes_void_the_verification_whatever_the_re_sends(flows: Flows) -> None:
    user, token = _at_verify(flows)
    flows.verification.send_code(token, option=flows.verification.delivery_options(token)[0])
    wrong = "000000" if flows.outbox.last_code(CELL) != "000000" else "111111"
    results: list[VerifyResult] = []
    for attempt in range(5):
        if attempt == 3:
            flows.verification.resend_code(token)
            wrong = "000000" if flows.outbox.last_code(CELL) != "000000" else "111111"
        results.append(flows.verification.verify_code(token, code=wrong))
    assert [r.outcome for r in results] == [VerifyOutcome.WRONG_CODE] * 4 + [
        VerifyOutcome.TOO_MANY_WRONG
    ]
    assert [r.attempts_left for r in results] == [4, 3, 2, 1, 0]
    late = flows.verification.verify_code(token, code=flows.outbox.last_code(CELL))
    assert late.outcome is VerifyOutcome.VOID
    stored = _challenge(flows, user)
    assert stored.state is ChallengeState.VOID
    with pytest.raises(InvalidState) as ended:
        flows.verification.resend_code(token)
    assert ended.value.code == "verification.not_active"
    # A new verification starts over, within the send limit.
    flows.verification.send_code(token, option=flows.verification.delivery_options(token)[0])
    assert flows.verification.verify_code(token, code=flows.outbox.last_code(CELL)).verified
    failed = flows.events("code.failed")
    assert [e.outcome for e in failed] == ["wrong_code"] * 4 + ["too_many_wrong", "void"]


def test_vf_7_a_code_works_once(flows: Flows) -> None:
    _, token = _at_verify(flows)
    flows.verification.send_code(token, option=flows.verification.delivery_options(token)[0])
    code = flows.outbox.last_code(CELL)
    assert flows.verification.verify_code(token, code=code).verified
    again = flows.verification.verify_code(token, code=code)
    assert again.outcome is VerifyOutcome.ALREADY_VERIFIED


def test_verifying_or_re_sending_before_any_code_was_sent(flows: Flows) -> None:
    _, token = _at_verify(flows)
    for action in (
        lambda: flows.verification.verify_code(token, code="123456"),
        lambda: flows.verification.resend_code(token),
    ):
        with pytest.raises(InvalidState) as refused:
            action()
        assert refused.value.code == "verification.not_started"


def test_vf_8_the_sixth_send_in_fifteen_minutes_is_refused(flows: Flows) -> None:
    user, token = _at_verify(flows)
    flows.verification.send_code(token, option=flows.verification.delivery_options(token)[0])
    for _ in range(4):
        flows.clock.advance(minutes=1)
        flows.verification.resend_code(token)
    flows.clock.advance(minutes=1)
    with pytest.raises(RateLimited) as limited:
        flows.verification.resend_code(token)
    assert limited.value.retry_after == timedelta(minutes=10)
    assert limited.value.code == "verification.rate_limited"
    assert len(flows.outbox.sms) == 5
    with pytest.raises(RateLimited):
        flows.verification.send_code(token, option=flows.verification.delivery_options(token)[0])
    assert _challenge(flows, user).state is ChallengeState.ACTIVE
    flows.clock.advance(minutes=10)
    flows.verification.resend_code(token)
    assert len(flows.outbox.sms) == 6


def test_vf_10_a_failed_text_voids_its_code_and_a_re_send_works(flows: Flows) -> None:
    user, token = _at_verify(flows)
    sms, voice = flows.verification.delivery_options(token)
    flows.outbox.fail_next("sms")
    with pytest.raises(DeliveryFailed) as failed:
        flows.verification.send_code(token, option=sms)
    assert failed.value.channel == "sms"
    stored = _challenge(flows, user)
    assert stored.code_hash is None
    assert stored.state is ChallengeState.ACTIVE
    event = flows.events("code.delivery_failed")[0]
    assert dict(event.detail)["channel"] == "sms"
    assert event.subject_id == user.id
    # No code works; a re-send does.
    assert flows.verification.verify_code(token, code="123456").outcome is (
        VerifyOutcome.NO_ACTIVE_CODE
    )
    flows.verification.resend_code(token)
    assert flows.verification.verify_code(token, code=flows.outbox.last_code(CELL)).verified
    assert voice.method is DeliveryMethod.VOICE


def test_vf_10_failed_calls_still_count_toward_the_send_limit(flows: Flows) -> None:
    _, token = _at_verify(flows, phone=OFFICE)
    (call,) = flows.verification.delivery_options(token)
    flows.outbox.fail_next("voice", times=5)
    with pytest.raises(DeliveryFailed):
        flows.verification.send_code(token, option=call)
    for _ in range(4):
        with pytest.raises(DeliveryFailed) as failed:
            flows.verification.resend_code(token)
        assert failed.value.channel == "voice"
    with pytest.raises(RateLimited):  # VF-8
        flows.verification.resend_code(token)
    assert flows.outbox.calls == ()


@pytest.mark.parametrize("attempt", range(3))
def test_rs_5_two_simultaneous_right_entries_verify_once(flows: Flows, attempt: int) -> None:
    user, token = _at_verify(flows)
    flows.verification.send_code(token, option=flows.verification.delivery_options(token)[0])
    code = flows.outbox.last_code(CELL)
    barrier = threading.Barrier(2)
    results: list[VerifyOutcome] = []
    lock = threading.Lock()

    def enter() -> None:
        barrier.wait()
        outcome = flows.verification.verify_code(token, code=code).outcome
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
    (sms, _voice) = flows.verification.delivery_options(token)

    class EndsThenFails:
        def send_sms(self, message: SmsMessage) -> None:
            with flows.store.unit_of_work() as uow:
                current = uow.challenges.latest(user.id, Purpose.REGISTRATION)
                assert current is not None
                uow.challenges.update(codes.cancel(current))
            raise DeliveryFailed(f"provider down for {message.to}", channel="sms")

    messaging = attrs.evolve(flows.context.messaging, sms=EndsThenFails())
    actions = VerificationActions(attrs.evolve(flows.context, messaging=messaging))
    with pytest.raises(DeliveryFailed):
        actions.send_code(token, option=sms)
    stored = _challenge(flows, user)
    assert stored.state is ChallengeState.VOID
    assert flows.events("code.delivery_failed")[0].outcome == "delivery.failed"
