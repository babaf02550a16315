"""MF-3, MF-4, MF-8, MF-10 at their edges: code lengths, counters, URIs, seals, codes, pauses."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import sys
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pyotp
import pytest

from plain_words import assert_plain_english
from securepractice.errors import CorruptSecret, SettingsError
from securepractice.records import SendLedger
from securepractice.secret import Secret
from securepractice.settings import VerificationRules
from securepractice.verification import guesses, recovery, sealed, totp

RFC_SEED = Secret(b"12345678901234567890")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
NOW = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
KEY = Secret(bytes(range(32)))


@pytest.mark.parametrize("digits", [1, 10])
def test_mf_3_codes_of_one_to_ten_digits_are_made(digits: int) -> None:
    """MF-3: RFC 4226 allows one digit up to the ten a 31-bit number has."""
    code = totp.hotp(RFC_SEED, 1, digits=digits).reveal()
    assert len(code) == digits
    ten = pyotp.HOTP(base64.b32encode(RFC_SEED.reveal()).decode(), digits=10).at(1)
    assert code == ten[-digits:]


def test_mf_3_the_counter_is_an_unsigned_eight_byte_number() -> None:
    """MF-3: RFC 4226's counter is 8 bytes, unsigned: its largest value works as pyotp's does."""
    largest = 2**64 - 1
    expected = pyotp.HOTP(base64.b32encode(RFC_SEED.reveal()).decode()).at(largest)
    assert totp.hotp(RFC_SEED, largest).reveal() == expected


def test_mf_3_the_period_given_sets_the_step() -> None:
    """MF-3: with a 60-second period, second 59 is still the first step."""
    at = EPOCH + timedelta(seconds=59)
    assert totp.totp(RFC_SEED, at, period=60).reveal() == totp.hotp(RFC_SEED, 0).reveal()
    assert totp.totp(RFC_SEED, at).reveal() == totp.hotp(RFC_SEED, 1).reveal()


def _uri_parts(seed: bytes, *, account: str, issuer: str) -> tuple[str, dict[str, str]]:
    uri = totp.provisioning_uri(Secret(seed), account=account, issuer=issuer).reveal()
    parts = urlsplit(uri)
    query = dict(pair.split("=", 1) for pair in parts.query.split("&"))
    return parts.path, query


@pytest.mark.parametrize("seed", [bytes(16), bytes(19) + b"\x17"])
def test_mf_3_the_uri_holds_the_whole_seed_in_unpadded_base32(seed: bytes) -> None:
    """MF-3: no padding (a 16-byte seed has six ``=``), and every character kept (``X`` too)."""
    _, query = _uri_parts(seed, account="dana@smile.example", issuer="Smile")
    secret = query["secret"]
    assert "=" not in secret
    assert base64.b32decode(secret + "=" * (-len(secret) % 8)) == seed


def test_mf_3_the_uri_label_keeps_at_and_colon_and_spaces_are_percent_encoded() -> None:
    """MF-3: ``issuer:account`` keeps its ``:`` and ``@``; a space is ``%20``, never ``+``."""
    path, query = _uri_parts(bytes(20), account="dana@smile.example", issuer="Smile Portal")
    assert path == "/Smile%20Portal:dana@smile.example"
    assert query["issuer"] == "Smile%20Portal"


def test_mf_10_sealing_needs_the_cryptography_package_and_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """MF-10: without the extra, sealing is a settings error naming what to install."""
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)
    with pytest.raises(SettingsError) as refused:
        sealed.seal(Secret(b"seed"), key=KEY, owner="user-1")
    assert (refused.value.field, refused.value.code) == ("authenticator", "settings.missing_extra")
    assert refused.value.message.startswith("authenticator: ")
    assert_plain_english(
        refused.value.message.partition(": ")[2],
        sentence=False,
        names=("cryptography", "pip install 'securepractice[authenticator]'"),
    )


def test_mf_10_a_key_is_named_by_the_first_64_bytes_of_any_length() -> None:
    """MF-10: the key id is BLAKE2b of a fixed label under the key (its first 64 bytes)."""
    for raw in (bytes(range(32)), bytes(range(100))):
        expected = hashlib.blake2b(
            b"securepractice.sealed.key-id", key=raw[:64], digest_size=8
        ).digest()
        assert sealed.key_id(Secret(raw)) == expected


def test_mf_10_a_value_sealed_for_an_owner_with_a_surrogate_opens_for_that_owner() -> None:
    """MF-10, IN-1: the owner is bound into the seal as it is, surrogates included."""
    box = sealed.seal(Secret(b"seed"), key=KEY, owner="user-\ud800")
    assert sealed.open_sealed(box, keys=[KEY], owner="user-\ud800").reveal() == b"seed"


def _unreadable(box: bytes) -> str:
    with pytest.raises(CorruptSecret) as refused:
        sealed.open_sealed(box, keys=[KEY], owner="user-1")
    assert refused.value.code == "secret.unreadable"
    assert_plain_english(refused.value.message, sentence=False)
    return refused.value.message


def test_mf_10_what_is_not_in_the_sealed_form_is_told_apart_from_what_no_key_opens() -> None:
    """MF-10: too short or another version is not the library's form; a header alone is.

    A header without its ciphertext is in the library's form, and no key opens it.
    """
    box = sealed.seal(Secret(b"seed"), key=KEY, owner="user-1")
    header = box[:21]
    assert "form" in _unreadable(b"\x01")
    assert "form" in _unreadable(b"\x02" + box[1:])
    assert "keys" in _unreadable(header)
    assert "keys" in _unreadable(box[:-1])


def test_mf_4_a_code_is_four_groups_of_four_crockford_characters() -> None:
    """MF-4: each code reads as ``XXXX-XXXX-XXXX-XXXX`` in Crockford's base32."""
    for code in recovery.new_codes(20):
        assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}", code.reveal())


