"""PW-1..PW-5, PW-8, PW-10 and IN-3 at their edges: exact bounds, fields, messages people read."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from plain_words import assert_plain_english
from securepractice import HashParameters, InvalidInput, PasswordHasher
from securepractice.policy.compromised import CompromisedCheckFailed
from securepractice.policy.password import (
    CompromisedPasswordFile,
    PasswordPolicy,
    check_limit,
    normalize_password,
    password_expires_at,
    require_password_text,
    too_long_to_check,
)
from securepractice.settings import PasswordRules

GOOD = "Harbor-Light-77"
CHEAP = PasswordHasher(HashParameters(time_cost=1, memory_cost=8, parallelism=1))


class _Listed:
    """A compromised-password source that lists ``GOOD`` and nothing else."""

    def is_compromised(self, password: str) -> bool:
        return password == GOOD


class _Down:
    """A compromised-password source that cannot answer."""

    def is_compromised(self, _password: str) -> bool:
        raise CompromisedCheckFailed("the range API timed out")


@pytest.mark.parametrize("check", [require_password_text, normalize_password])
def test_in_3_a_password_that_is_not_text_is_refused_on_the_password_field(check: object) -> None:
    """IN-3: ``password.not_text`` names the field (``password`` unless told) and the type."""
    assert callable(check)
    with pytest.raises(InvalidInput) as refused:
        check(12345678)
    assert (refused.value.code, refused.value.field) == ("password.not_text", "password")
    assert_plain_english(refused.value.message, sentence=False, names=("int",))
    with pytest.raises(InvalidInput) as named:
        check(None, field="current_password")
    assert named.value.field == "current_password"


def test_in_3_a_password_of_exactly_the_check_limit_is_checked() -> None:
    """IN-3: only input longer than `check_limit` is refused unread; the limit itself is read."""
    rules = PasswordRules.PORTAL
    assert not too_long_to_check("x" * check_limit(rules), rules)
    assert too_long_to_check("x" * (check_limit(rules) + 1), rules)


def test_pw_1_too_long_says_the_most_characters_allowed() -> None:
    """PW-1: the refusal of a long password, read or unread, says the most allowed."""
    rules = PasswordRules.PORTAL
    for length in (rules.max_length + 1, check_limit(rules) + 1):
        report = PasswordPolicy().check("Aa1!" + "x" * length)
        too_long = [v for v in report.violations if v.code == "password.too_long"]
        assert len(too_long) == 1
        assert_plain_english(too_long[0].message, sentence=True, names=(str(rules.max_length),))


def test_pw_2_a_title_case_letter_counts_as_upper_case() -> None:
    """PW-2: ``ᾈ`` (title case, ``Lt``, which NFKC keeps) is an upper-case letter."""
    assert PasswordPolicy().check("\u1f88thens-harbor-42").ok
    assert PasswordPolicy().check("\u1f80thens-harbor-42").codes == ("password.no_uppercase",)


def test_pw_3_a_mismatch_is_one_sentence() -> None:
    """PW-3: the mismatch is reported as a sentence a person reads."""
    report = PasswordPolicy().check(GOOD, GOOD + "!")
    assert report.codes == ("password.mismatch",)
    assert_plain_english(report.violations[0].message, sentence=True)


def test_in_1_a_password_with_a_lone_surrogate_is_refused_not_crashed() -> None:
    """IN-1: a surrogate in the password and its re-entry is a refused character, not an error."""
    password = "Harbor-Light-77\ud800"
    report = PasswordPolicy().check(password, password)
    assert report.codes == ("password.invalid_character",)
    assert_plain_english(report.violations[0].message, sentence=True)
    assert PasswordPolicy().check(password, "Harbor-Light-77\udfff").codes == (
        "password.invalid_character",
        "password.mismatch",
    )


def test_pw_10_the_nist_profile_without_a_source_names_what_to_give() -> None:
    """PW-10: building the NIST profile without a source says which argument is missing."""
    with pytest.raises(InvalidInput) as refused:
        PasswordPolicy(PasswordRules.NIST)
    assert (refused.value.code, refused.value.field) == (
        "settings.no_compromised_source",
        "compromised",
    )
    assert_plain_english(
        refused.value.message,
        sentence=False,
        names=(PasswordRules.NIST.name, "CompromisedPasswords", "Portal(compromised=...)"),
    )


def test_pw_10_a_listed_password_and_an_unanswered_check_are_sentences() -> None:
    """PW-10, RC-3: a listed password and a check the source could not make, as people read them."""
    listed = PasswordPolicy(PasswordRules.NIST, _Listed()).check(GOOD)
    assert listed.codes == ("password.compromised",)
    assert_plain_english(listed.violations[0].message, sentence=True)
    down = PasswordPolicy(PasswordRules.NIST, _Down()).check(GOOD)
    assert down.codes == ("password.check_unavailable",)
    assert_plain_english(down.violations[0].message, sentence=True)


def test_pw_4_history_needs_the_hasher_and_says_so() -> None:
    """PW-4: a history with no hasher is a programming error naming the ``hasher`` argument."""
    with pytest.raises(InvalidInput) as refused:
        PasswordPolicy().check(GOOD, history=[CHEAP.hash("Older-Password-1")])
    assert (refused.value.code, refused.value.field) == (
        "password.history_needs_hasher",
        "hasher",
    )
    assert_plain_english(refused.value.message, sentence=False, names=("PasswordHasher",))


def test_pw_4_a_reused_password_says_how_many_are_remembered() -> None:
    """PW-4: the refusal of a reused password says how many earlier passwords count."""
    report = PasswordPolicy().check(GOOD, history=[CHEAP.hash(GOOD)], hasher=CHEAP)
    assert report.codes == ("password.reused",)
    assert_plain_english(
        report.violations[0].message,
        sentence=True,
        names=(str(PasswordRules.PORTAL.history),),
    )


def test_pw_5_a_naive_time_of_setting_is_refused_naming_it() -> None:
    """PW-5: the time a password was set must be aware; the refusal names ``set_at``."""
    with pytest.raises(InvalidInput) as refused:
        password_expires_at(datetime(2026, 1, 1), PasswordRules.PORTAL)  # noqa: DTZ001
    assert (refused.value.code, refused.value.field) == ("time.naive", "set_at")
    assert "set_at" in refused.value.message
    aware = datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-5)))
    max_age = PasswordRules.PORTAL.max_age
    assert max_age is not None
    assert password_expires_at(aware, PasswordRules.PORTAL) == (
        datetime(2026, 1, 1, 5, tzinfo=timezone.utc) + max_age
    )


def test_pw_10_a_compromised_list_in_another_encoding_is_read_not_refused(tmp_path: Path) -> None:
    """PW-10: a list file that is not all UTF-8 is read; its UTF-8 entries still match."""
    listed = tmp_path / "exposed.txt"
    listed.write_bytes(
        "caf\xe9-latin-1\np\u00e4ssword\n".encode("latin-1") + "p\u00e4sswort\n".encode()
    )
    source = CompromisedPasswordFile(listed)
    assert len(source) == 3
    assert source.is_compromised("P\u00e4sswort")
    assert not source.is_compromised("caf\u00e9-latin-1")


def test_pw_10_list_entries_keep_every_character_but_the_line_break(tmp_path: Path) -> None:
    """PW-10: an entry keeps its spaces and any letter it ends with; only CR and LF go."""
    listed = tmp_path / "exposed.txt"
    listed.write_text("hunter2 \r\nSECRETX\n\n\r\nX\n   \n", encoding="utf-8")
    source = CompromisedPasswordFile(listed)
    assert len(source) == 4
    assert source.is_compromised("hunter2 ")
    assert not source.is_compromised("hunter2")
    assert source.is_compromised("secretx")
    assert source.is_compromised("x")
    assert source.is_compromised("   ")
