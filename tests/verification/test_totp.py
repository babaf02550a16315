"""Authenticator-app codes: RFC 6238 and RFC 4226 test vectors, replay, window, URI (MF-3)."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from securepractice.secret import Secret
from securepractice.verification import totp

#: The seed of the RFC's test vectors (RFC 4226 appendix D, RFC 6238 appendix B, SHA-1).
RFC_SEED = Secret(b"12345678901234567890")
NOW = datetime(2026, 12, 1, 9, 0, 10, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("unix_time", "code"),
    [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ],
)
def test_mf_3_rfc_6238_appendix_b_sha1_vectors(unix_time: int, code: str) -> None:
    at = datetime.fromtimestamp(unix_time, tz=timezone.utc)
    assert totp.totp(RFC_SEED, at, digits=8).reveal() == code


def test_mf_3_rfc_4226_appendix_d_hotp_vectors() -> None:
    expected = ["755224", "287082", "359152", "969429", "338314"]
    expected += ["254676", "287922", "162583", "399871", "520489"]
    assert [totp.hotp(RFC_SEED, counter).reveal() for counter in range(10)] == expected


@given(
    seed=st.binary(min_size=totp.SEED_BYTES, max_size=totp.SEED_BYTES),
    seconds=st.integers(min_value=0, max_value=2**33),
)
def test_mf_3_our_codes_are_the_ones_an_app_shows(seed: bytes, seconds: int) -> None:
    """Six digits, 30-second steps, SHA-1: what pyotp, like every app, computes."""
    at = datetime.fromtimestamp(seconds, tz=timezone.utc)
    app = pyotp.TOTP(base64.b32encode(seed).decode())
    assert totp.totp(Secret(seed), at).reveal() == app.at(at)


def test_mf_3_a_seed_is_160_random_bits() -> None:
    seeds = {totp.new_seed().reveal() for _ in range(50)}
    assert len(seeds) == 50
    assert {len(seed) for seed in seeds} == {20}


def _code(seed: Secret[bytes], at: datetime) -> str:
    return totp.totp(seed, at).reveal()


def test_mf_3_the_current_step_and_one_back_are_accepted_and_no_other() -> None:
    seed = totp.new_seed()
    step = totp.time_step(NOW)
    step_length = timedelta(seconds=totp.PERIOD_SECONDS)

    def match(at: datetime, steps_back: int = 1) -> int | None:
        return totp.matching_step(
            seed, _code(seed, at), now=NOW, steps_back=steps_back, last_used_step=None
        )

    assert match(NOW) == step
    assert match(NOW - step_length) == step - 1
    assert match(NOW - 2 * step_length) is None
    assert match(NOW + step_length) is None
    assert match(NOW - step_length, steps_back=0) is None  # ASVS 5.0 6.5.5: the step alone
    assert match(NOW - 2 * step_length, steps_back=2) == step - 2


def test_mf_3_each_step_is_accepted_once() -> None:
    """No replay: a code of a step at or before the last one used is refused."""
    seed = totp.new_seed()
    step = totp.time_step(NOW)
    code = _code(seed, NOW)
    first = totp.matching_step(seed, code, now=NOW, steps_back=1, last_used_step=step - 1)
    again = totp.matching_step(seed, code, now=NOW, steps_back=1, last_used_step=first)
    earlier = totp.matching_step(
        seed,
        _code(seed, NOW - timedelta(seconds=30)),
        now=NOW,
        steps_back=1,
        last_used_step=step,
    )
    assert (first, again, earlier) == (step, None, None)


@pytest.mark.parametrize(
    "typed",
    ["", "12345", "1234567", "abcdef", "12 34 5x", "\ud800" * 6, "1" * 10_000, "１２３４５６"],
)
def test_mf_3_what_cannot_be_a_code_matches_nothing(typed: str) -> None:
    seed = Secret(b"\x00" * 20)
    assert totp.matching_step(seed, typed, now=NOW, steps_back=1, last_used_step=None) is None


def test_mf_3_a_code_typed_with_a_space_or_on_another_keypad_is_the_code() -> None:
    seed = totp.new_seed()
    code = _code(seed, NOW)
    arabic = "".join(chr(0x0660 + int(c)) for c in code)
    for typed in (f"{code[:3]} {code[3:]}", f" {code} ", arabic, Secret(code)):
        found = totp.matching_step(seed, typed, now=NOW, steps_back=0, last_used_step=None)
        assert found == totp.time_step(NOW), typed


def test_mf_3_the_uri_enrols_the_seed_in_an_app() -> None:
    seed = totp.new_seed()
    uri = totp.provisioning_uri(seed, account="dr.smith@example.com", issuer="My Practice").reveal()
    parts = urlsplit(uri)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert unquote(parts.path) == "/My Practice:dr.smith@example.com"
    assert query["issuer"] == "My Practice"
    assert (query["algorithm"], query["digits"], query["period"]) == ("SHA1", "6", "30")
    padded = query["secret"] + "=" * (-len(query["secret"]) % 8)
    assert base64.b32decode(padded) == seed.reveal()
    app = pyotp.parse_uri(uri)
    assert isinstance(app, pyotp.TOTP)
    assert app.at(NOW) == _code(seed, NOW)


def test_mf_3_the_uri_and_the_seed_stay_out_of_reprs() -> None:
    """MF-10, AU-2: the URI holds the seed."""
    seed = totp.new_seed()
    uri = totp.provisioning_uri(seed, account="a@example.com", issuer="P")
    assert "otpauth" not in repr(uri)
    assert base64.b32encode(seed.reveal()).decode()[:8] not in repr(seed)


@pytest.mark.parametrize("digits", [0, 11])
def test_hotp_refuses_a_length_no_truncation_gives(digits: int) -> None:
    with pytest.raises(ValueError, match="digits"):
        totp.hotp(RFC_SEED, 0, digits=digits)


def test_a_time_with_no_zone_is_refused() -> None:
    with pytest.raises(ValueError, match=r"UTC|zone|aware|naive"):
        totp.time_step(datetime(2026, 12, 1, 9, 0))  # noqa: DTZ001 - the naive time refused
