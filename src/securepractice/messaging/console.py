"""An adapter that prints every message to a text stream, for the demo (MS-1)."""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from securepractice.errors import DeliveryFailed
from securepractice.messaging.ports import Channel, EmailMessage, SmsMessage, VoiceMessage

__all__ = ["ConsoleMessenger"]


class ConsoleMessenger:
    """Prints each email, text message and voice call, labelled by channel.

    For demonstrations only: it prints the whole message, one-time codes and
    links included, because showing them is its purpose. It writes to the
    stream it is given (standard output by default) and never through
    `logging`, so no code ends up in a log file. Never use it in production.

    A stream that cannot be written (closed, full disk) is a
    `DeliveryFailed` on the message's channel.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send_email(self, message: EmailMessage) -> None:
        """Print ``message`` under an ``[email]`` heading."""
        self._print(
            "email", f"To: {message.to}\nSubject: {message.subject}\n\n{message.body}", message.to
        )

    def send_sms(self, message: SmsMessage) -> None:
        """Print ``message`` under an ``[sms]`` heading."""
        self._print("sms", f"To: {message.to}\n\n{message.text}", message.to)

    def place_call(self, message: VoiceMessage) -> None:
        """Print ``message`` under a ``[voice]`` heading, as the call would read it."""
        self._print("voice", f"To: {message.to}\n\n{message.text}", message.to)

    def _print(self, channel: Channel, text: str, to: str) -> None:
        # Resolved at each call, so that a redirected sys.stdout is honoured.
        stream = sys.stdout if self._stream is None else self._stream
        try:
            with self._lock:
                stream.write(f"----- [{channel}] -----\n{text}\n----- [end {channel}] -----\n")
                stream.flush()
        except (OSError, ValueError) as exc:
            raise DeliveryFailed(
                f"the {channel} message to {to!r} could not be printed ({type(exc).__name__})",
                channel=channel,
            ) from exc
