"""Audit events forwarded to a sink: in order, at least once, an outage audited once (CX-2).

The forwarder runs on each store through the portal's dependencies; the
syslog sink is checked against real sockets: a unix datagram socket and a
TCP collector on the loopback address.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from securepractice import FakeClock
from securepractice.dependencies import Dependencies
from securepractice.errors import InvalidInput
from securepractice.forwarding import AuditForwarder, AuditSink, SyslogSink
from securepractice.portal import Accounts
from securepractice.records import AuditEvent
from securepractice.storage.ports import Storage


class Collector:
    """A sink that keeps what it is given; it can fail, before or after taking a batch."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.fail_before = 0
        self.fail_after = 0
        self.got = threading.Event()
        self.wanted = 0

    def deliver(self, events: Sequence[AuditEvent]) -> None:
        if self.fail_before:
            self.fail_before -= 1
            raise TimeoutError("collector timed out")
        self.ids.extend(event.id for event in events)
        if self.fail_after:
            self.fail_after -= 1
            raise ConnectionResetError("reset after receiving")
        if self.wanted and len(self.ids) >= self.wanted:
            self.got.set()


def _append(storage: Storage, clock: FakeClock, *ids: str) -> None:
    with storage.unit_of_work() as uow:
        for event_id in ids:
            uow.audit.append(AuditEvent(id=event_id, at=clock.now(), action="sign_in",
                                        outcome="ok"))  # fmt: skip


def _actions(context: Dependencies) -> list[str]:
    with context.storage.unit_of_work() as uow:
        return [e.action for e in uow.audit.events() if e.action.startswith("audit.")]


def test_cx_2_events_are_delivered_in_order_once_each(
    context: Dependencies, clock: FakeClock
) -> None:
    """CX-2: batches go in log order; a second run delivers only what is new."""
    _append(context.storage, clock, "e1", "e2", "e3")
    _append(context.storage, clock, "e4", "e5")
    sink = Collector()
    forwarder = AuditForwarder(context, sink, batch=2)
    assert forwarder.forward_pending() == 5
    _append(context.storage, clock, "e6")
    assert forwarder.forward_pending() == 1
    assert forwarder.forward_pending() == 0
    assert sink.ids == ["e1", "e2", "e3", "e4", "e5", "e6"]


def test_cx_2_a_crash_between_delivering_and_moving_on_delivers_again(
    context: Dependencies, clock: FakeClock
) -> None:
    """CX-2: at least once: a sink that took a batch and then failed gets that batch again."""
    _append(context.storage, clock, "e1", "e2", "e3")
    sink = Collector()
    sink.fail_after = 1
    forwarder = AuditForwarder(context, sink, batch=2)
    assert forwarder.forward_pending() == 0
    assert forwarder.forward_pending() == 5
    assert sink.ids[:5] == ["e1", "e2", "e1", "e2", "e3"]
    with context.storage.unit_of_work() as uow:
        outage = [e.id for e in uow.audit.events() if e.action.startswith("audit.forwarding")]
    assert sink.ids[5:] == outage
    assert len(outage) == 2
    assert forwarder.forward_pending() == 0


def test_cx_2_an_outage_is_audited_once_and_its_end_once(
    context: Dependencies, clock: FakeClock
) -> None:
    """CX-2: five failed runs, one ``audit.forwarding_failed``; then one ``forwarding_resumed``."""
    _append(context.storage, clock, "e1")
    sink = Collector()
    sink.fail_before = 5
    forwarder = AuditForwarder(context, sink, name="siem")
    assert [forwarder.forward_pending() for _ in range(5)] == [0] * 5
    assert _actions(context) == ["audit.forwarding_failed"]
    with context.storage.unit_of_work() as uow:
        failed = uow.audit.events()[-1]
    assert dict(failed.detail) == {"sink": "siem", "error": "TimeoutError"}
    assert "timed out" not in repr(failed)
    assert forwarder.forward_pending() == 2
    assert _actions(context) == ["audit.forwarding_failed", "audit.forwarding_resumed"]
    sink.fail_before = 2
    assert forwarder.forward_pending() == 0
    assert _actions(context)[-1] == "audit.forwarding_failed"


def test_cx_2_an_outage_never_blocks_a_user_action(context: Dependencies) -> None:
    """CX-2: with the sink down, users' actions go on and their events wait for it."""
    sink = Collector()
    sink.fail_before = 10
    forwarder = AuditForwarder(context, sink)
    accounts = Accounts(context)
    accounts.create_practice(name="Smile Dental")
    assert forwarder.forward_pending() == 0
    accounts.create_practice(name="Bright Smiles")
    sink.fail_before = 0
    forwarder.forward_pending()
    with context.storage.unit_of_work() as uow:
        logged = [e.id for e in uow.audit.events() if e.action == "practice.created"]
    assert len(logged) == 2
    assert [i for i in sink.ids if i in logged] == logged


