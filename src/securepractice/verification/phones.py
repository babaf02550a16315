"""Phone numbers: parse, validate, store in E.164, and say how a code may reach them.

Rules VF-1 to VF-3 of SPEC.md. A number is parsed with ``phonenumbers``
(national input is read in the default region, US unless the settings say
otherwise), stored in E.164 form, and keeps the field it was given in
("phone" or "cell"). Every refusal is an `InvalidInput` naming that field,
with a stable code per reason; messages never repeat the number itself.

Which delivery options a number allows (VF-2), by the type ``phonenumbers``
gives it:

* mobile, fixed line or mobile: a voice call, and a text message when the
  number was given as the cell phone. Every US and Canadian number is "fixed
  line or mobile": the numbering plan does not tell them apart, so a cell
  phone number there is trusted to take texts.
* fixed line, toll-free, shared-cost, VoIP, personal (follow-me) number: a
  voice call only. Texts to these often vanish without an error, and NIST SP
  800-63B advises against sending codes by text to numbers that are not tied
  to a mobile device.
* premium-rate, pager, voicemail access, UAN (a business's universal access
  number): refused when entered. A premium-rate number charges the portal
  for every call (the classic toll-fraud target); a pager cannot play a
  spoken code; a voicemail access number or a switchboard number does not
  reach one person.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

import attrs
import phonenumbers
from phonenumbers import (
    NumberParseException,
    PhoneNumberFormat,
    PhoneNumberType,
    ValidationResult,
)

from securepractice.errors import InvalidInput
from securepractice.records import DeliveryMethod, Phone, PhoneKind
from securepractice.settings import VerificationRules

__all__ = [
    "MAX_PHONE_INPUT_LENGTH",
    "DeliveryOption",
    "delivery_options",
    "parse_phone",
]

#: Longer input is refused as ``phone.too_long`` before it is parsed: the
#: longest E.164 number, written with spaces, a country code and brackets,
#: is well under this.
MAX_PHONE_INPUT_LENGTH = 64

_DEFAULT_REGION = str(attrs.fields(VerificationRules).default_region.default)

_SMS_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
_VOICE_TYPES = _SMS_TYPES | {
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.SHARED_COST,
    PhoneNumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER,
}
_REFUSED_TYPES: dict[int, str] = {
    PhoneNumberType.PREMIUM_RATE: "is a premium-rate number, which charges for every call",
    PhoneNumberType.PAGER: "is a pager number, which cannot take a spoken code",
    PhoneNumberType.VOICEMAIL: "is a voicemail access number, not a person's phone",
    PhoneNumberType.UAN: "is a business's switchboard number, not a person's phone",
}

_PARSE_ERRORS: dict[int, tuple[str, str]] = {
    NumberParseException.INVALID_COUNTRY_CODE: (
        "phone.invalid_country_code",
        "has a country code that does not exist",
    ),
    NumberParseException.NOT_A_NUMBER: ("phone.not_a_number", "is not a phone number"),
    NumberParseException.TOO_SHORT_AFTER_IDD: ("phone.too_short", "is too short"),
    NumberParseException.TOO_SHORT_NSN: ("phone.too_short", "is too short"),
    NumberParseException.TOO_LONG: ("phone.too_long", "is too long"),
}

_POSSIBILITY_ERRORS: dict[int, tuple[str, str]] = {
    ValidationResult.TOO_SHORT: ("phone.too_short", "is too short"),
    ValidationResult.TOO_LONG: ("phone.too_long", "is too long"),
    ValidationResult.INVALID_COUNTRY_CODE: (
        "phone.invalid_country_code",
        "has a country code that does not exist",
    ),
    ValidationResult.INVALID_LENGTH: (
        "phone.not_possible",
        "has a number of digits no number of its country has",
    ),
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: (
        "phone.not_possible",
        "can be dialled only locally: include the area code",
    ),
}

_LABELS = {PhoneKind.PHONE: "The phone number", PhoneKind.CELL: "The cell phone number"}


@attrs.frozen(kw_only=True)
class DeliveryOption:
    """One way to send a code: by ``method`` to ``destination`` (E.164), given as ``kind``.

    `delivery_options` returns exactly the options a user's numbers allow,
    so that a form can offer those and nothing else (VF-2).
    """

    method: DeliveryMethod
    destination: str
    kind: PhoneKind


def _refuse(kind: PhoneKind, code: str, reason: str) -> InvalidInput:
    return InvalidInput(f"{_LABELS[kind]} {reason}.", field=kind.value, code=code)


def _clean(value: object, kind: PhoneKind) -> str:
    """Return the text to parse: invisible formatting marks removed, blanks trimmed."""
    if value is None:
        raise _refuse(kind, "phone.empty", "is empty")
    if not isinstance(value, str):
        raise _refuse(kind, "phone.not_text", f"must be text, not {type(value).__name__}")
    if len(value) > MAX_PHONE_INPUT_LENGTH:
        raise _refuse(kind, "phone.too_long", f"is longer than {MAX_PHONE_INPUT_LENGTH} characters")
    # Copying a number from right-to-left text brings direction marks along;
    # they are invisible, so they are dropped rather than refused.
    text = "".join(c for c in value if unicodedata.category(c) != "Cf").strip()
    if not text:
        raise _refuse(kind, "phone.empty", "is empty")
    if any(unicodedata.category(c) in {"Cc", "Cs"} for c in text):
        raise _refuse(kind, "phone.bad_character", "holds a control character")
    return text


def parse_phone(value: object, *, kind: PhoneKind, region: str | None = None) -> Phone:
    """Parse ``value`` as given in the ``kind`` field; return it in E.164 form (VF-1).

    ``region`` is the region that national input is read in (default: the
    settings' ``default_region``). Raises `InvalidInput` naming the field
    ("phone" or "cell") with a stable code: ``phone.empty``,
    ``phone.not_text``, ``phone.too_long``, ``phone.too_short``,
    ``phone.bad_character``, ``phone.not_a_number``,
    ``phone.invalid_country_code``, ``phone.not_possible``,
    ``phone.not_valid``, ``phone.has_extension`` (VF-3) or
    ``phone.unsupported_type``.
    """
    region = _DEFAULT_REGION if region is None else region
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidInput(
            "the default region must be a region phonenumbers knows, such as 'US'",
            field="region",
            code="phone.unknown_region",
        )
    text = _clean(value, kind)
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as error:
        code, reason = _PARSE_ERRORS.get(error.error_type, ("phone.not_a_number", "is not valid"))
        raise _refuse(kind, code, reason) from None
    if number.extension:
        raise _refuse(
            kind,
            "phone.has_extension",
            "has an extension: a verification call cannot dial an extension, and the "
            "stored form (E.164) would silently drop it; give a number that rings "
            "you directly",
        )
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible != ValidationResult.IS_POSSIBLE:
        code, reason = _POSSIBILITY_ERRORS[possible]
        raise _refuse(kind, code, reason)
    if not phonenumbers.is_valid_number(number):
        raise _refuse(
            kind,
            "phone.not_valid",
            "is not a number in use in its country: check the digits and the country code",
        )
    refused = _REFUSED_TYPES.get(phonenumbers.number_type(number))
    if refused is not None:
        raise _refuse(kind, "phone.unsupported_type", f"{refused}; give another number")
    return Phone(
        number=phonenumbers.format_number(number, PhoneNumberFormat.E164),
        kind=kind,
    )


def _number_type(e164: str) -> int | None:
    """Return the ``phonenumbers`` type of a stored number, or None if it is not valid now."""
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return None
    if number.extension or not phonenumbers.is_valid_number(number):
        return None
    return int(phonenumbers.number_type(number))


def delivery_options(phones: Iterable[Phone]) -> tuple[DeliveryOption, ...]:
    """Return every way a code may reach these numbers, in their order (VF-2).

    Each number gives a text message option first when it was given as the
    cell phone and its type takes texts, then a voice call option. A number
    that no longer parses as valid (stored before a metadata update, say)
    gives no option; the same method to the same number is offered once.
    """
    options: list[DeliveryOption] = []
    seen: set[tuple[DeliveryMethod, str]] = set()
    for phone in phones:
        number_type = _number_type(phone.number)
        methods: list[DeliveryMethod] = []
        if phone.kind is PhoneKind.CELL and number_type in _SMS_TYPES:
            methods.append(DeliveryMethod.SMS)
        if number_type in _VOICE_TYPES:
            methods.append(DeliveryMethod.VOICE)
        for method in methods:
            if (method, phone.number) not in seen:
                seen.add((method, phone.number))
                options.append(
                    DeliveryOption(method=method, destination=phone.number, kind=phone.kind)
                )
    return tuple(options)
