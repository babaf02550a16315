"""Audit events forwarded to a sink (syslog, a SIEM): in order, at least once (CX-2).

An `AuditSink` takes events in order and raises when it cannot: an outage.
`AuditForwarder` reads the audit log from where its sink stands (the
position is kept in the store, per sink name), delivers what is new, and
only then moves the position on. So a crash between delivering and moving
on delivers those events again: at least once, never a gap. The log is read
in the store's feed order (`~securepractice.storage.ports.AuditLog.feed`),
in which an event committed later never comes before one already read.

The forwarder runs out of band, never in a user's action: a sink that is
down never slows or fails a sign-in. Run `AuditForwarder.run` in a
background thread, or `AuditForwarder.forward_pending` from cron. An outage
is audited once, as ``audit.forwarding_failed`` with the sink's name and
the error's class (never its message), however many retries it lasts, and
its end as ``audit.forwarding_resumed``; both are forwarded in turn.

```python
forwarder = AuditForwarder(portal.deps, SyslogSink(("siem.internal", 6514), transport="tcp"))
stop = threading.Event()
threading.Thread(target=forwarder.run, args=(stop,), daemon=True).start()
```
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Protocol, runtime_checkable

from securepractice.accounts._shared import audit
from securepractice.clock import Clock, SystemClock
from securepractice.dependencies import Dependencies
from securepractice.errors import Conflict, InvalidInput, StorageError
from securepractice.operations import audit_json
from securepractice.records import AuditEvent
from securepractice.storage.ports import Storage, UnitOfWork

__all__ = ["AuditForwarder", "AuditSink", "SyslogSink"]

_log = logging.getLogger(__name__)

#: syslog's facility for security and authorization messages kept private (RFC 5424).
AUTHPRIV = 10
_FACILITIES = range(24)
_INFORMATIONAL, _NOTICE = 6, 5
_APP_NAME_LENGTH = 48
_TRANSPORTS = frozenset({"udp", "tcp"})


@runtime_checkable
class AuditSink(Protocol):
    """Where audit events go: syslog, a SIEM's collector, a queue."""

    def deliver(self, events: Sequence[AuditEvent]) -> None:
        """Take ``events``, oldest first, or raise: the forwarder then retries from the first.

        An event may come again after a crash or an outage (at least once):
        a sink that must not keep one twice deduplicates by ``event.id``.
        """
        ...


def _printable(text: object) -> bool:
    """Whether ``text`` is a syslog header field: printable ASCII, no space (RFC 5424 6.2)."""
    return isinstance(text, str) and bool(text) and all(33 <= ord(c) <= 126 for c in text)  # noqa: PLR2004


