"""The k-anonymity range source of known-compromised passwords, and the policy over it.

PW-10, RC-3. The range API is played by a fake ``fetch`` that answers from
a list of SHA-1 hashes, as the Pwned Passwords API does: the first five hex
characters in, ``SUFFIX:COUNT`` lines out.
"""

from __future__ import annotations

import hashlib
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securepractice import (
    CompromisedCheckFailed,
    CompromisedPasswordRange,
    CompromisedPasswords,
    PasswordPolicy,
    SettingsError,
)
from strategies import ANY_TEXT

#: The Pwned Passwords documentation's own example: SHA-1("password").
DOCUMENTED_PREFIX = "5BAA6"
DOCUMENTED_SUFFIX = "1E4C9B93F3F0682250B6CF8331B7EE68FD8"

LISTED = "correct horse battery staple"
UNLISTED = "a long walk to the harbour light"


def sha1(password: str) -> str:
    """The upper-case hex SHA-1 of a password's UTF-8, as the range API indexes it."""
    return hashlib.sha1(password.encode("utf-8"), usedforsecurity=False).hexdigest().upper()


class RangeApi:
    """A range API over a list of passwords; it records every prefix it was asked for."""

    def __init__(self, *listed: str, padding: tuple[str, ...] = ()) -> None:
        self.hashes = {sha1(p): 7 for p in listed} | {sha1(p): 0 for p in padding}
        self.asked: list[str] = []

    def __call__(self, prefix: str) -> str:
        self.asked.append(prefix)
        return "\r\n".join(
            f"{digest[5:]}:{count}"
            for digest, count in sorted(self.hashes.items())
            if digest.startswith(prefix)
        )


def answering(body: object) -> CompromisedPasswordRange:
    """A source whose API answers ``body`` to every prefix."""
    return CompromisedPasswordRange(lambda _prefix: body)  # type: ignore[arg-type]


def test_pw_10_the_documented_example_is_asked_by_its_first_five_characters() -> None:
    """PW-10: SHA-1("password") is asked as 5BAA6 and found by its 35-character suffix."""
    asked: list[str] = []

    def fetch(prefix: str) -> str:
        asked.append(prefix)
        return f"0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n{DOCUMENTED_SUFFIX}:9545824\r\n"

    source = CompromisedPasswordRange(fetch)
    assert isinstance(source, CompromisedPasswords)
    assert source.is_compromised("password")
    assert asked == [DOCUMENTED_PREFIX]


def test_rc_3_only_five_characters_of_the_hash_leave_the_portal() -> None:
    """RC-3: the API sees the first five hex characters of the SHA-1, never more."""
    api = RangeApi(LISTED)
    CompromisedPasswordRange(api).is_compromised(UNLISTED)
    assert api.asked == [sha1(UNLISTED)[:5]]
    assert all(len(prefix) == 5 for prefix in api.asked)


@pytest.mark.parametrize(
    ("password", "expected"),
    [(LISTED, True), (UNLISTED, False), ("padding only", False)],
)
def test_rc_3_a_listed_password_is_found_and_padding_is_ignored(
    password: str, expected: bool
) -> None:
    """RC-3: a suffix with a count above 0 is listed; a padding line (count 0) is not."""
    api = RangeApi(LISTED, padding=("padding only",))
    assert CompromisedPasswordRange(api).is_compromised(password) is expected


@pytest.mark.parametrize(
    "line",
    [
        "{suffix}:3",
        "{lower}:3",
        "  {suffix}:3  ",
        "{suffix}:3\r",
    ],
)
def test_rc_3_lines_are_read_whatever_their_case_and_spacing(line: str) -> None:
    """RC-3: hex in either case, surrounding spaces and CRLF endings are all one range."""
    suffix = sha1(LISTED)[5:]
    body = "\n\n" + line.format(suffix=suffix, lower=suffix.lower()) + "\n"
    assert answering(body).is_compromised(LISTED)


@pytest.mark.parametrize(
    "body",
    [
        "<html>Service Unavailable</html>",
        "{suffix}",
        "{suffix}:",
        "{suffix}:-1",
        "{suffix}:1.5",
        "{suffix}:12345678901234567890123",
        "{suffix}0:3",
        "{short}:3",
        "{suffix};3",
        "{suffix}:3:4",
        "ZZ" + "0" * 33 + ":3",
        "{suffix}:３",
    ],
)
def test_rc_3_a_garbled_answer_is_a_clear_error(body: str) -> None:
    """RC-3: any line that is not SUFFIX:COUNT is ``compromised.bad_response``, never a crash."""
    suffix = sha1(LISTED)[5:]
    good = f"{sha1('another')[5:]}:2\n"
    source = answering(good + body.format(suffix=suffix, short=suffix[:-1]))
    with pytest.raises(CompromisedCheckFailed) as caught:
        source.is_compromised(LISTED)
    assert caught.value.code == "compromised.bad_response"
    assert "line 2" in caught.value.message
    assert suffix not in str(caught.value)


