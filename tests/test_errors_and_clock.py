"""The exception hierarchy, the secret wrapper and the clocks."""

from __future__ import annotations

import pickle
from datetime import datetime, timedelta, timezone

import pytest

from securepractice import (
    AlreadyExists,
    DeliveryFailed,
    FakeClock,
    InvalidInput,
    RateLimited,
    Secret,
    SecurePracticeError,
    SettingsError,
    StorageError,
    SystemClock,
)
from securepractice.clock import Clock, require_utc


def test_root_error_is_never_raised_itself() -> None:
    with pytest.raises(TypeError):
        SecurePracticeError("boom")


def test_errors_carry_stable_codes_and_details() -> None:
    limited = RateLimited("try later", retry_after=timedelta(minutes=3))
    assert (limited.code, limited.retry_after) == ("rate_limited", timedelta(minutes=3))
    failed = DeliveryFailed("sms down", channel="sms", code="delivery.failed")
    assert (failed.code, failed.channel) == ("delivery.failed", "sms")
    assert StorageError("gone").code == "storage.unavailable"
    bad = InvalidInput("not an email", field="email", code="email.malformed")
    assert isinstance(bad, ValueError)
    assert str(bad) == "not an email [email.malformed]"
    assert repr(bad) == "InvalidInput(code='email.malformed', message='not an email')"


def test_secret_is_redacted_and_compared_in_constant_time() -> None:
    token = Secret("s3cr3t-t0ken")
    assert "s3cr3t" not in repr(token)
    assert "s3cr3t" not in str(token)
    assert token.reveal() == "s3cr3t-t0ken"
    assert token == Secret("s3cr3t-t0ken")
    assert token != Secret("other")
    assert Secret(b"k") == Secret(b"k")
    assert Secret(b"k") != Secret("k")
    assert token != "s3cr3t-t0ken"
    with pytest.raises(TypeError):
        hash(token)


def test_fake_clock_moves_only_forward_and_when_told() -> None:
    clock = FakeClock(datetime(2026, 3, 1, tzinfo=timezone.utc))
    assert isinstance(clock, Clock)
    start = clock.now()
    assert clock.now() == start
    assert clock.advance(minutes=29) == start + timedelta(minutes=29)
    assert clock.advance(timedelta(seconds=1)) == start + timedelta(minutes=29, seconds=1)
    with pytest.raises(InvalidInput):
        clock.advance(timedelta(seconds=-1))
    clock.set(datetime(2027, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))))
    assert clock.now() == datetime(2027, 1, 1, 10, tzinfo=timezone.utc)
    assert clock.now().tzinfo is timezone.utc
    assert "2027-01-01" in repr(clock)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        FakeClock(datetime(2026, 1, 1))  # noqa: DTZ001
    assert caught.value.code == "time.naive"
    with pytest.raises(InvalidInput):
        require_utc(datetime(2026, 1, 1), field="set_at")  # noqa: DTZ001


def test_system_clock_is_aware_utc() -> None:
    now = SystemClock().now()
    assert now.tzinfo is timezone.utc
    assert isinstance(SystemClock(), Clock)


@pytest.mark.parametrize(
    "error",
    [
        SettingsError("secret", "give the portal secret", code="settings.no_secret"),
        InvalidInput("not an email", field="email", code="email.malformed"),
        RateLimited("later", retry_after=timedelta(minutes=3), code="verification.rate_limited"),
        DeliveryFailed("sms down", channel="sms", code="delivery.failed"),
        AlreadyExists("taken", code="user.email_taken"),
        StorageError("gone", code="storage.busy"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_every_error_survives_pickling_with_its_code_and_details(
    error: SecurePracticeError,
) -> None:
    """Errors cross process boundaries (multiprocessing, task queues) unchanged."""
    back = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own value, made just above
    assert type(back) is type(error)
    assert (str(back), back.code, vars(back)) == (str(error), error.code, vars(error))