def _at_least_one(value: object) -> bool:
    """Whether ``value`` is a whole number (not a bool) of at least 1."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


class SyslogSink:
    """Sends each event as one syslog message (RFC 5424) whose text is its JSON line.

    ``address`` is a unix socket's path (``"/dev/log"``, datagrams) or a
    ``(host, port)`` pair reached by ``transport`` ``"udp"`` or ``"tcp"``
    (octet-counted framing, RFC 6587). Over TCP or a unix socket a
    collector that is down is an outage the forwarder retries; over UDP
    nothing tells, so prefer TCP for a collector on another machine.
    Messages carry ``facility`` (authpriv by default), informational
    severity for events whose outcome is ``ok`` and notice for the rest,
    and ``app_name``. Each message is the line `audit_json` makes: ASCII
    only, no secret (AU-2).
    """

    def __init__(
        self,
        address: str | tuple[str, int] = "/dev/log",
        *,
        transport: str = "udp",
        facility: int = AUTHPRIV,
        app_name: str = "securepractice",
        timeout: timedelta = timedelta(seconds=5),
    ) -> None:
        if transport not in _TRANSPORTS:
            raise InvalidInput(
                "transport must be 'udp' or 'tcp'", field="transport", code="forwarding.bad_option"
            )
        if facility not in _FACILITIES:
            raise InvalidInput(
                "facility must be a syslog facility, 0 to 23",
                field="facility",
                code="forwarding.bad_option",
            )
        if not _printable(app_name) or len(app_name) > _APP_NAME_LENGTH:
            raise InvalidInput(
                "app_name must be 1 to 48 printable ASCII characters without spaces",
                field="app_name",
                code="forwarding.bad_option",
            )
        if timeout <= timedelta(0):
            raise InvalidInput(
                "timeout must be positive", field="timeout", code="forwarding.bad_option"
            )
        self._address = address
        self._transport = transport
        self._facility = facility
        self._app_name = app_name
        self._timeout = timeout.total_seconds()

    def __repr__(self) -> str:
        return f"SyslogSink({self._address!r}, transport={self._transport!r})"

    def message(self, event: AuditEvent, *, hostname: str = "-") -> bytes:
        """Return the syslog message for ``event``, as sent."""
        severity = _INFORMATIONAL if event.outcome == "ok" else _NOTICE
        host = hostname if _printable(hostname) else "-"
        stamp = audit_json(event)
        when = event.at.isoformat().replace("+00:00", "Z")
        header = f"<{self._facility * 8 + severity}>1 {when} {host[:255]} {self._app_name} - - -"
        return f"{header} {stamp}".encode("ascii")

    def deliver(self, events: Sequence[AuditEvent]) -> None:
        """Send every event, in order; an `OSError` (the collector down) is the outage."""
        import socket  # noqa: PLC0415 - the network is loaded by the sink that uses it

        host = socket.gethostname()
        messages = [self.message(event, hostname=host) for event in events]
        if isinstance(self._address, str):
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as unix:
                unix.settimeout(self._timeout)
                unix.connect(self._address)
                for message in messages:
                    unix.send(message)
        elif self._transport == "tcp":
            with socket.create_connection(self._address, timeout=self._timeout) as stream:
                stream.sendall(b"".join(b"%d %s" % (len(m), m) for m in messages))
        else:
            host_name, port = self._address
            family, kind, proto, _, where = socket.getaddrinfo(
                host_name, port, type=socket.SOCK_DGRAM
            )[0]
            with socket.socket(family, kind, proto) as datagrams:
                datagrams.settimeout(self._timeout)
                datagrams.connect(where)
                for message in messages:
                    datagrams.send(message)


class AuditForwarder:
    """Forwards the audit log to one sink, in order, at least once, out of band (CX-2).

    ``source`` is the portal's `~securepractice.dependencies.Dependencies`
    (its store and clock; its hooks see the forwarder's own events) or a
    bare store, with ``clock`` for the time of those events. ``name`` names
    the sink's position in the store: one name per sink, shared by every
    process forwarding to it (they then take turns, at least once each
    event). ``batch`` is the most events one delivery takes.
    """

    def __init__(
        self,
        source: Dependencies | Storage,
        sink: AuditSink,
        *,
        name: str = "default",
        batch: int = 100,
        clock: Clock | None = None,
    ) -> None:
        if not _printable(name):
            raise InvalidInput(
                "name must be printable ASCII without spaces",
                field="name",
                code="forwarding.bad_option",
            )
        if not _at_least_one(batch):
            raise InvalidInput(
                "batch must be a whole number of at least 1",
                field="batch",
                code="forwarding.bad_option",
            )
        if not isinstance(sink, AuditSink):
            raise InvalidInput(
                "sink must have deliver(events)", field="sink", code="forwarding.bad_option"
            )
        self._deps = source if isinstance(source, Dependencies) else None
        self._storage = source.storage if isinstance(source, Dependencies) else source
        self._clock: Clock = (
            source.clock if isinstance(source, Dependencies) else clock or SystemClock()
        )
        self._sink = sink
        self.name = name
        self._batch = batch

    def __repr__(self) -> str:
        return f"AuditForwarder({self._sink!r}, name={self.name!r}, batch={self._batch})"

    def _unit(self) -> AbstractContextManager[UnitOfWork]:
        # The portal's own units publish the forwarder's events to its hooks (OP-5).
        if self._deps is not None:
            return self._deps.unit()
        return self._storage.unit_of_work()

    def forward_pending(self) -> int:
        """Deliver every event not yet delivered, a batch at a time; return how many went.

        Stops at the first batch the sink refuses, having audited the
        outage (once per outage); the next call retries from that batch.
        Never raises for the sink. A store that fails raises its
        `~securepractice.errors.StorageError`: nothing was skipped.
        """
        delivered = 0
        while True:
            with self._unit() as uow:
                position = uow.audit_sinks.position(self.name)
                page = uow.audit.feed(after=position, limit=self._batch)
            if not page:
                return delivered
            try:
                self._sink.deliver([event for _position, event in page])
            except Exception as error:  # noqa: BLE001 - any failure of the sink is an outage
                self._failed(error)
                return delivered
            try:
                with self._unit() as uow:
                    uow.audit_sinks.advance(self.name, expected=position, position=page[-1][0])
                    if uow.audit_sinks.set_failing(self.name, failing=False):
                        audit(
                            uow,
                            "audit.forwarding_resumed",
                            at=self._clock.now(),
                            written_by=__name__,
                            sink=self.name,
                        )
            except Conflict:
                return delivered  # another forwarder of this sink moved it on: it goes on
            delivered += len(page)
            if len(page) < self._batch:
                return delivered

    def _failed(self, error: Exception) -> None:
        """Record the sink's outage: logged each time, audited once until it ends."""
        kind = type(error).__name__
        _log.warning("audit sink %s is failing (%s); events wait for it", self.name, kind)
        with self._unit() as uow:
            if uow.audit_sinks.set_failing(self.name, failing=True):
                audit(
                    uow,
                    "audit.forwarding_failed",
                    "failed",
                    at=self._clock.now(),
                    written_by=__name__,
                    sink=self.name,
                    error=kind,
                )

    def run(self, stop: threading.Event, interval: timedelta = timedelta(seconds=5)) -> None:
        """Forward until ``stop`` is set, waiting ``interval`` when nothing is pending.

        For a background thread: a store that fails is logged and retried
        after ``interval``, so the loop ends only when told to.
        """
        wait = interval.total_seconds()
        while not stop.is_set():
            try:
                self.forward_pending()
            except StorageError as error:
                _log.warning("audit forwarding to %s cannot read the store (%s)", self.name, error)
            stop.wait(wait)
