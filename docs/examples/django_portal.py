"""A Django project in one module over a `Portal`: settings, middleware, views and URLs.

The same JSON endpoints as the Flask recipe: registration by invitation,
sign-in with a second factor, sessions that end after inactivity, the
forgotten password, and the check of uploaded attachments. A middleware runs
each request inside ``portal.request(...)`` with the client's address, user
agent and request id (CX-1), and answers the library's errors with the HTTP
statuses of `securepractice.web.http_error`, in `error_response`. What is not
Django's (the statuses, the JSON answers, the form's fields) comes from
`securepractice.web`. In a project of several files the
settings go to ``settings.py``, the views to ``views.py`` and the URLs to
``urls.py``; nothing else changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from securepractice import (
    Attachment,
    AttachmentPolicy,
    PasswordReport,
    Portal,
    SecurePracticeError,
    SessionStatus,
    SignInOutcome,
    SignInResult,
)
from securepractice.web import (
    attachments_json,
    chosen_option,
    form_text,
    http_error,
    optional_form_text,
    password_json,
    request_context,
    second_factor_json,
    session_json,
    step_json,
)

SESSION_COOKIE = "session"
PENDING_COOKIE = "pending_sign_in"
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


def error_response(error: SecurePracticeError) -> HttpResponse:
    """Answer one of the library's errors with its status, JSON body and headers."""
    failure = http_error(error)
    response = JsonResponse(dict(failure.body), status=failure.status)
    for name, value in failure.headers:
        response[name] = value
    return response


class RequestContextMiddleware:
    """Run each request inside ``portal.request(...)`` (CX-1); answer the library's errors."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Serve ``request`` with its client's context; a malformed request id is a 400."""
        try:
            context = request_context(
                client_host=request.META.get("REMOTE_ADDR"),
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


def json_body(request: HttpRequest) -> Mapping[str, object]:
    """Return the request's JSON object, or an empty one when it sent none."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def send_code_to(request: HttpRequest, token: str) -> HttpResponse:
    """Send a code for the link or pending sign-in ``token``, the way the form picked (VF-2)."""
    body, accounts = json_body(request), current_portal().accounts
    picked = chosen_option(
        accounts.delivery_options(token),
        method=form_text(body, "method"),
        kind=form_text(body, "kind"),
    )
    accounts.send_code(token, option=picked)
    return HttpResponse(status=204)


def new_password(request: HttpRequest, action: Callable[..., PasswordReport]) -> HttpResponse:
    """Set the password typed twice by a link's ``action``: 200, or 400 with every violation."""
    body = json_body(request)
    report = action(
        form_text(body, "token"),
        password=form_text(body, "password"),
        confirmation=form_text(body, "confirmation"),
    )
    return JsonResponse(password_json(report), status=200 if report.ok else 400)


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
    token = form_text(json_body(request), "token")
    return JsonResponse(step_json(current_portal().accounts.open_invitation(token)))


@post_only
def add_phones(request: HttpRequest) -> HttpResponse:
    """Registration step 2: the phone and cell phone numbers."""
    body = json_body(request)
    phone, cell = optional_form_text(body, "phone"), optional_form_text(body, "cell")
    step = current_portal().accounts.add_phones(form_text(body, "token"), phone=phone, cell=cell)
    return JsonResponse(step_json(step))


@post_only
def send_code(request: HttpRequest) -> HttpResponse:
    """Send a code for a registration or reset link, the way the user picked."""
    return send_code_to(request, form_text(json_body(request), "token"))


@post_only
def verify_code(request: HttpRequest) -> HttpResponse:
    """Check the code typed for a registration or reset link."""
    body = json_body(request)
    token, code = form_text(body, "token"), form_text(body, "code")
    check = current_portal().accounts.verify_code(token, code=code)
    return JsonResponse({"verified": check.verified, "outcome": check.outcome.value})


@post_only
def accept_terms(request: HttpRequest) -> HttpResponse:
    """Registration step 6: the Terms of Use, in the version the page showed."""
    body = json_body(request)
    token, version = form_text(body, "token"), form_text(body, "version")
    return JsonResponse(step_json(current_portal().accounts.accept_terms(token, version=version)))


@post_only
def set_password(request: HttpRequest) -> HttpResponse:
    """Registration step 7: the password, which completes registration."""
    return new_password(request, current_portal().accounts.set_password)


@post_only
def sign_in(request: HttpRequest) -> HttpResponse:
    """Sign in with email and password; a second factor may be asked next (MF-1)."""
    body = json_body(request)
    email, password = form_text(body, "email"), form_text(body, "password")
    return sign_in_response(current_portal().accounts.sign_in(email=email, password=password))


@get_only
def second_factor_options(request: HttpRequest) -> HttpResponse:
    """List the ways the pending sign-in's user can prove it is them (MF-2)."""
    pending = request.COOKIES.get(PENDING_COOKIE, "")
    options = current_portal().accounts.second_factor_options(pending)
    return JsonResponse(second_factor_json(options))


@post_only
def send_sign_in_code(request: HttpRequest) -> HttpResponse:
    """Send the pending sign-in's code by text or call."""
    return send_code_to(request, request.COOKIES.get(PENDING_COOKIE, ""))


@post_only
def finish_sign_in(request: HttpRequest) -> HttpResponse:
    """Check the pending sign-in's code, then open the session."""
    pending, accounts = request.COOKIES.get(PENDING_COOKIE, ""), current_portal().accounts
    check = accounts.verify_code(pending, code=form_text(json_body(request), "code"))
    if not check.verified:
        return JsonResponse({"outcome": check.outcome.value}, status=401)
    return sign_in_response(accounts.finish_sign_in(pending))


@get_only
def session(request: HttpRequest) -> HttpResponse:
    """Who is signed in; every request of a signed-in page records activity (LK-6)."""
    return JsonResponse(session_json(signed_in(request)))


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
    current_portal().accounts.forgot_password(email=form_text(json_body(request), "email"))
    return HttpResponse(status=202)


@post_only
def open_reset_link(request: HttpRequest) -> HttpResponse:
    """Open a reset link; say which step is next."""
    token = form_text(json_body(request), "token")
    return JsonResponse(step_json(current_portal().accounts.open_reset_link(token)))


@post_only
def reset_password(request: HttpRequest) -> HttpResponse:
    """Set the new password with a reset link whose code was verified."""
    return new_password(request, current_portal().accounts.reset_password)


@post_only
def check_attachments(request: HttpRequest) -> HttpResponse:
    """Check the uploaded files of one message before accepting them (AT-1..AT-8)."""
    signed_in(request)
    # Each upload is handed over as its file (in memory or spooled): only its first bytes are read.
    uploads = request.FILES.getlist("file")
    files = [Attachment(name=upload.name or "", content=upload.file) for upload in uploads]
    report = AttachmentPolicy(current_portal().deps.settings.attachments).check(files)
    return JsonResponse(attachments_json(report), status=200 if report.ok else 400)


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
