"""A FastAPI application over an `AsyncPortal`: the account flows as JSON endpoints, to adapt.

The same endpoints as the Flask recipe: registration by invitation, sign-in
with a second factor, sessions that end after inactivity, the forgotten
password, and the check of uploaded attachments. Every action is awaited
through `AsyncPortal.call`, so the event loop never waits on argon2 or the
store; each request's client address, user agent and request id go with its
calls (CX-1), and the library's errors become HTTP statuses by
`securepractice.web.http_error`, in `error_response`. What is not FastAPI's
(the statuses, the JSON answers) comes from `securepractice.web`. Build it
with ``create_app(portal)``; its lifespan opens one `AsyncPortal` for the loop
that serves it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, File, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

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
from securepractice.aio import AsyncPortal
from securepractice.web import (
    attachments_json,
    chosen_option,
    http_error,
    password_json,
    request_context,
    second_factor_json,
    session_json,
    step_json,
)

SESSION_COOKIE = "session"
PENDING_COOKIE = "pending_sign_in"


class Link(BaseModel):
    """A form sent from a page opened by an emailed link."""

    token: str


class Phones(Link):
    """Registration step 2: the phone and cell phone numbers, either may be left out."""

    phone: str | None = None
    cell: str | None = None


class Choice(BaseModel):
    """A way to send a code, picked by its method and the phone field it goes to."""

    method: str
    kind: str


class LinkChoice(Link, Choice):
    """A way to send a code for a link's flow."""


class Code(BaseModel):
    """A code as the user typed it."""

    code: str


class LinkCode(Link, Code):
    """A code typed for a link's flow."""


class Terms(Link):
    """Registration step 6: the version of the Terms of Use the page showed."""

    version: str


class NewPassword(Link):
    """A new password, typed twice."""

    password: str
    confirmation: str


class Credentials(BaseModel):
    """The sign-in form."""

    email: str
    password: str


class Email(BaseModel):
    """The "Forgot Password" form."""

    email: str


def error_response(error: SecurePracticeError) -> JSONResponse:
    """Answer one of the library's errors with its status, JSON body and headers."""
    failure = http_error(error)
    return JSONResponse(dict(failure.body), failure.status, headers=dict(failure.headers))


async def send_code_to(aportal: AsyncPortal, token: str, choice: Choice) -> None:
    """Send a code for the link or pending sign-in ``token``, the way the form picked (VF-2)."""
    options = await aportal.call(aportal.accounts.delivery_options, token)
    picked = chosen_option(options, method=choice.method, kind=choice.kind)
    await aportal.call(aportal.accounts.send_code, token, option=picked)


async def new_password(
    aportal: AsyncPortal, action: Callable[..., PasswordReport], form: NewPassword
) -> JSONResponse:
    """Set the password typed twice by a link's ``action``: 200, or 400 with every violation."""
    password, again = form.password, form.confirmation
    report = await aportal.call(action, form.token, password=password, confirmation=again)
    return JSONResponse(password_json(report), status_code=200 if report.ok else 400)


def set_cookie(
    response: Response, name: str, value: str, *, max_age: int | None = None, path: str = "/"
) -> None:
    """Keep ``value`` in a cookie that scripts cannot read, sent only over HTTPS to this site."""
    response.set_cookie(
        name, value, max_age=max_age, path=path, secure=True, httponly=True, samesite="strict"
    )


def sign_in_response(aportal: AsyncPortal, result: SignInResult) -> JSONResponse:
    """Answer a sign-in step: a session cookie, a pending sign-in's cookie, or the one refusal."""
    response = JSONResponse({"outcome": result.outcome.value, "message": result.message})
    if result.session_token is not None:
        set_cookie(response, SESSION_COOKIE, result.session_token.reveal())
        response.delete_cookie(PENDING_COOKIE, path="/sign-in", secure=True, httponly=True)
    elif result.outcome is SignInOutcome.SECOND_FACTOR_REQUIRED and result.pending_token:
        lifetime = aportal.portal.deps.settings.links.sign_in_lifetime
        max_age = int(lifetime.total_seconds())
        pending = result.pending_token.reveal()
        set_cookie(response, PENDING_COOKIE, pending, max_age=max_age, path="/sign-in")
    else:
        response.status_code = 401
    return response


async def enter_request_context(request: Request) -> AsyncIterator[None]:
    """Give every portal call of this request its client's context (CX-1).

    A dependency of the whole application: it runs in the request's task,
    and `AsyncPortal.call` carries the context into its worker thread.
    """
    client = request.client
    context = request_context(
        client_host=client.host if client else None,
        user_agent=request.headers.get("User-Agent"),
        request_id=request.headers.get("X-Request-Id"),
    )
    with AsyncPortal.request(context):
        yield


def async_portal(request: Request) -> AsyncPortal:
    """Return the `AsyncPortal` the application's lifespan opened."""
    aportal: AsyncPortal = request.state.aportal
    return aportal


APortal = Annotated[AsyncPortal, Depends(async_portal)]
router = APIRouter()


