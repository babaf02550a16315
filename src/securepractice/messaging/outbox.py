"""An in-memory adapter for all three channels, for tests (MS-1).

Public on purpose, like structlog's ``testing`` module: an application tests
its own flows against an `Outbox` and reads codes and links from it the way
a person reads their phone and mailbox, so no test ever predicts a secret.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import TypeVar, get_args

from securepractice.errors import DeliveryFailed, InvalidInput, NotFound
from securepractice.messaging.ports import (
    Channel,
    EmailMessage,
    SmsMessage,
    VoiceMessage,
)

__all__ = ["NothingSent", "Outbox"]

_CHANNELS: tuple[Channel, ...] = get_args(Channel)

#: A run of digits, which may be grouped by single spaces, hyphens or commas
#: ("123456", "123 456", "1, 2, 3, 4, 5, 6" as a voice message spells it).
_DIGIT_RUN = re.compile(r"\d(?:(?:, ?|[ -])?\d)*")

#: The fewest digits that count as a code, so "your 2-step code" is not one.
_MIN_CODE_DIGITS = 4

_URL = re.compile(r"https?://[^\s<>\"']+")
_URL_TRAILING_PUNCTUATION = ".,;:!?)]}"

_M = TypeVar("_M", bound="EmailMessage | SmsMessage | VoiceMessage")


class NothingSent(NotFound, LookupError):
    """The outbox holds no message (or no code, or no link) of the kind asked for."""

    default_code = "outbox.nothing_sent"


class Outbox:
    """Keeps every message it is given, per channel, in the order they came.

    Thread-safe: flows running in several threads may send at once, and
    every message is kept. `fail_next` makes the next deliveries on a
    channel fail with `DeliveryFailed`, to test what a flow does when a
    provider is down (VF-10).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: list[EmailMessage | SmsMessage | VoiceMessage] = []
        self._failures: dict[Channel, int] = dict.fromkeys(_CHANNELS, 0)

    def __repr__(self) -> str:
        emails, sms, calls = len(self.emails), len(self.sms), len(self.calls)
        return f"Outbox(emails={emails}, sms={sms}, calls={calls})"

    # The three ports.

    def send_email(self, message: EmailMessage) -> None:
        """Keep ``message``, or raise `DeliveryFailed` if a failure is pending for email."""
        self._deliver("email", message)

    def send_sms(self, message: SmsMessage) -> None:
        """Keep ``message``, or raise `DeliveryFailed` if a failure is pending for SMS."""
        self._deliver("sms", message)

    def place_call(self, message: VoiceMessage) -> None:
        """Keep ``message``, or raise `DeliveryFailed` if a failure is pending for voice."""
        self._deliver("voice", message)

    # Faults.

    def fail_next(self, channel: Channel, *, times: int = 1) -> None:
        """Make the next ``times`` deliveries on ``channel`` raise `DeliveryFailed`.

        The failing messages are not kept. Calls add up: two calls with
        ``times=1`` make two deliveries fail.
        """
        if channel not in _CHANNELS:
            raise InvalidInput(
                f"channel must be one of {', '.join(_CHANNELS)}",
                field="channel",
                code="message.unknown_channel",
            )
        count: object = times
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidInput(
                "times must be a whole number of at least 1",
                field="times",
                code="message.not_valid",
            )
        with self._lock:
            self._failures[channel] += count

    def clear(self) -> None:
        """Forget every message kept and every pending failure."""
        with self._lock:
            self._sent.clear()
            self._failures = dict.fromkeys(_CHANNELS, 0)

    # What was sent.

    @property
    def emails(self) -> tuple[EmailMessage, ...]:
        """Every email kept, oldest first."""
        return self._of(EmailMessage)

    @property
    def sms(self) -> tuple[SmsMessage, ...]:
        """Every text message kept, oldest first."""
        return self._of(SmsMessage)

    @property
    def calls(self) -> tuple[VoiceMessage, ...]:
        """Every voice call kept, oldest first."""
        return self._of(VoiceMessage)

    def last_email(self, to: str | None = None) -> EmailMessage:
        """Return the latest email (to ``to``, if given); raise `NothingSent` if none."""
        return self._last(self.emails, to, "email")

    def last_sms(self, to: str | None = None) -> SmsMessage:
        """Return the latest text message (to ``to``, if given); raise `NothingSent` if none."""
        return self._last(self.sms, to, "text message")

    def last_call(self, to: str | None = None) -> VoiceMessage:
        """Return the latest voice call (to ``to``, if given); raise `NothingSent` if none."""
        return self._last(self.calls, to, "voice call")

    # What a person reads.

    def last_code(self, to: str) -> str:
        """Return the code in the latest text message or voice call to the number ``to``.

        The code is the first run of at least four digits, as a person would
        read it: digits grouped by spaces, hyphens or commas ("123 456",
        "1, 2, 3, 4, 5, 6") are joined. Only the latest message counts: if it
        holds no code, `NothingSent` is raised rather than an older (and
        perhaps void) code returned.
        """
        with self._lock:
            phone = [m for m in self._sent if isinstance(m, (SmsMessage, VoiceMessage))]
        latest = self._last(tuple(phone), to, "text message or voice call")
        for run in _DIGIT_RUN.finditer(latest.text):
            digits = "".join(char for char in run.group() if char.isdigit())
            if len(digits) >= _MIN_CODE_DIGITS:
                return digits
        raise NothingSent(f"the latest message to {to!r} holds no code")

    def last_link(self, to: str) -> str:
        """Return the first web link (http or https) in the latest email to ``to``.

        Punctuation that ends a sentence after the link is not part of it.
        Raises `NothingSent` when there is no email to ``to``, or when the
        latest one holds no link.
        """
        latest = self.last_email(to)
        found = _URL.search(latest.body)
        if found is None:
            raise NothingSent(f"the latest email to {to!r} holds no link")
        return found.group().rstrip(_URL_TRAILING_PUNCTUATION)

    def _deliver(self, channel: Channel, message: EmailMessage | SmsMessage | VoiceMessage) -> None:
        with self._lock:
            if self._failures[channel]:
                self._failures[channel] -= 1
                failing = True
            else:
                self._sent.append(message)
                failing = False
        if failing:
            cause = ConnectionError(f"simulated {channel} provider outage")
            raise DeliveryFailed(
                f"the {channel} provider did not accept the message (simulated by the outbox)",
                channel=channel,
            ) from cause

    def _of(self, kind: type[_M]) -> tuple[_M, ...]:
        with self._lock:
            return tuple(m for m in self._sent if isinstance(m, kind))

    @staticmethod
    def _last(messages: tuple[_M, ...], to: str | None, what: str) -> _M:
        match: Callable[[_M], bool] = (lambda _m: True) if to is None else (lambda m: m.to == to)
        for message in reversed(messages):
            if match(message):
                return message
        where = "" if to is None else f" to {to!r}"
        raise NothingSent(f"no {what} was sent{where}")
