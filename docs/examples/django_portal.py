"""A Django project in one module over a `Portal`: settings, middleware, views and URLs.

The same JSON endpoints as the Flask recipe: registration by invitation,
sign-in with a second factor, sessions that end after inactivity, the
forgotten password, and the check of uploaded attachments. A middleware runs
each request inside ``portal.request(...)`` with the client's address, user
agent and request id (CX-1), and answers the library's errors with HTTP
statuses, in one place: `error_response`. In a project of several files the
settings go to ``settings.py``, the views to ``views.py`` and the URLs to
``urls.py``; nothing else changes.
"""

from __future__ import annotations

import ipaddress
import json
import math
from collections.abc import Callable, Mapping

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from securepractice import (
    AlreadyExists,
    Attachment,
    AttachmentPolicy,
    DeliveryFailed,
    DeliveryOption,
    InvalidInput,
    InvalidState,
    InvalidToken,
    NotFound,
    PasswordReport,
    PermissionDenied,
    Portal,
    RateLimited,
    RegistrationStep,
    ResetStep,
    SecurePracticeError,
    SessionStatus,
    SignInOutcome,
    SignInResult,
)
from securepractice.context import RequestContext

SESSION_COOKIE = "session"
PENDING_COOKIE = "pending_sign_in"
#: Each error of the library and its HTTP status; any other error is a 500 that says no more.
STATUS_OF: tuple[tuple[type[SecurePracticeError], int], ...] = (
    (InvalidInput, 400),
    (InvalidToken, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (InvalidState, 409),
    (AlreadyExists, 409),
    (RateLimited, 429),
    (DeliveryFailed, 502),
)
#: The portal this process serves: one per process, built at start-up (`create_app`).
SERVED: dict[str, Portal] = {}

View = Callable[[HttpRequest], HttpResponse]
#: Django's method checks (405 for any other method), typed for mypy.
post_only: Callable[[View], View] = require_POST
get_only: Callable[[View], View] = require_GET


def create_app(portal: Portal) -> WSGIHandler:
    """Configure Django for this module, once per process, and serve ``portal``.

    Links are built from the portal's ``LinkRules.base_url``, never from the
    Host header; a project of its own keeps its ``ALLOWED_HOSTS``.
    """
    if not settings.configured:
        settings.configure(
            ROOT_URLCONF=__name__,
            MIDDLEWARE=[f"{__name__}.RequestContextMiddleware"],
            USE_TZ=True,
        )
        django.setup()
    SERVED["portal"] = portal
    return WSGIHandler()


def current_portal() -> Portal:
    """Return the portal this process serves."""
    return SERVED["portal"]


def client_address(host: str | None) -> str | None:
    """Return the address the server reports when it is an IP address, else None.

    A unix socket reports none: the request then goes on without an address,
    rather than being refused for the server's setup.
    """
    try:
        return str(ipaddress.ip_address(host or ""))
    except ValueError:
        return None


def error_response(error: SecurePracticeError) -> HttpResponse:
    """Map one of the library's errors to its HTTP status; its messages never hold a secret."""
    status = next((status for kind, status in STATUS_OF if isinstance(error, kind)), None)
    message = "The portal could not do that just now." if status is None else error.message
    body: dict[str, object] = {"code": error.code, "message": message}
    if isinstance(error, InvalidInput):
        body["field"] = error.field
    response = JsonResponse(body, status=status or 500)
    if isinstance(error, RateLimited):
        response["Retry-After"] = str(math.ceil(error.retry_after.total_seconds()))
    return response


class RequestContextMiddleware:
    """Run each request inside ``portal.request(...)`` (CX-1); answer the library's errors."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Serve ``request`` with its client's context; a malformed request id is a 400."""
        try:
            context = RequestContext(
                client_address=client_address(request.META.get("REMOTE_ADDR")),
                user_agent=request.headers.get("User-Agent"),
                request_id=request.headers.get("X-Request-Id"),
            )
        except SecurePracticeError as error:
            return error_response(error)
        with current_portal().request(context):
            return self.get_response(request)

    def process_exception(self, _request: HttpRequest, error: Exception) -> HttpResponse | None:
        """Answer an error of the library raised by a view; leave any other to Django."""
        return error_response(error) if isinstance(error, SecurePracticeError) else None


def text(body: Mapping[str, object], name: str) -> str:
    """Return the text field ``name`` of a JSON body; anything else is the caller's mistake."""
    value = body.get(name)
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be text.", field=name, code="text.not_text")
    return value


def optional_text(body: Mapping[str, object], name: str) -> str | None:
    """Return the text field ``name`` of a JSON body, or None when it is missing or null."""
    return None if body.get(name) is None else text(body, name)


def json_body(request: HttpRequest) -> Mapping[str, object]:
    """Return the request's JSON object, or an empty one when it sent none."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def option_json(option: DeliveryOption) -> dict[str, str]:
    """Describe a delivery option without the whole number: the last four digits say which."""
    return {
        "method": option.method.value,
        "kind": option.kind.value,
        "ends": option.destination[-4:],
    }


def chosen(options: tuple[DeliveryOption, ...], body: Mapping[str, object]) -> DeliveryOption:
    """Return the offered option the user picked by method and phone field (VF-2)."""
    method, kind = text(body, "method"), text(body, "kind")
    for option in options:
        if (option.method.value, option.kind.value) == (method, kind):
            return option
    raise InvalidInput(
        "Choose one of the ways offered.", field="method", code="verification.option_not_offered"
    )


def step_json(step: RegistrationStep | ResetStep) -> HttpResponse:
    """Say which step of a link's flow comes next, with the ways a code can be sent."""
    options = [option_json(option) for option in step.delivery_options]
    return JsonResponse(
        {"stage": step.stage.value, "email": step.email, "delivery_options": options}
    )


def report_json(report: PasswordReport) -> HttpResponse:
    """Answer a new password: 200 when it was taken, 400 with every violation when not."""
    violations = [{"code": v.code, "message": v.message} for v in report.violations]
    return JsonResponse(
        {"ok": report.ok, "violations": violations}, status=200 if report.ok else 400
    )


def set_cookie(
    response: HttpResponse, name: str, value: str, *, max_age: int | None = None, path: str = "/"
) -> None:
    """Keep ``value`` in a cookie that scripts cannot read, sent only over HTTPS to this site."""
    response.set_cookie(
        name, value, max_age=max_age, path=path, secure=True, httponly=True, samesite="Strict"
    )


def sign_in_response(result: SignInResult) -> HttpResponse:
    """Answer a sign-in step: a session cookie, a pending sign-in's cookie, or the one refusal."""
    response = JsonResponse({"outcome": result.outcome.value, "message": result.message})
    if result.session_token is not None:
        set_cookie(response, SESSION_COOKIE, result.session_token.reveal())
        response.delete_cookie(PENDING_COOKIE, path="/sign-in", samesite="Strict")
    elif result.outcome is SignInOutcome.SECOND_FACTOR_REQUIRED and result.pending_token:
        lifetime = current_portal().deps.settings.links.sign_in_lifetime
        max_age = int(lifetime.total_seconds())
        pending = result.pending_token.reveal()
        set_cookie(response, PENDING_COOKIE, pending, max_age=max_age, path="/sign-in")
    else:
        response.status_code = 401
    return response


def signed_in(request: HttpRequest) -> SessionStatus:
    """Record this request on the session; one idle too long raises InvalidToken (LK-6)."""
    return current_portal().accounts.touch_session(request.COOKIES.get(SESSION_COOKIE, ""))


@post_only
def open_invitation(request: HttpRequest) -> HttpResponse:
    """Registration step 1: the invitation link opened; say which step is next."""
    return step_json(current_portal().accounts.open_invitation(text(json_body(request), "token")))


@post_only
def add_phones(request: HttpRequest) -> HttpResponse:
    """Registration step 2: the phone and cell phone numbers."""
    body = json_body(request)
    phone, cell = optional_text(body, "phone"), optional_text(body, "cell")
    return step_json(
        current_portal().accounts.add_phones(text(body, "token"), phone=phone, cell=cell)
    )


@post_only
def send_code(request: HttpRequest) -> HttpResponse:
    """Send a code for a registration or reset link, the way the user picked."""
    body, accounts = json_body(request), current_portal().accounts
    token = text(body, "token")
    accounts.send_code(token, option=chosen(accounts.delivery_options(token), body))
    return HttpResponse(status=204)


@post_only
def verify_code(request: HttpRequest) -> HttpResponse:
    """Check the code typed for a registration or reset link."""
    body = json_body(request)
    check = current_portal().accounts.verify_code(text(body, "token"), code=text(body, "code"))
    return JsonResponse({"verified": check.verified, "outcome": check.outcome.value})


@post_only
def accept_terms(request: HttpRequest) -> HttpResponse:
    """Registration step 6: the Terms of Use, in the version the page showed."""
    body = json_body(request)
    step = current_portal().accounts.accept_terms(
        text(body, "token"), version=text(body, "version")
    )
    return step_json(step)


@post_only
def set_password(request: HttpRequest) -> HttpResponse:
    """Registration step 7: the password, which completes registration."""
    body = json_body(request)
    password, again = text(body, "password"), text(body, "confirmation")
    token = text(body, "token")
    return report_json(
        current_portal().accounts.set_password(token, password=password, confirmation=again)
    )


@post_only
def sign_in(request: HttpRequest) -> HttpResponse:
    """Sign in with email and password; a second factor may be asked next (MF-1)."""
    body = json_body(request)
    email, password = text(body, "email"), text(body, "password")
    return sign_in_response(current_portal().accounts.sign_in(email=email, password=password))


@get_only
def second_factor_options(request: HttpRequest) -> HttpResponse:
    """List the ways the pending sign-in's user can prove it is them (MF-2)."""
    pending = request.COOKIES.get(PENDING_COOKIE, "")
    options = current_portal().accounts.second_factor_options(pending)
    return JsonResponse(
        {
            "delivery_options": [option_json(option) for option in options.delivery_options],
            "authenticator": options.authenticator,
            "recovery_codes": options.recovery_codes,
        }
    )


@post_only
def send_sign_in_code(request: HttpRequest) -> HttpResponse:
    """Send the pending sign-in's code by text or call."""
    pending, accounts = request.COOKIES.get(PENDING_COOKIE, ""), current_portal().accounts
    accounts.send_code(
        pending, option=chosen(accounts.delivery_options(pending), json_body(request))
    )
    return HttpResponse(status=204)


@post_only
def finish_sign_in(request: HttpRequest) -> HttpResponse:
    """Check the pending sign-in's code, then open the session."""
    pending, accounts = request.COOKIES.get(PENDING_COOKIE, ""), current_portal().accounts
    check = accounts.verify_code(pending, code=text(json_body(request), "code"))
    if not check.verified:
        return JsonResponse({"outcome": check.outcome.value}, status=401)
    return sign_in_response(accounts.finish_sign_in(pending))


@get_only
def session(request: HttpRequest) -> HttpResponse:
    """Who is signed in; every request of a signed-in page records activity (LK-6)."""
    status = signed_in(request)
    return JsonResponse(
        {
            "user_id": status.user_id,
            "must_change_password": status.must_change_password,
            "idle_until": status.idle_until.isoformat(),
        }
    )


@post_only
def sign_out(request: HttpRequest) -> HttpResponse:
    """End the session and forget its cookie."""
    current_portal().accounts.sign_out(request.COOKIES.get(SESSION_COOKIE, ""))
    response = HttpResponse(status=204)
    response.delete_cookie(SESSION_COOKIE, samesite="Strict")
    return response


@post_only
def forgot_password(request: HttpRequest) -> HttpResponse:
    """Ask for a reset link; the answer is the same whatever the email (RS-1)."""
    current_portal().accounts.forgot_password(email=text(json_body(request), "email"))
    return HttpResponse(status=202)


@post_only
def open_reset_link(request: HttpRequest) -> HttpResponse:
    """Open a reset link; say which step is next."""
    return step_json(current_portal().accounts.open_reset_link(text(json_body(request), "token")))


@post_only
def reset_password(request: HttpRequest) -> HttpResponse:
    """Set the new password with a reset link whose code was verified."""
    body = json_body(request)
    password, again = text(body, "password"), text(body, "confirmation")
    token = text(body, "token")
    return report_json(
        current_portal().accounts.reset_password(token, password=password, confirmation=again)
    )


@post_only
def check_attachments(request: HttpRequest) -> HttpResponse:
    """Check the uploaded files of one message before accepting them (AT-1..AT-8)."""
    signed_in(request)
    # Each upload is handed over as its file (in memory or spooled): only its first bytes are read.
    uploads = request.FILES.getlist("file")
    files = [Attachment(name=upload.name or "", content=upload.file) for upload in uploads]
    report = AttachmentPolicy(current_portal().deps.settings.attachments).check(files)
    body = {
        "ok": report.ok,
        "codes": list(report.codes),
        "files": [{"name": f.name, "ok": f.ok, "codes": list(f.codes)} for f in report.files],
    }
    return JsonResponse(body, status=200 if report.ok else 400)


urlpatterns = [
    path("register/open", open_invitation),
    path("register/phones", add_phones),
    path("codes/send", send_code),
    path("codes/verify", verify_code),
    path("register/terms", accept_terms),
    path("register/password", set_password),
    path("sign-in", sign_in),
    path("sign-in/options", second_factor_options),
    path("sign-in/send-code", send_sign_in_code),
    path("sign-in/code", finish_sign_in),
    path("session", session),
    path("sign-out", sign_out),
    path("password/forgot", forgot_password),
    path("password/reset/open", open_reset_link),
    path("password/reset", reset_password),
    path("attachments", check_attachments),
]
