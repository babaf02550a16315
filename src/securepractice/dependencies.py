"""What every service needs from the world, in one public value.

`Portal` builds a `Dependencies` from its arguments; an application that
composes the services itself builds one directly and hands it to the
service facades (`~securepractice.portal.Accounts`,
`~securepractice.portal.PracticeAdministration`). Either way the portal
secret is checked against the store when the value is built (DP-2).
"""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import Any, Protocol

import attrs

from securepractice.clock import Clock, SystemClock
from securepractice.errors import SettingsError
from securepractice.events import EventHooks, Written, collecting
from securepractice.keys import fingerprint
from securepractice.messaging.ports import Messaging
from securepractice.policy.hashing import PasswordHasher
from securepractice.policy.password import CompromisedPasswords, PasswordPolicy
from securepractice.settings import Settings
from securepractice.storage.ports import Storage, UnitOfWork
from securepractice.throttle import SignInThrottle, StoredThrottle

__all__ = ["Dependencies", "PublishingUnit", "Service", "check_secret"]

#: Why a persistent store refuses to work without the portal secret (DP-2).
_NO_SECRET_MESSAGE = (
    "a store kept in a file or on a server is shared by every process of the portal, so the "
    "portal needs its own secret: give Settings(secret=Secret(...)) with at least 32 random "
    "bytes (such as secrets.token_bytes(32)), the same in every process and server, kept "
    "outside the code and the database"
)


def check_secret(storage: Storage, settings: Settings) -> None:
    """Refuse a persistent store without the portal secret; have the store remember it (DP-2).

    Raises `~securepractice.errors.SettingsError` (``settings.no_secret``)
    when ``storage`` is persistent and ``settings.secret`` is None, and
    lets the store raise ``settings.secret_mismatch`` when it was first
    used with another secret. With ``settings.previous_secret`` the store
    moves from that secret to the new one (key rotation). An in-memory
    store without a secret is fine: its codes live and die with the process.
    """
    if settings.secret is None:
        if storage.persistent:
            raise SettingsError("secret", _NO_SECRET_MESSAGE, code="settings.no_secret")
        return
    previous = settings.previous_secret
    storage.remember_secret(
        fingerprint(settings.secret),
        replacing=None if previous is None else fingerprint(previous),
    )


def _check_source(_instance: object, _attribute: attrs.Attribute[Any], value: Any) -> None:  # noqa: ANN401
    """Refuse a compromised-password source without ``is_compromised``, before any action."""
    if value is not None and not isinstance(value, CompromisedPasswords):
        raise SettingsError(
            "compromised",
            "must be a CompromisedPasswords source (an object with is_compromised(password)),"
            f" such as CompromisedPasswordFile or CompromisedPasswordRange, not {_kind(value)}",
        )


def _settings(value: object) -> Settings:
    """Refuse anything but a `Settings` before the hasher and policy are built from it."""
    if not isinstance(value, Settings):
        raise SettingsError("settings", f"must be a Settings, not {_kind(value)}")
    return value


@attrs.frozen(kw_only=True)
class Dependencies:
    """The store, the channels, the rules and the clock that the services work with.

    ``terms_version`` is the version of the Terms of Use users accept now
    (RG-3); ``portal_name`` is the proper name messages give the portal
    ("Your Practice Portal verification code is ..."). ``compromised`` is
    the source of known-compromised passwords (PW-10, RC-3, RC-4): the NIST
    profile needs one, and when given, new passwords and the passwords of
    sign-ins are checked against it. ``throttle`` counts failed sign-ins by
    client address (CX-3): by default in the store, None for none.
    ``events`` holds the application's hooks (OP-5). ``hasher`` and ``policy`` follow
    ``settings`` (and ``compromised``) unless given. Building one checks the
    portal secret against the store (`check_secret`, DP-2).
    """

    storage: Storage
    messaging: Messaging
    settings: Settings = attrs.field(factory=Settings, converter=_settings)
    clock: Clock = attrs.field(factory=SystemClock)
    compromised: CompromisedPasswords | None = attrs.field(default=None, validator=_check_source)
    hasher: PasswordHasher = attrs.field(
        default=attrs.Factory(lambda self: PasswordHasher(self.settings.hashing), takes_self=True)
    )
    policy: PasswordPolicy = attrs.field(
        default=attrs.Factory(
            lambda self: PasswordPolicy(self.settings.password, self.compromised), takes_self=True
        )
    )
    terms_version: str = "1"
    portal_name: str = "Practice Portal"
    throttle: SignInThrottle | None = attrs.field(
        default=attrs.Factory(
            lambda self: StoredThrottle.over(self.storage, self.settings), takes_self=True
        )
    )
    events: EventHooks = attrs.field(factory=EventHooks, eq=False)

    def __attrs_post_init__(self) -> None:
        # A wrong collaborator is refused here, not later as an AttributeError mid-action.
        if not callable(getattr(self.storage, "unit_of_work", None)):
            raise SettingsError("storage", f"must be a store, not {_kind(self.storage)}")
        if not isinstance(self.messaging, Messaging):
            raise SettingsError(
                "messaging", f"must be Messaging.using(...), not {_kind(self.messaging)}"
            )
        if self.compromised is not None and self.policy.compromised is not self.compromised:
            raise SettingsError(
                "compromised", "give the source once: as compromised, or to the PasswordPolicy"
            )
        check_secret(self.storage, self.settings)

    def now(self) -> datetime:
        """Return the current time, from the clock."""
        return self.clock.now()

    def unit(self, *, durable: bool = True) -> PublishingUnit:
        """Return a new unit of work of the store, for one ``with`` block: one user action.

        The audit events written in it are logged and handed to the hooks
        once it has committed (OP-5). ``durable=False`` for a unit whose
        writes mean nothing after a power cut
        (`~securepractice.storage.ports.Storage.unit_of_work`).
        """
        return PublishingUnit(self.storage.unit_of_work(durable=durable), self.events)


class PublishingUnit:
    """A store's unit of work that publishes its audit events once it has committed.

    ``with`` gives the store's own unit; the events the services wrote in it
    (`securepractice.events.written`) are published only if the block ended
    normally and the commit succeeded.
    """

    def __init__(self, unit: UnitOfWork, events: EventHooks) -> None:
        self._unit = unit
        self._events = events
        self._collecting = collecting()
        self._written: list[Written] = []

    def __enter__(self) -> UnitOfWork:
        entered = self._unit.__enter__()
        self._written = self._collecting.__enter__()
        return entered

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._collecting.__exit__()
        self._unit.__exit__(exc_type, exc, tb)
        if exc_type is None and self._written:
            self._events.publish(self._written)


def _kind(value: object) -> str:
    return "None" if value is None else type(value).__name__


class Service(Protocol):
    """Anything that holds `Dependencies`: what every service function acts through.

    The service facades are such objects; each action is one function of
    its flow's module, taking the facade as its first argument.
    """

    @property
    def deps(self) -> Dependencies:
        """The collaborators the action works with."""
        ...
