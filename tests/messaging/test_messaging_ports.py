"""Message values and the three ports (MS-1), and secrets kept out of every repr (AU-2)."""

from __future__ import annotations

import ast
import io
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import securepractice
from securepractice.errors import DeliveryFailed, InvalidInput
from securepractice.messaging import (
    ConsoleMessenger,
    EmailMessage,
    EmailSender,
    Messaging,
    MessagingAdapter,
    Outbox,
    SmsMessage,
    SmsSender,
    SmtpEmailSender,
    VoiceCaller,
    VoiceMessage,
)

CODE = "482913"
LINK = "https://portal.example/invite?token=Zm9vYmFyYmF6cXV4"
SECRET_TEXT = f"Your code is {CODE}. Or open {LINK}"

#: What a user might type as a body: any text with something visible in it.
BODIES = st.text(min_size=1, max_size=200).filter(str.strip)

#: Line breaks and controls that could start a new header.
BREAKS = st.sampled_from(["\r", "\n", "\r\n", "\x00", "\x0b", "\x0c", "\x85", "\u2028", "\u2029"])


def _all_messages(text: str) -> list[EmailMessage | SmsMessage | VoiceMessage]:
    return [
        EmailMessage(to="pat@clinic.example", subject="Your sign-in code", body=text),
        SmsMessage(to="+12025550123", text=text),
        VoiceMessage(to="+12025550123", text=text),
    ]


# AU-2: no body, code or link in repr or str.


@pytest.mark.parametrize("message", _all_messages(SECRET_TEXT), ids=type)
def test_au2_message_repr_and_str_hide_the_body(
    message: EmailMessage | SmsMessage | VoiceMessage,
) -> None:
    for shown in (repr(message), str(message), f"{message}", f"{message!r}"):
        assert CODE not in shown
        assert LINK not in shown
        assert "token" not in shown
        assert message.to in shown
        assert f"<{len(SECRET_TEXT)} chars>" in shown


def test_au2_email_repr_shows_recipient_subject_and_length_only() -> None:
    message = EmailMessage(to="pat@clinic.example", subject="Reset", body=SECRET_TEXT)

    assert repr(message) == (
        f"EmailMessage(to='pat@clinic.example', subject='Reset', body=<{len(SECRET_TEXT)} chars>)"
    )


@given(body=BODIES)
def test_au2_no_body_reaches_any_repr(body: str) -> None:
    """AU-2 for every body: repr shows its length, never any of it beyond what the rest shows."""
    marker = f"\x1f{body}\x1f"
    for message in _all_messages(marker):
        assert marker not in repr(message)
        assert marker not in str(message)


def test_au2_no_adapter_error_holds_the_body(capsys: pytest.CaptureFixture[str]) -> None:
    """AU-2 scan: every DeliveryFailed our adapters raise, for every channel, hides the body."""
    failures: list[DeliveryFailed] = []
    outbox = Outbox()
    closed = io.StringIO()
    closed.close()
    console = ConsoleMessenger(closed)
    with socket.socket() as probe:  # a port on loopback that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    smtp = SmtpEmailSender(host="127.0.0.1", port=port, security="none", from_address="a@b.example")
    email, sms, voice = _all_messages(SECRET_TEXT)
    attempts: list[tuple[Callable[[Any], None], object]] = [
        (outbox.send_email, email),
        (outbox.send_sms, sms),
        (outbox.place_call, voice),
        (console.send_email, email),
        (console.send_sms, sms),
        (console.place_call, voice),
        (smtp.send_email, email),
    ]
    for channel in ("email", "sms", "voice"):
        outbox.fail_next(channel)
    for send, message in attempts:
        with pytest.raises(DeliveryFailed) as excinfo:
            send(message)
        failures.append(excinfo.value)

    assert [f.channel for f in failures] == ["email", "sms", "voice"] * 2 + ["email"]
    for failure in failures:
        for shown in (str(failure), repr(failure), failure.message):
            assert CODE not in shown
            assert LINK not in shown
    assert capsys.readouterr().out == ""


# Bad inputs.


@pytest.mark.parametrize(
    ("kind", "arguments", "field", "code"),
    [
        (EmailMessage, {"to": ""}, "to", "message.no_recipient"),
        (EmailMessage, {"to": "   "}, "to", "message.no_recipient"),
        (EmailMessage, {"to": " pat@clinic.example"}, "to", "message.recipient_not_valid"),
        (EmailMessage, {"to": "a@x.example, b@y.example"}, "to", "message.recipient_not_valid"),
        (EmailMessage, {"to": "a@x.example;b@y.example"}, "to", "message.recipient_not_valid"),
        (EmailMessage, {"to": "Pat <a@x.example>"}, "to", "message.recipient_not_valid"),
        (EmailMessage, {"to": "pat@clinic.example\r\nBcc: x@evil.example"}, "to", None),
        (EmailMessage, {"subject": "Hi\r\nBcc: x@evil.example"}, "subject", None),
        (EmailMessage, {"subject": "Hi\nX-Injected: 1"}, "subject", None),
        (EmailMessage, {"body": ""}, "body", "message.empty"),
        (EmailMessage, {"body": " \n "}, "body", "message.empty"),
        (EmailMessage, {"to": b"pat@clinic.example"}, "to", "message.not_text"),
        (EmailMessage, {"subject": None}, "subject", "message.not_text"),
        (EmailMessage, {"body": 123456}, "body", "message.not_text"),
        (SmsMessage, {"to": ""}, "to", "message.no_recipient"),
        (SmsMessage, {"to": "+12025550123\n"}, "to", None),
        (SmsMessage, {"to": 12025550123}, "to", "message.not_text"),
        (SmsMessage, {"text": ""}, "text", "message.empty"),
        (VoiceMessage, {"to": ""}, "to", "message.no_recipient"),
        (VoiceMessage, {"text": b"123456"}, "text", "message.not_text"),
    ],
)
def test_bad_message_fields_are_refused(
    kind: type[EmailMessage | SmsMessage | VoiceMessage],
    arguments: dict[str, object],
    field: str,
    code: str | None,
) -> None:
    defaults: dict[str, object] = (
        {"to": "pat@clinic.example", "subject": "Hello", "body": "Body"}
        if kind is EmailMessage
        else {"to": "+12025550123", "text": "Text"}
    )

    with pytest.raises(InvalidInput) as excinfo:
        kind(**{**defaults, **arguments})  # type: ignore[arg-type]

    assert excinfo.value.field == field
    assert excinfo.value.code == (code or "message.control_character")