@pytest.mark.parametrize("body", [b"0018A45C4D1DEF81644B54AB7F969B88D65:1", None, 42])
def test_rc_3_an_answer_that_is_not_text_is_a_clear_error(body: object) -> None:
    """RC-3: the application's call must give the body as text; bytes or None are refused."""
    with pytest.raises(CompromisedCheckFailed) as caught:
        answering(body).is_compromised(LISTED)
    assert caught.value.code == "compromised.bad_response"
    assert "text" in caught.value.message


@pytest.mark.parametrize("failure", [TimeoutError("timed out"), OSError(111), RuntimeError("503")])
def test_rc_3_a_failed_call_is_a_clear_error_that_keeps_its_cause(failure: Exception) -> None:
    """RC-3: whatever the application's client raises becomes ``compromised.unavailable``."""

    def fetch(_prefix: str) -> str:
        raise failure

    with pytest.raises(CompromisedCheckFailed) as caught:
        CompromisedPasswordRange(fetch).is_compromised(LISTED)
    assert caught.value.code == "compromised.unavailable"
    assert caught.value.__cause__ is failure
    assert LISTED not in str(caught.value)
    assert sha1(LISTED)[:5] not in str(caught.value)


def test_rc_3_a_fetch_that_is_no_function_is_refused_when_built() -> None:
    """RC-3: a source built over something that cannot be called says so at once."""
    with pytest.raises(SettingsError) as caught:
        CompromisedPasswordRange("https://api.pwnedpasswords.com/range/")  # type: ignore[arg-type]
    assert caught.value.field == "fetch"


def test_au_2_the_source_shows_no_password_or_hash() -> None:
    """AU-2: a source's repr names its call, nothing it was asked."""

    def pwned_range(_prefix: str) -> str:
        return ""

    source = CompromisedPasswordRange(pwned_range)
    source.is_compromised(LISTED)
    assert repr(source) == "CompromisedPasswordRange(pwned_range)"


@given(body=ANY_TEXT)
def test_rc_3_any_answer_gives_a_verdict_or_the_clear_error(body: str) -> None:
    """RC-3: whatever text the API answers, the source answers True, False or the one error."""
    codes: list[str] = []
    try:
        verdict = answering(body).is_compromised(LISTED)
    except CompromisedCheckFailed as failure:
        codes.append(failure.code)
    else:
        assert isinstance(verdict, bool)
    assert codes in ([], ["compromised.bad_response"])


@given(
    password=ANY_TEXT,
    others=st.lists(st.text("0123456789ABCDEF", min_size=35, max_size=35), max_size=20),
    count=st.integers(min_value=1, max_value=10**9),
)
def test_rc_3_every_password_is_found_in_a_range_that_lists_it(
    password: str, others: list[str], count: int
) -> None:
    """RC-3: any password, lone surrogates included, is found when listed, and not at count 0."""
    digest = hashlib.sha1(password.encode("utf-8", "surrogatepass"), usedforsecurity=False)
    suffix = digest.hexdigest().upper()[5:]
    lines = [f"{other}:1" for other in others if other != suffix]
    assert answering("\n".join([*lines, f"{suffix}:{count}"])).is_compromised(password)
    assert not answering("\n".join([*lines, f"{suffix}:0"])).is_compromised(password)


# The policy over a range (PW-10, RC-3).


def test_pw_10_the_nist_policy_refuses_a_password_the_range_lists() -> None:
    """PW-10: the NIST profile over a range refuses a listed password, given in NFKC form."""
    typed = "ｃorrect horse battery staple"  # full-width "c": NFKC makes it the listed one
    assert unicodedata.normalize("NFKC", typed) == LISTED
    api = RangeApi(LISTED)
    nist = PasswordPolicy.nist(CompromisedPasswordRange(api))
    assert nist.check(typed).codes == ("password.compromised",)
    assert nist.check(UNLISTED).ok
    assert api.asked == [sha1(LISTED)[:5], sha1(UNLISTED)[:5]]


def unreachable(_prefix: str) -> str:
    """An application's call while the range API is down."""
    raise ConnectionError


@pytest.mark.parametrize(
    "source", [answering("<html>Bad Gateway</html>"), CompromisedPasswordRange(unreachable)]
)
def test_rc_3_a_new_password_the_range_could_not_check_is_refused_for_now(
    source: CompromisedPasswordRange,
) -> None:
    """RC-3: an outage or a garbled answer refuses the password with its own code."""
    report = PasswordPolicy.nist(source).check(UNLISTED, UNLISTED)
    assert report.codes == ("password.check_unavailable",)
    assert "try again" in report.violations[0].message.lower()


def test_pw_10_the_range_is_not_asked_when_cheaper_rules_fail() -> None:
    """PW-10: a too-short password or a mismatched re-entry is not sent to the API."""
    api = RangeApi(LISTED)
    nist = PasswordPolicy.nist(CompromisedPasswordRange(api))
    assert nist.check("short").codes == ("password.too_short",)
    assert nist.check(UNLISTED, UNLISTED + "!").codes == ("password.mismatch",)
    assert api.asked == []
