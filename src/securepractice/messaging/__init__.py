"""Messaging: the email, SMS and voice ports and their adapters (MS-1).

Flows reach a person only through the three protocols in
`securepractice.messaging.ports`. The adapters are the in-memory `Outbox`
(tests), the `ConsoleMessenger` (the demo) and the `SmtpEmailSender`
(stdlib ``smtplib``); an SMS or voice provider is plugged in by writing a
class with one method. Importing this package imports no driver and opens
no connection: each name is imported from its module on first use (PEP 562).
"""

from __future__ import annotations

from securepractice._lazy import lazy_exports

#: True only for type checkers, which know the name; importing it from
#: ``typing`` would cost a bare ``import`` of this package most of its time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from securepractice.messaging.console import ConsoleMessenger as ConsoleMessenger
    from securepractice.messaging.outbox import NothingSent as NothingSent
    from securepractice.messaging.outbox import Outbox as Outbox
    from securepractice.messaging.ports import Channel as Channel
    from securepractice.messaging.ports import EmailMessage as EmailMessage
    from securepractice.messaging.ports import EmailSender as EmailSender
    from securepractice.messaging.ports import Messaging as Messaging
    from securepractice.messaging.ports import MessagingAdapter as MessagingAdapter
    from securepractice.messaging.ports import SmsMessage as SmsMessage
    from securepractice.messaging.ports import SmsSender as SmsSender
    from securepractice.messaging.ports import VoiceCaller as VoiceCaller
    from securepractice.messaging.ports import VoiceMessage as VoiceMessage
    from securepractice.messaging.smtp import SmtpEmailSender as SmtpEmailSender
    from securepractice.messaging.smtp import SmtpSecurity as SmtpSecurity

#: Each public name and the module it lives in.
_MODULE_OF: dict[str, str] = {
    "ConsoleMessenger": "securepractice.messaging.console",
    "NothingSent": "securepractice.messaging.outbox",
    "Outbox": "securepractice.messaging.outbox",
    "Channel": "securepractice.messaging.ports",
    "EmailMessage": "securepractice.messaging.ports",
    "EmailSender": "securepractice.messaging.ports",
    "Messaging": "securepractice.messaging.ports",
    "MessagingAdapter": "securepractice.messaging.ports",
    "SmsMessage": "securepractice.messaging.ports",
    "SmsSender": "securepractice.messaging.ports",
    "VoiceCaller": "securepractice.messaging.ports",
    "VoiceMessage": "securepractice.messaging.ports",
    "SmtpEmailSender": "securepractice.messaging.smtp",
    "SmtpSecurity": "securepractice.messaging.smtp",
}

__all__ = list(_MODULE_OF)


_load, __dir__ = lazy_exports(__name__, _MODULE_OF, globals())

# Hidden from type checkers: they type the names by the imports above and flag
# any other, where a visible __getattr__ would make every attribute valid.
if not TYPE_CHECKING:  # pragma: no branch - always taken when the code runs
    __getattr__ = _load