def test_mf_4_a_code_writes_all_80_bits_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """MF-4: the 16 characters are the 80 bits, five at a time, most significant first."""
    written = "0123456789ABCDEF"
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    number = sum(alphabet.index(c) << (5 * (15 - i)) for i, c in enumerate(written))
    monkeypatch.setattr(secrets, "randbits", lambda bits: number if bits == recovery.BITS else 0)
    assert recovery.new_codes(1)[0].reveal() == "0123-4567-89AB-CDEF"


def test_mf_4_an_entry_of_exactly_64_characters_is_read() -> None:
    """MF-4: separators count toward 64 characters; up to 64 the code is read."""
    code = recovery.new_codes(1)[0].reveal()
    padded = code + " " * (64 - len(code))
    assert recovery.normalize_entry(padded) == code.replace("-", "")
    assert recovery.normalize_entry(padded + " ") is None


def test_mf_4_each_hash_of_a_code_has_its_own_salt_in_what_is_hashed() -> None:
    """MF-4: two hashes of one code differ after their salts too: the salt is hashed in."""
    code = recovery.new_codes(1)[0]
    first = recovery.code_hash(code, user_id="user-1")
    second = recovery.code_hash(code, user_id="user-1")
    assert first[:16] != second[:16]
    assert first[16:] != second[16:]
    moved = second[:16] + first[16:]  # the first digest under the second salt
    assert recovery.matching_index(code, [moved], user_id="user-1") is None
    assert recovery.matching_index(code, [first], user_id="user-1") == 0


def test_mf_4_a_user_id_with_a_surrogate_is_hashed_and_matched() -> None:
    """MF-4, IN-1: the user id is bound in as it is, surrogates included."""
    code = recovery.new_codes(1)[0]
    stored = recovery.code_hash(code, user_id="user-\ud800")
    assert recovery.matching_index(code, [stored], user_id="user-\ud800") == 0


def test_mf_4_a_used_code_before_it_does_not_hide_the_code_entered() -> None:
    """MF-4: used codes (None) are skipped, and the search goes on past them."""
    first, second = recovery.new_codes(2)
    hashes = [None, recovery.code_hash(first, user_id="u"), recovery.code_hash(second, user_id="u")]
    assert recovery.matching_index(second, hashes, user_id="u") == 2


def test_mf_4_hashing_what_is_not_a_code_is_a_programming_error() -> None:
    """MF-4: only a code is hashed; the error says so in plain words."""
    with pytest.raises(ValueError, match="recovery code") as refused:
        recovery.code_hash("not-a-code", user_id="u")
    assert_plain_english(str(refused.value), sentence=False)


def test_mf_8_a_running_pause_is_kept_by_a_wrong_code_that_starts_none() -> None:
    """MF-8: a wrong code below the pause threshold leaves a pause already set as it was."""
    until = NOW + timedelta(minutes=5)
    ledger = SendLedger(user_id="u", wrong_codes=2, paused_until=until)
    counted = guesses.wrong_code(ledger, user_id="u", now=NOW, rules=VerificationRules())
    assert (counted.wrong_codes, counted.paused_until) == (3, until)


def test_mf_8_the_first_wrong_code_can_start_a_pause() -> None:
    """MF-8: with the threshold at one, the very first wrong code pauses codes."""
    rules = VerificationRules(pause_from_wrong_codes=1)
    counted = guesses.wrong_code(None, user_id="u", now=NOW, rules=rules)
    assert counted.paused_until == NOW + rules.first_code_pause