def test_cx_2_sinks_of_other_names_keep_their_own_positions(
    context: Dependencies, clock: FakeClock
) -> None:
    """CX-2: a SIEM and a syslog forwarder each get every event."""
    _append(context.storage, clock, "e1", "e2")
    first, second = Collector(), Collector()
    assert AuditForwarder(context, first, name="siem").forward_pending() == 2
    _append(context.storage, clock, "e3")
    assert AuditForwarder(context, second, name="syslog").forward_pending() == 3
    assert AuditForwarder(context, first, name="siem").forward_pending() == 1
    assert first.ids == second.ids == ["e1", "e2", "e3"]


def test_cx_2_the_background_loop_forwards_until_stopped(
    context: Dependencies, clock: FakeClock
) -> None:
    """CX-2: ``run`` in a thread delivers what is written meanwhile, and ends when told."""
    sink = Collector()
    sink.wanted = 3
    forwarder = AuditForwarder(context, sink)
    stop = threading.Event()
    loop = threading.Thread(target=forwarder.run, args=(stop, timedelta(milliseconds=5)))
    loop.start()
    try:
        _append(context.storage, clock, "e1")
        _append(context.storage, clock, "e2", "e3")
        assert sink.got.wait(timeout=30)
    finally:
        stop.set()
        loop.join(timeout=30)
    assert not loop.is_alive()
    assert sink.ids == ["e1", "e2", "e3"]


def test_cx_2_bad_options_are_refused(context: Dependencies) -> None:
    """CX-2: a forwarder or sink that cannot work is refused when built, with one code."""
    bad: list[dict[str, object]] = [{"batch": 0}, {"batch": True}, {"batch": "10"},
                                    {"name": ""}, {"name": "two words"}, {"name": 5}]  # fmt: skip
    for options in bad:
        with pytest.raises(InvalidInput) as refused:
            AuditForwarder(context, Collector(), **options)  # type: ignore[arg-type]
        assert refused.value.code == "forwarding.bad_option"
    with pytest.raises(InvalidInput) as not_a_sink:
        AuditForwarder(context, object())  # type: ignore[arg-type]
    assert not_a_sink.value.field == "sink"
    for sink_options in ({"transport": "carrier-pigeon"}, {"facility": 24}, {"app_name": "a b"},
                         {"app_name": "x" * 49}, {"timeout": timedelta(0)}):  # fmt: skip
        with pytest.raises(InvalidInput) as bad_sink:
            SyslogSink(**sink_options)
        assert bad_sink.value.code == "forwarding.bad_option"
    assert isinstance(SyslogSink(), AuditSink)


# --- the syslog sink over real sockets --------------------------------------------------------


@pytest.fixture
def unix_collector(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "log.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(path)
        receiver.settimeout(10)
        yield path, receiver


def _events(clock: FakeClock) -> list[AuditEvent]:
    return [
        AuditEvent(id="e1", at=clock.now(), action="sign_in", outcome="ok", actor_id="u1"),
        AuditEvent(id="e2", at=clock.now(), action="sign_in", outcome="wrong_password",
                   detail=(("note", "line\nbreak \u202e"),)),
    ]  # fmt: skip


def test_cx_2_syslog_messages_are_rfc_5424_with_the_json_line(
    unix_collector: tuple[str, socket.socket], clock: FakeClock
) -> None:
    """CX-2, AU-2: one datagram per event; authpriv, severity by outcome; ASCII JSON only."""
    path, receiver = unix_collector
    SyslogSink(path).deliver(_events(clock))
    first, second = (receiver.recv(65536) for _ in range(2))
    stamp = clock.now().isoformat().replace("+00:00", "Z")
    header, _, body = first.partition(b" - - - ")
    assert header.startswith(f"<86>1 {stamp} ".encode())
    assert header.endswith(b" securepractice")
    assert json.loads(body)["id"] == "e1"
    assert second.startswith(b"<85>1 ")
    assert second.isascii()
    assert b"\n" not in second
    assert json.loads(second.partition(b" - - - ")[2])["detail"] == {"note": "line\nbreak \u202e"}


def test_cx_2_a_missing_syslog_socket_is_an_outage(tmp_path: Path, clock: FakeClock) -> None:
    """CX-2: no collector listening: ``deliver`` raises, so the forwarder retries."""
    with pytest.raises(OSError, match=r".+"):
        SyslogSink(str(tmp_path / "nobody.sock")).deliver(_events(clock))


def test_cx_2_syslog_over_tcp_is_octet_counted(clock: FakeClock) -> None:
    """CX-2: over TCP each message is its length, a space, and the message (RFC 6587)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(10)
        port = server.getsockname()[1]
        received: list[bytes] = []

        def collect() -> None:
            connection, _ = server.accept()
            with connection:
                while chunk := connection.recv(65536):
                    received.append(chunk)

        thread = threading.Thread(target=collect)
        thread.start()
        sink = SyslogSink(("127.0.0.1", port), transport="tcp")
        sink.deliver(_events(clock))
        thread.join(timeout=30)
    data = b"".join(received)
    expected = [sink.message(event, hostname=socket.gethostname()) for event in _events(clock)]
    assert data == b"".join(b"%d %s" % (len(m), m) for m in expected)
    with pytest.raises(OSError, match=r".+"):
        sink.deliver(_events(clock))
