"""Equal work on every refused sign-in, and passwords too long to check (IN-3, IN-4, LK-5).

The work is counted, never timed: the store wrapper that counts storage
operations (`FaultyStorage`) records the name of every one a sign-in makes
(each unit's begin, each repository method, each commit), and a wrapping
hasher records each verification and the length of the password that
reached it. An unknown email, a malformed one, a wrong password, a locked
account, a deactivated one and a user not yet registered must make the same
calls in the same order on every store, or an observer of the disk or of
the clock could tell which emails have accounts.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import argon2
import attrs
import pytest

from accounts.conftest import recording
from securepractice import PasswordHasher, User
from securepractice.accounts.signin import (
    INVALID_CREDENTIALS_MESSAGE,
    SignInOutcome,
    SignInReason,
    SignInResult,
)
from securepractice.dependencies import Dependencies
from securepractice.errors import InvalidInput
from securepractice.policy.lockout import email_lookup
from securepractice.portal import Accounts
from securepractice.secret import Secret
from securepractice.settings import Settings
from securepractice.testing import PASSWORD, World

EMAIL = "dr.smith@example.com"


def email_counter_key(email: object, secret: Secret[bytes]) -> str:
    """The key an email without an account counts under (IN-4)."""
    return email_lookup(email, secret)[1]


WRONG = "Wrong-2026"
#: A character that NFKC turns into 18: the costliest input to normalise.
WIDE = "\ufdfa"
assert len(unicodedata.normalize("NFKC", WIDE)) == 18

#: What every refused sign-in does with storage: two units, the same calls in each.
REFUSAL_CALLS = [
    "begin",
    "users.get_by_email",
    "credentials.get",
    "sign_in_failures.start",
    "commit",
    "begin",
    "users.get",
    "sign_in_failures.finish",
    "audit.append",
    "commit",
]


class RecordingHasher(PasswordHasher):
    """A real hasher that records each verification and hash, with its password's length.

    ``dummy_verify`` verifies through `verify`, so a dummy verification is
    recorded as the verification it costs.
    """

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.hashing)
        self.calls: list[tuple[str, int]] = []

    def verify(self, stored: str, password: str) -> bool:
        self.calls.append(("verify", len(password)))
        return super().verify(stored, password)

    def hash(self, password: str) -> str:
        self.calls.append(("hash", len(password)))
        return super().hash(password)

    def needs_rehash(self, stored: str) -> bool:
        self.calls.append(("needs_rehash", 0))
        return super().needs_rehash(stored)


@attrs.frozen
class Watched:
    """The services over a recording store and a recording hasher.

    ``storage_calls`` names each storage operation, in order: ``begin``,
    each repository method (``users.get``), ``commit``.
    """

    context: Dependencies
    accounts: Accounts
    storage_calls: list[str]
    hasher: RecordingHasher

    def sign_in(self, email: str, password: str = WRONG) -> SignInResult:
        """Sign in with the records cleared first, so that they hold this sign-in alone."""
        self.storage_calls.clear()
        self.hasher.calls.clear()
        return self.accounts.sign_in(email=email, password=password)

    def failures(self, key: str) -> int:
        with self.context.unit() as uow:
            return uow.sign_in_failures.count(key)

    def user(self, email: str) -> User:
        with self.context.unit() as uow:
            user = uow.users.get_by_email(email)
        assert user is not None
        return user


@pytest.fixture
def watched(context: Dependencies, monkeypatch: pytest.MonkeyPatch) -> Watched:
    """Users of every kind, and the services over a recording store and hasher.

    The store is `FaultyStorage` failing nothing, its count of operations
    made to record each one's name.
    """
    storage, calls = recording(context, monkeypatch)
    hasher = RecordingHasher(context.settings)
    context = attrs.evolve(context, storage=storage, hasher=hasher)
    world = World(context)
    practice = world.practice()
    world.user(EMAIL, practice=practice)
    world.user("locked@example.com", practice=practice, locked=True)
    world.user("gone@example.com", practice=practice, deactivated=True)
    world.user("invited@example.com", practice=practice, password=None)
    return Watched(context, Accounts(context), calls, hasher)


@pytest.fixture
def argon2_inputs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """Record what reaches argon2 itself: the password's length in bytes, and the hash."""
    seen: list[tuple[int, str]] = []
    original = argon2.PasswordHasher.verify

    def spy(self: argon2.PasswordHasher, stored: str, password: bytes) -> bool:
        seen.append((len(password), stored))
        return original(self, stored, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", spy)
    return seen


def _work(
    watched: Watched, email: str, password: str = WRONG
) -> tuple[tuple[object, ...], list[str], list[tuple[str, int]]]:
    """Sign in once; return the refusal as the caller sees it and the work it cost."""
    result = watched.sign_in(email, password)
    public = (result.outcome, result.message, result.user_id, result.session_token)
    return public, list(watched.storage_calls), list(watched.hasher.calls)


#: Each refused sign-in the equal-work tests compare, by the email signed in with.
REFUSALS = {
    "unknown email": "nobody@example.com",
    "malformed email": "not an email",
    "surrogate in the email": "a\ud800@example.com",
    "wrong password": EMAIL,
    "locked account": "locked@example.com",
    "deactivated account": "gone@example.com",
    "not registered yet": "invited@example.com",
}


def test_in_4_lk_5_every_refusal_makes_the_same_storage_calls_and_one_verification(
    watched: Watched, argon2_inputs: list[tuple[int, str]]
) -> None:
    """IN-4, LK-5: unknown, malformed, wrong, locked, deactivated, unregistered: the same work.

    The same storage calls in the same order, an unknown email's counter
    written as a known one's is, and one argon2 verification of the same
    input at the same cost; the result is the same too, naming no user.
    """
    work = {case: _work(watched, email) for case, email in REFUSALS.items()}
    for case, (public, calls, hashing) in work.items():
        assert public == (
            SignInOutcome.INVALID_CREDENTIALS,
            INVALID_CREDENTIALS_MESSAGE,
            None,
            None,
        )
        assert calls == REFUSAL_CALLS, case
        assert hashing == [("verify", len(WRONG))], case
    assert len(argon2_inputs) == len(REFUSALS)
    # One input length, one argon2 variant and one set of parameters (the PHC string's head).
    costs = {(length, stored.rsplit("$", 2)[0]) for length, stored in argon2_inputs}
    assert len(costs) == 1


def test_in_4_the_right_password_of_a_known_account_makes_those_calls_and_more(
    watched: Watched,
) -> None:
    """IN-4: the first unit, before the password is known, is the same as a refusal's."""
    result = watched.sign_in(EMAIL, PASSWORD)
    assert result.ok
    assert result.user_id == watched.user(EMAIL).id
    assert watched.storage_calls[:5] == REFUSAL_CALLS[:5]
    assert watched.hasher.calls[0] == ("verify", len(PASSWORD))


def test_in_4_each_refusal_is_counted_on_its_own_counter(watched: Watched) -> None:
    """IN-4, LK-1, LK-4: a user's refusals count on their id; an unregistered user's do not count.

    An unknown or malformed email counts on its key: the email's keyed hash,
    never the email itself.
    """
    secret = watched.context.settings.secret
    assert secret is not None
    for email in REFUSALS.values():
        watched.sign_in(email)
    users = {email: watched.user(email) for email in (EMAIL, "locked@example.com")}
    assert {email: watched.failures(u.id) for email, u in users.items()} == {
        EMAIL: 1,
        "locked@example.com": 1,
    }
    assert watched.failures(watched.user("gone@example.com").id) == 1
    assert watched.failures(watched.user("invited@example.com").id) == 0
    for email in ("nobody@example.com", "not an email", "a\ud800@example.com"):
        key = email_counter_key(email, secret)
        assert watched.failures(key) == 1, email
        assert key.startswith("email:")
        assert "nobody" not in key
        assert "example" not in key


def test_in_4_password_spraying_on_unknown_addresses_shows_per_address(
    watched: Watched,
) -> None:
    """IN-4: guesses on addresses without accounts count per address, every spelling together."""
    secret = watched.context.settings.secret
    assert secret is not None
    spellings = ["nobody@example.com", " Nobody@EXAMPLE.com", "NOBODY@example.com "]
    for password in ("Spring-2026!", "Summer-2026!"):
        for email in (*spellings, "someone@example.org"):
            result = watched.sign_in(email, password)
            assert result.reason is SignInReason.UNKNOWN_USER
    assert watched.failures(email_counter_key("nobody@example.com", secret)) == 6
    assert watched.failures(email_counter_key("someone@example.org", secret)) == 2
    assert watched.failures(email_counter_key("else@example.org", secret)) == 0


def test_in_4_the_counter_key_is_a_keyed_hash_of_the_normalised_email() -> None:
    """IN-4: one key for every spelling of an address; another secret gives another key."""
    first, second = Secret(bytes(range(32))), Secret(bytes(range(1, 33)))
    key = email_counter_key("nobody@example.com", first)
    assert email_counter_key(" NoBody@Example.COM ", first) == key
    assert email_counter_key("nobody@example.com", second) != key
    assert email_counter_key("somebody@example.com", first) != key
    assert len(key) == len("email:") + 64
    assert email_counter_key(12345, first) == email_counter_key(67890, first)
    assert email_counter_key("x" * 10_000_000, first) == email_counter_key("x" * 2_000, first)


# --- IN-3 ---------------------------------------------------------------------------------


@pytest.fixture
def normalised_lengths(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the length of every string any code normalises while the test runs."""
    seen: list[int] = []
    original = unicodedata.normalize

    def spy(form: Any, text: str) -> str:
        seen.append(len(text))
        return original(form, text)

    monkeypatch.setattr(unicodedata, "normalize", spy)
    return seen


@pytest.mark.parametrize("length", [1_000_000, 20_000_000], ids=["1M", "20M"])
def test_in_3_a_password_too_long_to_be_anyone_s_is_refused_unread(
    watched: Watched, normalised_lengths: list[int], length: int
) -> None:
    """IN-3, IN-4: refused before it is normalised or hashed, at the cost of any refusal.

    Counted as a wrong password on a known account (it cannot be the right
    one), it makes the same storage calls as every refusal, and the one
    dummy verification is of the first ``4 x max_length`` characters only.
    """
    bound = watched.context.settings.password.max_length * 4
    giant = WIDE * length
    for email in (EMAIL, "nobody@example.com"):
        normalised_lengths.clear()
        result = watched.sign_in(email, giant)
        assert result.outcome is SignInOutcome.INVALID_CREDENTIALS
        assert result.message == INVALID_CREDENTIALS_MESSAGE
        assert result.user_id is None
        assert watched.storage_calls == REFUSAL_CALLS
        assert watched.hasher.calls == [("verify", bound)]
        assert max(normalised_lengths) <= bound
    assert watched.sign_in(EMAIL, giant).reason is SignInReason.PASSWORD_TOO_LONG
    assert watched.failures(watched.user(EMAIL).id) == 2


def test_in_3_the_right_password_with_text_added_is_never_checked(
    watched: Watched, argon2_inputs: list[tuple[int, str]]
) -> None:
    """IN-3: a right password padded past the bound is refused; the real hash is never read.

    The dummy verification's input starts with the right password, so only
    the dummy hash may ever see it.
    """
    bound = watched.context.settings.password.max_length * 4
    padded = PASSWORD + " " * bound
    result = watched.sign_in(EMAIL, padded)
    assert (result.outcome, result.reason) == (
        SignInOutcome.INVALID_CREDENTIALS,
        SignInReason.PASSWORD_TOO_LONG,
    )
    user = watched.user(EMAIL)
    with watched.context.unit() as uow:
        credential = uow.credentials.get(user.id)
    assert credential is not None
    assert watched.hasher.calls == [("verify", bound)]
    assert [stored for _, stored in argon2_inputs] != [credential.password_hash]
    assert len(argon2_inputs) == 1
    assert watched.sign_in(EMAIL, PASSWORD).ok  # one failure on record: still far from a lock


def test_in_3_lk_1_passwords_too_long_lock_as_wrong_ones_do(watched: Watched) -> None:
    """IN-3, LK-1: five passwords too long to be anyone's are five failures, and lock."""
    giant = WIDE * 100_000
    reasons = [watched.sign_in(EMAIL, giant).reason for _ in range(5)]
    assert reasons == [SignInReason.PASSWORD_TOO_LONG] * 5
    assert watched.user(EMAIL).locked
    assert watched.sign_in(EMAIL, PASSWORD).reason is SignInReason.LOCKED


def test_in_3_a_password_at_the_bound_is_still_checked(watched: Watched) -> None:
    """IN-3: the bound refuses only what no normalisation could bring within max_length."""
    bound = watched.context.settings.password.max_length * 4
    result = watched.sign_in(EMAIL, "x" * bound)
    assert result.reason is SignInReason.WRONG_PASSWORD
    assert watched.hasher.calls == [("verify", bound)]


@pytest.mark.parametrize("password", [None, b"Sunshine-2026", 12345678])
def test_a_password_that_is_not_text_is_refused_before_anything_counts(
    watched: Watched, password: object
) -> None:
    """Not text is the caller's error, whatever the email: raised before any storage call."""
    for email in (EMAIL, "nobody@example.com"):
        with pytest.raises(InvalidInput) as caught:
            watched.sign_in(email, password)  # type: ignore[arg-type]
        assert (caught.value.field, caught.value.code) == ("password", "password.not_text")
        assert watched.storage_calls == []
        assert watched.hasher.calls == []


@pytest.mark.parametrize("length", [1_000_000, 20_000_000], ids=["1M", "20M"])
def test_in_3_a_current_password_too_long_is_wrong_unread(
    watched: Watched, normalised_lengths: list[int], length: int
) -> None:
    """IN-3, PW-6, LK-4: a profile action's current password too long to be anyone's.

    Refused as wrong and counted toward lockout, before it is normalised or
    hashed: the one dummy verification is of the bounded input.
    """
    bound = watched.context.settings.password.max_length * 4
    token = watched.sign_in(EMAIL, PASSWORD).session_token
    assert token is not None
    normalised_lengths.clear()
    watched.hasher.calls.clear()
    with pytest.raises(InvalidInput) as caught:
        watched.accounts.change_email(
            token, current_password=WIDE * length, new_email="new@example.com"
        )
    assert caught.value.code == "password.current_wrong"
    assert watched.hasher.calls == [("verify", bound)]
    assert max(normalised_lengths, default=0) <= bound
    assert watched.failures(watched.user(EMAIL).id) == 1
