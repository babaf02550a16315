"""The documented Twilio SMS adapter, run against a local HTTP server so it never goes stale."""

from __future__ import annotations

import base64
import importlib.util
import json
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import attrs
import pytest

from securepractice.errors import DeliveryFailed
from securepractice.messaging import SmsMessage, SmsSender
from securepractice.secret import Secret

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "sms_provider.py"
SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "twilio-auth-token-not-for-logs"
CODE_TEXT = "Your practice portal code is 482913"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sms_provider_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = _load_example()


@attrs.define
class Received:
    """One request the fake Twilio got."""

    path: str
    authorization: str | None
    content_type: str | None
    form: dict[str, list[str]]


class _FakeTwilio(BaseHTTPRequestHandler):
    received: ClassVar[list[Received]] = []
    status: ClassVar[int] = 201
    reply: ClassVar[bytes] = b'{"sid": "SM123", "status": "queued"}'

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        body = self.rfile.read(length).decode()
        type(self).received.append(
            Received(
                path=self.path,
                authorization=self.headers["Authorization"],
                content_type=self.headers["Content-Type"],
                form=urllib.parse.parse_qs(body),
            )
        )
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.reply)))
        self.end_headers()
        self.wfile.write(self.reply)

    def log_message(self, *_args: Any) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def twilio() -> Iterator[tuple[str, type[_FakeTwilio]]]:
    """A fake Twilio on 127.0.0.1; yields its base URL and the handler class to inspect."""
    handler = type("Handler", (_FakeTwilio,), {"received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/2010-04-01", handler
    server.shutdown()
    server.server_close()
    thread.join()


def _sender(base_url: str) -> Any:
    no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return example.TwilioSmsSender(
        account_sid=SID,
        auth_token=Secret(TOKEN),
        from_number="+12025550100",
        base_url=base_url,
        timeout=5.0,
        opener=no_proxy,
    )


def test_ms1_example_posts_the_form_with_basic_auth(
    twilio: tuple[str, type[_FakeTwilio]],
) -> None:
    base_url, handler = twilio
    sender = _sender(base_url)
    assert isinstance(sender, SmsSender)

    sender.send_sms(SmsMessage(to="+12025550123", text=CODE_TEXT))

    (request,) = handler.received
    assert request.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert request.content_type == "application/x-www-form-urlencoded"
    assert request.form == {"To": ["+12025550123"], "From": ["+12025550100"], "Body": [CODE_TEXT]}
    assert request.authorization is not None
    scheme, _, encoded = request.authorization.partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == f"{SID}:{TOKEN}"


def test_vf10_example_maps_http_errors(twilio: tuple[str, type[_FakeTwilio]]) -> None:
    base_url, handler = twilio
    handler.status = 400
    handler.reply = json.dumps({"code": 21211, "message": "Invalid 'To' Phone Number"}).encode()

    with pytest.raises(DeliveryFailed) as excinfo:
        _sender(base_url).send_sms(SmsMessage(to="+12025550123", text=CODE_TEXT))

    failure = excinfo.value
    assert failure.channel == "sms"
    assert "HTTP 400" in str(failure)
    assert "Twilio error 21211" in str(failure)
    assert isinstance(failure.__cause__, urllib.error.HTTPError)
    for shown in (str(failure), repr(failure)):
        assert "482913" not in shown
        assert TOKEN not in shown


@pytest.mark.parametrize("reply", [b"<html>Bad gateway</html>", b"[1, 2]", b'{"code": "x"}'])
def test_vf10_example_maps_http_errors_without_a_twilio_code(
    twilio: tuple[str, type[_FakeTwilio]], reply: bytes
) -> None:
    base_url, handler = twilio
    handler.status = 502
    handler.reply = reply

    with pytest.raises(DeliveryFailed, match=r"HTTP 502\)") as excinfo:
        _sender(base_url).send_sms(SmsMessage(to="+12025550123", text=CODE_TEXT))

    assert excinfo.value.channel == "sms"


def test_vf10_example_maps_network_errors() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(DeliveryFailed) as excinfo:
        _sender(f"http://127.0.0.1:{port}/2010-04-01").send_sms(
            SmsMessage(to="+12025550123", text=CODE_TEXT)
        )

    assert excinfo.value.channel == "sms"
    assert "could not be reached" in str(excinfo.value)
    assert isinstance(excinfo.value.__cause__, OSError)


def test_au2_example_repr_hides_the_token() -> None:
    sender = _sender("https://api.twilio.com/2010-04-01")

    assert TOKEN not in repr(sender)
    assert SID in repr(sender)


@pytest.mark.parametrize(
    "base_url", ["http://api.twilio.com/2010-04-01", "file:///etc/passwd", "ftp://127.0.0.1/"]
)
def test_example_refuses_a_url_that_is_not_https(base_url: str) -> None:
    with pytest.raises(ValueError, match="https"):
        _sender(base_url)


def test_example_defaults_to_twilio() -> None:
    sender = example.TwilioSmsSender(
        account_sid=SID, auth_token=Secret(TOKEN), from_number="+12025550100"
    )

    assert f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json" in repr(sender)
