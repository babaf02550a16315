"""What every service needs from the world, in one public value.

`Portal` builds a `Dependencies` from its arguments; an application that
composes the services itself builds one directly and hands it to the
service facades (`~securepractice.portal.Accounts`,
`~securepractice.portal.PracticeAdministration`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import attrs

from securepractice.clock import Clock, SystemClock
from securepractice.messaging.ports import Messaging
from securepractice.policy.hashing import PasswordHasher
from securepractice.policy.password import PasswordPolicy
from securepractice.settings import Settings
from securepractice.storage.ports import Storage, UnitOfWork

__all__ = ["Dependencies", "Service"]


@attrs.frozen(kw_only=True)
class Dependencies:
    """The store, the channels, the rules and the clock that the services work with.

    ``terms_version`` is the version of the Terms of Use users accept now
    (RG-3); ``portal_name`` is the proper name messages give the portal
    ("Your Practice Portal verification code is ..."). ``hasher`` and
    ``policy`` follow ``settings`` unless given.
    """

    storage: Storage
    messaging: Messaging
    settings: Settings = attrs.field(factory=Settings)
    clock: Clock = attrs.field(factory=SystemClock)
    hasher: PasswordHasher = attrs.field(
        default=attrs.Factory(lambda self: PasswordHasher(self.settings.hashing), takes_self=True)
    )
    policy: PasswordPolicy = attrs.field(
        default=attrs.Factory(lambda self: PasswordPolicy(self.settings.password), takes_self=True)
    )
    terms_version: str = "1"
    portal_name: str = "Practice Portal"

    def now(self) -> datetime:
        """Return the current time, from the clock."""
        return self.clock.now()

    def unit(self) -> UnitOfWork:
        """Return a new unit of work of the store: one user action."""
        return self.storage.unit_of_work()


class Service(Protocol):
    """Anything that holds `Dependencies`: what every service function acts through.

    The service facades are such objects; each action is one function of
    its flow's module, taking the facade as its first argument.
    """

    @property
    def deps(self) -> Dependencies:
        """The collaborators the action works with."""
        ...