def create_app(portal: Portal) -> FastAPI:
    """Build the application over ``portal``, which every request of the process shares."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, AsyncPortal]]:
        async with AsyncPortal(portal) as aportal:
            yield {"aportal": aportal}

    app = FastAPI(lifespan=lifespan, dependencies=[Depends(enter_request_context)])
    app.include_router(router)

    @app.exception_handler(SecurePracticeError)
    async def library_error(_request: Request, error: SecurePracticeError) -> JSONResponse:
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def malformed(_request: Request, error: RequestValidationError) -> JSONResponse:
        """Say which fields were wrong without echoing them: one may be a password."""
        detail = [{"loc": e["loc"], "msg": e["msg"], "type": e["type"]} for e in error.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    return app


async def signed_in(aportal: AsyncPortal, request: Request) -> SessionStatus:
    """Record this request on the session; one idle too long raises InvalidToken (LK-6)."""
    token = request.cookies.get(SESSION_COOKIE, "")
    return await aportal.call(aportal.accounts.touch_session, token)


@router.post("/register/open")
async def open_invitation(form: Link, aportal: APortal) -> dict[str, object]:
    """Registration step 1: the invitation link opened; say which step is next."""
    return step_json(await aportal.call(aportal.accounts.open_invitation, form.token))


@router.post("/register/phones")
async def add_phones(form: Phones, aportal: APortal) -> dict[str, object]:
    """Registration step 2: the phone and cell phone numbers."""
    add = aportal.accounts.add_phones
    return step_json(await aportal.call(add, form.token, phone=form.phone, cell=form.cell))


@router.post("/codes/send", status_code=204)
async def send_code(form: LinkChoice, aportal: APortal) -> None:
    """Send a code for a registration or reset link, the way the user picked."""
    await send_code_to(aportal, form.token, form)


@router.post("/codes/verify")
async def verify_code(form: LinkCode, aportal: APortal) -> dict[str, object]:
    """Check the code typed for a registration or reset link."""
    check = await aportal.call(aportal.accounts.verify_code, form.token, code=form.code)
    return {"verified": check.verified, "outcome": check.outcome.value}


@router.post("/register/terms")
async def accept_terms(form: Terms, aportal: APortal) -> dict[str, object]:
    """Registration step 6: the Terms of Use, in the version the page showed."""
    accept = aportal.accounts.accept_terms
    return step_json(await aportal.call(accept, form.token, version=form.version))


@router.post("/register/password")
async def set_password(form: NewPassword, aportal: APortal) -> JSONResponse:
    """Registration step 7: the password, which completes registration."""
    return await new_password(aportal, aportal.accounts.set_password, form)


@router.post("/sign-in")
async def sign_in(form: Credentials, aportal: APortal) -> JSONResponse:
    """Sign in with email and password; a second factor may be asked next (MF-1)."""
    sign = aportal.accounts.sign_in
    result = await aportal.call(sign, email=form.email, password=form.password)
    return sign_in_response(aportal, result)


@router.get("/sign-in/options")
async def second_factor_options(request: Request, aportal: APortal) -> dict[str, object]:
    """List the ways the pending sign-in's user can prove it is them (MF-2)."""
    pending = request.cookies.get(PENDING_COOKIE, "")
    options = await aportal.call(aportal.accounts.second_factor_options, pending)
    return second_factor_json(options)


@router.post("/sign-in/send-code", status_code=204)
async def send_sign_in_code(form: Choice, request: Request, aportal: APortal) -> None:
    """Send the pending sign-in's code by text or call."""
    await send_code_to(aportal, request.cookies.get(PENDING_COOKIE, ""), form)


@router.post("/sign-in/code")
async def finish_sign_in(form: Code, request: Request, aportal: APortal) -> JSONResponse:
    """Check the pending sign-in's code, then open the session."""
    pending = request.cookies.get(PENDING_COOKIE, "")
    check = await aportal.call(aportal.accounts.verify_code, pending, code=form.code)
    if not check.verified:
        return JSONResponse({"outcome": check.outcome.value}, status_code=401)
    result = await aportal.call(aportal.accounts.finish_sign_in, pending)
    return sign_in_response(aportal, result)


@router.get("/session")
async def session(request: Request, aportal: APortal) -> dict[str, object]:
    """Who is signed in; every request of a signed-in page records activity (LK-6)."""
    return session_json(await signed_in(aportal, request))


@router.post("/sign-out", status_code=204)
async def sign_out(request: Request, response: Response, aportal: APortal) -> None:
    """End the session and forget its cookie."""
    token = request.cookies.get(SESSION_COOKIE, "")
    await aportal.call(aportal.accounts.sign_out, token)
    response.delete_cookie(SESSION_COOKIE, secure=True, httponly=True, samesite="strict")


@router.post("/password/forgot", status_code=202)
async def forgot_password(form: Email, aportal: APortal) -> None:
    """Ask for a reset link; the answer is the same whatever the email (RS-1)."""
    await aportal.call(aportal.accounts.forgot_password, email=form.email)


@router.post("/password/reset/open")
async def open_reset_link(form: Link, aportal: APortal) -> dict[str, object]:
    """Open a reset link; say which step is next."""
    return step_json(await aportal.call(aportal.accounts.open_reset_link, form.token))


@router.post("/password/reset")
async def reset_password(form: NewPassword, aportal: APortal) -> JSONResponse:
    """Set the new password with a reset link whose code was verified."""
    return await new_password(aportal, aportal.accounts.reset_password, form)


@router.post("/attachments")
async def check_attachments(
    file: Annotated[list[UploadFile], File()], request: Request, aportal: APortal
) -> JSONResponse:
    """Check the uploaded files of one message before accepting them (AT-1..AT-8)."""
    await signed_in(aportal, request)
    policy = AttachmentPolicy(aportal.portal.deps.settings.attachments)
    # Each upload is handed over as its spooled file: only its first bytes are read.
    files = [Attachment(name=upload.filename or "", content=upload.file) for upload in file]
    report = await aportal.call(policy.check, files)
    return JSONResponse(attachments_json(report), status_code=200 if report.ok else 400)
