"""Settings hold every *default* of the spec and refuse values the rules cannot use."""

from __future__ import annotations

from datetime import timedelta

import attrs
import pytest

from securepractice import (
    SEED_ATTACHMENT_EXTENSIONS,
    AttachmentRules,
    HashParameters,
    LinkRules,
    PasswordRules,
    Secret,
    Settings,
    SettingsError,
    SignInRules,
    VerificationRules,
)


def test_defaults_are_the_specs() -> None:
    """Every number SPEC.md marks *default* has the spec's value."""
    s = Settings()
    assert s.password.min_length == 8  # PW-1
    assert s.password.max_length == 256  # PW-1
    assert s.password.history == 6  # PW-4
    assert s.password.max_age == timedelta(days=90)  # PW-5
    assert s.sign_in.max_failed_sign_ins == 5  # LK-1
    assert s.sign_in.idle_timeout == timedelta(minutes=30)  # LK-6
    assert s.sign_in.absolute_lifetime == timedelta(hours=12)  # LK-7
    assert s.sign_in.attempt_timeout == timedelta(seconds=30)  # DP-5
    assert s.verification.default_region == "US"  # VF-1
    assert s.verification.code_digits == 6  # VF-4
    assert s.verification.code_lifetime == timedelta(minutes=10)  # VF-4
    assert s.verification.max_wrong_codes == 5  # VF-7
    assert s.verification.send_limit == 5  # VF-8
    assert s.verification.send_window == timedelta(minutes=15)  # VF-8
    assert s.links.invitation_lifetime == timedelta(days=14)  # RG-1
    assert s.links.reset_lifetime == timedelta(hours=1)  # RS-1
    assert s.attachments.max_message_bytes == 314_572_800  # AT-2
    assert s.attachments.max_central_directory_bytes == 1024 * 1024  # AT-5
    assert s.attachments.max_archive_entries == 10_000  # AT-7
    assert s.attachments.max_compression_ratio == 100  # AT-7
    assert s.billing.securemail_monthly_cents == 1000  # UM-6
    assert (s.hashing.time_cost, s.hashing.memory_cost, s.hashing.parallelism) == (3, 65536, 4)


def test_allow_list_is_the_seed_faq() -> None:
    """The FAQ's 67 lines hold 66 distinct extensions: .text is listed twice."""
    assert len(SEED_ATTACHMENT_EXTENSIONS) == 67
    assert SEED_ATTACHMENT_EXTENSIONS.count(".text") == 2
    assert Settings().attachments.allowed_extensions == set(SEED_ATTACHMENT_EXTENSIONS)
    assert {".word", ".xl"} <= Settings().attachments.allowed_extensions


def test_allow_list_can_be_narrowed_and_is_lower_cased() -> None:
    rules = AttachmentRules(allowed_extensions=[".PDF", ".png"])
    assert rules.allowed_extensions == frozenset({".pdf", ".png"})


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: PasswordRules(min_length=0), "min_length"),
        (lambda: PasswordRules(min_length=10, max_length=9), "max_length"),
        (lambda: PasswordRules(history=-1), "history"),
        (lambda: PasswordRules(max_age=timedelta(days=-1)), "max_age"),
        (lambda: PasswordRules(min_length=True), "min_length"),
        (lambda: HashParameters(memory_cost=16, parallelism=4), "memory_cost"),
        (lambda: HashParameters(salt_len=8), "salt_len"),
        (lambda: SignInRules(idle_timeout=timedelta(0)), "idle_timeout"),
        (lambda: SignInRules(max_failed_sign_ins=0), "max_failed_sign_ins"),
        (lambda: SignInRules(attempt_timeout=timedelta(0)), "attempt_timeout"),
        (lambda: SignInRules(attempt_timeout=30), "attempt_timeout"),  # type: ignore[arg-type]
        (lambda: VerificationRules(default_region="usa"), "default_region"),
        (lambda: VerificationRules(code_digits=4), "code_digits"),
        (lambda: VerificationRules(code_key=Secret(b"short")), "code_key"),
        (lambda: LinkRules(base_url="portal.example"), "base_url"),
        (lambda: LinkRules(base_url=42), "base_url"),  # type: ignore[arg-type]
        (lambda: LinkRules(base_url="https://portal.example/?next=x"), "base_url"),
        (lambda: LinkRules(reset_lifetime=timedelta(seconds=-5)), "reset_lifetime"),
        (lambda: AttachmentRules(allowed_extensions=["pdf"]), "allowed_extensions"),
        (lambda: AttachmentRules(max_message_bytes=0), "max_message_bytes"),
        (lambda: Settings(password=SignInRules()), "password"),  # type: ignore[arg-type]
    ],
)
def test_wrong_values_are_refused_when_built(build: object, field: str) -> None:
    """A value the rules cannot use is a SettingsError naming the field, at construction."""
    assert callable(build)
    with pytest.raises(SettingsError) as caught:
        build()
    assert caught.value.field == field
    assert caught.value.code == "settings.invalid"
    assert field in str(caught.value)


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        s.password = PasswordRules.NIST  # type: ignore[misc]
    assert attrs.evolve(s, password=PasswordRules.NIST).password.min_length == 15


def test_code_key_is_random_per_settings_and_never_shown() -> None:
    a, b = Settings(), Settings()
    assert a.verification.code_key != b.verification.code_key
    assert "Secret('***')" in repr(a)
    assert a.verification.code_key.reveal().hex() not in repr(a)


def test_base_url_accepts_an_absolute_https_url() -> None:
    assert LinkRules(base_url="https://portal.example/app").base_url == "https://portal.example/app"
