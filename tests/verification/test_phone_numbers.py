"""Phone numbers: parsing, E.164, refusals and delivery options (VF-1, VF-2, VF-3)."""

from __future__ import annotations

import re
import sys

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from securepractice.errors import InvalidInput
from securepractice.records import DeliveryMethod, Phone, PhoneKind
from securepractice.verification.phones import (
    MAX_PHONE_INPUT_LENGTH,
    DeliveryOption,
    delivery_options,
    parse_phone,
)
from strategies import ANY_TEXT

E164 = re.compile(r"\+[1-9][0-9]{1,14}")
SMS, VOICE = DeliveryMethod.SMS, DeliveryMethod.VOICE

#: The decision of the docs, written out again here: which types take which method.
TAKES_TEXT = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
VOICE_ONLY = {
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.SHARED_COST,
    PhoneNumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER,
}
REFUSED = {
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.PAGER,
    PhoneNumberType.VOICEMAIL,
    PhoneNumberType.UAN,
}


def refusal(value: object, kind: PhoneKind = PhoneKind.PHONE, region: str | None = None) -> str:
    """Parse ``value``, expect a refusal naming the field, return its code."""
    with pytest.raises(InvalidInput) as caught:
        parse_phone(value, kind=kind, region=region)
    assert caught.value.field == kind.value
    return caught.value.code


def examples(number_type: int) -> list[tuple[str, phonenumbers.PhoneNumber]]:
    """Every region's example number of ``number_type`` that phonenumbers classifies so."""
    found = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        number = phonenumbers.example_number_for_type(region, number_type)
        if number is not None and phonenumbers.number_type(number) == number_type:
            found.append((region, number))
    return found


@pytest.mark.parametrize(
    "text",
    ["2025550143", "(202) 555-0143", "202.555.0143", "1-202-555-0143", "+1 202 555 0143"],
)
def test_national_and_international_input_is_stored_in_e164(text: str) -> None:
    """VF-1: US numbers in any common writing are stored as one E.164 string."""
    assert parse_phone(text, kind=PhoneKind.CELL) == Phone(
        number="+12025550143", kind=PhoneKind.CELL
    )


def test_the_default_region_reads_national_input_and_can_be_changed() -> None:
    """VF-1: national input is read in the default region (US) unless told otherwise."""
    assert parse_phone("020 7946 0958", kind=PhoneKind.PHONE, region="GB").number == (
        "+442079460958"
    )
    assert refusal("020 7946 0958") == "phone.too_long"
    assert parse_phone("+44 20 7946 0958", kind=PhoneKind.PHONE).number == "+442079460958"


def test_an_unknown_default_region_is_a_clear_error() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_phone("2025550143", kind=PhoneKind.PHONE, region="ZZ")
    assert (caught.value.field, caught.value.code) == ("region", "phone.unknown_region")


@pytest.mark.parametrize("kind", list(PhoneKind))
@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("abc", "phone.not_a_number"),
        ("call me", "phone.not_a_number"),
        ("1" * 300, "phone.too_long"),
        ("x" * 300, "phone.too_long"),
        ("+1 123 456 7890", "phone.not_valid"),
        ("123", "phone.too_short"),
        ("+1 202 555 01439999", "phone.too_long"),
        ("+999 2025550143", "phone.invalid_country_code"),
        ("555 0143", "phone.not_possible"),
        ("", "phone.empty"),
        ("   ", "phone.empty"),
        ("\u200f\u200e", "phone.empty"),
        (None, "phone.empty"),
        (2025550143, "phone.not_text"),
        (b"2025550143", "phone.not_text"),
        (["2025550143"], "phone.not_text"),
        ("202555\x000143", "phone.bad_character"),
        ("+1202555014\x003", "phone.bad_character"),
        ("2025550143\ud800", "phone.bad_character"),
    ],
)
def test_bad_input_is_refused_with_a_stable_code_naming_the_field(
    value: object, code: str, kind: PhoneKind
) -> None:
    """VF-1: each reason has its own code, and the error names the form field."""
    assert refusal(value, kind) == code


def test_messages_name_the_field_in_words_and_never_repeat_the_number() -> None:
    """VF-1: the message says which field; it does not echo (possibly personal) input."""
    with pytest.raises(InvalidInput) as caught:
        parse_phone("+1 123 456 7890", kind=PhoneKind.CELL)
    assert caught.value.message.startswith("The cell phone number ")
    assert "123" not in str(caught.value)
    with pytest.raises(InvalidInput) as caught:
        parse_phone("+1 123 456 7890", kind=PhoneKind.PHONE)
    assert caught.value.message.startswith("The phone number ")


