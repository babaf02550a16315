"""The code state machine, step by step (VF-4 to VF-10)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from securepractice.errors import InvalidInput, InvalidState, RateLimited
from securepractice.records import (
    Challenge,
    ChallengeState,
    DeliveryMethod,
    Purpose,
    RegistrationStatus,
    SendLedger,
    User,
)
from securepractice.secret import Secret
from securepractice.settings import VerificationRules
from securepractice.testing import FakeClock
from securepractice.verification.codes import (
    CodeIssued,
    VerifyOutcome,
    VerifyResult,
    cancel,
    change_method,
    delivery_failed,
    issue,
    new_code,
    record_send,
    resend,
    verify,
)
from securepractice.verification.phones import DeliveryOption

USER = "user-1"
REG = Purpose.REGISTRATION


def start(
    offered: Sequence[DeliveryOption],
    rules: VerificationRules,
    now: datetime,
    *,
    option: int = 0,
    user_id: str = USER,
    purpose: Purpose = REG,
) -> CodeIssued:
    return issue(
        user_id=user_id,
        purpose=purpose,
        option=offered[option],
        offered=offered,
        ledger=None,
        now=now,
        rules=rules,
    )


def enter(
    issued: CodeIssued | VerifyResult,
    code: str | Secret[str],
    rules: VerificationRules,
    now: datetime,
    *,
    user_id: str = USER,
    purpose: Purpose = REG,
) -> VerifyResult:
    return verify(issued.challenge, code, user_id=user_id, purpose=purpose, now=now, rules=rules)


def switch(
    challenge: Challenge,
    option: DeliveryOption,
    offered: Sequence[DeliveryOption],
    rules: VerificationRules,
    now: datetime,
    *,
    ledger: SendLedger | None = None,
) -> CodeIssued:
    return change_method(
        challenge, option=option, offered=offered, ledger=ledger, now=now, rules=rules
    )


def only_the_new_code_works(
    old: CodeIssued, new: CodeIssued, rules: VerificationRules, now: datetime
) -> None:
    """The old code is a wrong entry now (unless the draw repeated it); the new one verifies."""
    if old.code != new.code:
        assert enter(new, old.code, rules, now).outcome is VerifyOutcome.WRONG_CODE
    assert enter(new, new.code, rules, now).verified


def wrong(code: Secret[str]) -> str:
    """A code of the same length that is certainly not ``code``."""
    value = code.reveal()
    return str((int(value) + 1) % 10 ** len(value)).zfill(len(value))


def test_a_code_has_the_configured_number_of_digits_from_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """VF-4: codes come from secrets, cover all 10**n values alike, and are zero-padded.

    Random bits past the last code are drawn again, never folded back into
    range (which would make some codes likelier than others).
    """
    draws = {
        3: iter([b"\xff\xff\xff", (42 << 4).to_bytes(3, "big")]),  # 20 bits: 10**6 codes
        4: iter([(42 << 5).to_bytes(4, "big")]),  # 27 bits: 10**8 codes
    }
    asked: list[int] = []

    def fake_token_bytes(size: int) -> bytes:
        asked.append(size)
        return next(draws[size])

    monkeypatch.setattr(secrets, "token_bytes", fake_token_bytes)
    assert new_code(6).reveal() == "000042"
    assert new_code(8).reveal() == "00000042"
    assert asked == [3, 3, 4]


@given(digits=st.integers(min_value=6, max_value=12))
def test_real_codes_are_all_digits_of_the_right_length(digits: int) -> None:
    """VF-4: whatever the length setting, a code is exactly that many ASCII digits."""
    code = new_code(digits).reveal()
    assert len(code) == digits
    assert code.isascii()
    assert code.isdigit()


def test_issue_uses_the_settings_length_and_lifetime(
    offered: Sequence[DeliveryOption], clock: FakeClock
) -> None:
    """VF-4: code_digits and code_lifetime come from the settings."""
    rules = VerificationRules(code_digits=8, code_lifetime=timedelta(minutes=3))
    issued = start(offered, rules, clock.now())
    assert len(issued.code.reveal()) == 8
    assert issued.challenge.expires_at - issued.challenge.issued_at == timedelta(minutes=3)


def test_issue_records_user_purpose_method_destination(
    offered: Sequence[DeliveryOption], rules: VerificationRules, clock: FakeClock
) -> None:
    issued = start(offered, rules, clock.now(), option=2, purpose=Purpose.NEW_PHONE)
    challenge = issued.challenge
    assert (challenge.user_id, challenge.purpose) == (USER, Purpose.NEW_PHONE)
    assert (challenge.method, challenge.destination) == (DeliveryMethod.VOICE, "+442079460958")
    assert (challenge.state, challenge.wrong_attempts, challenge.version) == (
        ChallengeState.ACTIVE,
        0,
        0,
    )
    assert challenge.issued_at == clock.now()
    assert challenge.expires_at == clock.now() + timedelta(minutes=10)


def test_the_code_is_stored_only_as_a_keyed_hash(
    offered: Sequence[DeliveryOption], clock: FakeClock
) -> None:
    """VF-4: the record holds a 32-byte HMAC that depends on the key; never the code."""
    key = Secret(b"k" * 32)
    rules = VerificationRules(code_key=key)
    issued = start(offered, rules, clock.now())
    stored = issued.challenge.code_hash
    code = issued.code.reveal()
    assert stored is not None
    assert len(stored) == 32
    assert code.encode() not in stored
    assert stored != hashlib.sha256(code.encode()).digest()
    assert stored != hmac.new(key.reveal(), code.encode(), hashlib.sha256).digest()
    assert all(code not in str(value) for value in attrs.asdict(issued.challenge).values())
    other_key = VerificationRules(code_key=Secret(b"o" * 32))
    assert enter(issued, issued.code, other_key, clock.now()).outcome is VerifyOutcome.WRONG_CODE


def test_the_comparison_is_constant_time(
    offered: Sequence[DeliveryOption],
    rules: VerificationRules,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """VF-4: the entered code's hash is compared with hmac.compare_digest."""
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    issued = start(offered, rules, clock.now())
    assert enter(issued, wrong(issued.code), rules, clock.now()).outcome is VerifyOutcome.WRONG_CODE
    assert enter(issued, issued.code, rules, clock.now()).verified
    assert len(compared) == 2
    assert all(stored == issued.challenge.code_hash for _, stored in compared)


