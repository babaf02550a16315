"""The sign-in throttle: failures by client address, asked before any hashing (CX-3)."""

from __future__ import annotations

from datetime import timedelta

import attrs
import pytest

from securepractice import PasswordHasher, SignInRules
from securepractice.accounts.signin import (
    INVALID_CREDENTIALS_MESSAGE,
    SignInOutcome,
    SignInReason,
)
from securepractice.context import RequestContext, request
from securepractice.dependencies import Dependencies
from securepractice.portal import Accounts
from securepractice.secret import Secret
from securepractice.settings import Settings
from securepractice.testing import PASSWORD, FakeClock, World
from securepractice.throttle import SignInThrottle, StoredThrottle, client_key

LIMIT = 3
STUFFER = RequestContext(client_address="198.51.100.23")
OFFICE = RequestContext(client_address="203.0.113.7")
WRONG = "Not the password 1!"


class CountingHasher(PasswordHasher):
    """A hasher that counts the passwords it checks."""

    checked = 0

    def verify(self, stored: str, password: str) -> bool:
        type(self).checked += 1
        return super().verify(stored, password)

    def dummy_verify(self, password: str) -> None:
        type(self).checked += 1
        super().dummy_verify(password)


@pytest.fixture
def throttled(context: Dependencies) -> Dependencies:
    """``context`` whose throttle refuses an address after `LIMIT` failures in an hour."""
    rules = attrs.evolve(context.settings.sign_in, throttle_limit=LIMIT)
    settings = attrs.evolve(context.settings, sign_in=rules)
    CountingHasher.checked = 0
    return attrs.evolve(
        context,
        settings=settings,
        hasher=CountingHasher(settings.hashing),
        throttle=StoredThrottle.over(context.storage, settings),
    )


def _stuff(accounts: Accounts, clock: FakeClock | None = None) -> None:
    """Fail `LIMIT` sign-ins at an unknown email from `STUFFER`, ten minutes apart if ``clock``."""
    with request(STUFFER):
        for _ in range(LIMIT):
            accounts.sign_in(email="nobody@example.com", password=WRONG)
            if clock is not None:
                clock.advance(minutes=10)


def _users(deps: Dependencies, count: int) -> list[str]:
    world = World(deps)
    practice = world.practice()
    emails = [f"user{n}@example.com" for n in range(count)]
    for email in emails:
        world.user(email, practice=practice)
    return emails


def test_the_default_throttle_is_100_failures_an_hour() -> None:  # CX-3
    rules = Settings().sign_in
    assert (rules.throttle_limit, rules.throttle_window) == (100, timedelta(hours=1))
    assert SignInRules.NIST.throttle_limit == 100


def test_credential_stuffing_is_refused_before_any_hashing(throttled: Dependencies) -> None:  # CX-3
    emails = _users(throttled, LIMIT + 2)
    accounts = Accounts(throttled)
    with request(STUFFER):
        for email in emails[:LIMIT]:
            assert (
                accounts.sign_in(email=email, password=WRONG).reason is SignInReason.WRONG_PASSWORD
            )
        checked = CountingHasher.checked
        refused = accounts.sign_in(email=emails[LIMIT], password=PASSWORD)
    assert (refused.outcome, refused.reason, refused.message) == (
        SignInOutcome.INVALID_CREDENTIALS,
        SignInReason.THROTTLED,
        INVALID_CREDENTIALS_MESSAGE,
    )
    assert refused.session_token is None
    assert CountingHasher.checked == checked  # refused before the password was checked
    with throttled.storage.unit_of_work() as uow:
        (event,) = [e for e in uow.audit.events() if e.action == "sign_in.throttled"]
        assert event.client_address == STUFFER.client_address
        victim = uow.users.get_by_email(emails[LIMIT])
        assert victim is not None
        assert uow.sign_in_failures.count(victim.id) == 0  # the account's count is untouched


