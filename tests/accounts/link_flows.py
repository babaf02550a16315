"""What the link flows' tests share: the account actions over one context, and how to read back.

A test reads links and codes from the outbox, as a user reads their mail
and phone, and reads records from the store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs

from securepractice.dependencies import Dependencies
from securepractice.errors import Conflict
from securepractice.portal import Accounts
from securepractice.records import (
    AuditEvent,
    Challenge,
    Credential,
    LinkToken,
    Practice,
    User,
    revised,
)
from securepractice.storage.ports import Storage
from securepractice.testing import FakeClock, Outbox


def token_of(link: str) -> str:
    """Return the ``token`` query parameter of an e-mailed link."""
    return parse_qs(urlsplit(link).query)["token"][0]


@attrs.define
class Flows:
    """The account actions over one context, and what a test reads back."""

    context: Dependencies
    outbox: Outbox
    clock: FakeClock
    accounts: Accounts

    @property
    def store(self) -> Storage:
        """The store the flows use."""
        return self.context.storage

    def link(self, email: str) -> str:
        """The link in the latest email to ``email``."""
        return self.outbox.last_link(email)

    def token(self, email: str) -> str:
        """The token of the link in the latest email to ``email``."""
        return token_of(self.link(email))

    def practice(self, name: str = "Smile Dental") -> Practice:
        """Create a practice."""
        return self.accounts.create_practice(name=name, address="1 Main St")

    def user(self, user_id: str) -> User:
        """The user as stored now."""
        with self.store.unit_of_work() as uow:
            found = uow.users.get(user_id)
        assert found is not None
        return found

    def update_user(self, user_id: str, **changes: Any) -> User:
        """Change a stored user, as another service (or support) would."""
        with self.store.unit_of_work() as uow:
            found = uow.users.get(user_id)
            assert found is not None
            changed = revised(found, **changes)
            uow.users.save(changed, expected_version=found.version)
        return changed

    def credential(self, user_id: str) -> Credential | None:
        """The user's credential as stored now."""
        with self.store.unit_of_work() as uow:
            return uow.credentials.get(user_id)

    def events(self, action: str | None = None) -> list[AuditEvent]:
        """Every audit event, oldest first; only ``action``'s when given."""
        with self.store.unit_of_work() as uow:
            found = uow.audit.events()
        return [e for e in found if action is None or e.action == action]


class LosingUnit:
    """A unit whose saves to one repository lose to a simultaneous change: `Conflict`."""

    def __init__(self, store: LosingStore) -> None:
        self.store = store
        self.inner = store.inner.unit_of_work()

    def __enter__(self) -> Any:
        uow = self.inner.__enter__()

        def lose(record: LinkToken | Challenge, *, expected_version: int) -> None:
            self.store.lost += 1
            msg = f"record {record.id} moved from version {expected_version}"
            raise Conflict(msg)

        getattr(uow, self.store.repository).save = lose
        return uow

    def __exit__(self, *exc: object) -> None:
        self.inner.__exit__(*exc)  # type: ignore[arg-type]


@attrs.define
class LosingStore:
    """A store whose units lose every race for a link (or ``repository``'s records).

    ``lost`` counts the saves refused.
    """

    inner: Storage
    repository: str = "link_tokens"
    lost: int = 0

    def unit_of_work(self, *, durable: bool = True) -> Any:  # noqa: ARG002 - the inner store keeps it
        return LosingUnit(self)

    def close(self) -> None:
        self.inner.close()

    @property
    def persistent(self) -> bool:
        return self.inner.persistent

    def remember_secret(self, fingerprint: str, *, replacing: str | None = None) -> None:
        self.inner.remember_secret(fingerprint, replacing=replacing)


class OvertakenStore:
    """A store where another action saves a verification first, between a unit's read and save.

    The first unit that saves a challenge is told `Conflict`, as a store is
    when another unit saved over the same version first; once that unit has
    rolled back, ``rival`` runs on the real store: the action that won.
    """

    def __init__(self, inner: Storage, rival: Callable[[], object]) -> None:
        self.inner = inner
        self.rival = rival
        self.overtaken = False

    def unit_of_work(self, *, durable: bool = True) -> Any:  # noqa: ARG002 - the inner store keeps it
        return _OvertakenUnit(self)

    def close(self) -> None:
        self.inner.close()

    @property
    def persistent(self) -> bool:
        return self.inner.persistent

    def remember_secret(self, fingerprint: str, *, replacing: str | None = None) -> None:
        self.inner.remember_secret(fingerprint, replacing=replacing)


class _OvertakenUnit:
    def __init__(self, store: OvertakenStore) -> None:
        self.store = store
        self.inner = store.inner.unit_of_work()
        self.lost = False

    def __enter__(self) -> Any:
        uow = self.inner.__enter__()
        save = uow.challenges.save

        def save_or_lose(challenge: Challenge, *, expected_version: int) -> None:
            if self.store.overtaken:
                save(challenge, expected_version=expected_version)
                return
            self.store.overtaken = self.lost = True
            msg = f"challenge {challenge.id} moved from version {expected_version}"
            raise Conflict(msg)

        uow.challenges.save = save_or_lose  # type: ignore[method-assign]
        return uow

    def __exit__(self, *exc: object) -> None:
        self.inner.__exit__(*exc)  # type: ignore[arg-type]
        if self.lost:
            self.store.rival()
