"""What every web application of the library needs, once, whatever its framework.

A web application turns the library's errors into HTTP answers, builds each
request's `RequestContext` from what its server reports, reads the text
fields of a JSON form, and answers the account flows in JSON. The Flask,
FastAPI and Django recipes (docs/guide/frameworks.md) did each of these in
their own copy; here they are done once, so that every framework answers
alike and keeps only its glue: how to build a response, how to read a
request. Nothing here imports a framework.

The statuses are chosen so that a refused attempt never tells more than the
library says itself: a refused sign-in is an answer of `sign_in`, never an
error, so unknown email, wrong password and locked account stay one answer
(LK-5); a link that is unknown, expired or used is one 401 (RG-6); and an
error the library did not expect is a 500 that keeps its code and says
nothing more, since its message may name the store's hosts.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

import attrs

from securepractice.context import RequestContext
from securepractice.errors import (
    AlreadyExists,
    DeliveryFailed,
    InvalidInput,
    InvalidState,
    InvalidToken,
    NotFound,
    PermissionDenied,
    RateLimited,
    SecurePracticeError,
)
from securepractice.policy.text import require_text

if TYPE_CHECKING:
    from securepractice.accounts.registration import RegistrationStep
    from securepractice.accounts.reset import ResetStep
    from securepractice.accounts.second_factor import SecondFactorOptions
    from securepractice.accounts.signin import SessionStatus
    from securepractice.policy.attachments import MessageReport
    from securepractice.policy.password import PasswordReport
    from securepractice.verification.phones import DeliveryOption

__all__ = [
    "UNEXPECTED_MESSAGE",
    "HttpError",
    "attachments_json",
    "chosen_option",
    "form_text",
    "http_error",
    "option_json",
    "optional_form_text",
    "password_json",
    "request_context",
    "second_factor_json",
    "session_json",
    "step_json",
]

#: Each error of the library and its HTTP status, the first that matches; any other is a 500.
_STATUS_OF: tuple[tuple[type[SecurePracticeError], int], ...] = (
    (InvalidInput, 400),
    (InvalidToken, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (InvalidState, 409),
    (AlreadyExists, 409),
    (RateLimited, 429),
    (DeliveryFailed, 502),
)
#: The message of a 500: the error's own may name internal hosts or tables.
UNEXPECTED_MESSAGE = "The portal could not do that just now."


def _read_only(body: Mapping[str, object]) -> Mapping[str, object]:
    return MappingProxyType(dict(body))


@attrs.frozen(kw_only=True)
class HttpError:
    """The HTTP answer to one of the library's errors: its status, JSON body and headers.

    ``body`` holds the error's ``code`` and ``message``, the ``field`` of an
    `InvalidInput` and the ``retry_after`` seconds of a `RateLimited`; it is
    read-only, so pass ``dict(body)`` to a framework that wants a dict.
    """

    status: int
    body: Mapping[str, object] = attrs.field(converter=_read_only)
    headers: tuple[tuple[str, str], ...] = ()


def http_error(error: SecurePracticeError) -> HttpError:
    """Return the answer to ``error``; the library's messages never hold a secret (AU-2)."""
    status = next((status for kind, status in _STATUS_OF if isinstance(error, kind)), None)
    message = UNEXPECTED_MESSAGE if status is None else error.message
    body: dict[str, object] = {"code": error.code, "message": message}
    headers: tuple[tuple[str, str], ...] = ()
    if isinstance(error, InvalidInput):
        body["field"] = error.field
    if isinstance(error, RateLimited):
        # Rounded up: a client that waits as long as told is never refused for being early.
        seconds = math.ceil(error.retry_after.total_seconds())
        body["retry_after"] = seconds
        headers = (("Retry-After", str(seconds)),)
    return HttpError(status=status or 500, body=body, headers=headers)


def request_context(
    *, client_host: str | None, user_agent: str | None, request_id: str | None
) -> RequestContext:
    """Return the context of a request from what the server and the client sent (CX-1).

    ``client_host`` is what the server reports for the client. A unix
    socket reports none, and a test client a name (Starlette's
    ``testclient``): such a request is served without an address rather
    than refused for the server's setup. The user agent and the request id
    are the client's, and are taken as `RequestContext` takes them: a
    malformed request id raises `InvalidInput` (``context.bad_request_id``).
    """
    return RequestContext(
        client_address=client_host if _is_address(client_host) else None,
        user_agent=user_agent,
        request_id=request_id,
    )


def _is_address(host: str | None) -> bool:
    try:
        ipaddress.ip_address((host or "").strip())
    except ValueError:
        return False
    return True


def form_text(form: Mapping[str, object], name: str) -> str:
    """Return the text field ``name`` of a JSON form; anything else is `InvalidInput`."""
    return require_text(form.get(name), field=name)


def optional_form_text(form: Mapping[str, object], name: str) -> str | None:
    """Return the text field ``name`` of a JSON form, or None when it is missing or null."""
    return None if form.get(name) is None else form_text(form, name)


def chosen_option(options: tuple[DeliveryOption, ...], *, method: str, kind: str) -> DeliveryOption:
    """Return the offered option the user picked by its method and phone field (VF-2)."""
    for option in options:
        if (option.method.value, option.kind.value) == (method, kind):
            return option
    raise InvalidInput(
        "Choose one of the ways offered.", field="method", code="verification.option_not_offered"
    )


def option_json(option: DeliveryOption) -> dict[str, str]:
    """Describe a delivery option without the whole number: the last four digits say which."""
    return {
        "method": option.method.value,
        "kind": option.kind.value,
        "ends": option.destination[-4:],
    }


def step_json(step: RegistrationStep | ResetStep) -> dict[str, object]:
    """Say which step of a link's flow comes next, with the ways a code can be sent."""
    options = [option_json(option) for option in step.delivery_options]
    return {"stage": step.stage.value, "email": step.email, "delivery_options": options}


def password_json(report: PasswordReport) -> dict[str, object]:
    """Say whether a new password was taken, with every violation when not."""
    violations = [{"code": v.code, "message": v.message} for v in report.violations]
    return {"ok": report.ok, "violations": violations}


def second_factor_json(options: SecondFactorOptions) -> dict[str, object]:
    """List the ways the pending sign-in's user can prove it is them (MF-2)."""
    return {
        "delivery_options": [option_json(option) for option in options.delivery_options],
        "authenticator": options.authenticator,
        "recovery_codes": options.recovery_codes,
    }


def session_json(status: SessionStatus) -> dict[str, object]:
    """Say who is signed in, whether they must change their password, and until when."""
    return {
        "user_id": status.user_id,
        "must_change_password": status.must_change_password,
        "idle_until": status.idle_until.isoformat(),
    }


def attachments_json(report: MessageReport) -> dict[str, object]:
    """Give the attachment check's verdict on a message and on each of its files."""
    return {
        "ok": report.ok,
        "codes": list(report.codes),
        "files": [{"name": f.name, "ok": f.ok, "codes": list(f.codes)} for f in report.files],
    }
