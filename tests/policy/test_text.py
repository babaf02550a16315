"""IN-1: one check for every text the library takes, each refused class with its stable code."""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Callable

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from securepractice import InvalidInput
from securepractice.policy import text
from securepractice.policy.attachments import Attachment, AttachmentPolicy
from securepractice.policy.password import PasswordPolicy
from securepractice.policy.text import CharacterClass, refused_characters
from strategies import ANY_TEXT

#: One or more characters of each refused class, and the class's code.
REFUSED = [
    ("\ud800", "text.surrogate"),
    ("\udfff", "text.surrogate"),
    ("\x00", "text.control_character"),
    ("\t", "text.control_character"),
    ("\n", "text.control_character"),
    ("\r", "text.control_character"),
    ("\x1b", "text.control_character"),
    ("\x7f", "text.control_character"),
    ("\x85", "text.control_character"),
    ("\u2028", "text.line_separator"),
    ("\u2029", "text.line_separator"),
    ("\u202a", "text.bidi_control"),
    ("\u202e", "text.bidi_control"),
    ("\u2066", "text.bidi_control"),
    ("\u2069", "text.bidi_control"),
    ("\u200e", "text.bidi_control"),
    ("\u200f", "text.bidi_control"),
    ("\u061c", "text.bidi_control"),
    ("\u200b", "text.invisible_character"),
    ("\u2060", "text.invisible_character"),
    ("\u2064", "text.invisible_character"),
    ("\ufeff", "text.invisible_character"),
    ("\u00ad", "text.invisible_character"),
    ("\u180e", "text.invisible_character"),
    ("\U000e0041", "text.invisible_character"),
    ("\u3164", "text.invisible_character"),
    ("\u115f", "text.invisible_character"),
    ("\ue000", "text.private_use"),
    ("\uf8ff", "text.private_use"),
    ("\U000f0000", "text.private_use"),
    ("\u0378", "text.unassigned"),
    ("\uffff", "text.unassigned"),
    ("\U0010ffff", "text.unassigned"),
]


#: Each helper of the text family, checking a field named "f".
CHECKS: dict[str, Callable[[object], str]] = {
    "line": lambda v: text.line(v, field="f", max_length=40),
    "name": lambda v: text.name(v, field="f", required=False),
    "lines": lambda v: text.lines(v, field="f", max_length=60, max_lines=3),
    "identifier": lambda v: text.identifier(v, field="f"),
}


@pytest.mark.parametrize(("char", "code"), REFUSED)
@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_in_1_each_refused_class_has_its_own_code_and_names_the_field(
    char: str, code: str, where: str
) -> None:
    """IN-1: anywhere in the text, even where trimming would drop it, a refused character is."""
    value = {"start": f"{char}Dana", "middle": f"Da{char}na", "end": f"Dana{char}"}[where]
    with pytest.raises(InvalidInput) as caught:
        text.name(value, field="first_name")
    assert (caught.value.field, caught.value.code) == ("first_name", code)
    assert caught.value.message.startswith("The first name holds ")


def _code(check: Callable[[], object]) -> str:
    with pytest.raises(InvalidInput) as caught:
        check()
    return caught.value.code


@pytest.mark.parametrize(("char", "code"), REFUSED)
def test_in_1_every_helper_refuses_the_same_characters(char: str, code: str) -> None:
    """IN-1: one rule for one line, several lines (which take line breaks) and ids."""
    assert _code(lambda: text.line(f"a{char}b", field="f", max_length=50)) == code
    assert _code(lambda: text.identifier(f"a{char}b", field="f")) == code
    if char not in "\n\r":
        assert _code(lambda: text.lines(f"a{char}b", field="f")) == code


def test_in_1_classes_are_found_in_order_each_once() -> None:
    assert refused_characters("a\u202eb\x00c\u202e\ud800") == (
        CharacterClass.BIDI_CONTROL,
        CharacterClass.CONTROL,
        CharacterClass.SURROGATE,
    )
    assert refused_characters("Zoë Ōtsuka-Nguyễn 山田 Ünal O'Brien") == ()
    assert refused_characters("a\nb", newlines=True) == ()
    assert refused_characters("a\nb") == (CharacterClass.CONTROL,)


