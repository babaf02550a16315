"""A Flask application over a `Portal`: the account flows as JSON endpoints, to copy and adapt.

Registration by invitation, sign-in with a second factor, sessions that end
after inactivity, the forgotten password, and the check of uploaded
attachments. Every request runs inside ``portal.request(...)`` with the
client's address, user agent and request id (CX-1), and the library's errors
become HTTP statuses by `securepractice.web.http_error`, in `error_response`.
What is not Flask's (the statuses, the JSON answers, the form's fields) comes
from `securepractice.web`. Build it with ``create_app(portal)``: one portal per
process, shared by every thread.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request

from securepractice import (
    Accounts,
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


def answer(body: Mapping[str, object], status: int = 200) -> Response:
    """Return ``body`` as JSON with ``status``."""
    response = jsonify(dict(body))
    response.status_code = status
    return response


def error_response(error: SecurePracticeError) -> Response:
    """Answer one of the library's errors with its status, JSON body and headers."""
    failure = http_error(error)
    response = answer(failure.body, failure.status)
    response.headers.extend(failure.headers)
    return response


def json_body() -> Mapping[str, object]:
    """Return the request's JSON object, or an empty one when it sent none."""
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def send_code_to(token: str) -> Response:
    """Send a code for the link or pending sign-in ``token``, the way the form picked (VF-2)."""
    body = json_body()
    picked = chosen_option(
        accounts().delivery_options(token),
        method=form_text(body, "method"),
        kind=form_text(body, "kind"),
    )
    accounts().send_code(token, option=picked)
    return Response(status=204)


def new_password(action: Callable[..., PasswordReport]) -> Response:
    """Set the password typed twice by a link's ``action``: 200, or 400 with every violation."""
    body = json_body()
    report = action(
        form_text(body, "token"),
        password=form_text(body, "password"),
        confirmation=form_text(body, "confirmation"),
    )
    return answer(password_json(report), 200 if report.ok else 400)


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
    context = request_context(
        client_host=request.remote_addr,
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
    return jsonify(step_json(accounts().open_invitation(form_text(json_body(), "token"))))


@portal_routes.post("/register/phones")
def add_phones() -> Response:
    """Registration step 2: the phone and cell phone numbers."""
    body = json_body()
    phone, cell = optional_form_text(body, "phone"), optional_form_text(body, "cell")
    return jsonify(
        step_json(accounts().add_phones(form_text(body, "token"), phone=phone, cell=cell))
    )


@portal_routes.post("/codes/send")
def send_code() -> Response:
    """Send a code for a registration or reset link, the way the user picked."""
    return send_code_to(form_text(json_body(), "token"))


@portal_routes.post("/codes/verify")
def verify_code() -> Response:
    """Check the code typed for a registration or reset link."""
    body = json_body()
    check = accounts().verify_code(form_text(body, "token"), code=form_text(body, "code"))
    return jsonify(verified=check.verified, outcome=check.outcome.value)


@portal_routes.post("/register/terms")
def accept_terms() -> Response:
    """Registration step 6: the Terms of Use, in the version the page showed."""
    body = json_body()
    step = accounts().accept_terms(form_text(body, "token"), version=form_text(body, "version"))
    return jsonify(step_json(step))


@portal_routes.post("/register/password")
def set_password() -> Response:
    """Registration step 7: the password, which completes registration."""
    return new_password(accounts().set_password)


@portal_routes.post("/sign-in")
def sign_in() -> Response:
    """Sign in with email and password; a second factor may be asked next (MF-1)."""
    body = json_body()
    result = accounts().sign_in(
        email=form_text(body, "email"), password=form_text(body, "password")
    )
    return sign_in_response(result)


@portal_routes.get("/sign-in/options")
def second_factor_options() -> Response:
    """List the ways the pending sign-in's user can prove it is them (MF-2)."""
    options = accounts().second_factor_options(request.cookies.get(PENDING_COOKIE, ""))
    return jsonify(second_factor_json(options))


@portal_routes.post("/sign-in/send-code")
def send_sign_in_code() -> Response:
    """Send the pending sign-in's code by text or call."""
    return send_code_to(request.cookies.get(PENDING_COOKIE, ""))


@portal_routes.post("/sign-in/code")
def finish_sign_in() -> Response:
    """Check the pending sign-in's code, then open the session."""
    pending = request.cookies.get(PENDING_COOKIE, "")
    check = accounts().verify_code(pending, code=form_text(json_body(), "code"))
    if not check.verified:
        return answer({"outcome": check.outcome.value}, 401)
    return sign_in_response(accounts().finish_sign_in(pending))


@portal_routes.get("/session")
def session() -> Response:
    """Who is signed in; every request of a signed-in page records activity (LK-6)."""
    return jsonify(session_json(signed_in()))


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
    accounts().forgot_password(email=form_text(json_body(), "email"))
    return Response(status=202)  # the same answer whatever the email (RS-1)


@portal_routes.post("/password/reset/open")
def open_reset_link() -> Response:
    """Open a reset link; say which step is next."""
    return jsonify(step_json(accounts().open_reset_link(form_text(json_body(), "token"))))


@portal_routes.post("/password/reset")
def reset_password() -> Response:
    """Set the new password with a reset link whose code was verified."""
    return new_password(accounts().reset_password)


@portal_routes.post("/attachments")
def check_attachments() -> Response:
    """Check the uploaded files of one message before accepting them (AT-1..AT-8)."""
    signed_in()
    # Each upload is handed over as its stream: only its first bytes are read, never the whole.
    uploads = request.files.getlist("file")
    files = [Attachment(name=upload.filename or "", content=upload.stream) for upload in uploads]
    report = AttachmentPolicy(current_portal().deps.settings.attachments).check(files)
    return answer(attachments_json(report), 200 if report.ok else 400)
