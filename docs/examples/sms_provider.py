"""An SMS adapter for Twilio's Messages API, written with the standard library only.

It is an `SmsSender`: one method, ``send_sms``. Every HTTP or network
problem becomes ``DeliveryFailed(channel="sms")`` raised from the original
error, and no message names the text (it holds a one-time code) or the
auth token.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request

from securepractice.errors import DeliveryFailed
from securepractice.messaging import SmsMessage
from securepractice.secret import Secret

TWILIO_API = "https://api.twilio.com/2010-04-01"


class TwilioSmsSender:
    """Sends each `SmsMessage` with ``POST /Accounts/{AccountSid}/Messages.json``.

    ``base_url`` must be HTTPS; plain HTTP is accepted only for a server on
    127.0.0.1, which is how the tests run it.
    """

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: Secret[str],
        from_number: str,
        base_url: str = TWILIO_API,
        timeout: float = 10.0,
        opener: urllib.request.OpenerDirector | None = None,
    ) -> None:
        url = urllib.parse.urlsplit(base_url)
        if url.scheme != "https" and not (url.scheme == "http" and url.hostname == "127.0.0.1"):
            raise ValueError("base_url must be an https:// URL")
        sid = urllib.parse.quote(account_sid, safe="")
        self._url = f"{base_url.rstrip('/')}/Accounts/{sid}/Messages.json"
        basic = base64.b64encode(f"{account_sid}:{auth_token.reveal()}".encode()).decode("ascii")
        self._authorization = Secret(f"Basic {basic}")
        self._from = from_number
        self._timeout = timeout
        self._opener = opener or urllib.request.build_opener()

    def __repr__(self) -> str:
        return f"TwilioSmsSender(url={self._url!r}, from_number={self._from!r})"

    def send_sms(self, message: SmsMessage) -> None:
        """Hand ``message`` to Twilio; raise `DeliveryFailed` if it is not accepted."""
        form = {"To": message.to, "From": self._from, "Body": message.text}
        request = urllib.request.Request(  # noqa: S310 (the scheme is checked in __init__)
            self._url,
            data=urllib.parse.urlencode(form).encode(),
            headers={
                "Authorization": self._authorization.reveal(),
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            method="POST",
        )
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                reason = _twilio_error_code(exc.read())
            raise DeliveryFailed(
                f"Twilio refused the text message to {message.to!r} (HTTP {exc.code}{reason})",
                channel="sms",
            ) from exc
        except OSError as exc:  # URLError, timeouts, TLS and connection errors
            raise DeliveryFailed(
                f"Twilio could not be reached ({type(exc).__name__})", channel="sms"
            ) from exc


def _twilio_error_code(body: bytes) -> str:
    """Return ", Twilio error N" from an error response, or "" if it has no code."""
    try:
        document = json.loads(body)
    except ValueError:
        return ""
    code = document.get("code") if isinstance(document, dict) else None
    return f", Twilio error {code}" if isinstance(code, int) else ""
