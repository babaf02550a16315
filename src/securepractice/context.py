"""Who is asking, from where: the request context that audit events keep (CX-1).

A web application knows, for each request, the client's address, its user
agent and the request's id; the library does not. The application says it
once per request, around whatever service calls the request makes:

```python
with portal.request(RequestContext(client_address=request.remote_addr,
                                   user_agent=request.user_agent.string,
                                   request_id=request.headers.get("X-Request-Id"))):
    result = portal.accounts.sign_in(email=email, password=password)
```

Every audit event written inside the block keeps the context, and sign-in's
throttle counts failures by its client address (CX-3). The context is held
in a `contextvars.ContextVar`, so it belongs to one thread or one asyncio
task and follows `asyncio.to_thread` and the async face
(`securepractice.aio`) into their worker threads; two requests served at
once never see each other's context. Outside any block there is none: events
say nothing of where they came from and the throttle is not consulted.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
from collections.abc import Iterator

import attrs
from typing_extensions import Self

from securepractice.errors import InvalidInput
from securepractice.records import User

__all__ = ["Call", "RequestContext", "acting_on", "current_request", "request"]

#: The longest user agent kept; a longer one is cut, as it is only ever read by people.
USER_AGENT_LIMIT = 256
#: The longest request id taken; ids are made by proxies and frameworks, and are short.
REQUEST_ID_LIMIT = 128


def _client_address(value: object) -> str | None:
    """Return an IPv4 or IPv6 address in its normal text form; refuse anything else."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(
            "The client address must be text.", field="client_address", code="context.bad_address"
        )
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise InvalidInput(
            "The client address must be an IPv4 or IPv6 address.",
            field="client_address",
            code="context.bad_address",
        ) from None


def _user_agent(value: object) -> str | None:
    """Return a user agent with its control characters dropped and cut to a readable length.

    A user agent is whatever the client sent; it is kept for people reading
    the audit log, so nothing in it may break a log line.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(
            "The user agent must be text.", field="user_agent", code="context.bad_user_agent"
        )
    shown = "".join(ch for ch in value if ch.isprintable()).strip()
    return shown[:USER_AGENT_LIMIT] or None


def _request_id(value: object) -> str | None:
    """Return a request id of printable ASCII without spaces; refuse anything else."""
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= REQUEST_ID_LIMIT
        or not value.isascii()
        or not all(ch.isprintable() and not ch.isspace() for ch in value)
    ):
        raise InvalidInput(
            f"The request id must be 1 to {REQUEST_ID_LIMIT} printable ASCII characters"
            " without spaces.",
            field="request_id",
            code="context.bad_request_id",
        )
    return value


@attrs.frozen(kw_only=True)
class RequestContext:
    """The client address, user agent and request id of one request; each may be missing.

    The address is checked and normalised (``::FFFF:10.0.0.1`` and
    ``10.0.0.1`` stay distinct; IPv6 is written in its short form), so that
    the throttle counts one address under one key. Give the address of the
    client as the application trusts it: behind a proxy, the one the proxy
    reports, never a header any client can set.
    """

    client_address: str | None = attrs.field(default=None, converter=_client_address)
    user_agent: str | None = attrs.field(default=None, converter=_user_agent)
    request_id: str | None = attrs.field(default=None, converter=_request_id)


_CURRENT: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "securepractice_request", default=None
)


def current_request() -> RequestContext | None:
    """Return the request context of the current block, or None outside any."""
    return _CURRENT.get()


@contextlib.contextmanager
def request(context: RequestContext | None) -> Iterator[RequestContext | None]:
    """Make ``context`` the request context of every service call inside the block (CX-1).

    Blocks nest: the inner context holds inside the inner block, and the
    outer one again after it. None means no context.
    """
    if context is not None and not isinstance(context, RequestContext):
        raise InvalidInput(
            "The request context must be a RequestContext.",
            field="context",
            code="context.not_context",
        )
    token = _CURRENT.set(context)
    try:
        yield context
    finally:
        _CURRENT.reset(token)


class Call:
    """One facade call: the user it turned out to be about, once the action knew (CX-1).

    A refused attempt is audited after its unit rolled back; by then only
    this note still says whose session or link it came with. Used as a
    context manager around the call (`call`).
    """

    __slots__ = ("_token", "user")

    def __init__(self) -> None:
        self.user: User | None = None

    def __enter__(self) -> Self:
        self._token = _CALL.set(self)
        return self

    def __exit__(self, *_: object) -> None:
        _CALL.reset(self._token)


_CALL: contextvars.ContextVar[Call | None] = contextvars.ContextVar(
    "securepractice_call", default=None
)

#: Note, for the facade call inside the ``with`` block, whom it is about (`acting_on`).
call = Call


def acting_on(user: User) -> None:
    """Note that the current call acts for or on ``user``: the session's or the link's."""
    note = _CALL.get()
    if note is not None:
        note.user = user