def test_a_code_expires_after_its_lifetime_exactly(
    offered: Sequence[DeliveryOption], rules: VerificationRules, clock: FakeClock
) -> None:
    """VF-4: 10 minutes (default) after issue the code no longer works; just before, it does."""
    issued = start(offered, rules, clock.now())
    just_before = clock.now() + timedelta(minutes=10) - timedelta(microseconds=1)
    at_expiry = clock.now() + timedelta(minutes=10)
    assert enter(issued, issued.code, rules, just_before).verified
    late = enter(issued, issued.code, rules, at_expiry)
    assert late.outcome is VerifyOutcome.EXPIRED
    assert late.challenge == issued.challenge
    assert enter(issued, wrong(issued.code), rules, at_expiry).challenge.wrong_attempts == 0


def test_resend_issues_a_new_code_by_the_same_method_and_kills_the_old_one(
    offered: Sequence[DeliveryOption], rules: VerificationRules, clock: FakeClock
) -> None:
    """VF-5: after a re-send only the new code works, sent the way chosen first."""
    first = start(offered, rules, clock.now(), option=1)
    clock.advance(minutes=2)
    again = resend(first.challenge, ledger=first.ledger, now=clock.now(), rules=rules)
    assert (again.challenge.method, again.challenge.destination) == (
        first.challenge.method,
        first.challenge.destination,
    )
    assert again.challenge.issued_at == clock.now()
    assert again.challenge.expires_at == clock.now() + rules.code_lifetime
    assert again.challenge.code_hash != first.challenge.code_hash
    only_the_new_code_works(first, again, rules, clock.now())


def test_resend_after_a_change_uses_the_latest_method(
    offered: Sequence[DeliveryOption], rules: VerificationRules, clock: FakeClock
) -> None:
    """VF-5: "the method currently chosen" is the latest change of method."""
    first = start(offered, rules, clock.now(), option=0)
    changed = switch(first.challenge, offered[2], offered, rules, clock.now())
    again = resend(changed.challenge, ledger=None, now=clock.now(), rules=rules)
    assert (again.challenge.method, again.challenge.destination) == (
        offered[2].method,
        offered[2].destination,
    )