@pytest.mark.parametrize(
    "value",
    [
        "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # a family: an emoji ZWJ sequence
        "\U0001f3f3\ufe0f\u200d\U0001f308",  # a rainbow flag: a variation selector, then ZWJ
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian: ZWNJ inside a word
        "\u0915\u094d\u200d\u0937",  # Devanagari: ZWJ after a virama
    ],
)
def test_in_1_a_joiner_between_two_visible_characters_is_kept(value: str) -> None:
    """A zero width joiner or non-joiner shapes the letters beside it: kept there, not elsewhere."""
    assert text.name(value, field="first_name") == value
    assert refused_characters(value, joiners=False) == (CharacterClass.INVISIBLE,)


@pytest.mark.parametrize(
    "value",
    ["\u200dDana", "Dana\u200c", "Da\u200d\u200dna", "Da \u200dna", "Da\u200d na", "\u200d"],
)
def test_in_1_a_joiner_at_an_edge_beside_a_space_or_another_joiner_is_refused(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        text.name(value, field="first_name")
    assert caught.value.code == "text.invisible_character"


@pytest.mark.parametrize(
    ("given_value", "stored"),
    [
        ("  Dana \u3000", "Dana"),
        ("Zoe\u0308", "Zoë"),  # NFC composes
        ("\u212bngstr\u00f6m", "\u00c5ngstr\u00f6m"),  # the Angstrom sign is canonically Å
        ("\uff24\uff41\uff4e\uff41", "\uff24\uff41\uff4e\uff41"),  # NFC keeps full-width forms
        ("Mary\u00a0Ann", "Mary\u00a0Ann"),  # a no-break space inside is a space
    ],
)
def test_in_1_a_line_is_trimmed_and_in_nfc(given_value: str, stored: str) -> None:
    assert text.line(given_value, field="f", max_length=50) == stored


@pytest.mark.parametrize("value", [None, 7, b"Dana", ["Dana"], 1.5])
@pytest.mark.parametrize("kind", sorted(CHECKS))
def test_in_1_non_text_is_refused_naming_the_field(kind: str, value: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        CHECKS[kind](value)
    assert (caught.value.field, caught.value.code) == ("f", "text.not_text")
    with pytest.raises(InvalidInput) as required:
        text.require_text(value, field="last_name")
    assert (required.value.field, required.value.code) == ("last_name", "text.not_text")


def test_in_1_blank_is_refused_only_when_required() -> None:
    assert text.name(" \t".strip(), field="last_name", required=False) == ""
    assert text.name("   ", field="last_name", required=False) == ""
    with pytest.raises(InvalidInput) as caught:
        text.name("   ", field="first_name")
    assert (caught.value.code, caught.value.message) == ("text.empty", "Enter the first name.")
    with pytest.raises(InvalidInput) as practice:
        text.practice_name(" ")
    assert (practice.value.field, practice.value.message) == ("name", "Enter the practice's name.")


def test_in_1_length_counts_after_trimming_and_normalising() -> None:
    assert text.name(" " + "e\u0301" * text.MAX_NAME_LENGTH + " ", field="f") == (
        "\u00e9" * text.MAX_NAME_LENGTH
    )
    with pytest.raises(InvalidInput) as caught:
        text.name("x" * (text.MAX_NAME_LENGTH + 1), field="f")
    assert caught.value.code == "text.too_long"
    assert text.practice_name("P" * text.MAX_PRACTICE_NAME_LENGTH) == "P" * 200


def test_in_1_a_huge_string_is_refused_before_it_is_normalised_or_scanned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """IN-1: a megabyte name costs a length check, nothing more."""

    class Untouchable:
        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"a huge string reached unicodedata.{name}")

    monkeypatch.setattr(text, "unicodedata", Untouchable())
    for value in ("x" * 1_000_000, "\u202e" * 1_000_000):
        for check in CHECKS.values():
            with pytest.raises(InvalidInput) as caught:
                check(value)
            assert caught.value.code == "text.too_long"


def test_in_1_lines_join_any_line_break_convention_trim_and_drop_blank_lines() -> None:
    given_value = " 1 Main St \r\n\r\n  Suite 5\rSpringfield, IL 62701 \n"
    assert text.lines(given_value, field="address") == "1 Main St\nSuite 5\nSpringfield, IL 62701"
    assert text.lines("", field="address") == ""
    with pytest.raises(InvalidInput) as caught:
        text.lines("\n".join("line" for _ in range(text.MAX_ADDRESS_LINES + 1)), field="address")
    assert (caught.value.field, caught.value.code) == ("address", "text.too_many_lines")
    with pytest.raises(InvalidInput) as separator:
        text.lines("1 Main St\u2028Suite 5", field="address")
    assert separator.value.code == "text.line_separator"
    with pytest.raises(InvalidInput) as single:
        text.line("1 Main St\nSuite 5", field="address", max_length=100)
    assert single.value.code == "text.control_character"


def test_in_1_an_id_is_kept_exactly() -> None:
    assert text.identifier(" Practice-A ", field="practice_id") == " Practice-A "
    assert text.identifier("", field="user_id") == ""
    with pytest.raises(InvalidInput) as caught:
        text.identifier("u" * (text.MAX_ID_LENGTH + 1), field="user_id")
    assert caught.value.code == "text.too_long"
    with pytest.raises(InvalidInput) as joined:
        text.identifier("a\u200db", field="user_id")
    assert joined.value.code == "text.invisible_character"


TEXTS = st.one_of(
    ANY_TEXT,
    st.text(st.sampled_from("ab \n\r\t\u200c\u200d\u0301\ud800\u202e\ufeff\u3000e"), max_size=20),
)


@pytest.mark.parametrize("kind", sorted(CHECKS))
@given(value=TEXTS)
@example(value="\u200d")
@example(value="a\u200d\u0301")
@example(value=" \u0301a")
def test_in_1_any_text_is_a_clean_value_or_invalid_input_and_checking_twice_changes_nothing(
    kind: str, value: str
) -> None:
    """IN-1: for all text, a value with no refused character, or InvalidInput; idempotent."""
    check = CHECKS[kind]
    refused: InvalidInput | None = None
    try:
        stored = check(value)
    except InvalidInput as error:
        refused = error
    if refused is not None:
        assert refused.field == "f"
        assert refused.code.startswith("text.")
        return
    assert refused_characters(stored, newlines=kind == "lines") == ()
    assert check(stored) == stored
    if kind != "identifier":
        assert stored == stored.strip()
        assert unicodedata.is_normalized("NFC", stored)


def test_in_1_nfc_makes_no_refused_character_from_text_that_had_none() -> None:
    """Characters are checked before NFC: it must not make a refused one from accepted ones."""
    made = [
        f"U+{point:04X}"
        for point in range(sys.maxunicode + 1)
        if not 0xD800 <= point <= 0xDFFF
        and not unicodedata.is_normalized("NFC", char := chr(point))
        and text.character_class(char) is None
        and refused_characters(unicodedata.normalize("NFC", char))
    ]
    assert made == []


# The password policy and the attachment names share the classification.


@pytest.mark.parametrize(
    "char", ["\x00", "\u2028", "\u202e", "\u200b", "\ufeff", "\u00ad", "\ud800", "\u3164"]
)
def test_in_1_passwords_refuse_the_same_characters(char: str) -> None:
    assert PasswordPolicy().check(f"Sun{char}shine-2026").codes == ("password.invalid_character",)


@pytest.mark.parametrize(
    "password",
    [
        "Sunshine-2026\uf8ff",  # private use: a Mac types the Apple logo
        "Sunshine-2026\U0001f468\u200d\U0001f469",  # an emoji sequence
        "Sunshine-2026\u0378",  # unassigned today, maybe a new emoji tomorrow
    ],
)
def test_in_1_passwords_keep_what_a_keyboard_types(password: str) -> None:
    """Passwords are not names: private-use and unassigned code points are typed, so kept."""
    assert PasswordPolicy().check(password).ok


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("scan\u200b.pdf", "attachment.name_invisible_character"),
        ("scan\ufeff.pdf", "attachment.name_invisible_character"),
        ("scan.pdf\u200d", "attachment.name_invisible_character"),
        ("scan\u2028.pdf", "attachment.name_control_character"),
        ("scan\ue000.pdf", "attachment.name_invalid_unicode"),
        ("scan\u0378.pdf", "attachment.name_invalid_unicode"),
        ("scan\udcff.pdf", "attachment.name_invalid_unicode"),
        ("invoice\u202efdp.exe", "attachment.name_bidi_control"),
    ],
)
def test_in_1_attachment_names_refuse_what_names_refuse(name: str, code: str) -> None:
    """IN-1: the file names of AT-4 refuse the characters every text refuses, with their codes."""
    report = AttachmentPolicy().check([Attachment(name=name, content=b"%PDF-1.7\n")])
    assert code in report.codes


def test_in_1_a_huge_attachment_name_is_judged_on_its_first_characters_only() -> None:
    name = "\u202e" * 1_000_000 + ".pdf"
    report = AttachmentPolicy().check([Attachment(name=name, content=b"%PDF-1.7\n")])
    assert {"attachment.name_too_long", "attachment.name_bidi_control"} <= set(report.codes)
