"""The one HTTP mapping of securepractice.web: statuses, Retry-After, hidden 500s, contexts."""

from __future__ import annotations

import ipaddress
import json
import math
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securepractice import (
    AlreadyExists,
    Conflict,
    CorruptHash,
    DeliveryFailed,
    InvalidInput,
    InvalidState,
    InvalidToken,
    NotFound,
    PermissionDenied,
    RateLimited,
    SecurePracticeError,
    StorageError,
)
from securepractice.web import HttpError, http_error, request_context

BAD_REQUEST, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, CONFLICT = 400, 401, 403, 404, 409
TOO_MANY_REQUESTS, INTERNAL_SERVER_ERROR, BAD_GATEWAY = 429, 500, 502


@pytest.mark.parametrize(
    ("error", "status"),
    [
        # The request itself is malformed: the client must change it.
        (InvalidInput("Bad.", field="cell", code="phone.invalid"), BAD_REQUEST),
        # The credentials it came with (a link, a session) are not good: authenticate again.
        (InvalidToken("Sign in again.", code="session.invalid"), UNAUTHORIZED),
        # Authenticated, but not allowed.
        (PermissionDenied("Not yours.", code="role.not_allowed"), FORBIDDEN),
        (NotFound("No such user."), NOT_FOUND),
        # At odds with the resource's current state.
        (InvalidState("Not now.", code="flow.out_of_order"), CONFLICT),
        (AlreadyExists("Taken."), CONFLICT),
        (RateLimited("Later.", retry_after=timedelta(seconds=90)), TOO_MANY_REQUESTS),
        # An upstream (the text or mail provider) failed: the server itself is fine.
        (DeliveryFailed("The text could not be sent.", channel="sms"), BAD_GATEWAY),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_each_error_has_the_status_of_its_http_meaning(
    error: SecurePracticeError, status: int
) -> None:
    answer = http_error(error)
    assert answer.status == status
    assert (answer.body["code"], answer.body["message"]) == (error.code, error.message)
    assert ("Retry-After" in dict(answer.headers)) is isinstance(error, RateLimited)


def test_invalid_input_names_its_field() -> None:
    answer = http_error(InvalidInput("Too short.", field="cell", code="phone.too_short"))
    assert dict(answer.body) == {
        "code": "phone.too_short",
        "message": "Too short.",
        "field": "cell",
    }


@pytest.mark.parametrize(
    "error",
    [
        StorageError("connection to db.internal:5432 refused"),
        Conflict("row 17 of users.db.internal changed"),
        CorruptHash("hash of user 42 at db.internal is cut short"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_an_unexpected_error_is_a_500_that_keeps_its_code_and_says_no_more(
    error: SecurePracticeError,
) -> None:
    answer = http_error(error)
    assert answer.status == INTERNAL_SERVER_ERROR
    assert answer.body["code"] == error.code
    shown = json.dumps(dict(answer.body)) + json.dumps(answer.headers)
    assert error.message not in shown
    assert "db.internal" not in shown
    assert answer.headers == ()


@given(st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=2)))
def test_retry_after_is_whole_seconds_never_too_early(retry_after: timedelta) -> None:
    answer = http_error(RateLimited("Later.", retry_after=retry_after))
    (name, value), *others = answer.headers
    assert (name, others) == ("Retry-After", [])
    assert value.isdigit()
    assert retry_after <= timedelta(seconds=int(value)) < retry_after + timedelta(seconds=1)
    assert answer.body["retry_after"] == int(value)


@pytest.mark.parametrize(("seconds", "header"), [(89.2, "90"), (90, "90"), (0.001, "1")])
def test_retry_after_rounds_up_examples(seconds: float, header: str) -> None:
    answer = http_error(RateLimited("Later.", retry_after=timedelta(seconds=seconds)))
    assert dict(answer.headers)["Retry-After"] == header
    assert int(header) == math.ceil(seconds)


def test_an_answer_cannot_be_changed_after_it_is_made() -> None:
    body = {"code": "x", "message": "y"}
    answer = HttpError(status=BAD_REQUEST, body=body)
    body["message"] = "changed"
    assert answer.body["message"] == "y"
    with pytest.raises(TypeError):
        answer.body["message"] = "changed"  # type: ignore[index]


@given(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)))
def test_cx_1_an_ip_address_the_server_reports_is_kept_in_its_normal_form(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    for written in (str(address), address.exploded, f" {address} "):
        context = request_context(client_host=written, user_agent=None, request_id=None)
        assert context.client_address == str(address)


@pytest.mark.parametrize(
    "host", [None, "", " ", "testclient", "unix:/run/app.sock", "localhost", "10.0.0", "::g"]
)
def test_cx_1_a_host_that_is_no_address_is_served_without_one(host: str | None) -> None:
    context = request_context(client_host=host, user_agent="Agent/1", request_id="req-1")
    assert context.client_address is None
    assert (context.user_agent, context.request_id) == ("Agent/1", "req-1")


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_any_host_text_is_an_address_or_none_never_an_error(host: str) -> None:
    context = request_context(client_host=host, user_agent=None, request_id=None)
    if context.client_address is not None:
        assert ipaddress.ip_address(context.client_address) == ipaddress.ip_address(host.strip())


@pytest.mark.parametrize("request_id", ["two words", "", "é", "x" * 129, "tab\there"])
def test_cx_1_a_malformed_request_id_is_refused_as_a_400(request_id: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        request_context(client_host="203.0.113.9", user_agent=None, request_id=request_id)
    assert refused.value.code == "context.bad_request_id"
    answer = http_error(refused.value)
    assert (answer.status, answer.body["field"]) == (BAD_REQUEST, "request_id")


def test_the_user_agent_is_taken_as_the_context_takes_it() -> None:
    context = request_context(client_host=None, user_agent="Agent\x00/1\n", request_id=None)
    assert context.user_agent == "Agent/1"