def test_change_method_switches_and_kills_the_old_code(
    offered: Sequence[DeliveryOption], rules: VerificationRules, clock: FakeClock
) -> None:
    """VF-6: a new code goes by the new method; the previous code stops working at once."""
    first = start(offered, rules, clock.now(), option=0)
    assert first.challenge.method is DeliveryMethod.SMS
    changed = switch(first.challenge, offered[1], offered, rules, clock.now())
    assert (changed.challenge.method, changed.challenge.destination) == (
        DeliveryMethod.VOICE,
        offered[1].destination,
    )
    assert changed.challenge.code_hash != first.challenge.code_hash
    only_the_new_code_works(first, changed, rules, clock.now())


def test_change_method_accepts_only_another_offered_option(
    offered: Sequence[DeliveryOption], rules: VerificationRules, clock: FakeClock
) -> None:
    """VF-6, VF-2: the same option, or one the user's numbers do not allow, is refused."""
    first = start(offered, rules, clock.now(), option=0)
    with pytest.raises(InvalidInput) as same:
        switch(first.challenge, offered[0], offered, rules, clock.now())
    assert (same.value.field, same.value.code) == ("method", "verification.same_option")
    sms_to_landline = DeliveryOption(
        method=DeliveryMethod.SMS, destination=offered[2].destination, kind=offered[2].kind
    )
    with pytest.raises(InvalidInput) as not_offered:
        switch(first.challenge, sms_to_landline, offered, rules, clock.now())
    assert not_offered.value.code == "verification.option_not_offered"
    with pytest.raises(InvalidInput) as not_offered_at_start:
        issue(
            user_id=USER,
            purpose=REG,
            option=sms_to_landline,
            offered=offered,
            ledger=None,
            now=clock.now(),
            rules=rules,
        )
    assert not_offered_at_start.value.code == "verification.option_not_offered"


def test_a_code_works_once(
    offered: Sequence[DeliveryOption], rules: VerificationRules, clock: FakeClock
) -> None:
    """VF-7: after success the challenge is verified and the same code does nothing more."""
    issued = start(offered, rules, clock.now())
    done = enter(issued, issued.code, rules, clock.now())
    assert done.verified
    assert done.challenge.state is ChallengeState.VERIFIED
    assert done.challenge.code_hash is None
    again = enter(done, issued.code, rules, clock.now())
    assert again.outcome is VerifyOutcome.ALREADY_VERIFIED
    assert not again.verified
    with pytest.raises(InvalidState):
        resend(done.challenge, ledger=None, now=clock.now(), rules=rules)


@pytest.mark.parametrize(
    "case",
    [
        ("user-2", REG, VerifyOutcome.WRONG_USER),
        (USER, Purpose.PASSWORD_RESET, VerifyOutcome.WRONG_PURPOSE),
        (USER, Purpose.NEW_PHONE, VerifyOutcome.WRONG_PURPOSE),
    ],
)
def test_a_code_works_only_for_its_user_and_purpose(
    offered: Sequence[DeliveryOption],
    rules: VerificationRules,
    clock: FakeClock,
    case: tuple[str, Purpose, VerifyOutcome],
) -> None:
    """VF-7: the right code for another user or purpose does nothing, and is not counted."""
    user_id, purpose, outcome = case
    issued = start(offered, rules, clock.now())
    result = enter(issued, issued.code, rules, clock.now(), user_id=user_id, purpose=purpose)
    assert result.outcome is outcome
    assert result.challenge == issued.challenge
    assert enter(issued, issued.code, rules, clock.now()).verified


def test_the_hash_binds_the_code_to_its_challenge_user_and_purpose(
    offered: Sequence[DeliveryOption], rules: VerificationRules, clock: FakeClock
) -> None:
    """VF-7: a code hash copied onto another user's or purpose's challenge does not verify."""
    issued = start(offered, rules, clock.now())
    for changes in ({"user_id": "user-2"}, {"purpose": Purpose.NEW_PHONE}, {"id": "other"}):
        moved = attrs.evolve(issued.challenge, **changes)
        result = verify(
            moved,
            issued.code,
            user_id=moved.user_id,
            purpose=moved.purpose,
            now=clock.now(),
            rules=rules,
        )
        assert result.outcome is VerifyOutcome.WRONG_CODE


