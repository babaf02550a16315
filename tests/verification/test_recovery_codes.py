"""Recovery codes: 10 single-use codes of 80 random bits, kept as salted hashes (MF-4)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securepractice.secret import Secret
from securepractice.verification import recovery


def test_mf_4_a_set_is_ten_codes_of_at_least_64_random_bits() -> None:
    codes = recovery.new_codes()
    assert len(codes) == recovery.COUNT == 10
    assert recovery.BITS >= 64
    for code in codes:
        assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}", code.reveal())
    # 80 bits: over many sets no code repeats, and every character position varies.
    many = [c.reveal() for _ in range(100) for c in recovery.new_codes()]
    assert len(set(many)) == len(many)
    plain = [c.replace("-", "") for c in many]
    assert all(len({code[i] for code in plain}) > 16 for i in range(16))


def test_mf_4_any_spelling_of_a_code_is_the_code() -> None:
    code = recovery.new_codes(1)[0].reveal()
    lower = code.lower().replace("-", " ")
    misread = code.replace("1", "l").replace("0", "O")
    hashes = [recovery.code_hash(code, user_id="u1")]
    for typed in (code, lower, misread, f"  {code.replace('-', '')}  ", Secret(code)):
        assert recovery.matching_index(typed, hashes, user_id="u1") == 0, typed


def test_mf_4_a_code_is_bound_to_its_user() -> None:
    code = recovery.new_codes(1)[0]
    hashes = [recovery.code_hash(code, user_id="u1")]
    assert recovery.matching_index(code, hashes, user_id="u2") is None
    assert recovery.matching_index(code, hashes, user_id="u1") == 0


def test_mf_4_a_used_code_matches_nothing() -> None:
    """Single use: the service removes a used code's hash; None never matches."""
    first, second = recovery.new_codes(2)
    hashes: list[bytes | None] = [
        recovery.code_hash(code, user_id="u1") for code in (first, second)
    ]
    assert recovery.matching_index(second, hashes, user_id="u1") == 1
    hashes[1] = None
    assert recovery.matching_index(second, hashes, user_id="u1") is None
    assert recovery.matching_index(first, hashes, user_id="u1") == 0


def test_mf_4_the_hash_keeps_nothing_of_the_code_and_is_salted() -> None:
    code = recovery.new_codes(1)[0].reveal()
    stored = recovery.code_hash(code, user_id="u1")
    assert len(stored) == 16 + 32
    assert recovery.code_hash(code, user_id="u1") != stored
    assert code.replace("-", "").encode() not in stored
    assert code not in repr(recovery.new_codes(1))


@given(st.text(max_size=80))
def test_mf_4_any_text_is_a_code_or_matches_nothing(typed: str) -> None:
    """Never an error: a wrong entry is a wrong code (it counts toward MF-8 in the service)."""
    hashes = [recovery.code_hash(c, user_id="u1") for c in recovery.new_codes(3)]
    assert recovery.matching_index(typed, hashes, user_id="u1") is None


@pytest.mark.parametrize("typed", ["", "ABCD", "ABCD-EFGH-JKMN-PQRU", "A" * 65, "\ud800" * 16])
def test_mf_4_what_cannot_be_a_code_has_no_spelling(typed: str) -> None:
    assert recovery.normalize_entry(typed) is None
    with pytest.raises(ValueError, match="not a recovery code"):
        recovery.code_hash(typed, user_id="u1")
