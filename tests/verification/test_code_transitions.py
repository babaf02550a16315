"""The code machine's transitions keep what they do not change (VF-7)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import attrs
import pytest

from securepractice import ChallengeState, Phone, PhoneKind, Purpose, Secret, VerificationRules
from securepractice.verification import codes
from securepractice.verification.phones import delivery_options

NOW = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
RULES = VerificationRules(max_wrong_codes=2)
CELL = Phone(number="+12025550143", kind=PhoneKind.CELL)


def _issued() -> codes.CodeIssued:
    offered = delivery_options([CELL])
    return codes.issue(
        user_id="u1",
        purpose=Purpose.NEW_PHONE,
        option=offered[0],
        offered=offered,
        ledger=None,
        now=NOW,
        rules=RULES,
        flow_id="flow-1",
        phone_kind=PhoneKind.CELL,
    )


def _wrong(code: Secret[str]) -> str:
    return str((int(code.reveal()) + 1) % 10**6).zfill(6)


@pytest.mark.parametrize("entries", [("right",), ("wrong",), ("wrong", "wrong")])
def test_vf_7_an_entry_changes_only_state_hash_count_and_version(entries: tuple[str, ...]) -> None:
    """Every field of the challenge but those four comes through an entry unchanged."""
    issued = _issued()
    before = issued.challenge
    after = before
    for entry in entries:
        typed = issued.code if entry == "right" else _wrong(issued.code)
        after = codes.verify(
            after, typed, user_id="u1", purpose=Purpose.NEW_PHONE, now=NOW, rules=RULES
        ).challenge
    changed = {"state", "code_hash", "wrong_attempts", "version"}
    for field in attrs.fields(type(before)):
        if field.name not in changed:
            assert getattr(after, field.name) == getattr(before, field.name), field.name
    assert after.version == before.version + len(entries)
    expected = {
        ("right",): ChallengeState.VERIFIED,
        ("wrong",): ChallengeState.ACTIVE,
        ("wrong", "wrong"): ChallengeState.VOID,
    }[entries]
    assert after.state is expected
    assert (after.code_hash is not None) is (expected is ChallengeState.ACTIVE)


def test_vf_8_the_ledger_keeps_only_sends_inside_the_window() -> None:
    """A send that left the window leaves the ledger; the new one is counted."""
    first = codes.record_send(None, user_id="u1", now=NOW, rules=RULES)
    later = NOW + RULES.send_window + timedelta(seconds=1)
    second = codes.record_send(first, user_id="u1", now=later, rules=RULES)
    assert first.sends == (NOW,)
    assert second.sends == (later,)
    assert second.version == first.version + 1
