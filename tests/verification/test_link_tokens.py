"""Invitation and reset link tokens (RG-1, RG-4, RG-6, RS-1, RS-5)."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from securepractice.errors import InvalidInput, InvalidToken, SettingsError
from securepractice.records import LinkToken, TokenPurpose
from securepractice.secret import Secret
from securepractice.settings import LinkRules
from securepractice.testing import FakeClock
from securepractice.verification.tokens import (
    INVALID_LINK_MESSAGE,
    IssuedToken,
    TokenProblem,
    build_link,
    hash_token,
    issue_token,
    open_token,
    supersede,
    token_problem,
    use_token,
)

INVITE, RESET = TokenPurpose.INVITATION, TokenPurpose.PASSWORD_RESET


def new(
    link_rules: LinkRules, clock: FakeClock, purpose: TokenPurpose = INVITE, user: str = "u1"
) -> IssuedToken:
    return issue_token(user_id=user, purpose=purpose, now=clock.now(), rules=link_rules)


def test_a_token_has_the_configured_randomness_from_secrets(
    link_rules: LinkRules, clock: FakeClock
) -> None:
    """RG-1: 32 random bytes (default, at least 16 = 128 bits) in URL-safe base64."""
    token = new(link_rules, clock).token.reveal()
    assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) == 32
    short = new(attrs.evolve(link_rules, token_bytes=16), clock).token.reveal()
    assert len(base64.urlsafe_b64decode(short + "=" * (-len(short) % 4))) == 16
    assert len({new(link_rules, clock).token.reveal() for _ in range(100)}) == 100
    with pytest.raises(SettingsError):
        LinkRules(token_bytes=15)


def test_a_token_is_stored_only_as_its_sha256(link_rules: LinkRules, clock: FakeClock) -> None:
    """RG-1: the record holds the SHA-256 of the token and nothing from which to read it back."""
    issued = new(link_rules, clock)
    token = issued.token.reveal()
    assert issued.record.token_hash == hashlib.sha256(token.encode()).digest()
    assert hash_token(token) == hash_token(issued.token) == issued.record.token_hash
    for value in attrs.asdict(issued.record).values():
        assert token not in str(value)


@pytest.mark.parametrize(
    ("purpose", "lifetime"), [(INVITE, timedelta(days=14)), (RESET, timedelta(hours=1))]
)
def test_a_token_expires_after_its_purpose_s_lifetime_exactly(
    link_rules: LinkRules, clock: FakeClock, purpose: TokenPurpose, lifetime: timedelta
) -> None:
    """RG-1, RS-1: invitations last 14 days and reset links 1 hour (defaults)."""
    issued = new(link_rules, clock, purpose)
    assert issued.record.expires_at == clock.now() + lifetime
    clock.advance(lifetime - timedelta(microseconds=1))
    assert open_token(issued.token, issued.record, purpose=purpose, now=clock.now()) == (
        issued.record
    )
    clock.advance(microseconds=1)
    with pytest.raises(InvalidToken):
        open_token(issued.token, issued.record, purpose=purpose, now=clock.now())
    assert (
        token_problem(issued.token, issued.record, purpose=purpose, now=clock.now())
        is TokenProblem.EXPIRED
    )


def test_lifetimes_come_from_the_settings(clock: FakeClock) -> None:
    rules = LinkRules(invitation_lifetime=timedelta(days=2), reset_lifetime=timedelta(minutes=5))
    assert new(rules, clock, INVITE).record.expires_at == clock.now() + timedelta(days=2)
    assert new(rules, clock, RESET).record.expires_at == clock.now() + timedelta(minutes=5)


def test_opening_a_link_does_not_use_it_up_completing_does(
    link_rules: LinkRules, clock: FakeClock
) -> None:
    """RG-1: open it, close the tab, open it again; once the flow completes, it is spent."""
    issued = new(link_rules, clock)
    for _ in range(3):
        assert open_token(issued.token, issued.record, purpose=INVITE, now=clock.now()) == (
            issued.record
        )
    clock.advance(minutes=5)
    used = use_token(issued.token, issued.record, purpose=INVITE, now=clock.now())
    assert used.used_at == clock.now()
    assert used.version == issued.record.version + 1
    assert attrs.evolve(used, used_at=None, version=issued.record.version) == issued.record
    for check in (open_token, use_token):
        with pytest.raises(InvalidToken):
            check(issued.token, used, purpose=INVITE, now=clock.now())
    assert token_problem(issued.token, used, purpose=INVITE, now=clock.now()) is TokenProblem.USED


def test_a_flow_opened_in_time_cannot_complete_after_expiry(
    link_rules: LinkRules, clock: FakeClock
) -> None:
    """RG-1: the expiry is checked again when the flow completes."""
    issued = new(link_rules, clock, RESET)
    clock.advance(minutes=59)
    open_token(issued.token, issued.record, purpose=RESET, now=clock.now())
    clock.advance(minutes=1)
    with pytest.raises(InvalidToken):
        use_token(issued.token, issued.record, purpose=RESET, now=clock.now())


def test_supersede_marks_the_user_s_tokens_of_that_purpose_only(
    link_rules: LinkRules, clock: FakeClock
) -> None:
    """RG-4: re-inviting invalidates every earlier link of that user, and nothing else.

    Only the tokens that change come back, each revised, to be saved over the
    version they came from.
    """
    mine = [new(link_rules, clock, INVITE, "u1") for _ in range(3)]
    my_reset = new(link_rules, clock, RESET, "u1")
    theirs = new(link_rules, clock, INVITE, "u2")
    spent = use_token(mine[0].token, mine[0].record, purpose=INVITE, now=clock.now())
    records = [spent, mine[1].record, mine[2].record, my_reset.record, theirs.record]
    changed = supersede(records, user_id="u1", purpose=INVITE)
    assert [t.id for t in changed] == [mine[1].record.id, mine[2].record.id]
    assert all(t.superseded for t in changed)
    assert [t.version for t in changed] == [1, 1]
    assert [attrs.evolve(t, superseded=False, version=0) for t in changed] == records[1:3]
    for issued, record in zip(mine[1:], changed, strict=True):
        with pytest.raises(InvalidToken):
            open_token(issued.token, record, purpose=INVITE, now=clock.now())
        assert token_problem(issued.token, record, purpose=INVITE, now=clock.now()) is (
            TokenProblem.SUPERSEDED
        )
    assert open_token(my_reset.token, my_reset.record, purpose=RESET, now=clock.now()) == (
        my_reset.record
    )
    assert open_token(theirs.token, theirs.record, purpose=INVITE, now=clock.now()) == (
        theirs.record
    )
    assert supersede(changed, user_id="u1", purpose=INVITE) == ()
    assert supersede([], user_id="u1", purpose=INVITE) == ()


def test_every_token_has_its_own_flow_id(link_rules: LinkRules, clock: FakeClock) -> None:
    """RS-2, RG-4: two links made in the same instant are two flows, told apart by id."""
    first, second = new(link_rules, clock, RESET), new(link_rules, clock, RESET)
    assert first.record.created_at == second.record.created_at
    assert first.record.id != second.record.id


def test_every_refusal_is_the_same_error_and_the_reason_is_separate(
    link_rules: LinkRules, clock: FakeClock
) -> None:
    """RG-6: unknown, expired, used, superseded (and wrong purpose): one error, one message."""
    fresh = new(link_rules, clock)
    other = new(link_rules, clock)
    cases = {
        TokenProblem.UNKNOWN: (fresh.token, None),
        TokenProblem.USED: (
            fresh.token,
            use_token(fresh.token, fresh.record, purpose=INVITE, now=clock.now()),
        ),
        TokenProblem.SUPERSEDED: (fresh.token, attrs.evolve(fresh.record, superseded=True)),
        TokenProblem.EXPIRED: (fresh.token, attrs.evolve(fresh.record, expires_at=clock.now())),
        TokenProblem.WRONG_PURPOSE: (fresh.token, attrs.evolve(fresh.record, purpose=RESET)),
    }
    errors = []
    for problem, (token, record) in cases.items():
        assert token_problem(token, record, purpose=INVITE, now=clock.now()) is problem
        with pytest.raises(InvalidToken) as caught:
            open_token(token, record, purpose=INVITE, now=clock.now())
        errors.append((type(caught.value), caught.value.code, str(caught.value)))
    assert len(set(errors)) == 1
    assert errors[0] == (InvalidToken, "token.invalid", f"{INVALID_LINK_MESSAGE} [token.invalid]")
    assert token_problem(other.token, fresh.record, purpose=INVITE, now=clock.now()) is (
        TokenProblem.UNKNOWN
    )
    assert token_problem(fresh.token, fresh.record, purpose=INVITE, now=clock.now()) is None


@pytest.mark.parametrize("token", [None, 42, b"abc", "x" * 513, "caf\u00e9", ["a"]])
def test_anything_that_cannot_be_a_token_is_refused_the_same_way(
    token: object, link_rules: LinkRules, clock: FakeClock
) -> None:
    """RG-6: not text, too long or not ASCII: the same `InvalidToken`, reason ``unknown``."""
    record = new(link_rules, clock).record
    with pytest.raises(InvalidToken) as caught:
        hash_token(token)  # type: ignore[arg-type]
    assert caught.value.message == INVALID_LINK_MESSAGE
    with pytest.raises(InvalidToken):
        open_token(token, record, purpose=INVITE, now=clock.now())  # type: ignore[arg-type]
    problem = token_problem(token, record, purpose=INVITE, now=clock.now())  # type: ignore[arg-type]
    assert problem is TokenProblem.UNKNOWN


def test_a_naive_now_is_refused(link_rules: LinkRules) -> None:
    from datetime import datetime  # noqa: PLC0415 - only this test builds a naive datetime

    with pytest.raises(InvalidInput):
        issue_token(
            user_id="u1",
            purpose=INVITE,
            now=datetime(2026, 1, 5),  # noqa: DTZ001
            rules=link_rules,
        )


@pytest.mark.parametrize(
    ("base_url", "purpose", "prefix"),
    [
        ("https://portal.example.com", INVITE, "https://portal.example.com/register?token="),
        ("https://portal.example.com/", RESET, "https://portal.example.com/reset-password?token="),
        ("https://example.org/app", INVITE, "https://example.org/app/register?token="),
    ],
)
def test_links_are_built_from_the_configured_base_url(
    base_url: str, purpose: TokenPurpose, prefix: str, clock: FakeClock
) -> None:
    """RS-5: the link's address is the base URL and the purpose's path; the token is its query."""
    rules = LinkRules(base_url=base_url)
    issued = new(rules, clock, purpose)
    link = build_link(issued.token, purpose=purpose, rules=rules)
    assert isinstance(link, Secret)
    assert link.reveal() == prefix + issued.token.reveal()
    assert parse_qs(urlsplit(link.reveal()).query) == {"token": [issued.token.reveal()]}


def test_link_paths_come_from_the_settings() -> None:
    rules = LinkRules(base_url="https://p.example", invitation_path="/join", reset_path="/r/new")
    token = Secret("abc")
    assert (
        build_link(token, purpose=INVITE, rules=rules).reveal()
        == "https://p.example/join?token=abc"
    )
    assert build_link(token, purpose=RESET, rules=rules).reveal() == (
        "https://p.example/r/new?token=abc"
    )
    for bad in ("join", "//evil.example/x", "/a?b=c", "/a#b", "/a b"):
        with pytest.raises(SettingsError):
            LinkRules(invitation_path=bad)


def test_a_missing_base_url_is_a_clear_error(clock: FakeClock) -> None:
    """RS-5: with no configured address, no link is built (never one guessed from a request)."""
    issued = new(LinkRules(), clock)
    with pytest.raises(SettingsError) as caught:
        build_link(issued.token, purpose=INVITE, rules=LinkRules())
    assert caught.value.field == "base_url"
    assert "base_url" in str(caught.value)


@given(token=st.text(alphabet="ABCxyz0129-_", min_size=1, max_size=64))
def test_the_link_carries_any_token_intact_under_the_configured_host(token: str) -> None:
    """RS-5: whatever the token, the host is the configured one and the token reads back."""
    rules = LinkRules(base_url="https://portal.example.com")
    link = urlsplit(build_link(Secret(token), purpose=RESET, rules=rules).reveal())
    assert (link.scheme, link.netloc, link.path) == (
        "https",
        "portal.example.com",
        "/reset-password",
    )
    assert parse_qs(link.query) == {"token": [token]}


def test_a_record_is_storable_plain_fields(link_rules: LinkRules, clock: FakeClock) -> None:
    """The record is made of bytes, str, an enum, aware datetimes, None and a bool."""
    record = new(link_rules, clock).record
    assert isinstance(record, LinkToken)
    assert isinstance(record.token_hash, bytes)
    assert record.created_at.tzinfo is not None
    assert (record.used_at, record.superseded) == (None, False)