def test_possible_but_not_valid_is_its_own_refusal() -> None:
    """VF-1: "+1 123 456 7890" has the right length for the US but no such area code."""
    number = phonenumbers.parse("+1 123 456 7890", None)
    assert phonenumbers.is_possible_number(number)
    assert refusal("+1 123 456 7890") == "phone.not_valid"


def test_the_input_length_bound_is_exact() -> None:
    padded = "+1 202 555 0143".ljust(MAX_PHONE_INPUT_LENGTH)
    assert parse_phone(padded, kind=PhoneKind.PHONE).number == "+12025550143"
    assert refusal(padded + " ") == "phone.too_long"


@pytest.mark.parametrize(
    "text",
    [
        "\u0662\u0660\u0662\u0665\u0665\u0665\u0660\u0661\u0664\u0663",  # Arabic-Indic
        "\u06f2\u06f0\u06f2\u06f5\u06f5\u06f5\u06f0\u06f1\u06f4\u06f3",  # Persian
        "\uff12\uff10\uff12\uff15\uff15\uff15\uff10\uff11\uff14\uff13",  # full-width
    ],
)
def test_digits_of_other_scripts_are_accepted(text: str) -> None:
    """VF-1: phonenumbers reads any decimal digits; we keep that and store ASCII E.164."""
    assert parse_phone(text, kind=PhoneKind.PHONE).number == "+12025550143"


@pytest.mark.parametrize(
    "text",
    [
        "\u200f+1 202 555 0143",
        "+1 202\u200f 555 0143",
        "\u202b202-555-0143\u202c",
        "2025\u200b550143",
    ],
)
def test_invisible_direction_marks_are_dropped(text: str) -> None:
    """VF-1: marks that copying from right-to-left text brings along do not make a number bad."""
    assert parse_phone(text, kind=PhoneKind.PHONE).number == "+12025550143"


@pytest.mark.parametrize(
    "text",
    [
        "202-555-0143 x45",
        "202-555-0143 x 45",
        "202-555-0143 ext. 45",
        "202-555-0143 ext 45",
        "202-555-0143;ext=45",
        "tel:+1-202-555-0143;ext=45",
        "+44 20 7946 0958 ext. 123",
    ],
)
@pytest.mark.parametrize("kind", list(PhoneKind))
def test_a_number_with_an_extension_is_refused_and_the_error_says_why(
    text: str, kind: PhoneKind
) -> None:
    """VF-3: a call cannot dial an extension, and E.164 would silently drop it."""
    with pytest.raises(InvalidInput) as caught:
        parse_phone(text, kind=kind)
    error = caught.value
    assert (error.field, error.code) == (kind.value, "phone.has_extension")
    assert "extension" in error.message
    assert "E.164" in error.message
    assert "drop" in error.message


@pytest.mark.parametrize("number_type", sorted(REFUSED))
def test_numbers_that_cannot_take_a_code_are_refused_when_entered(number_type: int) -> None:
    """VF-2: premium-rate, pager, voicemail and UAN numbers are refused in every region.

    Canada's UAN example (310-xxxx) can be dialled only locally, so it is
    refused a step earlier, as not possible.
    """
    found = examples(number_type)
    assert found, "phonenumbers has examples of every refused type"
    for region, number in found:
        e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
        local_only = (region, number_type) == ("CA", PhoneNumberType.UAN)
        expected = "phone.not_possible" if local_only else "phone.unsupported_type"
        assert refusal(e164, PhoneKind.CELL) == expected


def test_a_us_premium_rate_number_is_refused() -> None:
    """VF-2: a 900 number charges the portal for every verification call."""
    assert refusal("+1 900 555 0143") == "phone.unsupported_type"


@pytest.mark.parametrize("number_type", sorted(VOICE_ONLY))
def test_numbers_that_take_only_calls_get_a_voice_option_even_as_cell(number_type: int) -> None:
    """VF-2: fixed line, toll-free, shared-cost, VoIP and personal numbers: voice, never text."""
    found = examples(number_type)
    assert found
    for _region, number in found:
        e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
        phone = parse_phone(e164, kind=PhoneKind.CELL)
        assert delivery_options([phone]) == (
            DeliveryOption(method=VOICE, destination=e164, kind=PhoneKind.CELL),
        )


