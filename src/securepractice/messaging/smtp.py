"""An email adapter over the standard library's ``smtplib`` (MS-1).

It opens one connection per message: a flow sends few emails, and a fresh
connection cannot be left half-broken by the previous one. Every failure of
the driver (refused, unreachable, timed out, TLS, authentication) becomes
`DeliveryFailed` with ``channel="email"``, raised from the original error,
with a message that names the server and never the body.
"""

from __future__ import annotations

import email.message
import email.utils
import ipaddress
import smtplib
import ssl
from typing import Literal, get_args

from securepractice.errors import DeliveryFailed, SettingsError
from securepractice.messaging.ports import EmailMessage, check_email_address, check_header
from securepractice.secret import Secret

__all__ = ["SmtpEmailSender", "SmtpSecurity"]

#: How the connection is protected: ``"starttls"`` upgrades a plain connection
#: (submission, port 587), ``"tls"`` is TLS from the first byte (port 465),
#: ``"none"`` is plain text, for a server on this machine only.
SmtpSecurity = Literal["starttls", "tls", "none"]

_SECURITY_MODES: tuple[SmtpSecurity, ...] = get_args(SmtpSecurity)
_DEFAULT_PORTS: dict[SmtpSecurity, int] = {"starttls": 587, "tls": 465, "none": 25}
_MAX_PORT = 65535


def _is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _setting(field: str, message: str) -> SettingsError:
    return SettingsError(f"smtp.{field}", message)


def _check_host(host: object) -> str:
    if not isinstance(host, str) or not host.strip() or host != host.strip():
        raise _setting("host", "must be a server name or address")
    check_header(host, "host")
    return host


def _check_port(port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port <= _MAX_PORT:
        raise _setting("port", "must be a whole number from 1 to 65535")
    return port


def _check_timeout(timeout: object) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise _setting("timeout", "must be a positive number of seconds")
    return float(timeout)


def _check_credentials(username: object, password: object) -> tuple[str, Secret[str]] | None:
    if username is None and password is None:
        return None
    if username is None or password is None:
        raise _setting("username", "username and password go together: give both or neither")
    if not isinstance(password, Secret) or not isinstance(password.reveal(), str):
        raise _setting("password", "must be a Secret[str], so that it stays out of reprs")
    name = check_header(username, "username")
    secret: Secret[str] = password
    if not (name.isascii() and secret.reveal().isascii()):
        # smtplib encodes both as ASCII, and its UnicodeEncodeError would hold the password.
        raise _setting("password", "username and password must be ASCII for SMTP AUTH")
    return name, secret


class SmtpEmailSender:
    """Sends each `EmailMessage` through an SMTP server, as plain text in UTF-8.

    :param host: the server's name or address.
    :param from_address: the address the email comes from (``From`` and the
        envelope sender).
    :param port: defaults to 587 for ``"starttls"``, 465 for ``"tls"`` and 25
        for ``"none"``.
    :param security: see `SmtpSecurity`. ``"none"`` is refused for a host
        that is not a loopback address (``localhost``, ``127.0.0.0/8``,
        ``::1``) unless ``allow_insecure`` is true: the email may carry a
        reset link.
    :param username: with ``password``, signs in with SMTP AUTH after TLS is
        set up. Both or neither; both must be ASCII (``smtplib`` encodes them
        as ASCII).
    :param password: a `Secret`, so it appears in no ``repr``.
    :param ssl_context: the TLS settings; defaults to
        ``ssl.create_default_context()``, which checks the certificate and
        the host name.
    :param timeout: seconds to wait for any one network operation.
    :param local_hostname: the name given in ``EHLO``; by default
        ``smtplib`` asks the system for its fully qualified name.
    :param allow_insecure: allow ``security="none"`` for a host that is not
        a loopback address (a relay inside a trusted network, at your risk).

    A value these rules refuse is a `SettingsError` naming the parameter.
    """

    def __init__(
        self,
        *,
        host: str,
        from_address: str,
        port: int | None = None,
        security: SmtpSecurity = "starttls",
        username: str | None = None,
        password: Secret[str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
        local_hostname: str | None = None,
        allow_insecure: bool = False,
    ) -> None:
        host = _check_host(host)
        if security not in _SECURITY_MODES:
            raise _setting("security", f"must be one of {', '.join(_SECURITY_MODES)}")
        if security == "none" and not allow_insecure and not _is_loopback(host):
            raise _setting(
                "security",
                f"'none' sends email in plain text; it is allowed only for a loopback host,"
                f" not {host!r}, unless allow_insecure=True",
            )
        credentials = _check_credentials(username, password)
        self._host = host
        self._port = _check_port(_DEFAULT_PORTS[security] if port is None else port)
        self._security: SmtpSecurity = security
        self._from = check_email_address(from_address, "from_address")
        self._credentials = credentials
        self._context = ssl_context
        if ssl_context is None and security != "none":
            self._context = ssl.create_default_context()
        self._timeout = _check_timeout(timeout)
        self._local_hostname = local_hostname
        self._msgid_domain = self._from.rpartition("@")[2] or "localhost"

    def __repr__(self) -> str:
        return (
            f"SmtpEmailSender(host={self._host!r}, port={self._port}, "
            f"security={self._security!r}, "
            f"username={self._credentials[0] if self._credentials else None!r}, "
            f"from_address={self._from!r})"
        )

    def send_email(self, message: EmailMessage) -> None:
        """Hand ``message`` to the server; raise `DeliveryFailed` if it is not accepted."""
        try:
            mime = self._mime(message)
            client = self._connect()
            try:
                if self._security == "starttls":
                    client.starttls(context=self._context)
                if self._credentials is not None:
                    username, password = self._credentials
                    client.login(username, password.reveal())
                client.send_message(mime, from_addr=self._from, to_addrs=[message.to])
            finally:
                _close(client)
        except (smtplib.SMTPException, OSError, ValueError) as exc:
            raise DeliveryFailed(self._failure(exc), channel="email") from exc

    def _mime(self, message: EmailMessage) -> email.message.EmailMessage:
        mime = email.message.EmailMessage()
        mime["From"] = self._from
        mime["To"] = message.to
        mime["Subject"] = message.subject
        mime["Date"] = email.utils.formatdate(usegmt=True)
        mime["Message-ID"] = email.utils.make_msgid(domain=self._msgid_domain)
        mime.set_content(message.body)
        return mime

    def _connect(self) -> smtplib.SMTP:
        if self._security == "tls":
            return smtplib.SMTP_SSL(
                self._host,
                self._port,
                local_hostname=self._local_hostname,
                timeout=self._timeout,
                context=self._context,
            )
        return smtplib.SMTP(
            self._host, self._port, local_hostname=self._local_hostname, timeout=self._timeout
        )

    def _failure(self, exc: Exception) -> str:
        reply = getattr(exc, "smtp_code", None)
        detail = type(exc).__name__ if reply is None else f"{type(exc).__name__}, reply {reply}"
        return (
            f"the SMTP server {self._host}:{self._port} did not accept the email"
            f" ({self._security}; {detail})"
        )


def _close(client: smtplib.SMTP) -> None:
    """Say goodbye politely if the connection still works, and close it anyway."""
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()
