"""Small pure rules at their edges: keys, secrets, sessions, roles, lockout, hashing, SecureMail.

Keys are checked against their documented construction, computed here with
hashlib: a key, a fingerprint or a counter's name that changed between
releases would orphan what the stores hold under the old one (DP-1, DP-2).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import secrets
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import argon2
import pytest

from plain_words import assert_plain_english
from securepractice import HashParameters, PasswordHasher, Role, User
from securepractice.errors import (
    AlreadyExists,
    CorruptHash,
    InvalidInput,
    InvalidState,
    PermissionDenied,
    SettingsError,
)
from securepractice.keys import SIGN_IN_COUNTER, derive_key, fingerprint, keyed_name
from securepractice.policy import securemail
from securepractice.policy.compromised import CompromisedCheckFailed, CompromisedPasswordRange
from securepractice.policy.lockout import (
    Lock,
    bounded_password,
    email_lookup,
    lock_after,
    lock_of,
    with_lock,
)
from securepractice.policy.password import check_limit
from securepractice.policy.roles import Action, decide
from securepractice.policy.sessions import new_session, touched
from securepractice.records import CardOnFile, SecureMailPurchase
from securepractice.secret import Secret
from securepractice.settings import BillingRules, Lockout, PasswordRules, SignInRules

NOW = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
CHEAP = HashParameters(time_cost=1, memory_cost=8, parallelism=1)


def _blake2b(data: bytes, key: bytes) -> hashlib.blake2b:
    return hashlib.blake2b(data, key=key, digest_size=32)


@pytest.mark.parametrize("length", [16, 64, 65, 200])
def test_dp_2_keys_are_keyed_blake2b_of_their_purpose_the_long_secret_hashed_down(
    length: int,
) -> None:
    """DP-2: a key is BLAKE2b-256 of its purpose under the secret, hashed to 64 bytes if longer."""
    raw = bytes(i % 256 for i in range(length))
    key = raw if length <= 64 else hashlib.blake2b(raw).digest()
    secret = Secret(raw)
    assert derive_key(secret, "verification-code").reveal() == (
        _blake2b(b"securepractice.key.verification-code", key).digest()
    )
    assert fingerprint(secret) == _blake2b(b"securepractice.fingerprint", key).hexdigest()
    purpose_key = derive_key(secret, SIGN_IN_COUNTER).reveal()
    assert keyed_name(secret, SIGN_IN_COUNTER, "a\ud800@b") == (
        _blake2b("a\ud800@b".encode("utf-8", "surrogatepass"), purpose_key).hexdigest()
    )


def email_counter_key(email: object, secret: Secret[bytes]) -> str:
    return email_lookup(email, secret)[1]


def test_in_4_every_spelling_of_an_address_counts_under_one_key() -> None:
    """IN-4: the counter's key is the keyed name of the normal form, behind ``email:``."""
    secret = Secret(bytes(32))
    expected = "email:" + keyed_name(secret, SIGN_IN_COUNTER, "dana@smile.example")
    assert email_counter_key(" Dana@Smile.Example ", secret) == expected
    assert email_counter_key("dana@smile.example", Secret(bytes(31) + b"\x01")) != expected


def test_in_4_what_is_no_address_is_named_by_its_first_characters_or_its_type() -> None:
    """IN-4: malformed text counts under its first 1,016 characters; a non-text under its type."""
    secret = Secret(bytes(32))
    typed = "x" * 2_000
    assert email_counter_key(typed, secret) == "email:" + keyed_name(
        secret, SIGN_IN_COUNTER, typed[:1_016]
    )
    assert email_counter_key(typed, secret) == email_counter_key(typed[:1_016] + "y", secret)
    assert email_counter_key(42, secret) == "email:" + keyed_name(secret, SIGN_IN_COUNTER, "<int>")


