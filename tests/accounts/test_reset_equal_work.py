"""Equal work on every "Forgot password" request, known email or not (IN-4, RS-1).

As for sign-in, the work is counted, never timed: `FaultyStorage` records
the name of every storage operation, and a spy counts the link tokens
hashed. An unknown email, a malformed one, a deactivated account and one not
registered yet must make the same calls in the same order as a registered
user's request, on every store; only the email that follows differs.
"""

from __future__ import annotations

import attrs
import pytest

from accounts.conftest import recording
from accounts.link_flows import token_of
from securepractice.accounts._shared import email_lookup
from securepractice.dependencies import Dependencies
from securepractice.portal import Accounts
from securepractice.records import TokenPurpose
from securepractice.testing import Outbox, World
from securepractice.verification import tokens

EMAIL = "dr.smith@example.com"

#: Every request, whoever it names: one unit, the same calls in it.
REQUEST_CALLS = [
    "begin",
    "users.get_by_email",
    "credentials.get",
    "challenges.latest",
    "link_tokens.list_for_user",
    "link_tokens.add",
    "audit.append",
    "commit",
]
#: A second request also supersedes the first's link, whoever it names.
AGAIN_CALLS = [*REQUEST_CALLS[:5], "link_tokens.save", *REQUEST_CALLS[5:]]

REQUESTS = {
    "registered account": EMAIL,
    "locked account": "locked@example.com",
    "unknown email": "nobody@example.com",
    "malformed email": "not an email",
    "surrogate in the email": "a\ud800@example.com",
    "deactivated account": "gone@example.com",
    "not registered yet": "invited@example.com",
}


@attrs.frozen
class Watched:
    """The services over a store that names each operation, and a count of tokens hashed."""

    context: Dependencies
    accounts: Accounts
    storage_calls: list[str]
    hashed: list[int]

    def request(self, email: str) -> tuple[object, list[str], int]:
        """Ask "Forgot password" once; return its answer and the work it cost."""
        self.storage_calls.clear()
        self.hashed.clear()
        answer = self.accounts.forgot_password(email=email)
        return answer, list(self.storage_calls), len(self.hashed)


@pytest.fixture
def watched(context: Dependencies, monkeypatch: pytest.MonkeyPatch) -> Watched:
    storage, calls = recording(context, monkeypatch)
    hashed: list[int] = []
    original = tokens.hash_token

    def spy(token: object) -> bytes:
        hashed.append(1)
        return original(token)  # type: ignore[arg-type]

    monkeypatch.setattr(tokens, "hash_token", spy)
    context = attrs.evolve(context, storage=storage)
    world = World(context)
    practice = world.practice()
    world.user(EMAIL, practice=practice)
    world.user("locked@example.com", practice=practice, locked=True)
    world.user("gone@example.com", practice=practice, deactivated=True)
    world.user("invited@example.com", practice=practice, password=None)
    return Watched(context, Accounts(context), calls, hashed)


def test_in_4_every_request_makes_the_same_storage_calls_and_hashes_one_token(
    watched: Watched,
) -> None:
    """IN-4, RS-1: the same answer, the same calls in the same order, one token hashed."""
    for case, email in REQUESTS.items():
        assert watched.request(email) == (None, REQUEST_CALLS, 1), case


def test_in_4_a_repeated_request_supersedes_the_earlier_link_whoever_it_names(
    watched: Watched,
) -> None:
    """IN-4: asking again costs one more save for every email alike, known or not."""
    for case, email in REQUESTS.items():
        watched.request(email)
        assert watched.request(email) == (None, AGAIN_CALLS, 1), case


def test_in_4_an_unknown_email_keeps_an_unsent_link_under_its_key(
    watched: Watched, outbox: Outbox
) -> None:
    """IN-4, RS-1: the link is stored under the address's key, never the address, never sent.

    Two spellings of one address are one key: the second request supersedes the first's link.
    """
    watched.accounts.forgot_password(email="nobody@example.com")
    watched.accounts.forgot_password(email="NOBODY@example.com")
    _, key = email_lookup(watched.context.settings, "nobody@example.com")
    assert "nobody" not in key
    with watched.context.unit() as uow:
        links = uow.link_tokens.list_for_user(key, TokenPurpose.PASSWORD_RESET)
    assert [link.superseded for link in links] == [True, False]
    assert outbox.emails == ()


def test_in_4_only_a_registered_account_gets_a_link_it_can_use(
    watched: Watched, outbox: Outbox
) -> None:
    """RS-1: of all the requests, the registered and the locked accounts get a reset link;
    the one not registered yet is sent back to its invitation; the rest get nothing."""
    for email in REQUESTS.values():
        watched.accounts.forgot_password(email=email)
    subjects = {mail.to: mail.subject for mail in outbox.emails}
    assert sorted(subjects) == sorted([EMAIL, "locked@example.com", "invited@example.com"])
    assert subjects["invited@example.com"].startswith("Finish registering")
    for email in (EMAIL, "locked@example.com"):
        step = watched.accounts.open_reset_link(token_of(outbox.last_link(email)))
        assert step.email == email
