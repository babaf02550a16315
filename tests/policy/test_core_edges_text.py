"""IN-1 at its edges: exact length bounds, labels in messages, and what each refusal names.

Written against the mutants `nox -s mutate` found alive: each test pins a
boundary or a part of an answer that no other test looked at.
"""

from __future__ import annotations

import pytest

from plain_words import assert_plain_english
from securepractice import InvalidInput
from securepractice.policy import text
from securepractice.policy.text import (
    MAX_ADDRESS_LINES,
    MAX_COMPOSITION_RATIO,
    MAX_ID_LENGTH,
    CharacterClass,
    refused_characters,
)


def test_in_1_a_kept_joiner_does_not_end_the_search_for_refused_characters() -> None:
    """IN-1: a joiner between two letters is kept, and what follows it is still checked."""
    assert refused_characters("a\u200db\x00") == (CharacterClass.CONTROL,)
    assert refused_characters("a\u200cb\u202ec") == (CharacterClass.BIDI_CONTROL,)
    assert refused_characters("ab\x00") == (CharacterClass.CONTROL,)


@pytest.mark.parametrize(
    ("check", "field", "named"),
    [
        (lambda v: text.require_text(v, field="first_name"), "first_name", "first name"),
        (lambda v: text.require_text(v, field="f", label="given name"), "f", "given name"),
        (lambda v: text.line(v, field="f", max_length=9, label="given name"), "f", "given name"),
        (lambda v: text.name(v, field="f", label="given name"), "f", "given name"),
        (lambda v: text.lines(v, field="f", label="postal address"), "f", "postal address"),
        (lambda v: text.identifier(v, field="user_id"), "user_id", "user id"),
        (text.practice_name, "name", "practice's name"),
    ],
)
def test_in_1_text_that_is_not_a_string_is_refused_naming_the_field_and_the_type(
    check: object, field: str, named: str
) -> None:
    """IN-1: ``text.not_text`` names the field (or its label) and the type given."""
    assert callable(check)
    with pytest.raises(InvalidInput) as refused:
        check(42)
    assert (refused.value.code, refused.value.field) == ("text.not_text", field)
    assert_plain_english(refused.value.message, sentence=True)
    assert named in refused.value.message
    assert "int" in refused.value.message


def _too_long(call: object) -> InvalidInput:
    assert callable(call)
    with pytest.raises(InvalidInput) as refused:
        call()
    assert refused.value.code == "text.too_long"
    assert_plain_english(refused.value.message, sentence=True)
    return refused.value


@pytest.mark.parametrize("length", [11, 40, 41, 1_000_000])
def test_in_1_too_long_names_the_field_its_label_and_the_limit(length: int) -> None:
    """IN-1: whether caught before normalising or after trimming, the refusal says the limit."""
    refused = _too_long(lambda: text.line("x" * length, field="first_name", max_length=10))
    assert refused.field == "first_name"
    assert "first name" in refused.message
    assert "10" in refused.message
    labelled = _too_long(lambda: text.line("x" * length, field="f", max_length=10, label="nick"))
    assert "nick" in labelled.message


def test_in_1_text_of_exactly_the_bound_is_checked_character_by_character() -> None:
    """IN-1: only text longer than the limit times the composition ratio skips the checks."""
    bound = 10 * MAX_COMPOSITION_RATIO
    with pytest.raises(InvalidInput) as refused:
        text.line("\x00" * bound, field="f", max_length=10)
    assert refused.value.code == "text.control_character"
    with pytest.raises(InvalidInput) as too_long:
        text.line("\x00" * (bound + 1), field="f", max_length=10)
    assert too_long.value.code == "text.too_long"


def test_in_1_a_line_is_optional_unless_required() -> None:
    """IN-1: a blank optional line is the empty string; a required one is ``text.empty``."""
    assert text.line("  ", field="f", max_length=10) == ""
    with pytest.raises(InvalidInput) as refused:
        text.line("  ", field="nick", max_length=10, required=True)
    assert (refused.value.code, refused.value.field) == ("text.empty", "nick")
    assert_plain_english(refused.value.message, sentence=True, names=())
    assert "nick" in refused.value.message


def test_in_1_an_address_of_exactly_the_most_lines_is_kept() -> None:
    """IN-1: six lines are an address; seven are ``text.too_many_lines``, naming the limit."""
    six = "\n".join("abcdef"[:MAX_ADDRESS_LINES])
    assert text.lines(six, field="address") == six
    with pytest.raises(InvalidInput) as refused:
        text.lines(six + "\ng", field="address", label="postal address")
    assert (refused.value.code, refused.value.field) == ("text.too_many_lines", "address")
    assert_plain_english(refused.value.message, sentence=True)
    assert "postal address" in refused.value.message
    assert str(MAX_ADDRESS_LINES) in refused.value.message


def test_in_1_a_long_address_names_its_field_and_label() -> None:
    """IN-1: an address longer than its limit after trimming names the field and the label."""
    refused = _too_long(lambda: text.lines("x" * 501, field="address", label="postal address"))
    assert refused.field == "address"
    assert "postal address" in refused.message
    assert "500" in refused.message


def test_in_1_a_required_address_may_not_be_blank_lines() -> None:
    """IN-1: an address of blank lines only is empty, and refused when required."""
    assert text.lines(" \n \r\n", field="address") == ""
    with pytest.raises(InvalidInput) as refused:
        text.lines(" \n \r\n", field="address", required=True)
    assert (refused.value.code, refused.value.field) == ("text.empty", "address")


def test_in_1_an_id_of_exactly_the_longest_length_is_kept() -> None:
    """IN-1: an id of `MAX_ID_LENGTH` characters is an id; one more is too long."""
    longest = "i" * MAX_ID_LENGTH
    assert text.identifier(longest, field="user_id") == longest
    refused = _too_long(lambda: text.identifier(longest + "i", field="user_id"))
    assert refused.field == "user_id"
    assert "user id" in refused.message
    assert str(MAX_ID_LENGTH) in refused.message


def test_in_1_an_id_with_a_refused_character_names_the_field() -> None:
    """IN-1: an id holding a joiner, even between letters, is refused naming the field."""
    with pytest.raises(InvalidInput) as refused:
        text.identifier("ab\u200dcd", field="user_id")
    assert (refused.value.code, refused.value.field) == ("text.invisible_character", "user_id")
    assert_plain_english(refused.value.message, sentence=True)
    assert "user id" in refused.value.message
