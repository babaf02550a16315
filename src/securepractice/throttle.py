"""The sign-in throttle: failures counted by client address, asked before any hashing (CX-3).

Per-account lockout (LK-1, MF-7) stops guessing at one account; it does not
see credential stuffing, one guess at each of many accounts from one
address. The throttle counts failed sign-ins by the client address of the
request (`~securepractice.context.RequestContext`) and refuses an address
that failed ``SignInRules.throttle_limit`` times (100) within
``SignInRules.throttle_window`` (an hour), with LK-5's one public answer,
before the password is hashed or the account's counter is touched: a
throttled address cannot lock anyone out either. How it combines with the
lockouts is in the security page.

`SignInThrottle` is the port; `StoredThrottle`, the default, keeps the
failures in the portal's store, so every worker and server counts together.
An application with a shared cache may plug in its own.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from securepractice.keys import keyed_name
from securepractice.secret import Secret
from securepractice.settings import Settings
from securepractice.storage.ports import Storage

__all__ = ["SignInThrottle", "StoredThrottle", "client_key"]

#: The purpose of the key that names client addresses in the store.
CLIENT_THROTTLE = "client-throttle"
#: IPv6 clients are counted by their /64 network: one subscriber gets a whole /64.
_IPV6_NETWORK = 64


@runtime_checkable
class SignInThrottle(Protocol):
    """Counts failed sign-ins by client address and says whether an address may try again."""

    def allows(self, client_address: str, *, now: datetime) -> bool:
        """Whether a sign-in from ``client_address`` may be checked at ``now``."""
        ...

    def failed(self, client_address: str, *, now: datetime) -> None:
        """Count a failed sign-in from ``client_address`` at ``now``."""
        ...


def client_key(client_address: str, secret: Secret[bytes]) -> str:
    """Return the name the store keeps an address's failures under: a keyed hash, never the address.

    An IPv6 address counts with its /64 network, which one client may roam
    through at will; an IPv4 address counts alone.
    """
    address = ipaddress.ip_address(client_address)
    if address.version == 6:  # noqa: PLR2004 - the IP version, not a count
        network = ipaddress.ip_network(f"{address}/{_IPV6_NETWORK}", strict=False)
        named = str(network)
    else:
        named = str(address)
    return "client:" + keyed_name(secret, CLIENT_THROTTLE, named)


class StoredThrottle:
    """The shipped throttle: failures by client address in the portal's store (CX-3).

    ``limit`` failures within ``window`` refuse the address; each is kept
    under `client_key` of the address, made with ``secret``, and pruned by
    housekeeping once it is older than the window (OP-2).
    """

    def __init__(
        self, storage: Storage, *, limit: int, window: timedelta, secret: Secret[bytes]
    ) -> None:
        self._storage = storage
        self._limit = limit
        self._window = window
        self._secret = secret

    @classmethod
    def over(cls, storage: Storage, settings: Settings) -> StoredThrottle:
        """Return the throttle of ``settings.sign_in`` over ``storage``, keyed by its root key."""
        return cls(
            storage,
            limit=settings.sign_in.throttle_limit,
            window=settings.sign_in.throttle_window,
            secret=settings.root_key,
        )

    def __repr__(self) -> str:
        return f"StoredThrottle(limit={self._limit}, window={self._window})"

    def allows(self, client_address: str, *, now: datetime) -> bool:
        """Whether fewer than ``limit`` failures from the address fall within the window."""
        key = client_key(client_address, self._secret)
        with self._storage.unit_of_work(durable=False) as uow:
            failures = uow.client_failures.count_since(key, now - self._window)
        return failures < self._limit

    def failed(self, client_address: str, *, now: datetime) -> None:
        """Count one failure from the address."""
        key = client_key(client_address, self._secret)
        with self._storage.unit_of_work(durable=False) as uow:
            uow.client_failures.record(key, now)
