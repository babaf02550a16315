"""One user's journey through a recipe of docs/examples, the same for every framework.

The recipes serve the same JSON endpoints (docs/guide/frameworks.md). Each
framework's test module gives a `Browser` over the framework's own test
client; the steps and checks here drive it as a user's browser would, read
codes and links from the outbox as the user reads their phone and mail, and
move the fake clock.
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import attrs

from securepractice import FakeClock, Outbox, Portal
from securepractice.operations import export_audit

EMAIL = "dr.smith@smile.example"
CELL = "+12025550143"
PASSWORD = "Bright-Smile-2026"
NEW_PASSWORD = "Harbor-Light-77"
TERMS = "2026-01"
#: The address, user agent and request id the test clients send (CX-1).
ADDRESS = "203.0.113.9"
OTHER_ADDRESS = "198.51.100.7"
USER_AGENT = "RecipeBrowser/1.0 (journey)"
REQUEST_ID = "req-0001"
#: A small PDF, and a Windows program named as one (AT-3).
PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
PROGRAM = b"MZ\x90\x00\x03\x00\x00\x00" + bytes(120)
SECURE_COOKIE = {"httponly", "secure", "samesite=strict"}
EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def load_example(name: str) -> ModuleType:
    """Import ``docs/examples/<name>.py`` once, under ``name``, as a reader's copy would be.

    docs/examples is not on the path; the module is registered in
    `sys.modules` so that a framework can import it by name (Django's URLs).
    """
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@attrs.frozen
class Reply:
    """What came back: the status, the decoded JSON (None without), headers and cookies set."""

    status: int
    body: Any
    headers: Mapping[str, str]  # names in lower case
    cookies: tuple[str, ...]  # each Set-Cookie line


class Browser(Protocol):
    """A test client that keeps cookies, sends ``headers`` with every request."""

    headers: dict[str, str]

    def get(self, path: str) -> Reply: ...

    def post(self, path: str, body: Mapping[str, object]) -> Reply: ...

    def upload(self, path: str, files: Sequence[tuple[str, bytes]]) -> Reply: ...


def decoded(content: bytes) -> Any:
    """Return the JSON of a body, or None for an empty one."""
    return json.loads(content) if content else None


def cookie_line(reply: Reply, name: str) -> str | None:
    """Return the Set-Cookie line of the cookie ``name``, or None if it was not set."""
    return next((line for line in reply.cookies if line.startswith(f"{name}=")), None)


def cookie_flags(line: str) -> set[str]:
    """Return the attributes of a Set-Cookie line, in lower case and without spaces."""
    return {part.strip().lower().replace(" ", "") for part in line.split(";")[1:]}


def token_of(link: str) -> str:
    """Return the ``token`` of a link the portal emailed."""
    return parse_qs(urlsplit(link).query)["token"][0]


def audit_events(portal: Portal) -> list[dict[str, Any]]:
    """Return the portal's audit log, as its JSON Lines export gives it (OP-3)."""
    out = io.StringIO()
    export_audit(portal, out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


@attrs.define
class Journey:
    """The portal behind a recipe, what the user reads, the clock, and the user's browser."""

    portal: Portal
    outbox: Outbox
    clock: FakeClock
    browser: Browser

    def expect(self, reply: Reply, status: int) -> Any:
        """Return the body of ``reply`` after checking its status."""
        assert reply.status == status, (reply.status, reply.body)
        return reply.body

    def invite(self) -> str:
        """Invite the user into a new practice and return the token of the emailed link."""
        practice = self.portal.accounts.create_practice(name="Smile Dental")
        self.portal.accounts.invite(practice_id=practice.id, email=EMAIL)
        return token_of(self.outbox.last_link(EMAIL))

    def verify_by_text(self, token: str) -> None:
        """Send a code by text for a link's flow and type it in."""
        choice = {"token": token, "method": "sms", "kind": "cell"}
        self.expect(self.browser.post("/codes/send", choice), 204)
        code = self.outbox.last_code(CELL)
        checked = self.browser.post("/codes/verify", {"token": token, "code": code})
        assert self.expect(checked, 200) == {"verified": True, "outcome": "verified"}

    def register(self) -> None:
        """Register by the invitation: phones, a code by text, the terms, the password."""
        token = self.invite()
        opened = self.expect(self.browser.post("/register/open", {"token": token}), 200)
        assert (opened["stage"], opened["email"]) == ("phones", EMAIL)
        phones = {"token": token, "cell": "(202) 555-0143"}
        step = self.expect(self.browser.post("/register/phones", phones), 200)
        assert step["stage"] == "verify"
        assert {"method": "sms", "kind": "cell", "ends": "0143"} in step["delivery_options"]
        self.verify_by_text(token)
        terms = self.browser.post("/register/terms", {"token": token, "version": TERMS})
        assert self.expect(terms, 200)["stage"] == "password"
        weak = {"token": token, "password": "smile", "confirmation": "smile"}
        refused = self.expect(self.browser.post("/register/password", weak), 400)
        assert "password.too_short" in [v["code"] for v in refused["violations"]]
        good = {"token": token, "password": PASSWORD, "confirmation": PASSWORD}
        assert self.expect(self.browser.post("/register/password", good), 200)["ok"] is True

    def sign_in(self, password: str = PASSWORD) -> None:
        """Sign in: the password, then a code by text (MF-1), into a session cookie."""
        credentials = {"email": EMAIL, "password": password}
        started = self.browser.post("/sign-in", credentials)
        assert self.expect(started, 200)["outcome"] == "second_factor_required"
        pending = cookie_line(started, "pending_sign_in")
        assert pending is not None
        assert cookie_flags(pending) >= SECURE_COOKIE
        assert cookie_line(started, "session") is None  # a pending sign-in opens nothing
        options = self.expect(self.browser.get("/sign-in/options"), 200)
        assert {"method": "sms", "kind": "cell", "ends": "0143"} in options["delivery_options"]
        choice = {"method": "sms", "kind": "cell"}
        self.expect(self.browser.post("/sign-in/send-code", choice), 204)
        code = self.outbox.last_code(CELL)
        wrong = "000000" if code != "000000" else "111111"
        refused = self.browser.post("/sign-in/code", {"code": wrong})
        assert self.expect(refused, 401) == {"outcome": "wrong_code"}
        finished = self.browser.post("/sign-in/code", {"code": code})
        assert self.expect(finished, 200)["outcome"] == "ok"
        session = cookie_line(finished, "session")
        assert session is not None
        assert cookie_flags(session) >= SECURE_COOKIE
        assert code not in json.dumps(finished.body)

    def idle_sign_out(self) -> None:
        """Every request records activity; one after the idle timeout is refused (LK-6)."""
        idle = self.portal.deps.settings.sign_in.idle_timeout
        for _ in range(3):  # three requests, each within the timeout of the one before
            self.clock.advance(idle - timedelta(seconds=1))
            self.expect(self.browser.get("/session"), 200)
        self.clock.advance(idle + timedelta(seconds=1))
        ended = self.expect(self.browser.get("/session"), 401)
        assert ended["code"] == "session.invalid"

    def reset(self) -> None:
        """Forgot password: the emailed link, a code by text, the new password (RS-1..RS-3)."""
        unknown = self.browser.post("/password/forgot", {"email": "nobody@smile.example"})
        self.expect(unknown, 202)
        self.expect(self.browser.post("/password/forgot", {"email": EMAIL}), 202)
        token = token_of(self.outbox.last_link(EMAIL))
        opened = self.expect(self.browser.post("/password/reset/open", {"token": token}), 200)
        assert opened["stage"] == "verify"
        self.verify_by_text(token)
        new = {"token": token, "password": NEW_PASSWORD, "confirmation": NEW_PASSWORD}
        self.expect(self.browser.post("/password/reset", new), 200)
        old = self.browser.post("/sign-in", {"email": EMAIL, "password": PASSWORD})
        assert self.expect(old, 401)["outcome"] == "invalid_credentials"

    def upload(self) -> None:
        """A PDF passes the attachment check; a program named as a PDF does not (AT-3)."""
        accepted = self.expect(self.browser.upload("/attachments", [("referral.pdf", PDF)]), 200)
        assert accepted["ok"] is True
        assert accepted["files"] == [{"name": "referral.pdf", "ok": True, "codes": []}]
        files = [("referral.pdf", PDF), ("scan.pdf", PROGRAM)]
        refused = self.expect(self.browser.upload("/attachments", files), 400)
        assert refused["ok"] is False
        assert refused["files"][0]["ok"] is True
        assert "attachment.executable" in refused["files"][1]["codes"]