def test_another_address_still_signs_in(throttled: Dependencies) -> None:  # CX-3
    (email,) = _users(throttled, 1)
    accounts = Accounts(throttled)
    _stuff(accounts)
    with request(STUFFER):
        assert accounts.sign_in(email=email, password=PASSWORD).reason is SignInReason.THROTTLED
    with request(OFFICE):
        assert accounts.sign_in(email=email, password=PASSWORD).ok


def test_the_address_is_let_in_again_once_its_failures_leave_the_window(
    throttled: Dependencies, clock: FakeClock
) -> None:  # CX-3
    (email,) = _users(throttled, 1)
    accounts = Accounts(throttled)
    _stuff(accounts, clock)
    with request(STUFFER):
        assert accounts.sign_in(email=email, password=PASSWORD).reason is SignInReason.THROTTLED
        clock.advance(minutes=31)  # the first failure is now older than an hour
        assert accounts.sign_in(email=email, password=PASSWORD).ok


def test_throttled_attempts_count_nowhere(
    throttled: Dependencies, clock: FakeClock
) -> None:  # CX-3
    (email,) = _users(throttled, 1)
    accounts = Accounts(throttled)
    _stuff(accounts)
    with request(STUFFER):
        for _ in range(throttled.settings.sign_in.max_failed_sign_ins + 2):
            accounts.sign_in(email=email, password=WRONG)  # a malicious lockout, throttled
    with request(OFFICE):
        assert accounts.sign_in(email=email, password=PASSWORD).ok
    clock.advance(hours=2)
    with request(STUFFER):
        assert accounts.sign_in(email=email, password=PASSWORD).ok


def test_a_right_password_is_not_a_failure(throttled: Dependencies) -> None:  # CX-3
    (email,) = _users(throttled, 1)
    accounts = Accounts(throttled)
    with request(OFFICE):
        for _ in range(LIMIT + 2):
            assert accounts.sign_in(email=email, password=PASSWORD).ok


def test_without_a_client_address_the_throttle_is_not_asked(
    throttled: Dependencies,
) -> None:  # CX-3
    (email,) = _users(throttled, 1)
    accounts = Accounts(throttled)
    with request(RequestContext(user_agent="no address")):
        for _ in range(LIMIT + 1):
            accounts.sign_in(email="nobody@example.com", password=WRONG)
    assert accounts.sign_in(email=email, password=PASSWORD).ok


def test_a_portal_may_plug_in_its_own_throttle_or_none(context: Dependencies) -> None:  # CX-3
    class Never:
        def __init__(self) -> None:
            self.asked: list[tuple[str, object]] = []

        def allows(self, client_address: str, *, now: object) -> bool:
            self.asked.append((client_address, now))
            return False

        def failed(self, client_address: str, *, now: object) -> None:
            raise AssertionError(f"a refused sign-in from {client_address} at {now} is counted")

    (email,) = _users(context, 1)
    never = Never()
    assert isinstance(never, SignInThrottle)
    with request(OFFICE):
        refused = Accounts(attrs.evolve(context, throttle=never)).sign_in(
            email=email, password=PASSWORD
        )
        assert refused.reason is SignInReason.THROTTLED
        assert (
            Accounts(attrs.evolve(context, throttle=None))
            .sign_in(email=email, password=PASSWORD)
            .ok
        )
    assert never.asked == [(OFFICE.client_address, context.now())]


def test_ipv6_clients_count_by_their_64_network() -> None:  # CX-3
    secret: Secret[bytes] = Secret(bytes(32))
    same = {client_key(a, secret) for a in ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9")}
    assert len(same) == 1
    assert client_key("2001:db8:1:3::1", secret) not in same
    assert client_key("192.0.2.1", secret) != client_key("192.0.2.2", secret)
    key = client_key("192.0.2.1", secret)
    assert "192.0.2.1" not in key
    assert client_key("192.0.2.1", Secret(bytes([1]) * 32)) != key
