"""What the link flows' tests share: the flows over one context, and how a test reads back.

A test reads links and codes from the outbox, as a user reads their mail
and phone, and reads records from the store.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs

from securepractice import FakeClock
from securepractice.accounts._service import AccountContext
from securepractice.accounts.registration import RegistrationActions
from securepractice.accounts.reset import ResetActions
from securepractice.accounts.verification import VerificationActions
from securepractice.messaging.outbox import Outbox
from securepractice.records import AuditEvent, Credential, Practice, User
from securepractice.storage.ports import Storage

#: The portal's address in every link the tests read.


def token_of(link: str) -> str:
    """Return the ``token`` query parameter of an e-mailed link."""
    return parse_qs(urlsplit(link).query)["token"][0]


@attrs.define
class Flows:
    """The link flows over one context, and what a test reads back."""

    context: AccountContext
    outbox: Outbox
    clock: FakeClock
    registration: RegistrationActions
    verification: VerificationActions
    reset: ResetActions

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
        return self.registration.create_practice(name=name, address="1 Main St")

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
            changed = attrs.evolve(found, **changes)
            uow.users.update(changed)
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
    """A unit whose ``consume`` loses to a simultaneous use, as a store without locks may."""

    def __init__(self, store: Storage) -> None:
        self.inner = store.unit_of_work()

    def __enter__(self) -> Any:
        uow = self.inner.__enter__()
        uow.link_tokens.consume = lambda *_a, **_k: None  # type: ignore[method-assign]
        return uow

    def __exit__(self, *exc: object) -> None:
        self.inner.__exit__(*exc)  # type: ignore[arg-type]


@attrs.frozen
class LosingStore:
    """A store whose units lose every race for a link (see `LosingUnit`)."""

    inner: Storage

    def unit_of_work(self) -> Any:
        return LosingUnit(self.inner)

    def close(self) -> None:
        self.inner.close()
