"""Messaging: the email, SMS and voice ports and their adapters (MS-1).

Flows reach a person only through the three protocols in
`securepractice.messaging.ports`. The adapters are the in-memory `Outbox`
(tests), the `ConsoleMessenger` (the demo) and the `SmtpEmailSender`
(stdlib ``smtplib``); an SMS or voice provider is plugged in by writing a
class with one method. Importing this package imports no driver and opens
no connection.
"""

from __future__ import annotations

from securepractice.messaging.console import ConsoleMessenger
from securepractice.messaging.outbox import NothingSent, Outbox
from securepractice.messaging.ports import (
    Channel,
    EmailMessage,
    EmailSender,
    Messaging,
    MessagingAdapter,
    SmsMessage,
    SmsSender,
    VoiceCaller,
    VoiceMessage,
)
from securepractice.messaging.smtp import SmtpEmailSender, SmtpSecurity

__all__ = [
    "Channel",
    "ConsoleMessenger",
    "EmailMessage",
    "EmailSender",
    "Messaging",
    "MessagingAdapter",
    "NothingSent",
    "Outbox",
    "SmsMessage",
    "SmsSender",
    "SmtpEmailSender",
    "SmtpSecurity",
    "VoiceCaller",
    "VoiceMessage",
]
