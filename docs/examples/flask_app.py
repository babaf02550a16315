"""A Flask application over a `Portal`: the account flows as JSON endpoints, to copy and adapt.

Registration by invitation, sign-in with a second factor, sessions that end
after inactivity, the forgotten password, and the check of uploaded
attachments. Every request runs inside ``portal.request(...)`` with the
client's address, user agent and request id (CX-1), and the library's errors
become HTTP statuses in one place, `error_response`. Build it with
``create_app(portal)``: one portal per process, shared by every thread.
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
from collections.abc import Mapping

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request

from securepractice import (
    Accounts,
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


def client_address(host: str | None) -> str | None:
    """Return the address the server reports when it is an IP address, else None.

    A unix socket or a test client reports no address, or a name: the request
    then goes on without one, rather than being refused for the server's setup.
    """
    try:
        return str(ipaddress.ip_address(host or ""))
    except ValueError:
        return None


def error_response(error: SecurePracticeError) -> Response:
    """Map one of the library's errors to its HTTP status; its messages never hold a secret."""
    status = next((status for kind, status in STATUS_OF if isinstance(error, kind)), None)
    message = "The portal could not do that just now." if status is None else error.message
    body: dict[str, object] = {"code": error.code, "message": message}
    if isinstance(error, InvalidInput):
        body["field"] = error.field
    response = jsonify(body)
    response.status_code = status or 500
    if isinstance(error, RateLimited):
        response.headers["Retry-After"] = str(math.ceil(error.retry_after.total_seconds()))
    return response


def text(body: Mapping[str, object], name: str) -> str:
    """Return the text field ``name`` of a JSON body; anything else is the caller's mistake."""
    value = body.get(name)
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be text.", field=name, code="text.not_text")
    return value


def optional_text(body: Mapping[str, object], name: str) -> str | None:
    """Return the text field ``name`` of a JSON body, or None when it is missing or null."""
    return None if body.get(name) is None else text(body, name)


def json_body() -> Mapping[str, object]:
    """Return the request's JSON object, or an empty one when it sent none."""
    body = request.get_json(silent=True)
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


def step_json(step: RegistrationStep | ResetStep) -> Response:
    """Say which step of a link's flow comes next, with the ways a code can be sent."""
    options = [option_json(option) for option in step.delivery_options]
    return jsonify(stage=step.stage.value, email=step.email, delivery_options=options)


def report_json(report: PasswordReport) -> Response:
    """Answer a new password: 200 when it was taken, 400 with every violation when not."""
    violations = [{"code": v.code, "message": v.message} for v in report.violations]
    response = jsonify(ok=report.ok, violations=violations)
    response.status_code = 200 if report.ok else 400
    return response


def set_cookie(
    response: Response, name: str, value: str, *, max_age: int | None = None, path: str = "/"
) -> None:
    """Keep ``value`` in a cookie that scripts cannot read, sent only over HTTPS to this site."""
    response.set_cookie(
        name, value, max_age=max_age, path=path, secure=True, httponly=True, samesite="Strict"
    )


def sign_in_response(result: SignInResult) -> Response:
    """Answer a sign-in step: a session cookie, a pending sign-in's cookie, or the one refusal."""
    response = jsonify(outcome=result.outcome.value, message=result.message)
    if result.session_token is not None:
        set_cookie(response, SESSION_COOKIE, result.session_token.reveal())
        response.delete_cookie(PENDING_COOKIE, path="/sign-in", secure=True, httponly=True)
    elif result.outcome is SignInOutcome.SECOND_FACTOR_REQUIRED and result.pending_token:
        lifetime = current_portal().deps.settings.links.sign_in_lifetime
        max_age = int(lifetime.total_seconds())
        set_cookie(
            response,
            PENDING_COOKIE,
            result.pending_token.reveal(),
            max_age=max_age,
            path="/sign-in",
        )
    else:
        response.status_code = 401
    return response


portal_routes = Blueprint("portal", __name__)


def create_app(portal: Portal) -> Flask:
    """Build the application over ``portal``, which every request of the process shares."""
    app = Flask(__name__)
    app.extensions["securepractice"] = portal
    app.register_blueprint(portal_routes)
    return app


def current_portal() -> Portal:
    """Return the portal of the application serving this request."""
    portal: Portal = current_app.extensions["securepractice"]
    return portal


def accounts() -> Accounts:
    """Return the account actions of the application's portal."""
    return current_portal().accounts


@portal_routes.app_errorhandler(SecurePracticeError)
def library_error(error: SecurePracticeError) -> Response:
    """Answer every error of the library by `error_response`."""
    return error_response(error)


@portal_routes.before_app_request
def enter_request_context() -> None:
    """Give every portal call of this request its client's context (CX-1)."""
    context = RequestContext(
        client_address=client_address(request.remote_addr),
        user_agent=request.user_agent.string or None,
        request_id=request.headers.get("X-Request-Id"),
    )
    g.request_context = contextlib.ExitStack()
    g.request_context.enter_context(current_portal().request(context))


@portal_routes.teardown_app_request
def leave_request_context(_error: BaseException | None) -> None:
    """Leave the request's context, whatever the request's end."""
    stack = g.pop("request_context", None)
    if stack is not None:
        stack.close()


