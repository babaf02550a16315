"""argon2id hashing (PW-7), password history (PW-4), expiry (PW-5) and the dummy verify."""

from __future__ import annotations

import threading
import unicodedata
from datetime import datetime, timedelta, timezone

import argon2
import pytest

from conftest import CHEAP_HASHING
from securepractice import (
    CorruptHash,
    HashParameters,
    InvalidInput,
    PasswordHasher,
    PasswordPolicy,
    PasswordRules,
    password_expired,
    password_expires_at,
)

SET_AT = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


# PW-7 ---------------------------------------------------------------------------------


def test_pw_7_hashes_are_argon2id_with_the_configured_parameters(hasher: PasswordHasher) -> None:
    """PW-7: the stored form is an argon2id PHC string with our parameters, not the password."""
    stored = hasher.hash("Sunshine-2026")
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert "Sunshine" not in stored
    params = argon2.extract_parameters(stored)
    assert (params.type, params.memory_cost, params.time_cost, params.parallelism) == (
        argon2.Type.ID,
        8,
        1,
        1,
    )


def test_pw_7_default_parameters_are_rfc_9106_low_memory() -> None:
    """PW-7: the default profile is argon2-cffi's RFC 9106 low-memory profile."""
    low = argon2.profiles.RFC_9106_LOW_MEMORY
    default = HashParameters()
    assert (default.time_cost, default.memory_cost, default.parallelism) == (
        low.time_cost,
        low.memory_cost,
        low.parallelism,
    )
    assert (default.hash_len, default.salt_len) == (low.hash_len, low.salt_len)


def test_pw_7_same_password_hashes_differently_each_time(hasher: PasswordHasher) -> None:
    """PW-7: salts are random, so two hashes of one password differ, and both verify."""
    first, second = hasher.hash("Sunshine-2026"), hasher.hash("Sunshine-2026")
    assert first != second
    assert hasher.verify(first, "Sunshine-2026")
    assert hasher.verify(second, "Sunshine-2026")
    assert not hasher.verify(first, "Sunshine-2027")


def test_pw_7_verify_accepts_another_normalisation(hasher: PasswordHasher) -> None:
    """PW-7: a password typed with decomposed accents verifies against the composed one."""
    stored = hasher.hash(unicodedata.normalize("NFC", "Café-2026!"))
    assert hasher.verify(stored, unicodedata.normalize("NFD", "Café-2026!"))


def test_pw_7_needs_rehash_when_parameters_change(hasher: PasswordHasher) -> None:
    """PW-7: a hash made with other parameters is flagged for upgrade; a current one is not."""
    stored = hasher.hash("Sunshine-2026")
    assert not hasher.needs_rehash(stored)
    stronger = PasswordHasher(HashParameters(time_cost=2, memory_cost=16, parallelism=1))
    assert stronger.needs_rehash(stored)
    assert stronger.verify(stored, "Sunshine-2026")  # old hashes still verify until upgraded
    upgraded = stronger.hash("Sunshine-2026")
    assert not stronger.needs_rehash(upgraded)


def test_pw_7_argon2i_hashes_verify_and_are_upgraded(hasher: PasswordHasher) -> None:
    """PW-7: a legacy argon2i hash still verifies, and is flagged for an argon2id rehash."""
    legacy = argon2.PasswordHasher(
        time_cost=1, memory_cost=8, parallelism=1, type=argon2.Type.I
    ).hash("Sunshine-2026")
    assert hasher.verify(legacy, "Sunshine-2026")
    assert hasher.needs_rehash(legacy)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "not a hash",
        "$2b$12$abcdefghijklmnopqrstuvCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC",  # bcrypt
        "$argon2id$v=19$m=8,t=1,p=1$",
        "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ",
        "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$!!!!",
        "$argon2id$v=19$m=0,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
    ],
)
def test_pw_7_corrupt_hashes_are_a_clear_error(hasher: PasswordHasher, stored: str) -> None:
    """PW-7: a corrupt stored hash never verifies and never crashes: CorruptHash."""
    with pytest.raises(CorruptHash) as caught:
        hasher.verify(stored, "Sunshine-2026")
    assert caught.value.code == "hash.corrupt"
    assert stored[20:] not in caught.value.message or not stored[20:]


