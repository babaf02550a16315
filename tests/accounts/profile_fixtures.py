"""A signed-in portal user, for the tests of the profile actions.

Each test module builds a ``portal`` fixture with `open_portal` over the
``context`` fixture of this folder's conftest, which runs once per store, so
every test runs on `MemoryStorage` and on `SQLiteStorage`.
"""

from __future__ import annotations

import attrs

from securepractice import (
    Credential,
    FakeClock,
    Outbox,
    Practice,
    RegistrationStatus,
    User,
)
from securepractice.accounts._shared import new_id
from securepractice.dependencies import Dependencies
from securepractice.portal import Accounts
from securepractice.records import AuditEvent, Phone, PhoneKind
from securepractice.secret import Secret
from securepractice.storage.ports import Storage

PASSWORD = "Sunshine-2026"
EMAIL = "dr.smith@example.com"
CELL = "+12025550143"
OFFICE = "+442079460958"


@attrs.frozen
class Portal:
    """A portal over one store, with one practice and one registered, signed-in user."""

    storage: Storage
    outbox: Outbox
    clock: FakeClock
    context: Dependencies
    actions: Accounts
    practice: Practice
    user: User
    token: Secret[str]

    def add_user(
        self, email: str, password: str = PASSWORD, *, phones: tuple[Phone, ...] = ()
    ) -> User:
        """Store another registered user of this portal's practice."""
        return add_user(self.context, self.practice.id, email, password, phones=phones)

    def sign_in(self, email: str = EMAIL, password: str = PASSWORD) -> Secret[str]:
        """Sign in and return the session token; fail the test if sign-in did not work."""
        result = self.actions.sign_in(email=email, password=password)
        assert result.ok, result.reason
        assert result.session_token is not None
        return result.session_token

    def stored_user(self, user_id: str | None = None) -> User:
        """The user as storage holds it now."""
        with self.storage.unit_of_work() as uow:
            user = uow.users.get(user_id or self.user.id)
        assert user is not None
        return user

    def credential(self, user_id: str | None = None) -> Credential:
        """The user's credential as storage holds it now."""
        with self.storage.unit_of_work() as uow:
            credential = uow.credentials.get(user_id or self.user.id)
        assert credential is not None
        return credential

    def failures(self, user_id: str | None = None) -> int:
        """The user's count of consecutive failed sign-ins."""
        with self.storage.unit_of_work() as uow:
            return uow.sign_in_failures.count(user_id or self.user.id)

    def events(self, action: str | None = None) -> list[AuditEvent]:
        """Every audit event about the user, oldest first; only ``action``'s when given."""
        with self.storage.unit_of_work() as uow:
            found = uow.audit.events(subject_id=self.user.id)
        return [e for e in found if action is None or e.action == action]

    def all_events(self) -> list[AuditEvent]:
        """Every audit event of the portal."""
        with self.storage.unit_of_work() as uow:
            return list(uow.audit.events())


def add_user(
    context: Dependencies,
    practice_id: str | None,
    email: str,
    password: str = PASSWORD,
    *,
    phones: tuple[Phone, ...] = (),
) -> User:
    """Store a registered user with ``password`` set now."""
    now = context.clock.now()
    user = User(
        id=new_id(),
        practice_id=practice_id,
        email=email,
        first_name="Dana",
        last_name="Smith",
        phones=phones,
        status=RegistrationStatus.REGISTERED,
        created_at=now,
    )
    with context.storage.unit_of_work() as uow:
        uow.users.add(user)
        uow.credentials.add(
            Credential(user_id=user.id, password_hash=context.hasher.hash(password), set_at=now)
        )
    return user


def open_portal(context: Dependencies, outbox: Outbox, clock: FakeClock) -> Portal:
    """Return a portal over ``context`` with one practice and one signed-in user."""
    practice = Practice(id=new_id(), name="Smile Dental", created_at=clock.now())
    with context.storage.unit_of_work() as uow:
        uow.practices.add(practice)
    actions = Accounts(context)
    phones = (Phone(number=CELL, kind=PhoneKind.CELL), Phone(number=OFFICE, kind=PhoneKind.PHONE))
    user = add_user(context, practice.id, EMAIL, phones=phones)
    result = actions.sign_in(email=EMAIL, password=PASSWORD)
    assert result.session_token is not None
    return Portal(
        storage=context.storage,
        outbox=outbox,
        clock=clock,
        context=context,
        actions=actions,
        practice=practice,
        user=user,
        token=result.session_token,
    )
