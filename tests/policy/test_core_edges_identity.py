"""ID-1 and IN-2 at their edges: exact lengths, the last label, the last @, what refusals say."""

from __future__ import annotations

import pytest

from plain_words import assert_plain_english
from securepractice import InvalidInput
from securepractice.policy.identity import MAX_EMAIL_LENGTH, MAX_LOCAL_LENGTH, normalize_email
from securepractice.policy.text import MAX_COMPOSITION_RATIO

#: A label of 35 letters whose IDNA ASCII form takes 42: five of them make a
#: domain whose Unicode spelling is short enough and whose ASCII one is not.
_LONG_LABEL = "münchen" * 5


def _refusal(email: object) -> str:
    with pytest.raises(InvalidInput) as refused:
        normalize_email(email)  # type: ignore[arg-type]
    assert (refused.value.code, refused.value.field) == ("email.malformed", "email")
    assert_plain_english(refused.value.message, sentence=True)
    assert refused.value.message.startswith("Enter a valid email address")
    return refused.value.message


@pytest.mark.parametrize(
    ("email", "named"),
    [
        (42, "text"),
        ("x" * 1_000_000, str(MAX_EMAIL_LENGTH)),
        ("dana.smile.example", "@"),
        ("@smile.example", str(MAX_LOCAL_LENGTH)),
        ("d" * (MAX_LOCAL_LENGTH + 1) + "@smile.example", str(MAX_LOCAL_LENGTH)),
        ("dana..smith@smile.example", "dots"),
        ("dana,smith@smile.example", "character"),
        ("dana@smile.test", "reserved"),
        ("dana@smile.internal", "reserved for a local network"),
        ("d\u0430na@smile.example", "alphabets"),
        ("dana@sm\u0456le.example", "alphabets"),
        ("dana\u200b@smile.example", "invisible"),
        ("a" * 60 + "@" + ".".join(["b" * 60] * 4) + ".example", str(MAX_EMAIL_LENGTH)),
    ],
)
def test_in_2_each_refusal_says_why_in_plain_words(email: object, named: str) -> None:
    """IN-2: every refusal is ``email.malformed`` with a sentence that names the rule broken."""
    assert named in _refusal(email)


def test_in_2_the_part_before_the_last_at_is_the_local_part() -> None:
    """IN-2: with two @, the local part holds one, and that is what the refusal names."""
    assert "before @" in _refusal("dana@home@smile.example")


def test_in_2_a_joiner_is_refused_as_invisible_even_between_letters() -> None:
    """IN-2: in an address, a zero width joiner is invisible wherever it stands."""
    for email in ("da\u200dna@smile.example", "dana@smi\u200dle.example"):
        assert "invisible" in _refusal(email)


def test_in_2_the_email_validator_reason_is_one_sentence_without_the_input() -> None:
    """IN-2, AU-2: a reason email-validator gives keeps its words but not what was typed."""
    for email, typed in (
        ("dana@Sunshine_2026.example", "_"),
        ("dana@xn--abc.example", "\x82"),
        ("dana@smile", "smile"),
    ):
        message = _refusal(email)
        assert typed not in message.partition("address")[2]
        assert not message.endswith("..")


@pytest.mark.parametrize("domain", ["corp.internal", "mail.corp.internal", "a.b.alt", "x.alt"])
def test_in_2_a_special_use_domain_is_refused_under_any_subdomain(domain: str) -> None:
    """IN-2: the top-level label decides, however many labels come before it.

    ``.internal`` and ``.alt`` are refused by the library's own list:
    email-validator refuses the older special-use names itself.
    """
    assert "reserved for a local network" in _refusal(f"dana@{domain}")


def test_in_2_labels_are_judged_for_mixed_alphabets_one_by_one() -> None:
    """IN-2: a Cyrillic label beside a Latin one is no mix; a mix within one label is."""
    assert normalize_email("dana@почта.example") == "dana@почта.example"
    assert normalize_email("dana@почта.smile.example") == "dana@почта.smile.example"


@pytest.mark.parametrize("latin", ["a", "z"])
def test_in_2_the_first_and_last_latin_letters_mix_with_cyrillic(latin: str) -> None:
    """IN-2: ``a`` and ``z`` are Latin letters like any other: beside Cyrillic they mix."""
    assert "alphabets" in _refusal(f"{latin}\u0436@smile.example")


def test_id_1_a_local_part_of_exactly_64_octets_is_an_address() -> None:
    """ID-1: RFC 5321's 64 octets are allowed; 65 are not."""
    local = "d" * MAX_LOCAL_LENGTH
    assert normalize_email(f"{local}@smile.example") == f"{local}@smile.example"
    _refusal(f"{local}d@smile.example")


def test_id_1_an_address_of_exactly_254_characters_is_an_address() -> None:
    """ID-1: 254 characters are allowed; one more is not."""
    domain = ".".join(["b" * 63, "c" * 63, "d" * 53, "example"])
    email = "a" * 64 + "@" + domain
    assert len(email) == MAX_EMAIL_LENGTH
    assert normalize_email(email) == email
    _refusal("a" + email)


def test_id_1_only_input_longer_than_the_bound_is_refused_unread() -> None:
    """ID-1: blanks around an address count toward the bound, up to it exactly."""
    email = "dana@smile.example"
    bound = MAX_EMAIL_LENGTH * MAX_COMPOSITION_RATIO
    padded = email + " " * (bound - len(email))
    assert normalize_email(padded) == email
    assert str(MAX_EMAIL_LENGTH) in _refusal(padded + " ")
    assert normalize_email("d" * 64 + "@" + "s" * 40 + ".example") == (
        "d" * 64 + "@" + "s" * 40 + ".example"
    )


def test_id_1_the_length_that_counts_is_the_whole_address_in_ascii() -> None:
    """ID-1: the local part counts toward the length of the address as it is sent."""
    domain = ".".join([_LONG_LABEL] * 5) + ".de"
    assert normalize_email(f"abc@{domain}") == f"abc@{domain}"
    assert "too long" in _refusal("a" * MAX_LOCAL_LENGTH + "@" + domain)
