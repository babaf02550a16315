"""Usernames are email addresses, compared case-insensitively after trimming (ID-1)."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securepractice import InvalidInput
from securepractice.policy.identity import normalize_email
from strategies import ANY_TEXT

local_parts = st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9._+-]{0,20}[A-Za-z0-9])?", fullmatch=True)
domains = st.from_regex(r"[A-Za-z0-9]{1,10}\.(?:[A-Za-z]{2,6}\.)?[A-Za-z]{2,6}", fullmatch=True)
emails = st.builds(lambda a, b: f"{a}@{b}", local_parts, domains).filter(lambda e: ".." not in e)


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("dr.smith@example.com", "dr.smith@example.com"),
        ("  Dr.Smith@Example.COM \t", "dr.smith@example.com"),
        ("ＤＲ@ｅｘａｍｐｌｅ.com", "dr@example.com"),  # full-width forms, NFKC
        ("o'neil+billing@dental-care.co.uk", "o'neil+billing@dental-care.co.uk"),
        ("zoë@zahnärzte.de", "zoë@zahnärzte.de"),
        ("ZOE\u0308@EXAMPLE.COM", "zoë@example.com"),  # combining diaeresis composes
    ],
)
def test_id_1_emails_are_trimmed_and_normalised(typed: str, stored: str) -> None:
    """ID-1: the stored form is trimmed, NFKC and lower-cased in both parts."""
    assert normalize_email(typed) == stored


@given(emails)
def test_id_1_case_and_spaces_never_make_another_user(email: str) -> None:
    """ID-1: any email, in any case, with spaces around, has one normal form."""
    assert normalize_email(f"  {email.upper()} ") == normalize_email(email.lower())
    assert normalize_email(normalize_email(email)) == normalize_email(email)


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "dr.smith",
        "dr.smith@",
        "@example.com",
        "dr smith@example.com",
        "dr..smith@example.com",
        ".dr@example.com",
        "dr.@example.com",
        "dr@@example.com",
        "dr@example",
        "dr@example..com",
        "dr@example.com.",
        "dr@-example.com",
        "dr@example-.com",
        "dr@exa_mple.com",
        "dr@127.0.0.1",
        "dr@[127.0.0.1]",
        '"dr smith"@example.com',
        "dr(comment)@example.com",
        "dr\x00@example.com",
        "dr\n@example.com",
        "dr\u202e@example.com",
        "a" * 65 + "@example.com",
        "dr@" + "a" * 64 + ".com",
        "dr@" + ("a" * 60 + ".") * 5 + "com",
    ],
)
def test_id_1_malformed_emails_are_refused_clearly(typed: str) -> None:
    """ID-1: a malformed email is InvalidInput naming the field, with a stable code."""
    with pytest.raises(InvalidInput) as caught:
        normalize_email(typed)
    assert caught.value.code == "email.malformed"
    assert caught.value.field == "email"
    assert caught.value.message.startswith("Enter a valid email address")


@pytest.mark.parametrize("value", [None, 42, b"dr@example.com"])
def test_id_1_non_text_is_refused(value: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_email(value)  # type: ignore[arg-type]
    assert caught.value.code == "email.malformed"


@given(ANY_TEXT)
def test_id_1_any_text_is_normalised_or_refused_never_crashes(text: str) -> None:
    """ID-1: whatever is typed, the answer is a normal form or InvalidInput."""
    try:
        stored = normalize_email(text)
    except InvalidInput:
        return
    assert stored == stored.strip()
    assert "@" in stored
    assert normalize_email(stored) == stored


# IN-2: two spellings of one mailbox are one user; a look-alike is no second user.


@pytest.mark.parametrize(
    "typed",
    [
        "user@münchen.de",
        "user@MÜNCHEN.DE",
        "user@xn--mnchen-3ya.de",
        "USER@XN--MNCHEN-3YA.DE",
        "user@mu\u0308nchen.de",  # a combining diaeresis
        "user@ｍüｎｃｈｅｎ。de",  # full-width letters and an ideographic full stop
        " user@münchen.de ",
    ],
)
def test_in_2_the_domain_is_compared_in_its_idna_form(typed: str) -> None:
    """IN-2: every spelling of one IDNA domain gives one stored form, in Unicode."""
    assert normalize_email(typed) == "user@münchen.de"


def test_in_2_idna_2008_keeps_the_sharp_s_a_letter_of_its_own() -> None:
    """IN-2: under IDNA 2008 "faß.de" and "fass.de" are two domains (IDNA 2003 merged them)."""
    assert normalize_email("a@FASS.de") == "a@fass.de"
    assert normalize_email("a@faß.de") == normalize_email("a@xn--fa-hia.de") == "a@faß.de"


@pytest.mark.parametrize("mark", ["\ufeff", "\u200c", "\u200d", "\u2066", "\u061c", "\u200b"])
@pytest.mark.parametrize(
    "template",
    [
        "dr.smith@smile.exa{}mple",
        "dr.smith@{}smile.example",
        "dr.smith@smile.example{}",
        "dr.{}smith@smile.example",
        "{}dr.smith@smile.example",
    ],
)
def test_in_2_an_invisible_character_anywhere_is_refused_not_mapped_away(
    mark: str, template: str
) -> None:
    """IN-2 repro: U+FEFF, ZWNJ, U+2066 and U+061C made a second account for one mailbox."""
    with pytest.raises(InvalidInput) as caught:
        normalize_email(template.format(mark))
    assert caught.value.code == "email.malformed"


@pytest.mark.parametrize(
    "typed",
    [
        "a\ud800@example.com",
        "a@exa\ud800mple.com",
        "a@example.com\udcff",
        "\udfff",
        "a@exa\ue000mple.com",  # private use
        "a@exa\u0378mple.com",  # unassigned
        "a@example.com\u2028x",
        "a@exa\u00admple.com",  # a soft hyphen
    ],
)
def test_in_1_lone_surrogates_and_other_junk_are_invalid_input_not_unicode_errors(
    typed: str,
) -> None:
    """IN-1 repro: a lone surrogate raised UnicodeEncodeError from the IDNA codec."""
    with pytest.raises(InvalidInput) as caught:
        normalize_email(typed)
    assert caught.value.code == "email.malformed"


@pytest.mark.parametrize(
    "typed",
    [
        "dr.smith@smile.ex\u0430mple",  # a Cyrillic "a" among Latin letters
        "dr.smith@\u0455mile.example",  # a Cyrillic "s"
        "dr.smith@smile.e\u03c7ample",  # a Greek chi
        "a@\u0561pple.com",  # an Armenian letter
        "\u0430dmin@smile.example",  # the same, before the @
        "dr.\u0455mith@smile.example",
    ],
)
def test_in_2_a_label_mixing_look_alike_alphabets_is_refused(typed: str) -> None:
    """IN-2: a homograph of a Latin address is refused; each alphabet alone is accepted."""
    with pytest.raises(InvalidInput) as caught:
        normalize_email(typed)
    assert caught.value.code == "email.malformed"
    assert "alphabets that look alike" in caught.value.message


@pytest.mark.parametrize(
    "typed",
    ["иван@почта.рф", "γιώργος@παράδειγμα.ελ", "ivan.иванов@smile.example", "山田@例え.jp"],
)
def test_in_2_one_alphabet_per_label_is_accepted(typed: str) -> None:
    stored = normalize_email(typed)
    assert normalize_email(stored) == stored


@pytest.mark.parametrize(
    "domain",
    [
        "smile.test",
        "test",
        "printer.local",
        "localhost",
        "a.localhost",
        "db.internal",
        "x.invalid",
        "abc.onion",
        "x.alt",
        "1.168.192.in-addr.arpa",
        "router.home.arpa",
    ],
)
def test_in_2_special_use_domains_are_refused(domain: str) -> None:
    """IN-2: mail there would reach a machine on the portal's own network, or nothing."""
    with pytest.raises(InvalidInput) as caught:
        normalize_email(f"dr.smith@{domain}")
    assert caught.value.code == "email.malformed"