def test_in_3_a_refusal_spends_its_work_on_as_much_as_any_checked_password() -> None:
    """IN-3: the dummy verification hashes the input cut to the longest checkable length."""
    limit = check_limit(PasswordRules.PORTAL)
    assert bounded_password("x" * 5_000, PasswordRules.PORTAL) == "x" * limit
    assert bounded_password("short", PasswordRules.NIST) == "short"


def test_au_2_a_secret_of_text_never_equals_a_secret_of_bytes() -> None:
    """AU-2: comparing secrets of different kinds is simply unequal, in either order."""
    assert Secret("abc") != Secret(b"abc")
    assert Secret(b"abc") != Secret("abc")
    assert Secret("abc") == Secret("abc")
    assert Secret(b"abc") == Secret(b"abc")


def test_lk_6_a_session_token_has_the_entropy_the_rules_ask_for() -> None:
    """LK-6: the token has ``session_token_bytes`` of randomness, and the session its user."""
    made = new_session(user_id="user-1", now=NOW, rules=SignInRules(session_token_bytes=16))
    assert len(made.token.reveal()) == 22  # 16 bytes in URL-safe base64, unpadded
    assert made.record.user_id == "user-1"


def test_lk_6_a_request_at_the_very_instant_of_the_last_activity_changes_nothing() -> None:
    """LK-6: no later activity, no new version to save."""
    session = new_session(user_id="user-1", now=NOW, rules=SignInRules()).record
    assert touched(session, now=NOW, background=False) is session


def test_um_1_a_refusal_is_not_allowed_exactly() -> None:
    """UM-1: a refused decision says allowed is False, not merely something false."""
    locked = User(
        id="u",
        practice_id="p",
        email="u@smile.example",
        roles=frozenset({Role.USER}),
        locked=True,
        created_at=NOW,
    )
    assert decide(locked, Action.VIEW_DASHBOARD).allowed is False


def test_pw_7_a_password_with_a_lone_surrogate_is_hashed_and_verified() -> None:
    """PW-7, IN-1: a surrogate cannot be set, but is hashed at full cost rather than crashing."""
    hasher = PasswordHasher(CHEAP)
    stored = hasher.hash("Harbor-Light-77\ud800")
    assert hasher.verify(stored, "Harbor-Light-77\ud800")
    assert not hasher.verify(stored, "Harbor-Light-77\udfff")


def test_pw_7_hashes_have_the_salt_and_tag_lengths_of_the_parameters() -> None:
    """PW-7: ``salt_len`` and ``hash_len`` are what the argon2id hash holds."""
    stored = PasswordHasher(
        HashParameters(time_cost=1, memory_cost=8, parallelism=1, salt_len=24, hash_len=40)
    ).hash("Harbor-Light-77")
    salt, tag = stored.split("$")[-2:]
    assert (len(salt), len(tag)) == (_base64_length(24), _base64_length(40))


def _base64_length(size: int) -> int:
    return len(base64.b64encode(bytes(size)).rstrip(b"="))


@pytest.mark.parametrize("stored", [None, 42, "", "$2b$12$bcrypt-not-argon2"])
def test_pw_7_a_stored_hash_that_is_not_argon2_is_corrupt(stored: object) -> None:
    """PW-7: whatever a store gives back that is not an argon2 hash is `CorruptHash`."""
    with pytest.raises(CorruptHash) as refused:
        PasswordHasher(CHEAP).verify(stored, "Harbor-Light-77")  # type: ignore[arg-type]
    assert_plain_english(refused.value.message, sentence=False, names=("argon2",))


def test_pw_7_a_truncated_hash_is_corrupt_when_verified_or_rechecked() -> None:
    """PW-7: a damaged argon2 hash is `CorruptHash` with a message a person reads."""
    hasher = PasswordHasher(CHEAP)
    cut = hasher.hash("Harbor-Light-77").rpartition("$")[0]  # the tag cut off
    with pytest.raises(CorruptHash) as refused:
        hasher.verify(cut, "x")
    assert_plain_english(refused.value.message, sentence=False, names=("truncated",))
    with pytest.raises(CorruptHash) as rechecked:
        hasher.needs_rehash("$argon2id$junk")
    assert_plain_english(rechecked.value.message, sentence=False, names=("truncated",))


