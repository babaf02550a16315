"""Usernames are email addresses, compared case-insensitively after trimming (ID-1)."""

from __future__ import annotations

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