@pytest.mark.parametrize("number_type", [PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE])
def test_every_region_s_example_numbers_parse_round_trip_and_get_the_right_options(
    number_type: int,
) -> None:
    """VF-1, VF-2: real numbers of every region phonenumbers knows.

    Each example, written nationally in its region or internationally, is
    stored in E.164 and parses back unchanged; as a cell phone it takes texts
    exactly when phonenumbers says mobile or "fixed line or mobile"; as a
    phone it takes calls only.
    """
    checked = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        number = phonenumbers.example_number_for_type(region, number_type)
        if number is None:
            continue
        e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
        national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
        international = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
        for text, given_region in ((national, region), (international, None), (e164, None)):
            assert parse_phone(text, kind=PhoneKind.CELL, region=given_region).number == e164
        assert parse_phone(e164, kind=PhoneKind.CELL).number == e164
        takes_text = phonenumbers.number_type(number) in TAKES_TEXT
        as_cell = delivery_options([Phone(number=e164, kind=PhoneKind.CELL)])
        assert [o.method for o in as_cell] == ([SMS, VOICE] if takes_text else [VOICE])
        as_phone = delivery_options([Phone(number=e164, kind=PhoneKind.PHONE)])
        assert [o.method for o in as_phone] == [VOICE]
        checked += 1
    assert checked > 200


def test_us_numbers_are_fixed_line_or_mobile_so_a_us_cell_takes_texts(us_cell: Phone) -> None:
    """VF-2: the US numbering plan cannot tell a cell from a landline; the cell field decides."""
    number = phonenumbers.parse(us_cell.number, None)
    assert phonenumbers.number_type(number) == PhoneNumberType.FIXED_LINE_OR_MOBILE
    assert [o.method for o in delivery_options([us_cell])] == [SMS, VOICE]


def test_a_number_given_as_phone_never_takes_texts_even_if_mobile() -> None:
    """VF-2: only the number given as cell phone is offered a text message."""
    uk_mobile = parse_phone("+44 7400 123456", kind=PhoneKind.PHONE)
    assert delivery_options([uk_mobile]) == (
        DeliveryOption(method=VOICE, destination="+447400123456", kind=PhoneKind.PHONE),
    )


def test_a_fixed_line_given_as_cell_is_not_offered_texts(uk_landline: Phone) -> None:
    """VF-2: a text to a number phonenumbers calls a fixed line is not offered."""
    as_cell = Phone(number=uk_landline.number, kind=PhoneKind.CELL)
    assert [o.method for o in delivery_options([as_cell])] == [VOICE]


def test_options_cover_both_numbers_in_order_and_once_each(
    us_cell: Phone, uk_landline: Phone
) -> None:
    """VF-2: a user with a phone and a cell sees exactly the options that fit."""
    same_as_phone = Phone(number=us_cell.number, kind=PhoneKind.PHONE)
    options = delivery_options([uk_landline, us_cell, same_as_phone])
    assert [(o.method, o.destination, o.kind) for o in options] == [
        (VOICE, uk_landline.number, PhoneKind.PHONE),
        (SMS, us_cell.number, PhoneKind.CELL),
        (VOICE, us_cell.number, PhoneKind.CELL),
    ]
    assert delivery_options([]) == ()


@pytest.mark.parametrize("stored", ["+11234567890", "not a number", "+12025550143;ext=4", ""])
def test_a_stored_number_that_is_not_valid_now_gives_no_option(stored: str) -> None:
    """VF-2: numbers stored before a metadata change, or corrupted, are not offered."""
    assert delivery_options([Phone(number=stored, kind=PhoneKind.CELL)]) == ()


@given(value=ANY_TEXT | st.text(alphabet="0123456789 +-().x", max_size=80))
def test_any_text_gives_a_phone_in_e164_or_a_refusal_with_a_phone_code(value: str) -> None:
    """VF-1: nothing but a valid E.164 number or an `InvalidInput` comes out of any text."""
    outcome: Phone | InvalidInput
    try:
        outcome = parse_phone(value, kind=PhoneKind.CELL)
    except InvalidInput as error:
        outcome = error
    if isinstance(outcome, InvalidInput):
        assert outcome.field == "cell"
        assert outcome.code.startswith("phone.")
    else:
        assert E164.fullmatch(outcome.number)
        assert parse_phone(outcome.number, kind=PhoneKind.CELL) == outcome


def test_the_heavy_phonenumbers_modules_are_not_imported() -> None:
    """Parsing needs no geocoder, carrier or time zone data (about 100 MiB between them)."""
    parse_phone("+1 202 555 0143", kind=PhoneKind.CELL)
    delivery_options([Phone(number="+12025550143", kind=PhoneKind.CELL)])
    heavy = ("phonenumbers.geocoder", "phonenumbers.carrier", "phonenumbers.timezone")
    assert not [name for name in heavy if name in sys.modules]
