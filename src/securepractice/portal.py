"""The whole account layer wired together, in one line for the embedded default.

```python
portal = Portal.sqlite("portal.db", messaging=Messaging.using(ConsoleMessenger()),
                       settings=Settings(links=LinkRules(base_url="https://portal.example")))
practice = portal.accounts.create_practice(name="Smile Dental")
portal.accounts.invite(practice_id=practice.id, email="dr.smith@example.com")
```
"""

from __future__ import annotations

import os
from types import TracebackType

from typing_extensions import Self, TypedDict, Unpack

from securepractice.accounts._service import AccountContext
from securepractice.accounts.profile import ProfileActions
from securepractice.accounts.registration import RegistrationActions
from securepractice.accounts.reset import ResetActions
from securepractice.accounts.verification import VerificationActions
from securepractice.clock import Clock, SystemClock
from securepractice.errors import SettingsError
from securepractice.messaging.ports import Messaging
from securepractice.practice.billing import BillingActions, PaymentProcessor
from securepractice.practice.dashboard import DashboardActions
from securepractice.practice.support import SupportActions
from securepractice.practice.users import ManageUsersActions
from securepractice.settings import Settings
from securepractice.storage.memory import MemoryStorage
from securepractice.storage.ports import Storage
from securepractice.storage.sqlite import SQLiteStorage

__all__ = ["Accounts", "Portal", "PracticeAdministration"]


class Accounts(RegistrationActions, VerificationActions, ResetActions, ProfileActions):
    """Every action a portal user takes for their own account, one method each.

    Invitation and registration, "Verify your Identity", sign-in and
    sessions, forgotten password, change of password, profile.
    """


class PracticeAdministration(ManageUsersActions, SupportActions, DashboardActions):
    """What User Managers and support staff do: Manage Users, support actions, dashboards.

    Every action asks the role rules first (`securepractice.policy.roles`)
    and refuses with `PermissionDenied` outside the actor's reach (UM-2).
    """


class PortalOptions(TypedDict, total=False):
    """The optional settings of a `Portal`, as keyword arguments."""

    settings: Settings | None
    clock: Clock | None
    terms_version: str
    portal_name: str
    payment_processor: PaymentProcessor | None


class Portal:
    """The account and practice services over one store, one set of channels and one clock.

    ``portal.accounts`` holds every action a user takes for their own
    account, ``portal.practice`` what User Managers and support staff do,
    and ``portal.billing`` the SecureMail money rules.
    """

    def __init__(
        self,
        *,
        storage: Storage,
        messaging: Messaging,
        settings: Settings | None = None,
        clock: Clock | None = None,
        terms_version: str = "1",
        portal_name: str = "Practice Portal",
        payment_processor: PaymentProcessor | None = None,
    ) -> None:
        self.context = AccountContext(
            storage=storage,
            messaging=messaging,
            settings=settings or Settings(),
            clock=clock or SystemClock(),
            terms_version=terms_version,
            portal_name=portal_name,
        )
        self.accounts = Accounts(self.context)
        self.practice = PracticeAdministration(self.context)
        self._billing = (
            None if payment_processor is None else BillingActions(self.context, payment_processor)
        )

    @property
    def billing(self) -> BillingActions:
        """SecureMail purchases, monthly billing and invoices (UM-6, UM-7).

        Needs the ``payment_processor`` the portal was built with.
        """
        if self._billing is None:
            raise SettingsError(
                "payment_processor",
                "give the Portal a PaymentProcessor before SecureMail can be bought or billed",
            )
        return self._billing

    @classmethod
    def sqlite(
        cls, path: str | os.PathLike[str], *, messaging: Messaging, **options: Unpack[PortalOptions]
    ) -> Portal:
        """Open (and create or migrate) the SQLite database at ``path``: the embedded default."""
        return cls(storage=SQLiteStorage(path), messaging=messaging, **options)

    @classmethod
    def in_memory(cls, *, messaging: Messaging, **options: Unpack[PortalOptions]) -> Portal:
        """Keep everything in memory: for tests and demonstrations."""
        return cls(storage=MemoryStorage(), messaging=messaging, **options)

    def close(self) -> None:
        """Release the store."""
        self.context.storage.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
