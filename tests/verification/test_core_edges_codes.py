"""VF-4..VF-8 and VF-10 at their edges: the code's bound, minutes to wait, counts left, versions."""

from __future__ import annotations

import secrets
from datetime import timedelta

import attrs
import pytest

from plain_words import assert_plain_english
from securepractice.errors import InvalidInput, InvalidState, RateLimited
from securepractice.records import (
    Challenge,
    ChallengeState,
    DeliveryMethod,
    Phone,
    PhoneKind,
    Purpose,
    SendLedger,
)
from securepractice.settings import VerificationRules
from securepractice.testing import FakeClock
from securepractice.verification.codes import (
    VerifyOutcome,
    cancel,
    change_method,
    delivery_failed,
    issue,
    new_code,
    record_send,
    resend,
    verify,
)
from securepractice.verification.phones import DeliveryOption, delivery_options

USER = "user-1"
PURPOSE = Purpose.REGISTRATION
OFFERED = delivery_options([Phone(number="+12025550143", kind=PhoneKind.CELL)])
NOW = FakeClock().now()


def _issued(rules: VerificationRules) -> tuple[Challenge, str]:
    issued = issue(
        user_id=USER,
        purpose=PURPOSE,
        option=OFFERED[0],
        offered=OFFERED,
        ledger=None,
        now=NOW,
        rules=rules,
    )
    return issued.challenge, issued.code.reveal()


def test_vf_4_a_draw_equal_to_the_bound_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """VF-4: codes are below 10**digits; a draw of exactly the bound is rejected, not used."""
    draws = iter([(10**6 << 4).to_bytes(3, "big"), (999_999 << 4).to_bytes(3, "big")])
    monkeypatch.setattr(secrets, "token_bytes", lambda _size: next(draws))
    assert new_code(6).reveal() == "999999"


@pytest.mark.parametrize(
    ("wait", "words"),
    [
        (timedelta(minutes=1), "1 minute."),
        (timedelta(seconds=61), "2 minutes."),
        (timedelta(minutes=2), "2 minutes."),
        (timedelta(minutes=3, seconds=30), "4 minutes."),
    ],
)
def test_vf_8_the_wait_is_said_in_whole_minutes_rounded_up(wait: timedelta, words: str) -> None:
    """VF-8: the refusal says how many minutes to wait, rounded up, in the singular for one."""
    rules = VerificationRules(send_limit=1, send_window=timedelta(minutes=15))
    oldest = NOW - rules.send_window + wait
    with pytest.raises(RateLimited) as refused:
        record_send(SendLedger(user_id=USER, sends=(oldest,)), user_id=USER, now=NOW, rules=rules)
    assert refused.value.retry_after == wait
    assert_plain_english(refused.value.message, sentence=True)
    assert refused.value.message.endswith(f"Try again in {words}")


def test_vf_2_an_option_not_offered_names_the_method_field() -> None:
    """VF-2: a delivery option the user's numbers do not allow is refused on ``method``."""
    stranger = DeliveryOption(
        method=DeliveryMethod.SMS, destination="+12025550199", kind=PhoneKind.CELL
    )
    with pytest.raises(InvalidInput) as refused:
        issue(
            user_id=USER,
            purpose=PURPOSE,
            option=stranger,
            offered=OFFERED,
            ledger=None,
            now=NOW,
            rules=VerificationRules(),
        )
    assert (refused.value.code, refused.value.field) == (
        "verification.option_not_offered",
        "method",
    )
    assert_plain_english(refused.value.message, sentence=False, names=("phone numbers",))


def test_vf_6_the_same_option_again_says_to_re_send_instead() -> None:
    """VF-6: changing to the option already chosen is refused, saying to re-send."""
    rules = VerificationRules()
    challenge, _ = _issued(rules)
    with pytest.raises(InvalidInput) as refused:
        change_method(
            challenge, option=OFFERED[0], offered=OFFERED, ledger=None, now=NOW, rules=rules
        )
    assert (refused.value.code, refused.value.field) == ("verification.same_option", "method")
    assert_plain_english(refused.value.message, sentence=False, names=("re-send",))


@pytest.mark.parametrize(
    ("step", "action"),
    [
        (lambda c, r: resend(c, ledger=None, now=NOW, rules=r), "re-send a code"),
        (
            lambda c, r: change_method(
                c,
                option=DeliveryOption(
                    method=DeliveryMethod.VOICE, destination=c.destination, kind=PhoneKind.CELL
                ),
                offered=OFFERED,
                ledger=None,
                now=NOW,
                rules=r,
            ),
            "change the delivery method",
        ),
        (lambda c, _r: delivery_failed(c), "mark a delivery failed"),
        (lambda c, _r: cancel(c), "cancel"),
    ],
)
def test_vf_7_a_step_on_a_finished_verification_says_which_step_and_what_to_do(
    step: object, action: str
) -> None:
    """VF-7: a verified challenge takes no more steps; the refusal names the step refused."""
    rules = VerificationRules()
    challenge, code = _issued(rules)
    done = verify(challenge, code, user_id=USER, purpose=PURPOSE, now=NOW, rules=rules).challenge
    assert callable(step)
    with pytest.raises(InvalidState) as refused:
        step(done, rules)
    assert refused.value.code == "verification.not_active"
    assert_plain_english(
        refused.value.message, sentence=False, names=(action, "start a new verification")
    )