@pytest.mark.parametrize("cores", [2, 4])
def test_pw_4_history_is_verified_on_as_many_threads_as_free_cores(
    monkeypatch: pytest.MonkeyPatch, cores: int
) -> None:
    """PW-4: with one lane each, as many hashes are verified at once as there are cores, no more.

    The fake verification waits at a barrier for as many as should run
    together: run fewer at a time and it times out.
    """
    hasher = PasswordHasher(CHEAP)
    monkeypatch.setattr("os.cpu_count", lambda: cores)
    together = threading.Barrier(cores, timeout=10)
    running: list[int] = []
    lock = threading.Lock()
    active = 0

    def verify(_stored: str, _password: str) -> bool:
        nonlocal active
        with lock:
            active += 1
            running.append(active)
        together.wait()
        with lock:
            active -= 1
        return False

    monkeypatch.setattr(hasher, "verify", verify)
    assert not hasher.matches_any("Harbor-Light-77", ["h"] * 2 * cores)
    assert max(running) == cores


def test_pw_4_without_a_core_count_history_is_verified_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PW-4: where the number of cores is unknown, one hash at a time."""
    hasher = PasswordHasher(CHEAP)
    monkeypatch.setattr("os.cpu_count", lambda: None)
    threads: set[int] = set()

    def verify(_stored: str, _password: str) -> bool:
        threads.add(threading.get_ident())
        return False

    monkeypatch.setattr(hasher, "verify", verify)
    assert not hasher.matches_any("Harbor-Light-77", ["h"] * 3)
    assert threads == {threading.get_ident()}


def _user(user_id: str, *, manager: bool = False, deactivated: bool = False) -> User:
    roles = {Role.USER, Role.USER_MANAGER} if manager else {Role.USER}
    return User(
        id=user_id,
        practice_id="practice-a",
        email=f"{user_id}@alpha.example",
        roles=frozenset(roles),
        deactivated=deactivated,
        created_at=NOW,
    )


MANAGER = _user("manager", manager=True)
CARD = CardOnFile(user_id="manager", processor_token="tok_m", last_four="4242", added_at=NOW)


def _buy(**changes: object) -> securemail.FirstMonth:
    arguments: dict[str, object] = {
        "purchase_id": "p1",
        "manager": MANAGER,
        "account": _user("account"),
        "card": CARD,
        "managers_purchase": None,
        "accounts_purchase": None,
        "rules": BillingRules(),
        "now": NOW,
    } | changes
    return securemail.start_purchase(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("token", "code", "named"),
    [(None, "card.token_required", "token"), ("4242 4242 4242 4242", "card.number_given", "card")],
)
def test_um_6_a_card_token_refusal_names_the_token_field(
    token: object, code: str, named: str
) -> None:
    """UM-6: a blank token or a card number is refused on ``processor_token``, in a sentence."""
    with pytest.raises(InvalidInput) as refused:
        securemail.card_token(token)
    assert (refused.value.code, refused.value.field) == (code, "processor_token")
    assert_plain_english(refused.value.message, sentence=True, names=(named,))


def test_um_6_a_token_with_a_refused_character_is_refused_on_the_token_field() -> None:
    """UM-6, IN-1: the token is an identifier of the ``processor_token`` field."""
    with pytest.raises(InvalidInput) as refused:
        securemail.card_token("tok\u200b_visa")
    assert refused.value.field == "processor_token"


def _purchase(**changes: object) -> SecureMailPurchase:
    fields: dict[str, object] = {
        "id": "p0",
        "practice_id": "practice-a",
        "payer_id": "other-manager",
        "account_id": "account",
        "monthly_cents": 1000,
        "purchased_at": NOW,
    } | changes
    return SecureMailPurchase(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "error", "code", "names"),
    [
        ({"card": None}, InvalidState, "securemail.no_card", ("SecureMail",)),
        (
            {"managers_purchase": _purchase(account_id="manager")},
            PermissionDenied,
            "securemail.manager_paid_by_other",
            ("SecureMail", "User Manager"),
        ),
        ({"account": _user("account", deactivated=True)}, InvalidState, "user.deactivated", ()),
        (
            {"accounts_purchase": _purchase()},
            AlreadyExists,
            "securemail.already_paid",
            ("SecureMail",),
        ),
        (
            {"accounts_purchase": _purchase(first_month_card="tok_o")},
            InvalidState,
            "securemail.purchase_pending",
            ("SecureMail", "User Manager's"),
        ),
    ],
)
def test_um_6_each_refused_purchase_says_why_in_a_sentence(
    changes: dict[str, object], error: type[Exception], code: str, names: tuple[str, ...]
) -> None:
    """UM-6: each refusal of a purchase is a sentence, with the product and role as written."""
    with pytest.raises(error) as refused:
        _buy(**changes)
    assert getattr(refused.value, "code", None) == code
    assert_plain_english(getattr(refused.value, "message", None), sentence=True, names=names)


def test_sb_2_a_paid_month_is_dated_when_paid_and_its_invoice_named_by_its_month() -> None:
    """SB-2, UM-7: invoice, subscription and entitlement carry the time of payment."""
    due = _buy().due
    paid = securemail.paid(due, reference="ch_1", now=NOW + timedelta(minutes=1))
    later = NOW + timedelta(minutes=1)
    assert paid.invoice.id == f"invoice:{due.period.key}"
    assert (paid.invoice.issued_at, paid.subscription.subscribed_at) == (later, later)
    assert paid.entitlement.granted_at == later


def test_um_6_ending_an_ended_purchase_says_so() -> None:
    """UM-6: a purchase ends once; a second end is a sentence naming SecureMail."""
    ended = securemail.end(_purchase(), NOW)
    with pytest.raises(InvalidState) as refused:
        securemail.end(ended, NOW)
    assert refused.value.code == "securemail.ended"
    assert_plain_english(refused.value.message, sentence=True, names=("SecureMail",))


def test_pw_4_history_never_runs_on_more_threads_than_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PW-4: the pool has as many threads as cores free for argon2 lanes, however many hashes."""
    hasher = PasswordHasher(CHEAP)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    together = threading.Barrier(2, timeout=10)
    threads: set[int] = set()

    def verify(_stored: str, _password: str) -> bool:
        threads.add(threading.get_ident())
        together.wait()
        return False

    monkeypatch.setattr(hasher, "verify", verify)
    assert not hasher.matches_any("Harbor-Light-77", ["h"] * 8)
    assert len(threads) == 2