def test_wrong_entries_count_across_resends_and_changes_and_void_at_the_limit(
    offered: Sequence[DeliveryOption], rules: VerificationRules, clock: FakeClock
) -> None:
    """VF-7: 5 (default) wrong entries in one verification void it; re-sends do not reset."""
    current: CodeIssued | VerifyResult = start(offered, rules, clock.now())
    code = current.code if isinstance(current, CodeIssued) else Secret("")
    steps = ["wrong", "resend", "wrong", "change", "wrong", "wrong", "resend"]
    for step in steps:
        if step == "wrong":
            result = enter(current, wrong(code), rules, clock.now())
            assert result.outcome is VerifyOutcome.WRONG_CODE
            assert result.attempts_left == rules.max_wrong_codes - result.challenge.wrong_attempts
            current = result
        elif step == "resend":
            current = resend(current.challenge, ledger=None, now=clock.now(), rules=rules)
            code = current.code
        else:
            current = switch(current.challenge, offered[2], offered, rules, clock.now())
            code = current.code
    assert current.challenge.wrong_attempts == 4
    last = enter(current, wrong(code), rules, clock.now())
    assert last.outcome is VerifyOutcome.TOO_MANY_WRONG
    assert (last.challenge.state, last.challenge.wrong_attempts, last.attempts_left) == (
        ChallengeState.VOID,
        5,
        0,
    )
    assert enter(last, code, rules, clock.now()).outcome is VerifyOutcome.VOID
    with pytest.raises(InvalidState) as caught:
        resend(last.challenge, ledger=None, now=clock.now(), rules=rules)
    assert caught.value.code == "verification.not_active"
    with pytest.raises(InvalidState):
        switch(last.challenge, offered[0], offered, rules, clock.now())


def test_the_wrong_entry_limit_comes_from_the_settings(
    offered: Sequence[DeliveryOption], clock: FakeClock
) -> None:
    """VF-7: max_wrong_codes=1 voids at the first wrong entry."""
    rules = VerificationRules(max_wrong_codes=1)
    issued = start(offered, rules, clock.now())
    assert enter(issued, wrong(issued.code), rules, clock.now()).outcome is (
        VerifyOutcome.TOO_MANY_WRONG
    )


@pytest.mark.parametrize("entry", ["", "12345", "1234567", "12a456", "abcdef", "1" * 10_000])
def test_an_entry_that_cannot_be_a_code_is_malformed_and_not_counted(
    offered: Sequence[DeliveryOption], rules: VerificationRules, clock: FakeClock, entry: str
) -> None:
    """VF-7: only a guess of the right shape counts as a wrong entry."""
    issued = start(offered, rules, clock.now())
    result = enter(issued, entry, rules, clock.now())
    assert result.outcome is VerifyOutcome.MALFORMED
    assert result.challenge == issued.challenge


def test_spaces_dashes_and_other_script_digits_are_read_as_the_code(
    offered: Sequence[DeliveryOption], rules: VerificationRules, clock: FakeClock
) -> None:
    """VF-7: "123 456", "123-456" and Arabic-Indic digits are the code 123456."""
    issued = start(offered, rules, clock.now())
    code = issued.code.reveal()
    arabic = "".join(chr(0x0660 + int(c)) for c in code)
    for entry in (f" {code[:3]} {code[3:]} ", f"{code[:3]}-{code[3:]}", arabic):
        assert enter(issued, entry, rules, clock.now()).verified


def test_a_non_text_entry_is_a_clear_error(
    offered: Sequence[DeliveryOption], rules: VerificationRules, clock: FakeClock
) -> None:
    issued = start(offered, rules, clock.now())
    with pytest.raises(InvalidInput) as caught:
        enter(issued, 123456, rules, clock.now())  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.code) == ("code", "code.not_text")


def test_a_naive_now_is_refused(
    offered: Sequence[DeliveryOption], rules: VerificationRules
) -> None:
    with pytest.raises(InvalidInput) as caught:
        start(offered, rules, datetime(2026, 1, 5, 9, 0))  # noqa: DTZ001
    assert caught.value.code == "time.naive"