def signed_in() -> SessionStatus:
    """Record this request on the session; one idle too long raises InvalidToken (LK-6)."""
    return accounts().touch_session(request.cookies.get(SESSION_COOKIE, ""))


@portal_routes.post("/register/open")
def open_invitation() -> Response:
    """Registration step 1: the invitation link opened; say which step is next."""
    return step_json(accounts().open_invitation(text(json_body(), "token")))


@portal_routes.post("/register/phones")
def add_phones() -> Response:
    """Registration step 2: the phone and cell phone numbers."""
    body = json_body()
    phone, cell = optional_text(body, "phone"), optional_text(body, "cell")
    return step_json(accounts().add_phones(text(body, "token"), phone=phone, cell=cell))


@portal_routes.post("/codes/send")
def send_code() -> Response:
    """Send a code for a registration or reset link, the way the user picked."""
    body = json_body()
    token = text(body, "token")
    accounts().send_code(token, option=chosen(accounts().delivery_options(token), body))
    return Response(status=204)


@portal_routes.post("/codes/verify")
def verify_code() -> Response:
    """Check the code typed for a registration or reset link."""
    body = json_body()
    check = accounts().verify_code(text(body, "token"), code=text(body, "code"))
    return jsonify(verified=check.verified, outcome=check.outcome.value)


@portal_routes.post("/register/terms")
def accept_terms() -> Response:
    """Registration step 6: the Terms of Use, in the version the page showed."""
    body = json_body()
    return step_json(accounts().accept_terms(text(body, "token"), version=text(body, "version")))


@portal_routes.post("/register/password")
def set_password() -> Response:
    """Registration step 7: the password, which completes registration."""
    body = json_body()
    password, again = text(body, "password"), text(body, "confirmation")
    report = accounts().set_password(text(body, "token"), password=password, confirmation=again)
    return report_json(report)


@portal_routes.post("/sign-in")
def sign_in() -> Response:
    """Sign in with email and password; a second factor may be asked next (MF-1)."""
    body = json_body()
    result = accounts().sign_in(email=text(body, "email"), password=text(body, "password"))
    return sign_in_response(result)


@portal_routes.get("/sign-in/options")
def second_factor_options() -> Response:
    """List the ways the pending sign-in's user can prove it is them (MF-2)."""
    options = accounts().second_factor_options(request.cookies.get(PENDING_COOKIE, ""))
    return jsonify(
        delivery_options=[option_json(option) for option in options.delivery_options],
        authenticator=options.authenticator,
        recovery_codes=options.recovery_codes,
    )


@portal_routes.post("/sign-in/send-code")
def send_sign_in_code() -> Response:
    """Send the pending sign-in's code by text or call."""
    pending = request.cookies.get(PENDING_COOKIE, "")
    accounts().send_code(pending, option=chosen(accounts().delivery_options(pending), json_body()))
    return Response(status=204)


@portal_routes.post("/sign-in/code")
def finish_sign_in() -> Response:
    """Check the pending sign-in's code, then open the session."""
    pending = request.cookies.get(PENDING_COOKIE, "")
    check = accounts().verify_code(pending, code=text(json_body(), "code"))
    if not check.verified:
        response = jsonify(outcome=check.outcome.value)
        response.status_code = 401
        return response
    return sign_in_response(accounts().finish_sign_in(pending))


@portal_routes.get("/session")
def session() -> Response:
    """Who is signed in; every request of a signed-in page records activity (LK-6)."""
    status = signed_in()
    return jsonify(
        user_id=status.user_id,
        must_change_password=status.must_change_password,
        idle_until=status.idle_until.isoformat(),
    )


@portal_routes.post("/sign-out")
def sign_out() -> Response:
    """End the session and forget its cookie."""
    accounts().sign_out(request.cookies.get(SESSION_COOKIE, ""))
    response = Response(status=204)
    response.delete_cookie(SESSION_COOKIE, secure=True, httponly=True, samesite="Strict")
    return response


@portal_routes.post("/password/forgot")
def forgot_password() -> Response:
    """Ask for a reset link."""
    accounts().forgot_password(email=text(json_body(), "email"))
    return Response(status=202)  # the same answer whatever the email (RS-1)


@portal_routes.post("/password/reset/open")
def open_reset_link() -> Response:
    """Open a reset link; say which step is next."""
    return step_json(accounts().open_reset_link(text(json_body(), "token")))


@portal_routes.post("/password/reset")
def reset_password() -> Response:
    """Set the new password with a reset link whose code was verified."""
    body = json_body()
    password, again = text(body, "password"), text(body, "confirmation")
    report = accounts().reset_password(text(body, "token"), password=password, confirmation=again)
    return report_json(report)


@portal_routes.post("/attachments")
def check_attachments() -> Response:
    """Check the uploaded files of one message before accepting them (AT-1..AT-8)."""
    signed_in()
    # Each upload is handed over as its stream: only its first bytes are read, never the whole.
    uploads = request.files.getlist("file")
    files = [Attachment(name=upload.filename or "", content=upload.stream) for upload in uploads]
    report = AttachmentPolicy(current_portal().deps.settings.attachments).check(files)
    response = jsonify(
        ok=report.ok,
        codes=list(report.codes),
        files=[{"name": f.name, "ok": f.ok, "codes": list(f.codes)} for f in report.files],
    )
    response.status_code = 200 if report.ok else 400
    return response
