"""A cap on guessing one-time codes across verifications (MF-8)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from securepractice.records import SendLedger
from securepractice.settings import VerificationRules
from securepractice.verification import guesses
from securepractice.verification.guesses import CodesBlocked

RULES = VerificationRules()
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
MINUTE = timedelta(minutes=1)


def _wrong(times: int, ledger: SendLedger | None = None, now: datetime = NOW) -> SendLedger:
    for _ in range(times):
        ledger = guesses.wrong_code(ledger, user_id="u1", now=now, rules=RULES)
    assert ledger is not None
    return ledger


def test_mf_8_nine_wrong_codes_in_a_row_pause_nothing() -> None:
    ledger = _wrong(9)
    assert ledger.wrong_codes == 9
    assert ledger.paused_until is None
    assert guesses.blocked(ledger, now=NOW, rules=RULES) is None


def test_mf_8_the_tenth_pauses_codes_for_15_minutes() -> None:
    ledger = _wrong(10)
    assert ledger.paused_until == NOW + 15 * MINUTE
    assert guesses.blocked(ledger, now=NOW + 15 * MINUTE - timedelta(seconds=1), rules=RULES) is (
        CodesBlocked.PAUSED
    )
    assert guesses.blocked(ledger, now=NOW + 15 * MINUTE, rules=RULES) is None


def test_mf_8_each_further_wrong_code_doubles_the_pause_up_to_a_day() -> None:
    ledger = _wrong(10)
    pauses = []
    for _ in range(12):
        later = ledger.paused_until
        assert later is not None
        ledger = guesses.wrong_code(ledger, user_id="u1", now=later, rules=RULES)
        assert ledger.paused_until is not None
        pauses.append(ledger.paused_until - later)
    minutes = [p // MINUTE for p in pauses]
    assert minutes == [30, 60, 120, 240, 480, 960, 1440, 1440, 1440, 1440, 1440, 1440]


def test_mf_8_at_100_no_code_is_taken_until_support_clears_the_count() -> None:
    ledger = _wrong(100)
    far = NOW + timedelta(days=365)
    assert guesses.blocked(ledger, now=far, rules=RULES) is CodesBlocked.STOPPED
    cleared = guesses.clear(ledger)
    assert (cleared.wrong_codes, cleared.paused_until) == (0, None)
    assert cleared.version == ledger.version + 1
    assert guesses.blocked(cleared, now=NOW, rules=RULES) is None


def test_mf_8_a_right_code_clears_the_count_and_a_clear_ledger_is_not_saved_again() -> None:
    ledger = _wrong(3, SendLedger(user_id="u1", sends=(NOW,)))
    assert ledger.sends == (NOW,)
    assert guesses.clear(ledger).wrong_codes == 0
    clear = SendLedger(user_id="u1")
    assert guesses.clear(clear) is clear


def test_mf_8_a_first_wrong_code_makes_the_ledger() -> None:
    ledger = guesses.wrong_code(None, user_id="u7", now=NOW, rules=RULES)
    assert ledger == SendLedger(user_id="u7", wrong_codes=1)
    assert guesses.blocked(None, now=NOW, rules=RULES) is None


@given(st.integers(min_value=0, max_value=400))
def test_mf_8_a_pause_never_exceeds_the_longest_nor_starts_before_its_threshold(n: int) -> None:
    pause = guesses.pause_after(n, RULES)
    if n < RULES.pause_from_wrong_codes:
        assert pause is None
    else:
        assert pause is not None
        assert RULES.first_code_pause <= pause <= RULES.longest_code_pause
