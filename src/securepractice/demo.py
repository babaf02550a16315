"""``securepractice demo``: the portal's help pages, played through once.

A practice is created and a doctor invited; she registers (a phone number,
a text code, a re-send, a switch to a call, the Terms of Use, a password),
signs in, is signed out after half an hour idle, locks herself out with
five wrong passwords, resets her password by email and phone, signs in
again, and adds an authenticator app, which the portal then asks for at
sign-in. Every message is printed as it would reach her; the demo reads the
codes and links from them as she would. The store is a temporary SQLite
file, and the clock is a fake one, so that half an hour passes at once.
"""

from __future__ import annotations

import base64
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO
from urllib.parse import parse_qs, urlsplit

import attrs

from securepractice.clock import FakeClock
from securepractice.errors import InvalidToken
from securepractice.messaging.console import ConsoleMessenger
from securepractice.messaging.outbox import Outbox
from securepractice.messaging.ports import EmailMessage, Messaging, SmsMessage, VoiceMessage
from securepractice.policy.attachments import Attachment, AttachmentPolicy
from securepractice.policy.password import PasswordReport
from securepractice.portal import Accounts, Portal
from securepractice.records import DeliveryMethod
from securepractice.secret import Secret
from securepractice.settings import (
    HashParameters,
    LinkRules,
    SecondFactor,
    Settings,
    SignInRules,
)
from securepractice.verification import totp

__all__ = ["run_demo"]

EMAIL = "dr.smith@example.com"
CELL = "+12015550123"
SMS = DeliveryMethod.SMS


class _Phone(Outbox):
    """What reaches the doctor: printed on the console, and kept so she can read it back."""

    def __init__(self, console: ConsoleMessenger) -> None:
        super().__init__()
        self._console = console

    def send_email(self, message: EmailMessage) -> None:
        self._console.send_email(message)
        super().send_email(message)

    def send_sms(self, message: SmsMessage) -> None:
        self._console.send_sms(message)
        super().send_sms(message)

    def place_call(self, message: VoiceMessage) -> None:
        self._console.place_call(message)
        super().place_call(message)