@given(before=st.text(max_size=20), brk=BREAKS, after=st.text(max_size=20))
def test_no_line_break_or_control_reaches_a_header(before: str, brk: str, after: str) -> None:
    """Header injection: CR, LF and every other breaking character are refused anywhere."""
    with pytest.raises(InvalidInput) as excinfo:
        EmailMessage(to="pat@clinic.example", subject=before + brk + after, body="x")
    assert excinfo.value.code == "message.control_character"
    with pytest.raises(InvalidInput):
        EmailMessage(to=f"pat{brk}@clinic.example", subject="s", body="x")
    with pytest.raises(InvalidInput):
        SmsMessage(to=f"+1202555{brk}0123", text="x")


def test_a_body_may_hold_line_breaks_and_any_text() -> None:
    body = "Dear Pat,\r\n\r\nYour code: 123456\n\u2028— the portal\x00"

    message = EmailMessage(to="pat@clinic.example", subject="Ünïcode subject ✓", body=body)

    assert message.body == body


def test_messages_are_frozen_values() -> None:
    message = SmsMessage(to="+12025550123", text="hello")

    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        message.text = "changed"  # type: ignore[misc]
    assert message == SmsMessage(to="+12025550123", text="hello")
    other: object = VoiceMessage(to="+12025550123", text="hello")
    assert message != other
    with pytest.raises(TypeError):
        SmsMessage("+12025550123", "hello")  # type: ignore[call-arg]


# MS-1: messaging is reached only through the three protocols.


class _HomeMadeSms:
    """A user's own adapter: no inheritance, just the method."""

    def __init__(self) -> None:
        self.sent: list[SmsMessage] = []

    def send_sms(self, message: SmsMessage) -> None:
        self.sent.append(message)


def test_ms1_every_adapter_implements_its_protocols() -> None:
    for adapter in (Outbox(), ConsoleMessenger(io.StringIO())):
        assert isinstance(adapter, MessagingAdapter)
        assert isinstance(adapter, EmailSender)
        assert isinstance(adapter, SmsSender)
        assert isinstance(adapter, VoiceCaller)
    smtp = SmtpEmailSender(host="localhost", security="none", from_address="a@b.example")
    assert isinstance(smtp, EmailSender)
    assert not isinstance(smtp, SmsSender)
    assert isinstance(_HomeMadeSms(), SmsSender)


def test_ms1_bundle_mixes_adapters_without_inheritance() -> None:
    outbox = Outbox()
    own = _HomeMadeSms()
    messaging = Messaging(email=outbox, sms=own, voice=outbox)

    messaging.sms.send_sms(SmsMessage(to="+12025550123", text="hi"))
    messaging.voice.place_call(VoiceMessage(to="+12025550123", text="hi"))

    assert own.sent == [SmsMessage(to="+12025550123", text="hi")]
    assert outbox.sms == ()
    assert outbox.calls == (VoiceMessage(to="+12025550123", text="hi"),)


def test_ms1_bundle_using_one_adapter() -> None:
    outbox = Outbox()

    messaging = Messaging.using(outbox)

    assert messaging.email is outbox
    assert messaging.sms is outbox
    assert messaging.voice is outbox


@pytest.mark.parametrize("field", ["email", "sms", "voice"])
def test_ms1_bundle_refuses_an_object_without_the_method(field: str) -> None:
    outbox = Outbox()
    arguments: dict[str, object] = {"email": outbox, "sms": outbox, "voice": outbox}
    arguments[field] = _HomeMadeSms() if field != "sms" else object()

    with pytest.raises(TypeError, match=field):
        Messaging(**arguments)  # type: ignore[arg-type]


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_ms1_no_module_outside_the_adapters_reaches_a_channel_directly() -> None:
    """MS-1: only the SMTP adapter imports smtplib; flows import no adapter module.

    The composition roots (the package's public names, the command line and
    its demonstration) may import adapters: they are where an application
    wires them in; so may the testing kit, which hands the fakes to tests.
    """
    package = Path(securepractice.__file__).parent
    drivers = {"smtplib", "http.client", "urllib.request"}
    roots = {"__init__.py", "__main__.py", "cli.py", "demo.py", "testing/__init__.py"}
    adapters = {f"securepractice.messaging.{name}" for name in ("outbox", "console", "smtp")}
    offenders: list[str] = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package).as_posix()
        imported = _imported_modules(path)
        if relative.startswith("messaging/"):
            if relative != "messaging/smtp.py" and imported & drivers:
                offenders.append(relative)
            continue
        if imported & drivers or (relative not in roots and imported & adapters):
            offenders.append(relative)

    assert offenders == []
    assert "smtplib" in _imported_modules(package / "messaging" / "smtp.py")