def test_vf_5_a_re_send_counts_against_the_user_of_the_challenge() -> None:
    """VF-5, VF-8: a re-send with no ledger yet starts the ledger of the challenge's user."""
    rules = VerificationRules()
    challenge, _ = _issued(rules)
    again = resend(challenge, ledger=None, now=NOW, rules=rules)
    assert again.ledger == SendLedger(user_id=USER, sends=(NOW,))


def test_pf_4_a_verification_keeps_the_flow_and_the_phone_field_it_was_made_for() -> None:
    """PF-4, RG-1: ``flow_id`` and ``phone_kind`` given at issue are on the challenge."""
    issued = issue(
        user_id=USER,
        purpose=Purpose.NEW_PHONE,
        option=OFFERED[0],
        offered=OFFERED,
        ledger=None,
        now=NOW,
        rules=VerificationRules(),
        flow_id="link-1",
        phone_kind=PhoneKind.PHONE,
    )
    assert (issued.challenge.flow_id, issued.challenge.phone_kind) == ("link-1", PhoneKind.PHONE)


def test_vf_7_cancelling_voids_the_code_as_the_next_version() -> None:
    """VF-7: a cancelled verification is void, keeps no code hash, and is one version on."""
    challenge, _ = _issued(VerificationRules())
    challenge = attrs.evolve(challenge, version=4)
    cancelled = cancel(challenge)
    assert (cancelled.state, cancelled.code_hash, cancelled.version) == (
        ChallengeState.VOID,
        None,
        5,
    )


def test_vf_4_an_entry_of_exactly_64_characters_is_read() -> None:
    """VF-4: spaces around a code count toward 64 characters; up to 64 the code is read."""
    rules = VerificationRules()
    challenge, code = _issued(rules)
    padded = code + " " * (64 - len(code))
    right = verify(challenge, padded, user_id=USER, purpose=PURPOSE, now=NOW, rules=rules)
    assert (right.outcome, right.attempts_left) == (VerifyOutcome.VERIFIED, 0)
    longer = verify(challenge, padded + " ", user_id=USER, purpose=PURPOSE, now=NOW, rules=rules)
    assert longer.outcome is VerifyOutcome.MALFORMED


def test_vf_4_a_code_that_is_not_text_says_what_it_got() -> None:
    """VF-4: an entry that is not text is refused on ``code``, naming its type."""
    rules = VerificationRules()
    challenge, _ = _issued(rules)
    with pytest.raises(InvalidInput) as refused:
        verify(challenge, 408213, user_id=USER, purpose=PURPOSE, now=NOW, rules=rules)  # type: ignore[arg-type]
    assert (refused.value.code, refused.value.field) == ("code.not_text", "code")
    assert_plain_english(refused.value.message, sentence=False, names=("int",))


def test_vf_7_a_finished_verification_leaves_no_attempts() -> None:
    """VF-7: entering a code on a verified or cancelled verification leaves 0 attempts."""
    rules = VerificationRules()
    challenge, code = _issued(rules)
    done = verify(challenge, code, user_id=USER, purpose=PURPOSE, now=NOW, rules=rules).challenge
    again = verify(done, code, user_id=USER, purpose=PURPOSE, now=NOW, rules=rules)
    assert (again.outcome, again.attempts_left) == (VerifyOutcome.ALREADY_VERIFIED, 0)
    void = verify(cancel(challenge), code, user_id=USER, purpose=PURPOSE, now=NOW, rules=rules)
    assert (void.outcome, void.attempts_left) == (VerifyOutcome.VOID, 0)


def test_vf_7_attempts_left_never_go_below_zero_when_the_limit_is_lowered() -> None:
    """VF-7: a challenge with more wrong entries than a lowered limit has 0 left, not fewer."""
    challenge, _ = _issued(VerificationRules())
    counted = attrs.evolve(challenge, wrong_attempts=4)
    lowered = VerificationRules(max_wrong_codes=3)
    late = NOW + timedelta(hours=1)
    result = verify(counted, "000000", user_id=USER, purpose=PURPOSE, now=late, rules=lowered)
    assert (result.outcome, result.attempts_left) == (VerifyOutcome.EXPIRED, 0)