def ledger_of(sends: Sequence[datetime], *, version: int = 3) -> SendLedger:
    """A stored send ledger of ``USER`` holding ``sends``."""
    return SendLedger(user_id=USER, sends=tuple(sends), version=version)


def count(sends: Sequence[datetime], now: datetime, rules: VerificationRules) -> SendLedger:
    """Count one more send at ``now`` over a ledger holding ``sends``."""
    return record_send(ledger_of(sends), user_id=USER, now=now, rules=rules)


def test_send_limit_counts_every_send_of_the_user_in_the_window(
    rules: VerificationRules, clock: FakeClock
) -> None:
    """VF-8: the 6th code within 15 minutes (defaults) is refused with when to retry."""
    now = clock.now()
    sends = [now - timedelta(minutes=m) for m in (14, 10, 6, 3, 1)]
    with pytest.raises(RateLimited) as caught:
        count(sends, now, rules)
    assert caught.value.retry_after == timedelta(minutes=1)
    assert caught.value.code == "verification.rate_limited"
    assert "1 minute" in caught.value.message
    assert count(sends[1:], now, rules).sends == (*sorted(sends[1:]), now)
    later = now + timedelta(minutes=1)
    assert count(sends, later, rules).sends == (*sorted(sends[1:]), later)


def test_a_send_revises_the_ledger_or_starts_the_first_one(
    rules: VerificationRules, clock: FakeClock
) -> None:
    """VF-8: the ledger comes back with the next version, to be saved over the one it came from."""
    now = clock.now()
    first = record_send(None, user_id=USER, now=now, rules=rules)
    assert first == SendLedger(user_id=USER, sends=(now,), version=0)
    second = record_send(first, user_id=USER, now=now + timedelta(minutes=1), rules=rules)
    assert (second.sends, second.version) == ((now, now + timedelta(minutes=1)), 1)
    with pytest.raises(RateLimited):
        count([now] * rules.send_limit, now, rules)


def test_sends_from_a_clock_that_runs_ahead_still_count(
    rules: VerificationRules, clock: FakeClock
) -> None:
    """VF-8: a send recorded after ``now`` (another server's clock) stays in the window."""
    now = clock.now()
    ahead = [now + timedelta(minutes=2)] * rules.send_limit
    with pytest.raises(RateLimited):
        count(ahead, now, rules)


def test_send_limit_window_boundary_is_exact(rules: VerificationRules, clock: FakeClock) -> None:
    """VF-8: a send exactly 15 minutes ago no longer counts; one a microsecond later does."""
    now = clock.now()
    recent = [now - timedelta(minutes=1)] * 4
    edge = now - timedelta(minutes=15)
    assert count([*recent, edge], now, rules).sends == (*recent, now)
    with pytest.raises(RateLimited) as caught:
        count([*recent, edge + timedelta(microseconds=1)], now, rules)
    assert caught.value.retry_after == timedelta(microseconds=1)


def test_retry_after_is_when_enough_sends_leave_the_window(
    rules: VerificationRules, clock: FakeClock
) -> None:
    """VF-8: with 7 sends in the window, the user waits until only 4 remain."""
    now = clock.now()
    sends = [now - timedelta(minutes=m) for m in (1, 2, 3, 4, 5, 12, 13)]
    with pytest.raises(RateLimited) as caught:
        count(sends, now, rules)
    assert caught.value.retry_after == timedelta(minutes=10)
    assert "10 minutes" in caught.value.message


def test_every_code_sending_step_enforces_the_send_limit(
    offered: Sequence[DeliveryOption], rules: VerificationRules, clock: FakeClock
) -> None:
    """VF-8: issue, re-send and change method all refuse a user at the limit."""
    full = ledger_of([clock.now() - timedelta(minutes=1)] * rules.send_limit)
    first = start(offered, rules, clock.now())
    with pytest.raises(RateLimited):
        issue(
            user_id=USER,
            purpose=REG,
            option=offered[0],
            offered=offered,
            ledger=full,
            now=clock.now(),
            rules=rules,
        )
    with pytest.raises(RateLimited):
        resend(first.challenge, ledger=full, now=clock.now(), rules=rules)
    with pytest.raises(RateLimited):
        switch(first.challenge, offered[1], offered, rules, clock.now(), ledger=full)


