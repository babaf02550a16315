"""The FastAPI recipe (docs/examples/fastapi_app.py), driven through Starlette's TestClient.

The client is built with a real client address: by default Starlette's test
client reports the host name ``testclient``, which is no address, and the
recipe serves such a request without one (tested below).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from datetime import timedelta
from typing import Any, cast

import pytest
from fastapi import FastAPI
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():
    # Starlette asks for httpx2 and, without it, warns that it uses httpx; either serves here.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

from recipes.journey import (
    ADDRESS,
    OTHER_ADDRESS,
    USER_AGENT,
    Journey,
    Reply,
    audit_events,
    cx_1_sign_in_events_keep_the_request_context,
    cx_3_the_throttle_counts_by_the_client_address,
    decoded,
    errors_map_to_statuses,
    load_example,
    whole_journey,
)
from securepractice import (
    AlreadyExists,
    DeliveryFailed,
    FakeClock,
    InvalidInput,
    InvalidState,
    InvalidToken,
    NotFound,
    Outbox,
    PermissionDenied,
    Portal,
    RateLimited,
    SecurePracticeError,
    StorageError,
)

recipe = load_example("fastapi_app")
create_app = cast("Callable[[Portal], FastAPI]", recipe.create_app)


class StarletteBrowser:
    """Starlette's test client over HTTPS (the cookies are Secure), from one client address."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.headers = {"User-Agent": USER_AGENT}

    @staticmethod
    def reply(response: Any) -> Reply:  # an httpx or httpx2 response, as Starlette chose
        headers = {name.lower(): value for name, value in response.headers.items()}
        cookies = tuple(response.headers.get_list("set-cookie"))
        return Reply(response.status_code, decoded(response.content), headers, cookies)

    def get(self, path: str) -> Reply:
        return self.reply(self.client.get(path, headers=self.headers))

    def post(self, path: str, body: Mapping[str, object]) -> Reply:
        return self.reply(self.client.post(path, json=body, headers=self.headers))

    def upload(self, path: str, files: Sequence[tuple[str, bytes]]) -> Reply:
        form = [("file", (name, content, "application/octet-stream")) for name, content in files]
        return self.reply(self.client.post(path, files=form, headers=self.headers))


@pytest.fixture
def browsers() -> Iterator[Callable[[FastAPI, str], StarletteBrowser]]:
    """Open browsers on an application, each from its address; all closed after the test."""
    with ExitStack() as stack:

        def open_browser(app: FastAPI, address: str = ADDRESS) -> StarletteBrowser:
            client = TestClient(app, base_url="https://testserver", client=(address, 50000))
            return StarletteBrowser(stack.enter_context(client))

        yield open_browser


@pytest.fixture
def journey(
    portal: Portal,
    outbox: Outbox,
    clock: FakeClock,
    browsers: Callable[[FastAPI, str], StarletteBrowser],
) -> Journey:
    return Journey(portal, outbox, clock, browsers(create_app(portal), ADDRESS))


def test_the_whole_journey_through_the_fastapi_recipe(journey: Journey) -> None:
    whole_journey(journey)


def test_cx_1_the_fastapi_recipe_passes_the_request_context(journey: Journey) -> None:
    cx_1_sign_in_events_keep_the_request_context(journey)


def test_cx_3_the_fastapi_recipe_throttles_by_the_client_address(
    throttled_portal: Portal,
    outbox: Outbox,
    clock: FakeClock,
    browsers: Callable[[FastAPI, str], StarletteBrowser],
) -> None:
    app = create_app(throttled_portal)
    journey = Journey(throttled_portal, outbox, clock, browsers(app, ADDRESS))
    cx_3_the_throttle_counts_by_the_client_address(journey, browsers(app, OTHER_ADDRESS), limit=2)


def test_the_fastapi_recipe_maps_the_library_errors_to_statuses(journey: Journey) -> None:
    errors_map_to_statuses(journey)


def test_the_test_client_s_host_name_is_served_without_an_address(
    portal: Portal,
    outbox: Outbox,
    clock: FakeClock,
    browsers: Callable[[FastAPI, str], StarletteBrowser],
) -> None:
    """Starlette's default client host, ``testclient``, is no address: the events name none."""
    journey = Journey(portal, outbox, clock, browsers(create_app(portal), "testclient"))
    journey.register()
    served = [e for e in audit_events(portal) if e["user_agent"] == USER_AGENT]
    assert {e["action"] for e in served} >= {"code.sent", "terms.accepted", "password.set"}
    assert {e["client_address"] for e in served} == {None}


def test_a_form_of_the_wrong_shape_is_refused_without_echoing_it(journey: Journey) -> None:
    reply = journey.browser.post("/sign-in", {"email": "a@smile.example", "password": 31415926})
    assert reply.status == 422
    assert [error["loc"] for error in reply.body["detail"]] == [["body", "password"]]
    assert "31415926" not in json.dumps(reply.body)


def test_the_async_portal_closes_with_the_application(portal: Portal) -> None:
    with TestClient(create_app(portal), base_url="https://testserver") as client:
        assert client.get("/session").status_code == 401
    with TestClient(create_app(portal), base_url="https://testserver") as client:
        assert client.get("/session").status_code == 401  # a new loop, a new AsyncPortal


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidInput("Bad.", field="cell", code="phone.invalid"), 400),
        (InvalidToken("Sign in again.", code="session.invalid"), 401),
        (PermissionDenied("Not yours.", code="role.not_allowed"), 403),
        (NotFound("No such user."), 404),
        (InvalidState("Not now.", code="flow.out_of_order"), 409),
        (AlreadyExists("Taken."), 409),
        (RateLimited("Later.", retry_after=timedelta(seconds=90)), 429),
        (DeliveryFailed("The text could not be sent.", channel="sms"), 502),
    ],
)
def test_each_error_has_its_status_in_one_place(error: SecurePracticeError, status: int) -> None:
    response = recipe.error_response(error)
    assert response.status_code == status
    assert decoded(response.body)["code"] == error.code
    assert decoded(response.body)["message"] == error.message
    assert ("retry-after" in response.headers) is isinstance(error, RateLimited)


def test_a_rate_limit_says_when_to_retry_in_whole_seconds() -> None:
    response = recipe.error_response(RateLimited("Later.", retry_after=timedelta(seconds=89.2)))
    assert response.headers["retry-after"] == "90"  # never too early


def test_an_unexpected_error_is_a_500_that_says_no_more() -> None:
    response = recipe.error_response(StorageError("connection to db.internal:5432 refused"))
    assert response.status_code == 500
    assert b"db.internal" not in response.body
