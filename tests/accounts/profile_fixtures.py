"""A signed-in portal user, for the tests of the profile actions.

The user is stored and signed in by `securepractice.testing.World`; its
``world`` stores more users of the same portal.

Each test module builds a ``portal`` fixture with `open_portal` over the
``context`` fixture of this folder's conftest, which runs once per store, so
every test runs on `MemoryStorage` and on `SQLiteStorage`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import attrs

from securepractice import Credential, InvalidToken, Practice, User
from securepractice.dependencies import Dependencies
from securepractice.portal import Accounts
from securepractice.records import AuditEvent, Phone, PhoneKind
from securepractice.secret import Secret
from securepractice.storage.ports import Storage
from securepractice.testing import PASSWORD, FakeClock, Outbox, World

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
    world: World
    practice: Practice
    user: User
    token: Secret[str]

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

    def session_ended(self, token: str | Secret[str]) -> bool:
        """Whether the session behind ``token`` can no longer be used."""
        try:
            self.actions.touch_session(token)
        except InvalidToken:
            return True
        return False

    def two_step_off(self, token: Secret[str] | None = None) -> User:
        """Turn two-step verification off as the user does: a code sent the first way offered."""
        token = token or self.token
        option = self.actions.two_step_off_options(token)[0]
        self.actions.send_two_step_off_code(token, option=option)
        return self.actions.set_two_step(
            token,
            enabled=False,
            current_password=PASSWORD,
            code=self.outbox.last_code(option.destination),
        )


def open_portal(context: Dependencies, outbox: Outbox, clock: FakeClock) -> Portal:
    """Return a portal over ``context`` with one practice and one signed-in user."""
    world = World(context)
    practice = world.practice()
    phones = (Phone(number=CELL, kind=PhoneKind.CELL), Phone(number=OFFICE, kind=PhoneKind.PHONE))
    member = world.member(EMAIL, practice=practice, phones=phones)
    return Portal(
        storage=context.storage,
        outbox=outbox,
        clock=clock,
        context=context,
        actions=Accounts(context),
        world=world,
        practice=practice,
        user=member.user,
        token=Secret(member.token),
    )


def at_once(action: Callable[[], str], times: int = 2) -> list[str]:
    """Run ``action`` in ``times`` threads released together; return what each said, sorted."""
    barrier = threading.Barrier(times)
    said: list[str] = []

    def run() -> None:
        barrier.wait()
        said.append(action())

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(said)