def _token(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


PASSWORD = "Sunshine-2026"
NEW_PASSWORD = "Moonlight-2026"


class _Demo:
    """One run of the demonstration: the portal, her phone and mailbox, the clock."""

    def __init__(self, portal: Portal, phone: _Phone, clock: FakeClock, out: TextIO) -> None:
        self.portal, self.accounts, self.phone, self.clock, self.out = (
            portal,
            portal.accounts,
            phone,
            clock,
            out,
        )

    def say(self, text: str) -> None:
        print(text, file=self.out)

    def heading(self, text: str) -> None:
        print(f"\n== {text}", file=self.out)

    def passwords(self, submit: Callable[[str], PasswordReport], *candidates: str) -> None:
        for password in candidates:
            report = submit(password)
            self.say(f"{password!r}: {'accepted' if report.ok else ', '.join(report.codes)}")

    def register(self) -> None:
        accounts, phone = self.accounts, self.phone
        self.heading("Support creates the practice; its first user is invited by email.")
        practice = accounts.create_practice(name="Smile Dental", address="1 Main St")
        accounts.invite(practice_id=practice.id, email=EMAIL, first_name="Ann")
        link = _token(phone.last_link(EMAIL))
        self.heading("Step 1-2: she opens the link and gives her cell phone.")
        self.say(f"Registration step: {accounts.open_invitation(link).stage.value}")
        step = accounts.add_phones(link, cell="(201) 555-0123")
        for option in step.delivery_options:
            self.say(f"  offered: {option.method.value} to {option.destination}")
        self.heading("Step 3-5: a text, a re-send, a switch to a call; old codes stop working.")
        sms, call = sorted(step.delivery_options, key=lambda o: o.method is not SMS)
        accounts.send_code(link, option=sms)
        first = phone.last_code(CELL)
        accounts.resend_code(link)
        accounts.change_delivery_method(link, option=call)
        self.say(f"The first code now: {accounts.verify_code(link, code=first).outcome.value}")
        latest = accounts.verify_code(link, code=phone.last_code(CELL))
        self.say(f"The code from the call: {latest.outcome.value}")
        self.heading("Step 6-8: Terms of Use, a password (a weak one first), then sign in.")
        accounts.accept_terms(link, version=self.portal.deps.terms_version)
        self.passwords(
            lambda p: accounts.set_password(link, password=p, confirmation=p), "sunshine", PASSWORD
        )

    def sign_in_and_out(self) -> None:
        accounts = self.accounts
        signed_in = accounts.sign_in(email=EMAIL, password=PASSWORD)
        self.say(f"Sign-in: {signed_in.outcome.value}")
        self.heading("31 minutes without activity sign her out.")
        self.clock.advance(minutes=31)
        try:
            accounts.touch_session(signed_in.session_token or "")
        except InvalidToken as ended:
            self.say(f"Session: {ended}")
        self.heading("Five wrong passwords lock the account; then the right one is refused.")
        for attempt in range(5):
            accounts.sign_in(email=EMAIL, password=f"Wrong-{attempt}!")
        locked = accounts.sign_in(email=EMAIL, password=PASSWORD)
        self.say(f"Sign-in: {locked.outcome.value}: {locked.message}")

    def reset(self) -> None:
        accounts, phone = self.accounts, self.phone
        self.heading("Forgot password: a link by email, a code by phone, a new password.")
        accounts.forgot_password(email=EMAIL)
        link = _token(phone.last_link(EMAIL))
        options = accounts.delivery_options(link)
        accounts.send_code(link, option=next(o for o in options if o.method is SMS))
        accounts.verify_code(link, code=phone.last_code(CELL))
        self.passwords(
            lambda p: accounts.reset_password(link, password=p, confirmation=p),
            PASSWORD,
            NEW_PASSWORD,
        )
        again = accounts.sign_in(email=EMAIL, password=NEW_PASSWORD)
        self.say(f"Sign-in: {again.outcome.value}")

    def authenticator(self) -> None:
        accounts, clock = self.accounts, self.clock
        self.heading("She adds an authenticator app, and the portal asks for it at sign-in.")
        signed_in = accounts.sign_in(email=EMAIL, password=NEW_PASSWORD)
        token = signed_in.session_token or ""
        added = accounts.start_authenticator(token)
        secret = parse_qs(urlsplit(added.uri.reveal()).query)["secret"][0]
        seed = Secret(base64.b32decode(secret + "=" * (-len(secret) % 8)))
        accounts.confirm_authenticator(token, code=totp.totp(seed, clock.now()))
        self.say("The app shows a code every 30 seconds; the first one confirmed it.")
        clock.advance(seconds=30)
        rules = SignInRules(second_factor=SecondFactor.ALWAYS)
        asking = Accounts(attrs.evolve(self.portal.deps, settings=attrs.evolve(
            self.portal.deps.settings, sign_in=rules)))  # fmt: skip
        pending = asking.sign_in(email=EMAIL, password=NEW_PASSWORD)
        self.say(f"Password: {pending.outcome.value}")
        finished = asking.finish_sign_in(
            pending.pending_token or "", authenticator_code=totp.totp(seed, clock.now())
        )
        self.say(f"The app's code: {finished.outcome.value}")

    def attachments(self) -> None:
        self.heading("Attachments: a scan passes; a program renamed .pdf does not.")
        message = AttachmentPolicy().check(
            [
                Attachment(name="xray.pdf", content=b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"),
                Attachment(name="invoice.pdf", content=b"MZ\x90\x00" + bytes(60)),
            ]
        )
        for file in message.files:
            self.say(f"{file.name}: {'ok' if file.ok else ', '.join(file.codes)}")


def run_demo(out: TextIO) -> int:
    """Play the demonstration, printing to ``out``; return the exit status."""
    phone = _Phone(ConsoleMessenger(out))
    clock = FakeClock()
    # A new portal secret each run is fine here: the demo's database is temporary and
    # opened by this one process. A real portal keeps one secret for good (DP-2).
    settings = Settings(
        hashing=HashParameters.OWASP,
        links=LinkRules(base_url="https://portal.example"),
        secret=Secret(secrets.token_bytes(32)),
    )
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "portal.db"
        with Portal.sqlite(
            store, messaging=Messaging.using(phone), settings=settings, clock=clock
        ) as portal:
            demo = _Demo(portal, phone, clock, out)
            demo.register()
            demo.sign_in_and_out()
            demo.reset()
            demo.authenticator()
            demo.attachments()
    return 0