def test_pw_7_every_truncation_of_a_hash_fails_safely(hasher: PasswordHasher) -> None:
    """PW-7: no prefix of a valid hash verifies; each is refused or a mismatch."""
    stored = hasher.hash("Sunshine-2026")
    for end in range(len(stored)):
        try:
            verified = hasher.verify(stored[:end], "Sunshine-2026")
        except CorruptHash:
            continue
        assert not verified, end


def test_pw_7_needs_rehash_on_a_corrupt_hash_is_a_clear_error(hasher: PasswordHasher) -> None:
    with pytest.raises(CorruptHash):
        hasher.needs_rehash("$argon2id$v=19$m=x")


def test_pw_7_repr_shows_parameters_not_secrets(hasher: PasswordHasher) -> None:
    hasher.dummy_verify("Sunshine-2026")
    text = repr(hasher)
    assert "argon2id t=1 m=8KiB p=1" in text
    assert "$argon2" not in text


def test_dummy_verify_costs_a_verification_and_learns_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """LK-5: every dummy verification runs on one hash, with the parameters of real ones."""
    calls: list[str] = []
    hasher = PasswordHasher(CHEAP_HASHING)
    real_verify = argon2.PasswordHasher.verify

    def counting(self: argon2.PasswordHasher, stored: str, password: bytes) -> bool:
        calls.append(stored)
        return real_verify(self, stored, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", counting)
    hasher.dummy_verify("anything")
    hasher.dummy_verify("anything else")
    assert len(calls) == 2
    assert calls[0] == calls[1]
    assert argon2.extract_parameters(calls[0]) == argon2.extract_parameters(hasher.hash("x"))


def test_concurrent_hashes_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """At most max_concurrent hashes run at once; the others wait their turn."""
    hasher = PasswordHasher(
        HashParameters(time_cost=1, memory_cost=8, parallelism=1, max_concurrent=2)
    )
    running = 0
    peak = 0
    lock = threading.Lock()
    overlap = threading.Barrier(2, timeout=5)
    real_hash = argon2.PasswordHasher.hash

    def tracking(self: argon2.PasswordHasher, password: bytes) -> str:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            overlap.wait()  # two hashes are inside at once: the bound lets two in
            return real_hash(self, password)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(argon2.PasswordHasher, "hash", tracking)
    threads = [threading.Thread(target=hasher.hash, args=(f"pw{i}",)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert peak == 2


# PW-4 ---------------------------------------------------------------------------------


def _history(hasher: PasswordHasher, *passwords: str) -> tuple[str, ...]:
    """Stored hashes, newest first, as the credential store keeps them."""
    return tuple(hasher.hash(p) for p in passwords)


OLD = [f"Sunshine-{year}" for year in range(2020, 2027)]  # seven passwords, oldest first


def test_pw_4_none_of_the_last_six_may_be_reused(hasher: PasswordHasher) -> None:
    """PW-4: the current password and the five before it are refused; the seventh is not."""
    newest_first = list(reversed(OLD))
    stored = _history(hasher, *newest_first)
    policy = PasswordPolicy()
    for password in newest_first[:6]:
        report = policy.check(password, password, history=stored, hasher=hasher)
        assert report.codes == ("password.reused",), password
    seventh = newest_first[6]
    assert policy.check(seventh, seventh, history=stored, hasher=hasher).ok
    assert policy.check("Moonlight-2026", history=stored, hasher=hasher).ok


@pytest.mark.parametrize("lanes", [1, 2, 64])
def test_pw_4_history_check_finds_a_match_at_any_depth(lanes: int) -> None:
    """PW-4: on a thread pool or one at a time, a match anywhere in the history is found."""
    hasher = PasswordHasher(HashParameters(time_cost=1, memory_cost=8 * lanes, parallelism=lanes))
    stored = _history(hasher, *(f"Old-password-{i}!" for i in range(6)))
    for i in range(6):
        assert hasher.matches_any(f"Old-password-{i}!", stored)
    assert not hasher.matches_any("Old-password-6!", stored)
    assert not hasher.matches_any("Old-password-0!", ())


def test_pw_4_history_depth_is_a_setting(hasher: PasswordHasher) -> None:
    """PW-4: with a history of 2, the third-newest password is allowed again."""
    stored = _history(hasher, "Current-2026!", "Previous-2025!", "Older-2024!")
    policy = PasswordPolicy(PasswordRules(history=2))
    assert policy.check("Previous-2025!", history=stored, hasher=hasher).codes == (
        "password.reused",
    )
    assert policy.check("Older-2024!", history=stored, hasher=hasher).ok
    assert PasswordPolicy(PasswordRules(history=0)).check("Current-2026!", history=stored).ok


def test_pw_4_another_spelling_of_an_old_password_is_the_same(hasher: PasswordHasher) -> None:
    """PW-4: NFD "Café" reuses NFC "Café"; full-width digits reuse ASCII ones."""
    stored = _history(hasher, unicodedata.normalize("NFC", "Café-2026!"))
    policy = PasswordPolicy()
    nfd = unicodedata.normalize("NFD", "Café-2026!")
    assert policy.check(nfd, history=stored, hasher=hasher).codes == ("password.reused",)
    assert policy.check("Café-２０２６!", history=stored, hasher=hasher).codes == (
        "password.reused",
    )


def test_pw_4_history_is_not_hashed_when_other_rules_fail(hasher: PasswordHasher) -> None:
    """PW-4: a password refused by cheaper rules costs no hashing."""
    stored = ("$argon2id$corrupt-would-raise",)
    assert PasswordPolicy().check("short", history=stored, hasher=hasher).codes[0] == (
        "password.too_short"
    )


def test_pw_4_history_needs_the_hasher() -> None:
    with pytest.raises(InvalidInput) as caught:
        PasswordPolicy().check("Sunshine-2026", history=("$argon2id$x",))
    assert caught.value.code == "password.history_needs_hasher"


# PW-5 ---------------------------------------------------------------------------------


def test_pw_5_password_expires_90_days_after_it_was_set() -> None:
    """PW-5: valid just before 90 days, expired at exactly 90 days."""
    rules = PasswordRules.PORTAL
    assert password_expires_at(SET_AT, rules) == SET_AT + timedelta(days=90)
    assert not password_expired(SET_AT, SET_AT + timedelta(days=90, microseconds=-1), rules)
    assert password_expired(SET_AT, SET_AT + timedelta(days=90), rules)
    assert password_expired(SET_AT, SET_AT + timedelta(days=400), rules)


def test_pw_5_nist_profile_never_expires() -> None:
    """PW-5 / PW-10: no expiry in the NIST profile."""
    assert password_expires_at(SET_AT, PasswordRules.NIST) is None
    assert not password_expired(SET_AT, SET_AT + timedelta(days=10_000), PasswordRules.NIST)


def test_pw_5_expiry_is_a_setting_and_works_across_time_zones() -> None:
    rules = PasswordRules(max_age=timedelta(days=30))
    local = SET_AT.astimezone(timezone(timedelta(hours=-5)))
    assert password_expired(local, SET_AT + timedelta(days=30), rules)
    assert not password_expired(local, SET_AT + timedelta(days=29), rules)


def test_pw_5_naive_times_are_refused() -> None:
    with pytest.raises(InvalidInput):
        password_expired(SET_AT.replace(tzinfo=None), SET_AT, PasswordRules.PORTAL)
    with pytest.raises(InvalidInput):
        password_expired(SET_AT, SET_AT.replace(tzinfo=None), PasswordRules.PORTAL)