@pytest.mark.parametrize(
    "typed", ["a@example.com", "a@example.org", "a@smile.example", "a@mail.example.net"]
)
def test_in_2_documentation_domains_are_accepted(typed: str) -> None:
    """RFC 2606 domains are for examples and tests, and no mail is delivered there."""
    assert normalize_email(typed) == typed


def test_in_1_a_huge_email_is_refused_before_it_is_normalised() -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_email("a@" + "b" * 10_000_000 + ".example")
    assert "longer than 254" in caught.value.message


_LOOSE = st.text(
    st.one_of(
        st.sampled_from("aAzZ09.-_+@ äÜßöİı\u0301\u200c\u200d\ufeff\ud800。．＠ＡxnК"),
        st.characters(exclude_categories=()),
    ),
    max_size=30,
)
_SPLICED = st.builds(
    lambda local, junk, domain: f"{local}{junk}@{domain}",
    st.sampled_from(["dr.smith", "ZOË", "user", ""]),
    _LOOSE,
    st.sampled_from(["münchen.de", "xn--mnchen-3ya.de", "smile.example", "EXAMPLE.COM", "a.test"]),
)


@given(st.one_of(_LOOSE, _SPLICED, emails))
def test_in_2_normalize_email_raises_only_invalid_input_and_is_idempotent(typed: str) -> None:
    """IN-1, IN-2: for any text, one stored form that normalises to itself, or InvalidInput."""
    refused: InvalidInput | None = None
    try:
        stored = normalize_email(typed)
    except InvalidInput as error:
        refused = error
    if refused is not None:
        assert (refused.field, refused.code) == ("email", "email.malformed")
        return
    assert normalize_email(stored) == stored
    local = stored.rpartition("@")[0]
    assert local == local.lower()
    assert normalize_email(stored.translate(_ASCII_UPPER)) == stored


#: Upper-cases ASCII letters only ("ß".upper() is "SS": another mailbox under IDNA 2008).
_ASCII_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)


@pytest.mark.parametrize(
    "typed",
    [
        "Hunter2☃@example.com",
        "hunter2@ex_ample.com",
        "hunter2@xn--hunter2.com",
        "hunter2@hunter2",
        "hunter2@-hunter2.com",
        "hunter2@hunter2.test",
        "hunter2" * 40 + "@example.com",
        "hunter2\u202e@example.com",
    ],
)
def test_in_1_a_refusal_never_quotes_what_was_typed(typed: str) -> None:
    """AU-2: people type passwords into the email field; the message must not carry one."""
    with pytest.raises(InvalidInput) as caught:
        normalize_email(typed)
    assert "hunter" not in caught.value.message.lower()
    assert "☃" not in caught.value.message