def test_every_code_sending_step_counts_its_send(
    offered: Sequence[DeliveryOption], rules: VerificationRules, clock: FakeClock
) -> None:
    """VF-8: issue, re-send and change method each return the ledger with their send in it."""
    first = start(offered, rules, clock.now())
    assert first.ledger == SendLedger(user_id=USER, sends=(clock.now(),))
    clock.advance(minutes=1)
    again = resend(first.challenge, ledger=first.ledger, now=clock.now(), rules=rules)
    assert (len(again.ledger.sends), again.ledger.version) == (2, 1)
    changed = switch(again.challenge, offered[1], offered, rules, clock.now(), ledger=again.ledger)
    assert (len(changed.ledger.sends), changed.ledger.version) == (3, 2)


def test_the_send_limit_settings_are_read(clock: FakeClock) -> None:
    """VF-8: send_limit and send_window are settings."""
    rules = VerificationRules(send_limit=2, send_window=timedelta(hours=1))
    now = clock.now()
    count([now - timedelta(minutes=59)], now, rules)
    with pytest.raises(RateLimited) as caught:
        count([now - timedelta(minutes=59), now], now, rules)
    assert caught.value.retry_after == timedelta(minutes=1)


def test_a_failed_delivery_voids_the_undelivered_code_and_keeps_earlier_ones_void(
    offered: Sequence[DeliveryOption], rules: VerificationRules, clock: FakeClock
) -> None:
    """VF-10: the code whose SMS failed never works; neither does the one before it."""
    first = start(offered, rules, clock.now())
    second = resend(first.challenge, ledger=None, now=clock.now(), rules=rules)
    failed = delivery_failed(second.challenge)
    assert failed.state is ChallengeState.ACTIVE
    assert failed.code_hash is None
    for code in (first.code, second.code):
        result = verify(failed, code, user_id=USER, purpose=REG, now=clock.now(), rules=rules)
        assert result.outcome is VerifyOutcome.NO_ACTIVE_CODE
        assert result.challenge == failed
    by_voice = switch(failed, offered[1], offered, rules, clock.now())
    only_the_new_code_works(second, by_voice, rules, clock.now())


def test_cancel_ends_an_open_verification(
    offered: Sequence[DeliveryOption], rules: VerificationRules, clock: FakeClock
) -> None:
    """VF-7: a user who starts over leaves the old verification void."""
    issued = start(offered, rules, clock.now())
    cancelled = cancel(issued.challenge)
    assert cancelled.state is ChallengeState.VOID
    assert cancel(cancelled) == cancelled
    assert verify(
        cancelled, issued.code, user_id=USER, purpose=REG, now=clock.now(), rules=rules
    ).outcome is (VerifyOutcome.VOID)
    verified = enter(issued, issued.code, rules, clock.now()).challenge
    with pytest.raises(InvalidState):
        cancel(verified)
    with pytest.raises(InvalidState):
        delivery_failed(verified)


def test_every_change_raises_the_version_and_a_refusal_leaves_it(
    offered: Sequence[DeliveryOption], rules: VerificationRules, clock: FakeClock
) -> None:
    """Storage saves a change only over the version it came from; each change has a new one."""
    issued = start(offered, rules, clock.now())
    versions = [issued.challenge.version]
    wrong_once = enter(issued, wrong(issued.code), rules, clock.now()).challenge
    versions.append(wrong_once.version)
    again = resend(wrong_once, ledger=None, now=clock.now(), rules=rules)
    versions.append(again.challenge.version)
    versions.append(delivery_failed(again.challenge).version)
    assert versions == [0, 1, 2, 3]
    assert enter(again, "x", rules, clock.now()).challenge.version == 2


def test_two_step_verification_is_on_for_a_new_user() -> None:
    """VF-9 (the record's part): a new user has two-step verification on."""
    user = User(
        id="u", practice_id="p", email="a@example.com", created_at=datetime.now(timezone.utc)
    )
    assert user.two_step_enabled is True
    assert user.status is RegistrationStatus.INVITED
