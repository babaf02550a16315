"""Security events once committed: logged by the module that wrote them, and given to hooks (OP-5).

Every audit event a service writes is also, once its unit of work has
committed, logged through ``logging.getLogger`` of the module that wrote it
(``securepractice.accounts.signin`` for a sign-in), at WARNING for locks and
outages and INFO for the rest, and handed to the application's hooks. A
rolled-back unit logs and publishes nothing: what the log and the hooks say
happened, happened.

Hooks are typed: an application subscribes a handler to one kind of event,
and gets that kind only.

```python
def page_security_team(event: AccountLocked) -> None: ...

portal.events.subscribe(AccountLocked, page_security_team)
```

A handler runs in the thread of the action, after the action's changes are
saved; an exception in it is logged and never reaches the user's action. A
handler that does slow work should hand it to a queue.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import attrs

from securepractice.records import AuditEvent

if TYPE_CHECKING:
    import logging

__all__ = [
    "AccountLocked",
    "EventHooks",
    "PasswordChanged",
    "RoleGranted",
    "RoleRevoked",
    "SecureMailBought",
    "SecurityEvent",
    "SignInRefused",
    "SignedIn",
    "Written",
    "collecting",
    "written",
]

#: The top logger of the library, which holds its ``NullHandler``.
_LIBRARY = "securepractice"

#: Actions logged at WARNING: an account or a channel shut, or a service out.
WARNING_ACTIONS = frozenset(
    {
        "account.locked",
        "code_guesses.paused",
        "code_guesses.stopped",
        "code.delivery_failed",
        "notice.failed",
        "password.compromised_check_failed",
        "sign_in.throttled",
        "audit.forwarding_failed",
    }
)


@attrs.frozen
class SecurityEvent:
    """A committed audit event of a kind applications care about; ``audit`` is the event itself."""

    #: The audit actions this kind is made from, and the outcome they must have (None: any).
    actions: ClassVar[frozenset[str]] = frozenset()
    outcome: ClassVar[str | None] = "ok"

    audit: AuditEvent

    @property
    def user_id(self) -> str | None:
        """The user the event is about: its subject, or else whoever acted."""
        return self.audit.subject_id or self.audit.actor_id

    @classmethod
    def matches(cls, event: AuditEvent) -> bool:
        """Whether ``event`` is of this kind."""
        return event.action in cls.actions and cls.outcome in (None, event.outcome)


class SignedIn(SecurityEvent):
    """A user got a session: by password alone, or by password and a second factor."""

    actions = frozenset({"sign_in", "sign_in.second_factor"})


class SignInRefused(SecurityEvent):
    """A sign-in was refused; ``audit.outcome`` says why (the user is never told which part)."""

    actions = frozenset({"sign_in", "sign_in.throttled"})
    outcome = None

    @classmethod
    def matches(cls, event: AuditEvent) -> bool:
        """Whether ``event`` is a refused sign-in (anything but a session or a step on the way)."""
        return event.action in cls.actions and event.outcome not in _SIGN_IN_ON_THE_WAY


#: Sign-in outcomes that are not refusals: a session, or a step towards one.
_SIGN_IN_ON_THE_WAY = frozenset(
    {"ok", "second_factor_required", "password_expired", "password_compromised"}
)


class AccountLocked(SecurityEvent):
    """An account was locked: by wrong passwords or a profile action's wrong current password."""

    actions = frozenset({"account.locked"})


class PasswordChanged(SecurityEvent):
    """A user's password changed: set at registration, changed, or reset (``audit.action``)."""

    actions = frozenset({"password.set", "password.changed", "password.reset"})


class RoleGranted(SecurityEvent):
    """A user was given a role (the role is in ``audit.detail``)."""

    actions = frozenset({"role.granted"})


class RoleRevoked(SecurityEvent):
    """A role was taken from a user (the role is in ``audit.detail``)."""

    actions = frozenset({"role.revoked"})


class SecureMailBought(SecurityEvent):
    """A User Manager bought SecureMail for a user."""

    actions = frozenset({"securemail.bought"})


#: Every kind a handler may subscribe to.
KINDS: tuple[type[SecurityEvent], ...] = (
    SignedIn,
    SignInRefused,
    AccountLocked,
    PasswordChanged,
    RoleGranted,
    RoleRevoked,
    SecureMailBought,
)

E = TypeVar("E", bound=SecurityEvent)


@attrs.frozen
class Written:
    """An audit event appended in the current unit, and the module that wrote it."""

    event: AuditEvent
    module: str


