"""The password policy: PW-1, PW-2, PW-3, PW-8 and the NIST profile of PW-10."""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securepractice import (
    CompromisedPasswordFile,
    InvalidInput,
    PasswordPolicy,
    PasswordRules,
    normalize_password,
)
from securepractice.policy.password import MAX_COMPOSITION_RATIO, CompromisedPasswords
from strategies import ANY_TEXT, DIGIT, LOWER, SPECIAL, UPPER

CLASS_CODES = {
    "lower": "password.no_lowercase",
    "upper": "password.no_uppercase",
    "digit": "password.no_digit",
    "special": "password.no_special",
}
CLASS_CHARS = {"lower": LOWER, "upper": UPPER, "digit": DIGIT, "special": SPECIAL}

portal = PasswordPolicy()


class ListOfCompromised:
    """A compromised-password source over a fixed set, for the NIST profile."""

    def __init__(self, *passwords: str) -> None:
        self.passwords = set(passwords)
        self.asked: list[str] = []

    def is_compromised(self, password: str) -> bool:
        self.asked.append(password)
        return password in self.passwords


@st.composite
def passwords_with(draw: st.DrawFn, classes: tuple[str, ...], min_size: int = 8) -> str:
    """A password holding at least one character of each named class and nothing else."""
    pool = st.one_of(*(CLASS_CHARS[c] for c in classes))
    required = [draw(CLASS_CHARS[c]) for c in classes]
    rest = draw(st.lists(pool, min_size=max(0, min_size - len(required)), max_size=20))
    chars = required + rest
    return "".join(draw(st.permutations(chars)))


# PW-1 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "short"),
    [("Aa1!aaa", True), ("Aa1!aaaa", False), ("Aa1!aaaaa", False)],
)
def test_pw_1_minimum_length_is_exact_at_the_boundary(password: str, short: bool) -> None:
    """PW-1: seven characters are too short, eight are enough."""
    assert ("password.too_short" in portal.check(password).codes) is short


def test_pw_1_length_is_counted_after_nfkc() -> None:
    """PW-1: "ﬃ" is one code point as typed but three characters after NFKC."""
    assert len(normalize_password("Aa1!\ufb03")) == 7
    assert portal.check("Aa1!\ufb03").codes == ("password.too_short",)
    assert len("Aa1!\ufb03a") == 6
    assert portal.check("Aa1!\ufb03a").ok


def test_pw_1_decomposed_accents_count_once() -> None:
    """PW-1: "e" + combining acute is one character, as "é" is."""
    assert portal.check("Cafe\u0301-12").codes == ("password.too_short",)
    assert portal.check("Cafe\u0301-123").ok


@pytest.mark.parametrize("length", [255, 256])
def test_pw_1_maximum_length_allows_the_limit(length: int) -> None:
    """PW-1: 256 characters are allowed."""
    assert portal.check("Aa1!" + "x" * (length - 4)).ok


def test_pw_1_one_character_over_the_maximum_is_refused() -> None:
    """PW-1: 257 characters are too long."""
    assert portal.check("Aa1!" + "x" * 253).codes == ("password.too_long",)


def test_pw_1_huge_input_is_refused_before_normalisation(monkeypatch: pytest.MonkeyPatch) -> None:
    """PW-1: a 10 MB string is refused without being normalised or hashed."""
    calls: list[int] = []
    real = unicodedata.normalize

    def spy(form: str, text: str) -> str:
        calls.append(len(text))
        return real(form, text)  # type: ignore[arg-type]

    monkeypatch.setattr(unicodedata, "normalize", spy)
    report = portal.check("A" * 10_000_000)
    assert report.codes == ("password.too_long",)
    assert calls == []


def test_pw_1_composition_ratio_bounds_every_code_point() -> None:
    """PW-1: no code point decomposes into more than the ratio the early refusal relies on."""
    longest = max(
        len(unicodedata.normalize("NFD", chr(c)))
        for c in range(sys.maxunicode + 1)
        if not 0xD800 <= c <= 0xDFFF
    )
    assert longest <= MAX_COMPOSITION_RATIO


def test_pw_1_composing_input_longer_than_the_maximum_may_still_fit() -> None:
    """PW-1: 300 typed code points that compose to 150 characters are within 256."""
    password = "Aa1!" + "e\u0301" * 146
    assert len(password) > 256
    assert portal.check(password).ok


# PW-2 ---------------------------------------------------------------------------------


@given(passwords_with(("lower", "upper", "digit", "special")))
def test_pw_2_any_password_with_all_four_classes_passes(password: str) -> None:
    """PW-2: every password of minimum length with all four classes passes PW-1 and PW-2."""
    assert portal.check(password).ok