def test_lk_5_the_dummy_hash_has_the_salt_and_tag_lengths_of_the_parameters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """LK-5: the hash no password matches is as long to verify as a real one: same lengths.

    The random bytes are fixed so that both end in the base64 letter X, which
    must be kept: only the padding is dropped.
    """
    monkeypatch.setattr(secrets, "token_bytes", lambda size: bytes(size - 1) + b"\x17")
    parameters = HashParameters(time_cost=1, memory_cost=8, parallelism=1, salt_len=18, hash_len=33)
    dummy = PasswordHasher(parameters)._dummy
    assert argon2.extract_parameters(dummy) == argon2.Parameters(
        type=argon2.Type.ID,
        version=argon2.low_level.ARGON2_VERSION,
        salt_len=18,
        hash_len=33,
        time_cost=1,
        memory_cost=8,
        parallelism=1,
    )
    PasswordHasher(parameters).dummy_verify("Harbor-Light-77")


def _fetching(body: object) -> Callable[[str], str]:
    def fetch(_prefix: str) -> str:
        return body  # type: ignore[return-value]

    return fetch


def test_pw_10_a_range_source_needs_a_function_and_says_what_it_got() -> None:
    """PW-10: the fetch must be callable; the settings error names ``fetch`` and the type."""
    with pytest.raises(SettingsError) as refused:
        CompromisedPasswordRange(42)  # type: ignore[arg-type]
    assert refused.value.field == "fetch"
    assert_plain_english(refused.value.message.partition(": ")[2], sentence=False, names=("int",))


