"""The Flask recipe (docs/examples/flask_app.py), driven through Flask's own test client."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from io import BytesIO
from typing import cast

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from recipes.journey import (
    ADDRESS,
    OTHER_ADDRESS,
    USER_AGENT,
    Journey,
    Reply,
    audit_events,
    cx_1_sign_in_events_keep_the_request_context,
    cx_3_the_throttle_counts_by_the_client_address,
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

recipe = load_example("flask_app")
create_app = cast("Callable[[Portal], Flask]", recipe.create_app)


class FlaskBrowser:
    """Flask's test client, from one client address, with the journey's headers."""

    def __init__(self, app: Flask, address: str = ADDRESS) -> None:
        self.client = app.test_client()
        self.client.environ_base["REMOTE_ADDR"] = address
        self.headers = {"User-Agent": USER_AGENT}

    @staticmethod
    def reply(response: TestResponse) -> Reply:
        headers = {name.lower(): value for name, value in response.headers.items()}
        cookies = tuple(response.headers.getlist("Set-Cookie"))
        return Reply(response.status_code, response.get_json(silent=True), headers, cookies)

    def get(self, path: str) -> Reply:
        return self.reply(self.client.get(path, headers=self.headers))

    def post(self, path: str, body: Mapping[str, object]) -> Reply:
        return self.reply(self.client.post(path, json=body, headers=self.headers))

    def upload(self, path: str, files: Sequence[tuple[str, bytes]]) -> Reply:
        form = {"file": [(BytesIO(content), name) for name, content in files]}
        return self.reply(self.client.post(path, data=form, headers=self.headers))


@pytest.fixture
def journey(portal: Portal, outbox: Outbox, clock: FakeClock) -> Journey:
    return Journey(portal, outbox, clock, FlaskBrowser(create_app(portal)))


def test_the_whole_journey_through_the_flask_recipe(journey: Journey) -> None:
    whole_journey(journey)


def test_cx_1_the_flask_recipe_passes_the_request_context(journey: Journey) -> None:
    cx_1_sign_in_events_keep_the_request_context(journey)


def test_cx_3_the_flask_recipe_throttles_by_the_client_address(
    throttled_portal: Portal, outbox: Outbox, clock: FakeClock
) -> None:
    app = create_app(throttled_portal)
    journey = Journey(throttled_portal, outbox, clock, FlaskBrowser(app))
    cx_3_the_throttle_counts_by_the_client_address(
        journey, FlaskBrowser(app, OTHER_ADDRESS), limit=2
    )


def test_the_flask_recipe_maps_the_library_errors_to_statuses(journey: Journey) -> None:
    errors_map_to_statuses(journey)


def test_a_server_that_reports_no_address_is_served_without_one(
    portal: Portal, outbox: Outbox, clock: FakeClock
) -> None:
    """A unix socket gives no REMOTE_ADDR: requests go on, and their events name no address."""
    journey = Journey(portal, outbox, clock, FlaskBrowser(create_app(portal), address=""))
    journey.register()
    served = [e for e in audit_events(portal) if e["user_agent"] == USER_AGENT]
    assert {e["action"] for e in served} >= {"code.sent", "terms.accepted", "password.set"}
    assert {e["client_address"] for e in served} == {None}


def test_a_field_that_is_not_text_is_refused_naming_it(journey: Journey) -> None:
    reply = journey.browser.post("/sign-in", {"email": ["x"], "password": "p"})
    assert journey.expect(reply, 400) == {
        "code": "text.not_text",
        "field": "email",
        "message": "email must be text.",
    }


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
    with Flask(__name__).app_context():
        response = recipe.error_response(error)
    assert response.status_code == status
    assert response.get_json()["code"] == error.code
    assert response.get_json()["message"] == error.message
    assert ("Retry-After" in response.headers) is isinstance(error, RateLimited)


def test_a_rate_limit_says_when_to_retry_in_whole_seconds() -> None:
    with Flask(__name__).app_context():
        response = recipe.error_response(RateLimited("Later.", retry_after=timedelta(seconds=89.2)))
    assert response.headers["Retry-After"] == "90"  # never too early


def test_an_unexpected_error_is_a_500_that_says_no_more() -> None:
    with Flask(__name__).app_context():
        response = recipe.error_response(StorageError("connection to db.internal:5432 refused"))
    assert response.status_code == 500
    assert "db.internal" not in response.get_data(as_text=True)