@given(st.data(), st.sampled_from(sorted(CLASS_CODES)))
def test_pw_2_removing_one_class_fails_with_exactly_its_code(
    data: st.DataObject, missing: str
) -> None:
    """PW-2: a password missing one class fails with that class's code and no other."""
    kept = tuple(c for c in sorted(CLASS_CODES) if c != missing)
    password = data.draw(passwords_with(kept))
    assert portal.check(password).codes == (CLASS_CODES[missing],)


@pytest.mark.parametrize(
    ("password", "codes"),
    [
        ("ПАРОЛЬпароль1!", ()),  # Cyrillic letters have case
        ("ÉCOLEécole1 ", ()),  # a space is special
        ("Passwörd١٢!", ()),  # Arabic-Indic digits are digits (NFKC keeps them, they are Nd)
        ("Ｐａｓｓ１２３！", ()),  # full-width forms become ASCII under NFKC
        ("密码密码Aa1!", ()),  # caseless letters count towards no class, but hurt nothing
        ("密码密码密码1!", ("password.no_lowercase", "password.no_uppercase")),
        ("Password½", ()),  # NFKC turns ½ into "1⁄2": a digit and a special character
        ("Passwordⅻ!", ("password.no_digit",)),  # Roman numerals become letters
        ("Password€€", ("password.no_digit",)),
        ("ǅungla12", ("password.no_special",)),  # title case counts as upper
    ],
)
def test_pw_2_classes_are_unicode_aware(password: str, codes: tuple[str, ...]) -> None:
    """PW-2: the four classes as documented, beyond ASCII."""
    assert portal.check(password).codes == codes


def test_pw_2_combining_marks_are_not_special() -> None:
    """PW-2: a combining mark with no precomposed form modifies a letter; it is not special."""
    assert portal.check("Password1q\u0307").codes == ("password.no_special",)


@pytest.mark.parametrize(
    "password",
    [
        "Pass\x00word1!",
        "Pass\tword1!",
        "Pass\u202eword1!",
        "Pass\u200fword1!",
        "Pass\ud800word1!",
    ],
)
def test_pw_2_controls_bidi_marks_and_surrogates_are_refused(password: str) -> None:
    """PW-2: NUL, controls, bidirectional marks and lone surrogates are refused."""
    assert portal.check(password).codes == ("password.invalid_character",)


def test_pw_2_nist_profile_has_no_composition_rules() -> None:
    """PW-10: the NIST profile needs no classes."""
    nist = PasswordPolicy.nist(ListOfCompromised())
    assert nist.check("correct horse battery").ok


# PW-3 ---------------------------------------------------------------------------------


def test_pw_3_re_entry_must_match() -> None:
    """PW-3: a re-entry that differs is a violation; one that matches is not."""
    assert portal.check("Sunshine-2026", "Sunshine-2026").ok
    assert portal.check("Sunshine-2026", "sunshine-2026").codes == ("password.mismatch",)
    assert portal.check("Sunshine-2026", "Sunshine-2026 ").codes == ("password.mismatch",)


def test_pw_3_re_entry_is_compared_after_the_same_normalisation() -> None:
    """PW-3: NFC "Café" and NFD "Café" are the same password."""
    nfc = unicodedata.normalize("NFC", "Café-2026!")
    nfd = unicodedata.normalize("NFD", "Café-2026!")
    assert nfc != nfd
    assert portal.check(nfc, nfd).ok


def test_pw_3_non_text_re_entry_is_refused_clearly() -> None:
    with pytest.raises(InvalidInput) as caught:
        portal.check("Sunshine-2026", b"Sunshine-2026")  # type: ignore[arg-type]
    assert (caught.value.code, caught.value.field) == ("password.not_text", "confirmation")


# PW-8 ---------------------------------------------------------------------------------


def test_pw_8_every_violation_is_reported_at_once() -> None:
    """PW-8: a bad password breaks several rules; all are reported, each with code and message."""
    report = portal.check("abc", "abd")
    assert report.codes == (
        "password.too_short",
        "password.no_uppercase",
        "password.no_digit",
        "password.no_special",
        "password.mismatch",
    )
    assert not report
    assert all(v.message and v.message[0].isupper() for v in report.violations)
    assert all(v.code.startswith("password.") for v in report.violations)


@pytest.mark.parametrize("password", ["", " ", "        ", "\u3000" * 10])
def test_pw_8_empty_and_whitespace_passwords_are_violations_not_errors(password: str) -> None:
    """PW-8: empty or blank input is reported, not raised."""
    report = portal.check(password)
    assert not report.ok
    assert "password.no_lowercase" in report.codes


@pytest.mark.parametrize("value", [None, 12345678, b"Sunshine-2026", ["S"]])
def test_pw_8_non_text_is_a_clear_error(value: object) -> None:
    """PW-8: a value that is not text is a programming error with a stable code."""
    with pytest.raises(InvalidInput) as caught:
        portal.check(value)  # type: ignore[arg-type]
    assert caught.value.code == "password.not_text"
    assert caught.value.field == "password"