_WRITTEN: contextvars.ContextVar[list[Written] | None] = contextvars.ContextVar(
    "securepractice_written", default=None
)


class collecting:  # noqa: N801 - used as a context manager, like contextlib's
    """Collect the audit events written while the block runs: one unit of work's."""

    def __enter__(self) -> list[Written]:
        events: list[Written] = []
        self._token = _WRITTEN.set(events)
        return events

    def __exit__(self, *_: object) -> None:
        _WRITTEN.reset(self._token)


def written(event: AuditEvent, module: str) -> None:
    """Note that ``module`` appended ``event`` in the current unit, to publish once it commits."""
    events = _WRITTEN.get()
    if events is not None:
        events.append(Written(event, module))


@functools.cache
def _logger(module: str) -> logging.Logger:
    """Return the logger of ``module``; the library's own loggers are silent until configured.

    As the logging documentation asks of a library, its top logger gets a
    ``NullHandler`` and nothing else, so that an application that configures
    no logging sees no line on its standard error (logging's last resort).
    """
    import logging  # noqa: PLC0415 - logging loads with the first event, not with the library

    top = logging.getLogger(_LIBRARY)
    if not any(isinstance(h, logging.NullHandler) for h in top.handlers):
        top.addHandler(logging.NullHandler())
    return logging.getLogger(module)


def _line(event: AuditEvent) -> str:
    """Return a one-line account of ``event``: only ids, outcomes and non-secret detail (AU-2)."""
    parts = [event.action, event.outcome]
    for name, value in (
        ("actor", event.actor_id),
        ("subject", event.subject_id),
        ("practice", event.practice_id),
        ("client", event.client_address),
        ("request", event.request_id),
    ):
        if value is not None:
            parts.append(f"{name}={value}")
    parts.extend(f"{name}={value!r}" for name, value in event.detail)
    return " ".join(parts)


class EventHooks:
    """The handlers an application subscribed, by kind; safe to share between threads.

    Subscribing replaces the table of handlers rather than changing it, so
    an event being published (in any thread, or by a handler that itself
    subscribes) goes on with the table it started with.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handlers: Mapping[type[SecurityEvent], tuple[Callable[[Any], None], ...]] = {}
        self._every: tuple[Callable[[AuditEvent], None], ...] = ()

    def subscribe(self, kind: type[E], handler: Callable[[E], None]) -> Callable[[], None]:
        """Call ``handler`` with each committed event of ``kind``; return what unsubscribes it."""
        if kind not in KINDS:
            from securepractice.errors import SettingsError  # noqa: PLC0415

            names = ", ".join(k.__name__ for k in KINDS)
            raise SettingsError("kind", f"must be one of the event kinds: {names}")
        with self._lock:
            self._handlers = {**self._handlers, kind: (*self._handlers.get(kind, ()), handler)}

        def unsubscribe() -> None:
            with self._lock:
                kept = tuple(h for h in self._handlers[kind] if h is not handler)
                self._handlers = {**self._handlers, kind: kept}

        return unsubscribe

    def subscribe_all(self, handler: Callable[[AuditEvent], None]) -> Callable[[], None]:
        """Call ``handler`` with every committed audit event, of any action."""
        with self._lock:
            self._every = (*self._every, handler)

        def unsubscribe() -> None:
            with self._lock:
                self._every = tuple(h for h in self._every if h is not handler)

        return unsubscribe

    def publish(self, events: Sequence[Written]) -> None:
        """Log each committed event by its module, then hand it to every handler of its kind."""
        every, by_kind = self._every, self._handlers
        for item in events:
            self._log(item)
            event = item.event
            for handler in every:
                self._call(handler, event, item.module)
            for kind, handlers in by_kind.items():
                if handlers and kind.matches(event):
                    typed = kind(event)
                    for call in handlers:
                        self._call(call, typed, item.module)

    @staticmethod
    def _log(item: Written) -> None:
        logger = _logger(item.module)
        level = 30 if item.event.action in WARNING_ACTIONS else 20  # WARNING, INFO
        if logger.isEnabledFor(level):
            logger.log(level, "%s", _line(item.event))

    @staticmethod
    def _call(handler: Callable[[Any], None], event: object, module: str) -> None:
        try:
            handler(event)
        except Exception:  # noqa: BLE001 - a hook must never undo or fail the user's action
            _logger(module).exception("an event hook raised; the action itself succeeded")
