"""The SMTP adapter against a real SMTP server on loopback (MS-1, VF-10, AU-2).

The servers are aiosmtpd on 127.0.0.1, started by each test and stopped after;
the TLS certificate is made offline with `cryptography`.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import smtplib
import socket
import ssl
from collections.abc import Callable, Iterator
from email.message import EmailMessage as MimeMessage
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from securepractice.errors import DeliveryFailed, SettingsError
from securepractice.messaging import EmailMessage, EmailSender, SmtpEmailSender
from securepractice.secret import Secret

LOOPBACK = "127.0.0.1"

#: The one user and password the AUTH-requiring server accepts.
SMTP_USER = "portal"
SMTP_PASSWORD = "correct horse battery staple"


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on (just now)."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
    return port


class Recorder:
    """An aiosmtpd handler that keeps every envelope and refuses chosen recipients."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, _server: Any, _session: Session, envelope: Envelope, address: str, _options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, _server: Any, _session: Session, envelope: Envelope
    ) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def _authenticate(
    _server: Any, _session: Session, _envelope: Envelope, _mechanism: str, data: Any
) -> AuthResult:
    ok = (
        isinstance(data, LoginPassword)
        and data.login == SMTP_USER.encode()
        and data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@attrs.frozen
class TlsFiles:
    """A self-signed certificate for 127.0.0.1, and contexts for both ends."""

    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """Make a self-signed certificate for 127.0.0.1 with `cryptography`, offline."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securepractice test")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    files = TlsFiles(cert=folder / "cert.pem", key=folder / "key.pem")
    files.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


@attrs.define
class SmtpServer:
    """A running aiosmtpd server and what it received."""

    port: int
    recorder: Recorder


StartServer = Callable[..., SmtpServer]


@pytest.fixture
def start_smtp(tls_files: TlsFiles) -> Iterator[StartServer]:
    """Start real SMTP servers on loopback (plain, STARTTLS, implicit TLS, AUTH); stop them after.

    ``mode`` is ``"plain"``, ``"ascii"`` (plain, without SMTPUTF8),
    ``"starttls"`` (STARTTLS required), ``"tls"`` (TLS from the first byte)
    or ``"auth"`` (STARTTLS and AUTH required).
    """
    controllers: list[Controller] = []

    def start(mode: str = "plain") -> SmtpServer:
        recorder = Recorder()
        port = free_port()
        options: dict[str, Any] = {}
        if mode in {"starttls", "auth"}:
            options.update(tls_context=tls_files.server_context(), require_starttls=True)
        if mode == "ascii":
            options.update(enable_SMTPUTF8=False)
        if mode == "tls":
            options.update(ssl_context=tls_files.server_context())
        if mode == "auth":
            options.update(authenticator=_authenticate, auth_required=True, auth_require_tls=True)
        controller = Controller(recorder, hostname=LOOPBACK, port=port, **options)
        controller.start()
        controllers.append(controller)
        return SmtpServer(port=port, recorder=recorder)

    yield start
    for controller in controllers:
        controller.stop()


SENDER = "noreply@portal.example"
LINK = "https://portal.example/reset?token=QmFzZTY0VG9rZW5WYWx1ZQ"
BODY = f"Open this link to choose a new password:\n\n{LINK}\n\nIt expires in one hour. Ünïcode."


def _message(to: str = "dr.smith@clinic.example") -> EmailMessage:
    return EmailMessage(to=to, subject="Reset your password — Practice portal", body=BODY)


def _parsed(content: bytes | None) -> MimeMessage:
    assert content is not None
    parsed = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(parsed, MimeMessage)
    return parsed


def _text(received: MimeMessage) -> str:
    """The body as the recipient reads it: line ends as in the source, final newline dropped."""
    content = received.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n").removesuffix("\n")


def test_ms1_plain_delivery_to_real_server_on_loopback(start_smtp: StartServer) -> None:
    """MS-1: the message reaches a real SMTP server with its envelope and headers intact."""
    server = start_smtp("plain")
    sender = SmtpEmailSender(host=LOOPBACK, port=server.port, security="none", from_address=SENDER)
    assert isinstance(sender, EmailSender)

    sender.send_email(_message())

    (envelope,) = server.recorder.envelopes
    assert envelope.mail_from == SENDER
    assert envelope.rcpt_tos == ["dr.smith@clinic.example"]
    received = _parsed(envelope.original_content)
    assert received["From"] == SENDER
    assert received["To"] == "dr.smith@clinic.example"
    assert received["Subject"] == "Reset your password — Practice portal"
    assert received["Date"] is not None
    assert received["Message-ID"].endswith("@portal.example>")
    assert received.get_content_type() == "text/plain"
    assert _text(received) == BODY


def test_ms1_one_connection_per_message(start_smtp: StartServer) -> None:
    server = start_smtp("plain")
    sender = SmtpEmailSender(host=LOOPBACK, port=server.port, security="none", from_address=SENDER)

    sender.send_email(_message("a@clinic.example"))
    sender.send_email(_message("b@clinic.example"))

    assert [e.rcpt_tos for e in server.recorder.envelopes] == [
        ["a@clinic.example"],
        ["b@clinic.example"],
    ]


@pytest.mark.parametrize(
    ("mode", "security", "signs_in"),
    [("starttls", "starttls", False), ("tls", "tls", False), ("auth", "starttls", True)],
)
def test_ms1_tls_delivery_checks_the_certificate(
    start_smtp: StartServer, tls_files: TlsFiles, mode: str, security: str, signs_in: bool
) -> None:
    """MS-1: STARTTLS, implicit TLS, and AUTH after STARTTLS, each trusting only our test CA."""
    server = start_smtp(mode)
    credentials = {"username": SMTP_USER, "password": Secret(SMTP_PASSWORD)} if signs_in else {}
    sender = SmtpEmailSender(
        host=LOOPBACK,
        port=server.port,
        security=security,  # type: ignore[arg-type]
        ssl_context=tls_files.client_context(),
        from_address=SENDER,
        **credentials,  # type: ignore[arg-type]
    )

    sender.send_email(_message())

    (envelope,) = server.recorder.envelopes
    assert _text(_parsed(envelope.original_content)) == BODY


def _assert_failed(excinfo: pytest.ExceptionInfo[DeliveryFailed], port: int) -> None:
    """VF-10 and AU-2: channel email, names the server, holds neither body nor link."""
    failure = excinfo.value
    assert failure.channel == "email"
    assert failure.code == "delivery.failed"
    assert f"{LOOPBACK}:{port}" in str(failure)
    assert failure.__cause__ is not None
    for shown in (str(failure), repr(failure)):
        assert LINK not in shown
        assert "token" not in shown
        assert SMTP_PASSWORD not in shown


def _chain(error: BaseException) -> list[BaseException]:
    """The error and every error it was raised from or while handling."""
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def test_vf10_refused_recipient_is_delivery_failed(start_smtp: StartServer) -> None:
    server = start_smtp("plain")
    server.recorder.refuse.add("nobody@clinic.example")
    sender = SmtpEmailSender(host=LOOPBACK, port=server.port, security="none", from_address=SENDER)

    with pytest.raises(DeliveryFailed) as excinfo:
        sender.send_email(_message("nobody@clinic.example"))

    _assert_failed(excinfo, server.port)
    assert isinstance(excinfo.value.__cause__, smtplib.SMTPRecipientsRefused)
    assert server.recorder.envelopes == []


def test_vf10_closed_port_is_delivery_failed() -> None:
    port = free_port()
    sender = SmtpEmailSender(host=LOOPBACK, port=port, security="none", from_address=SENDER)

    with pytest.raises(DeliveryFailed) as excinfo:
        sender.send_email(_message())

    _assert_failed(excinfo, port)
    assert isinstance(excinfo.value.__cause__, ConnectionRefusedError)


def test_vf10_silent_server_times_out_as_delivery_failed() -> None:
    """A server that accepts the connection but never greets: the timeout applies."""
    with socket.socket() as silent:
        silent.bind((LOOPBACK, 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        sender = SmtpEmailSender(
            host=LOOPBACK, port=port, security="none", from_address=SENDER, timeout=0.05
        )

        with pytest.raises(DeliveryFailed) as excinfo:
            sender.send_email(_message())

    _assert_failed(excinfo, port)
    assert any(isinstance(error, TimeoutError) for error in _chain(excinfo.value))


def test_vf10_starttls_missing_on_server_is_delivery_failed(start_smtp: StartServer) -> None:
    """A server without STARTTLS is never used in plain text by mistake."""
    server = start_smtp("plain")
    sender = SmtpEmailSender(host=LOOPBACK, port=server.port, from_address=SENDER)

    with pytest.raises(DeliveryFailed) as excinfo:
        sender.send_email(_message())

    _assert_failed(excinfo, server.port)
    assert isinstance(excinfo.value.__cause__, smtplib.SMTPNotSupportedError)
    assert server.recorder.envelopes == []


def test_vf10_untrusted_certificate_is_delivery_failed(start_smtp: StartServer) -> None:
    """The default context checks the certificate: a self-signed one is refused."""
    server = start_smtp("starttls")
    sender = SmtpEmailSender(host=LOOPBACK, port=server.port, from_address=SENDER)

    with pytest.raises(DeliveryFailed) as excinfo:
        sender.send_email(_message())

    _assert_failed(excinfo, server.port)
    assert isinstance(excinfo.value.__cause__, ssl.SSLCertVerificationError)
    assert server.recorder.envelopes == []


def test_vf10_wrong_password_is_delivery_failed(
    start_smtp: StartServer, tls_files: TlsFiles
) -> None:
    server = start_smtp("auth")
    wrong = "not the password at all"
    sender = SmtpEmailSender(
        host=LOOPBACK,
        port=server.port,
        ssl_context=tls_files.client_context(),
        username=SMTP_USER,
        password=Secret(wrong),
        from_address=SENDER,
    )

    with pytest.raises(DeliveryFailed) as excinfo:
        sender.send_email(_message())

    _assert_failed(excinfo, server.port)
    assert isinstance(excinfo.value.__cause__, smtplib.SMTPAuthenticationError)
    assert "reply 535" in str(excinfo.value)
    assert wrong not in str(excinfo.value)
    assert server.recorder.envelopes == []


def test_vf10_missing_auth_is_delivery_failed(start_smtp: StartServer, tls_files: TlsFiles) -> None:
    server = start_smtp("auth")
    sender = SmtpEmailSender(
        host=LOOPBACK, port=server.port, ssl_context=tls_files.client_context(), from_address=SENDER
    )

    with pytest.raises(DeliveryFailed) as excinfo:
        sender.send_email(_message())

    _assert_failed(excinfo, server.port)
    assert server.recorder.envelopes == []


def test_ms1_address_outside_ascii_uses_smtputf8(start_smtp: StartServer) -> None:
    server = start_smtp("plain")
    sender = SmtpEmailSender(host=LOOPBACK, port=server.port, security="none", from_address=SENDER)

    sender.send_email(_message("zoë@clinic.example"))

    (envelope,) = server.recorder.envelopes
    assert envelope.rcpt_tos == ["zoë@clinic.example"]


def test_vf10_address_the_server_cannot_take_is_delivery_failed(start_smtp: StartServer) -> None:
    """An address outside ASCII needs SMTPUTF8; without it the error is DeliveryFailed."""
    server = start_smtp("ascii")
    sender = SmtpEmailSender(host=LOOPBACK, port=server.port, security="none", from_address=SENDER)

    with pytest.raises(DeliveryFailed) as excinfo:
        sender.send_email(_message("zoë@clinic.example"))

    _assert_failed(excinfo, server.port)
    assert isinstance(excinfo.value.__cause__, smtplib.SMTPNotSupportedError)
    assert server.recorder.envelopes == []


def test_au2_repr_hides_the_password() -> None:
    sender = SmtpEmailSender(
        host="smtp.example.org",
        username=SMTP_USER,
        password=Secret(SMTP_PASSWORD),
        from_address=SENDER,
    )

    shown = repr(sender)

    assert SMTP_PASSWORD not in shown
    assert "smtp.example.org" in shown
    assert "587" in shown
    assert "starttls" in shown


@pytest.mark.parametrize(("security", "port"), [("starttls", 587), ("tls", 465), ("none", 25)])
def test_default_port_follows_security(security: str, port: int) -> None:
    sender = SmtpEmailSender(host="localhost", security=security, from_address=SENDER)  # type: ignore[arg-type]

    assert f"port={port}," in repr(sender)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.8.9.1", "::1", "[::1]"])
def test_plain_text_is_allowed_on_loopback(host: str) -> None:
    SmtpEmailSender(host=host, security="none", from_address=SENDER)


@pytest.mark.parametrize("host", ["smtp.example.org", "10.0.0.5", "localhost.example.org"])
def test_plain_text_is_refused_off_loopback(host: str) -> None:
    with pytest.raises(SettingsError) as excinfo:
        SmtpEmailSender(host=host, security="none", from_address=SENDER)

    assert excinfo.value.field == "smtp.security"
    SmtpEmailSender(host=host, security="none", from_address=SENDER, allow_insecure=True)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"host": ""}, "smtp.host"),
        ({"host": " smtp.example.org"}, "smtp.host"),
        ({"host": 25}, "smtp.host"),
        ({"security": "ssl"}, "smtp.security"),
        ({"port": 0}, "smtp.port"),
        ({"port": 65536}, "smtp.port"),
        ({"port": True}, "smtp.port"),
        ({"port": "587"}, "smtp.port"),
        ({"timeout": 0}, "smtp.timeout"),
        ({"timeout": -1.0}, "smtp.timeout"),
        ({"timeout": float("nan")}, "smtp.timeout"),
        ({"timeout": True}, "smtp.timeout"),
        ({"username": "portal"}, "smtp.username"),
        ({"password": Secret("pw")}, "smtp.username"),
        ({"username": "portal", "password": "plain str"}, "smtp.password"),
        ({"username": "portal", "password": Secret(b"bytes")}, "smtp.password"),
        ({"username": "portal", "password": Secret("pässword")}, "smtp.password"),
        ({"username": "pörtal", "password": Secret("password")}, "smtp.password"),
    ],
)
def test_bad_settings_are_refused_with_the_field(changes: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {"host": "smtp.example.org", "from_address": SENDER}
    arguments.update(changes)

    with pytest.raises(SettingsError) as excinfo:
        SmtpEmailSender(**arguments)  # type: ignore[arg-type]

    assert excinfo.value.field == field
    assert excinfo.value.code == "settings.invalid"
    assert "pässword" not in str(excinfo.value)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"from_address": "noreply@portal.example\r\nBcc: x@evil.example"}, "from_address"),
        ({"from_address": "a@portal.example, b@evil.example"}, "from_address"),
        ({"from_address": ""}, "from_address"),
        ({"username": "portal\r\nRSET", "password": Secret("pw")}, "username"),
    ],
)
def test_header_injection_in_settings_is_refused(changes: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {"host": "smtp.example.org", "from_address": SENDER}
    arguments.update(changes)

    with pytest.raises(ValueError, match=field):
        SmtpEmailSender(**arguments)  # type: ignore[arg-type]