def test_pw_10_a_password_with_a_surrogate_is_asked_by_its_utf_8_hash() -> None:
    """PW-10, IN-1: the range is asked with the SHA-1 of the password's UTF-8, surrogates kept."""
    asked: list[str] = []

    def fetch(prefix: str) -> str:
        asked.append(prefix)
        return ""

    assert not CompromisedPasswordRange(fetch).is_compromised("Harbor\ud800")
    digest = hashlib.sha1("Harbor\ud800".encode("utf-8", "surrogatepass")).hexdigest()  # noqa: S324
    assert asked == [digest[:5].upper()]


def test_pw_10_a_failed_call_and_a_garbled_answer_are_said_plainly() -> None:
    """PW-10: an outage is ``compromised.unavailable``; text that is not a range names its type."""

    def down(_prefix: str) -> str:
        raise TimeoutError

    with pytest.raises(CompromisedCheckFailed) as unavailable:
        CompromisedPasswordRange(down).is_compromised("Harbor-Light-77")
    assert unavailable.value.code == "compromised.unavailable"
    assert_plain_english(unavailable.value.message, sentence=False)
    with pytest.raises(CompromisedCheckFailed) as garbled:
        CompromisedPasswordRange(_fetching(b"00000:1")).is_compromised("Harbor-Light-77")
    assert garbled.value.code == "compromised.bad_response"
    assert_plain_english(garbled.value.message, sentence=False, names=("bytes",))


def test_pw_10_a_range_source_shows_its_fetch_by_name_or_as_fetch() -> None:
    """PW-10: the repr names the application's function, or says ``fetch`` when it has no name."""
    assert repr(CompromisedPasswordRange(_fetching(""))) == "CompromisedPasswordRange(fetch)"
    nameless = functools.partial(_fetching(""))
    assert repr(CompromisedPasswordRange(nameless)) == "CompromisedPasswordRange(fetch)"


def _person(**fields: object) -> User:
    return User(
        id="u",
        practice_id="p",
        email="u@smile.example",
        roles=frozenset({Role.USER}),
        created_at=NOW,
        **fields,  # type: ignore[arg-type]
    )


def test_mf_7_a_users_lock_is_read_from_its_three_fields_and_written_back() -> None:
    """MF-7, LK-1: `lock_of` reads the three lock fields of a user; `with_lock` sets them."""
    until = NOW + timedelta(minutes=15)
    user = _person(locked_until=until, temporary_locks=2)
    assert lock_of(user) == Lock(locked=False, locked_until=until, temporary_locks=2)
    assert with_lock(user, lock_of(user)) is user
    locked = with_lock(user, Lock(locked=True, locked_until=None, temporary_locks=3))
    assert (locked.locked, locked.locked_until, locked.temporary_locks) == (True, None, 3)
    later = until + timedelta(minutes=30)
    paused = with_lock(user, Lock(locked_until=later, temporary_locks=3))
    assert (paused.locked, paused.locked_until, paused.temporary_locks) == (False, later, 3)
    assert lock_of(_person(locked=True)) == Lock(locked=True)


def test_mf_7_locking_for_good_keeps_the_count_of_temporary_locks() -> None:
    """MF-7: at ``lock_for_good_at`` the account locks as LK-1 does, its history kept."""
    rules = SignInRules(lockout=Lockout.TEMPORARY)
    lock = lock_after(
        lock=Lock(temporary_locks=3), failures=rules.lock_for_good_at, rules=rules, now=NOW
    )
    assert lock == Lock(locked=True, temporary_locks=3)
