"""VF-1..VF-3, RG-1, RG-6 at their edges: each phone refusal as read, token lengths, link bases."""

from __future__ import annotations

import hashlib

import pytest

from plain_words import assert_plain_english
from securepractice.errors import InvalidInput, InvalidToken, SettingsError
from securepractice.records import PhoneKind, TokenPurpose
from securepractice.secret import Secret
from securepractice.settings import LinkRules
from securepractice.verification.phones import MAX_PHONE_INPUT_LENGTH, parse_phone
from securepractice.verification.tokens import build_link, hash_token


@pytest.mark.parametrize(
    ("value", "code", "named"),
    [
        (None, "phone.empty", "empty"),
        ("\u200f \u200e", "phone.empty", "empty"),
        (5, "phone.not_text", "int"),
        ("2" * (MAX_PHONE_INPUT_LENGTH + 1), "phone.too_long", str(MAX_PHONE_INPUT_LENGTH)),
        ("202\x00555", "phone.bad_character", "control character"),
        ("abc", "phone.not_a_number", "not a phone number"),
        ("+0 123", "phone.invalid_country_code", "country code"),
        ("12345678901234567890", "phone.too_long", "too long"),
        ("(202) 555-014", "phone.too_short", "too short"),
        ("+1 555 0143", "phone.not_possible", "area code"),
        ("+1 202 123 4567", "phone.not_valid", "country code"),
        ("+1 202 555 0143 ext. 12", "phone.has_extension", "E.164"),
        ("+1 900 555 0100", "phone.unsupported_type", "premium-rate"),
    ],
)
def test_vf_1_each_refusal_is_a_sentence_on_the_field_saying_why(
    value: object, code: str, named: str
) -> None:
    """VF-1, VF-3: every refusal names its field in words and says why, in one sentence or two."""
    for kind, label in ((PhoneKind.CELL, "The cell phone number"), (PhoneKind.PHONE, "The phone")):
        with pytest.raises(InvalidInput) as refused:
            parse_phone(value, kind=kind)
        assert (refused.value.code, refused.value.field) == (code, kind.value)
        assert refused.value.message.startswith(label)
        assert_plain_english(refused.value.message, sentence=True, names=(named,))


def test_vf_1_an_unknown_default_region_is_refused_with_an_example() -> None:
    """VF-1: the region national numbers are read in must be one phonenumbers knows."""
    with pytest.raises(InvalidInput) as refused:
        parse_phone("202 555 0143", kind=PhoneKind.CELL, region="ZZ")
    assert (refused.value.code, refused.value.field) == ("phone.unknown_region", "region")
    assert_plain_english(refused.value.message, sentence=False, names=("US",))


@pytest.mark.parametrize("length", [1, 512])
def test_rg_1_tokens_of_one_to_512_characters_are_hashed(length: int) -> None:
    """RG-1: any ASCII text of 1 to 512 characters is hashed as it is; none longer, none empty."""
    token = "t" * length
    assert hash_token(token) == hashlib.sha256(token.encode()).digest()
    assert hash_token(Secret(token)) == hash_token(token)


@pytest.mark.parametrize("token", ["", "t" * 513, "t\u00e9"])
def test_rg_6_no_token_out_of_bounds_is_hashed(token: str) -> None:
    """RG-6: empty, too long or non-ASCII text is refused like any unknown link."""
    with pytest.raises(InvalidToken):
        hash_token(token)


def test_rs_5_a_link_keeps_every_character_of_its_base_but_a_trailing_slash() -> None:
    """RS-5: the base URL is used as configured; only its trailing slash is dropped."""
    rules = LinkRules(base_url="https://portal.example/SX/")
    link = build_link(Secret("tok"), purpose=TokenPurpose.INVITATION, rules=rules).reveal()
    assert link == f"https://portal.example/SX{rules.invitation_path}?token=tok"


def test_rs_5_a_link_without_a_base_url_names_the_setting() -> None:
    """RS-5: no base URL is a settings error that says what to set, with an example."""
    with pytest.raises(SettingsError) as refused:
        build_link(Secret("tok"), purpose=TokenPurpose.PASSWORD_RESET, rules=LinkRules())
    assert refused.value.code == "settings.invalid"
    assert_plain_english(
        refused.value.message, sentence=False, names=("base_url", "https://portal.example.com")
    )
