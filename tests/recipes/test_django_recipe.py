"""The Django recipe (docs/examples/django_portal.py), driven through Django's own test client.

Django is configured once per process, by the recipe's ``create_app``; each
test serves its own portal through it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, cast

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

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

recipe = load_example("django_portal")
create_app = cast("Callable[[Portal], object]", recipe.create_app)


class DjangoBrowser:
    """Django's test client over HTTPS, from one client address."""

    def __init__(self, address: str = ADDRESS) -> None:
        self.client = Client(REMOTE_ADDR=address)
        self.headers = {"User-Agent": USER_AGENT}

    @staticmethod
    def reply(response: Any) -> Reply:  # a django.http.HttpResponse
        headers = {name.lower(): value for name, value in response.headers.items()}
        cookies = tuple(morsel.OutputString() for morsel in response.cookies.values())
        return Reply(response.status_code, decoded(response.content), headers, cookies)

    def get(self, path: str) -> Reply:
        return self.reply(self.client.get(path, headers=self.headers, secure=True))

    def post(self, path: str, body: Mapping[str, object]) -> Reply:
        data = json.dumps(body)
        sent = self.client.post(
            path, data, content_type="application/json", headers=self.headers, secure=True
        )
        return self.reply(sent)

    def upload(self, path: str, files: Sequence[tuple[str, bytes]]) -> Reply:
        form = {"file": [SimpleUploadedFile(name, content) for name, content in files]}
        return self.reply(self.client.post(path, form, headers=self.headers, secure=True))


@pytest.fixture
def journey(portal: Portal, outbox: Outbox, clock: FakeClock) -> Journey:
    create_app(portal)
    return Journey(portal, outbox, clock, DjangoBrowser())


def test_the_whole_journey_through_the_django_recipe(journey: Journey) -> None:
    whole_journey(journey)


def test_cx_1_the_django_recipe_passes_the_request_context(journey: Journey) -> None:
    cx_1_sign_in_events_keep_the_request_context(journey)


def test_cx_3_the_django_recipe_throttles_by_the_client_address(
    throttled_portal: Portal, outbox: Outbox, clock: FakeClock
) -> None:
    create_app(throttled_portal)
    journey = Journey(throttled_portal, outbox, clock, DjangoBrowser())
    cx_3_the_throttle_counts_by_the_client_address(journey, DjangoBrowser(OTHER_ADDRESS), limit=2)


def test_the_django_recipe_maps_the_library_errors_to_statuses(journey: Journey) -> None:
    errors_map_to_statuses(journey)


def test_a_server_that_reports_no_address_is_served_without_one(
    portal: Portal, outbox: Outbox, clock: FakeClock
) -> None:
    """A unix socket gives no REMOTE_ADDR: requests go on, and their events name no address."""
    create_app(portal)
    journey = Journey(portal, outbox, clock, DjangoBrowser(address=""))
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
    response = recipe.error_response(error)
    assert response.status_code == status
    assert decoded(response.content)["code"] == error.code
    assert decoded(response.content)["message"] == error.message
    assert ("Retry-After" in response.headers) is isinstance(error, RateLimited)


def test_a_rate_limit_says_when_to_retry_in_whole_seconds() -> None:
    response = recipe.error_response(RateLimited("Later.", retry_after=timedelta(seconds=89.2)))
    assert response.headers["Retry-After"] == "90"  # never too early


def test_an_unexpected_error_is_a_500_that_says_no_more() -> None:
    response = recipe.error_response(StorageError("connection to db.internal:5432 refused"))
    assert response.status_code == 500
    assert b"db.internal" not in response.content