def test_pw_8_instructions_name_every_rule_of_the_profile() -> None:
    """PW-8: the instructions a form shows beside the fields follow the profile."""
    text = " ".join(portal.instructions)
    for needle in ("8", "256", "lower-case", "upper-case", "number", "special", "6", "90 days"):
        assert needle in text
    nist = " ".join(PasswordPolicy.nist(ListOfCompromised()).instructions)
    assert "15" in nist
    assert "breach" in nist
    assert "upper-case" not in nist
    assert "expires" not in nist
    no_history = PasswordPolicy(PasswordRules(history=0)).instructions
    assert not any("reuse" in line for line in no_history)


@given(ANY_TEXT)
def test_pw_8_check_never_raises_on_any_text(password: str) -> None:
    """PW-8: whatever text is typed, the check answers with a report."""
    report = portal.check(password, password)
    assert all(v.code.startswith("password.") for v in report.violations)
    assert "password.mismatch" not in report.codes


@given(ANY_TEXT)
def test_normalisation_is_idempotent(password: str) -> None:
    """Normalising twice is normalising once."""
    once = normalize_password(password)
    assert normalize_password(once) == once


# PW-10 --------------------------------------------------------------------------------


def test_pw_10_nist_profile_minimum_is_15() -> None:
    """PW-10: NIST SP 800-63B asks for 15 characters when the password is the only factor."""
    nist = PasswordPolicy.nist(ListOfCompromised())
    assert nist.check("a" * 14).codes == ("password.too_short",)
    assert nist.check("a" * 15).ok
    assert nist.rules.max_age is None


def test_pw_10_nist_profile_screens_compromised_passwords() -> None:
    """PW-10: a password on the compromised list is refused; it is given normalised."""
    source = ListOfCompromised("correct horse battery staple")
    nist = PasswordPolicy.nist(source)
    assert isinstance(source, CompromisedPasswords)
    assert nist.check("correct horse battery staple").codes == ("password.compromised",)
    assert nist.check("ｃorrect horse battery staple").codes == ("password.compromised",)
    assert source.asked[-1] == "correct horse battery staple"


def test_pw_10_compromised_check_is_skipped_when_other_rules_fail() -> None:
    """PW-10: a too-short password is not sent to the compromised-password source."""
    source = ListOfCompromised()
    PasswordPolicy.nist(source).check("short")
    assert source.asked == []


def test_pw_10_nist_profile_needs_a_source() -> None:
    """PW-10: building the NIST profile without a compromised-password source is an error."""
    with pytest.raises(InvalidInput) as caught:
        PasswordPolicy(PasswordRules.NIST)
    assert caught.value.code == "settings.no_compromised_source"


def test_pw_10_portal_profile_is_the_default() -> None:
    """PW-10: the portal's own rules are the default."""
    assert PasswordPolicy().rules == PasswordRules.PORTAL
    assert PasswordRules.PORTAL.require_classes
    assert PasswordRules.PORTAL.max_age is not None


def test_pw_10_compromised_file_reads_a_newline_separated_list(tmp_path: Path) -> None:
    """PW-10: the file adapter compares after NFKC and case folding, ignoring blank lines."""
    listing = tmp_path / "breached.txt"
    listing.write_text("password1234567\r\n\nCorrect Horse Battery Staple\nﬁsh and chips 1!\n")
    source = CompromisedPasswordFile(listing)
    assert len(source) == 3
    assert "3 entries" in repr(source)
    assert source.is_compromised("PASSWORD1234567")
    assert source.is_compromised("correct horse battery staple")
    assert source.is_compromised("fish and chips 1!")
    assert not source.is_compromised("password12345678")
    nist = PasswordPolicy.nist(source)
    assert nist.check("Correct Horse Battery Staple").codes == ("password.compromised",)


def test_pw_10_compromised_file_that_is_missing_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        CompromisedPasswordFile(tmp_path / "absent.txt")


def test_in_3_a_huge_confirmation_is_a_mismatch_before_any_normalising(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """IN-3: 20M characters of re-entry cost nothing: refused as a mismatch unread."""
    import unicodedata  # noqa: PLC0415 - the module whose work is counted

    seen: list[int] = []
    real = unicodedata.normalize

    def counting(form: str, text: str) -> str:
        seen.append(len(text))
        return real(form, text)  # type: ignore[arg-type]

    monkeypatch.setattr(unicodedata, "normalize", counting)
    report = PasswordPolicy().check("Sunshine-2026", confirmation="\ufdfa" * 20_000_000)
    assert report.codes == ("password.mismatch",)
    assert max(seen, default=0) < 1_000
