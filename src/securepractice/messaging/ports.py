"""The messaging ports: one protocol per channel, and the messages they carry (MS-1).

A flow never talks to an SMTP server or an SMS provider itself: it hands a
message value to an `EmailSender`, `SmsSender` or `VoiceCaller`. Any class
with the right method is an adapter; no inheritance is needed.

A message body or text may hold a one-time code or a link with a token, so
it never appears in ``repr`` or ``str`` (AU-2): they show the recipient, the
subject (for email) and the body's length only. The subject is shown, so it
must never hold a secret.

Recipients are plain ``str``: an email address or an E.164 number, already
validated by the caller (ID-1, VF-1). What is refused here is what would let
one value act as several: line breaks and other control characters in
anything that becomes a header (header injection), and, in an email address,
the characters that separate or wrap addresses.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any, Literal, Protocol, runtime_checkable

import attrs

from securepractice.errors import InvalidInput

__all__ = [
    "Channel",
    "EmailMessage",
    "EmailSender",
    "Messaging",
    "MessagingAdapter",
    "SmsMessage",
    "SmsSender",
    "VoiceCaller",
    "VoiceMessage",
    "check_email_address",
    "check_header",
]

#: The name of a channel, as carried by `securepractice.errors.DeliveryFailed`.
Channel = Literal["email", "sms", "voice"]

#: Unicode categories that break or hide a line: controls (CR, LF, NUL, NEL...)
#: and the line and paragraph separators.
_BREAKING_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})

#: Characters that separate addresses in a header or wrap one in a display name.
_ADDRESS_SEPARATORS = frozenset(",;<>")


def _require_text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(
            f"{field} must be text (str), not {type(value).__name__}",
            field=field,
            code="message.not_text",
        )
    return value


def check_header(value: object, field: str) -> str:
    """Return ``value`` if it may go into a message header; raise `InvalidInput` if not.

    Refuses anything but ``str``, and CR, LF or any other control or
    line-separator character: each of them could start a new header.
    """
    text = _require_text(value, field)
    if any(unicodedata.category(char) in _BREAKING_CATEGORIES for char in text):
        raise InvalidInput(
            f"{field} must not hold line breaks or control characters",
            field=field,
            code="message.control_character",
        )
    return text


def _check_recipient(value: object, field: str) -> str:
    text = check_header(value, field)
    if not text.strip():
        raise InvalidInput(f"{field} must not be empty", field=field, code="message.no_recipient")
    if text != text.strip():
        raise InvalidInput(
            f"{field} must not start or end with spaces",
            field=field,
            code="message.recipient_not_valid",
        )
    return text


def check_email_address(value: object, field: str) -> str:
    """Return ``value`` if it is one bare email address; raise `InvalidInput` if not.

    This is not address validation (ID-1 does that): it refuses only what
    would make one value act as several addresses or headers.
    """
    text = _check_recipient(value, field)
    if any(char.isspace() or char in _ADDRESS_SEPARATORS for char in text):
        raise InvalidInput(
            f"{field} must be one bare address, without spaces, commas, semicolons or angle"
            " brackets",
            field=field,
            code="message.recipient_not_valid",
        )
    return text


def _check_body(value: object, field: str) -> str:
    text = _require_text(value, field)
    if not text.strip():
        raise InvalidInput(f"{field} must not be empty", field=field, code="message.empty")
    return text


def _email_to(_instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    check_email_address(value, attribute.name)


def _number_to(_instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    _check_recipient(value, attribute.name)


def _subject(_instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    check_header(value, attribute.name)


def _body(_instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    _check_body(value, attribute.name)


@attrs.frozen(kw_only=True, repr=False)
class EmailMessage:
    """One plain-text email to one address.

    ``body`` may hold a link with a token; ``repr`` and ``str`` show only its
    length (AU-2).
    """

    to: str = attrs.field(validator=_email_to)
    subject: str = attrs.field(validator=_subject)
    body: str = attrs.field(validator=_body)

    def __repr__(self) -> str:
        return (
            f"EmailMessage(to={self.to!r}, subject={self.subject!r}, body=<{len(self.body)} chars>)"
        )


@attrs.frozen(kw_only=True, repr=False)
class _PhoneMessage:
    to: str = attrs.field(validator=_number_to)
    text: str = attrs.field(validator=_body)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(to={self.to!r}, text=<{len(self.text)} chars>)"


@attrs.frozen(kw_only=True, repr=False)
class SmsMessage(_PhoneMessage):
    """One text message to one phone number (E.164).

    ``text`` may hold a one-time code; ``repr`` and ``str`` show only its
    length (AU-2).
    """


@attrs.frozen(kw_only=True, repr=False)
class VoiceMessage(_PhoneMessage):
    """One voice call to one phone number (E.164) that reads ``text`` aloud.

    ``text`` may hold a one-time code; ``repr`` and ``str`` show only its
    length (AU-2).
    """


@runtime_checkable
class EmailSender(Protocol):
    """Hands an email to its way to the recipient's mailbox.

    An adapter returns once the message is accepted for delivery (by an SMTP
    server, a provider's API, a test outbox). Any problem doing so (refused,
    unreachable, timed out, bad credentials) must surface as
    ``securepractice.errors.DeliveryFailed(channel="email")``, raised
    ``from`` the driver's own exception, and its message must not hold the
    body. No other exception may escape.
    """

    def send_email(self, message: EmailMessage) -> None:
        """Deliver ``message`` or raise `DeliveryFailed` with ``channel="email"``."""
        ...


@runtime_checkable
class SmsSender(Protocol):
    """Hands a text message to an SMS provider.

    An adapter returns once the provider accepted the message. Any problem
    must surface as ``securepractice.errors.DeliveryFailed(channel="sms")``,
    raised ``from`` the original exception, with a message that does not
    hold the text (it may hold a code). No other exception may escape.
    """

    def send_sms(self, message: SmsMessage) -> None:
        """Deliver ``message`` or raise `DeliveryFailed` with ``channel="sms"``."""
        ...


@runtime_checkable
class VoiceCaller(Protocol):
    """Asks a voice provider to call a number and read a text aloud.

    An adapter returns once the provider accepted the call. Any problem
    must surface as ``securepractice.errors.DeliveryFailed(channel="voice")``,
    raised ``from`` the original exception, with a message that does not
    hold the text. No other exception may escape.
    """

    def place_call(self, message: VoiceMessage) -> None:
        """Place the call or raise `DeliveryFailed` with ``channel="voice"``."""
        ...


@runtime_checkable
class MessagingAdapter(EmailSender, SmsSender, VoiceCaller, Protocol):
    """One adapter that serves all three channels (the outbox, the console)."""


def _has_method(name: str) -> Callable[[object, attrs.Attribute[Any], Any], None]:
    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not callable(getattr(value, name, None)):
            msg = f"{attribute.name}: {type(value).__name__} has no {name}() method"
            raise TypeError(msg)

    return check


@attrs.frozen(kw_only=True)
class Messaging:
    """The three channels in one value, so a service takes a single argument.

    Each field is checked when built: an object without the channel's method
    is a `TypeError` here, not a surprise at the first delivery.
    """

    email: EmailSender = attrs.field(validator=_has_method("send_email"))
    sms: SmsSender = attrs.field(validator=_has_method("send_sms"))
    voice: VoiceCaller = attrs.field(validator=_has_method("place_call"))

    @classmethod
    def using(cls, adapter: MessagingAdapter) -> Messaging:
        """Return a bundle that sends every channel through ``adapter``."""
        return cls(email=adapter, sms=adapter, voice=adapter)
