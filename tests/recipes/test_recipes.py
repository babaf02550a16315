"""Every recipe of docs/examples, driven through its framework's own test client.

Each test runs once for each framework (the ``framework`` fixture): the
recipes serve the same endpoints, so one journey checks them all.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from recipes.browsers import Open
from recipes.journey import (
    ADDRESS,
    CELL,
    EMAIL,
    NEW_PASSWORD,
    OTHER_ADDRESS,
    PDF,
    REQUEST_ID,
    TERMS,
    USER_AGENT,
    Journey,
    audit_events,
)
from securepractice import FakeClock, Outbox, Portal
from securepractice.records import Phone, PhoneKind
from securepractice.testing import PASSWORD as WORLD_PASSWORD
from securepractice.testing import World


def test_the_whole_journey_through_each_recipe(journey: Journey) -> None:
    """Invite, register, sign in with a second factor, idle sign-out, reset, uploads."""
    journey.register()
    journey.sign_in()
    journey.idle_sign_out()
    refused = journey.expect(journey.browser.upload("/attachments", [("a.pdf", PDF)]), 401)
    assert refused["code"] == "session.invalid"
    journey.reset()
    journey.sign_in(NEW_PASSWORD)
    journey.upload()
    journey.expect(journey.browser.post("/sign-out", {}), 204)
    journey.expect(journey.browser.get("/session"), 401)


def test_cx_1_sign_in_events_keep_the_request_context(journey: Journey) -> None:
    """The audit events of a sign-in keep the address, user agent and request id sent (CX-1)."""
    journey.register()
    journey.browser.headers["X-Request-Id"] = REQUEST_ID
    journey.sign_in()
    sign_ins = [e for e in audit_events(journey.portal) if e["action"] == "sign_in"]
    assert sign_ins, "no sign-in was audited"
    for event in sign_ins:
        assert (event["client_address"], event["user_agent"], event["request_id"]) == (
            ADDRESS,
            USER_AGENT,
            REQUEST_ID,
        )


def test_cx_3_the_throttle_counts_by_the_client_address(
    throttled_portal: Portal, outbox: Outbox, clock: FakeClock, serve: Callable[[Portal], Open]
) -> None:
    """Failures from one address stop its sign-ins, not those of another address (CX-3)."""
    open_browser = serve(throttled_portal)
    journey = Journey(throttled_portal, outbox, clock, open_browser(ADDRESS))
    elsewhere, limit = open_browser(OTHER_ADDRESS), 2
    world = World(journey.portal.deps)
    cell = Phone(number=CELL, kind=PhoneKind.CELL)
    world.user(EMAIL, practice=world.practice(), phones=(cell,))
    wrong = {"email": EMAIL, "password": "Not-The-Password-1"}
    for _ in range(limit):
        journey.expect(journey.browser.post("/sign-in", wrong), 401)
    right = {"email": EMAIL, "password": WORLD_PASSWORD}
    throttled = journey.expect(journey.browser.post("/sign-in", right), 401)
    assert throttled["outcome"] == "invalid_credentials"  # the one public refusal (LK-5)
    assert journey.expect(elsewhere.post("/sign-in", right), 200)["outcome"] == (
        "second_factor_required"
    )
    events = audit_events(journey.portal)
    assert [e["client_address"] for e in events if e["action"] == "sign_in.throttled"] == [ADDRESS]


def test_the_library_errors_reach_the_browser_as_statuses(journey: Journey) -> None:
    """The library's errors reach the browser as statuses with their code, and no secret."""
    token = journey.invite()
    bad_link = journey.browser.post("/register/open", {"token": "not-a-link"})
    assert journey.expect(bad_link, 401)["code"] == "token.invalid"
    assert "not-a-link" not in json.dumps(bad_link.body)
    bad_phone = journey.browser.post("/register/phones", {"token": token, "cell": "12"})
    refused = journey.expect(bad_phone, 400)
    assert refused["field"] == "cell"
    assert refused["code"].startswith("phone.")
    early = journey.browser.post("/register/terms", {"token": token, "version": TERMS})
    assert journey.expect(early, 409)["code"] == "flow.out_of_order"
    journey.expect(journey.browser.post("/register/phones", {"token": token, "cell": CELL}), 200)
    choice = {"token": token, "method": "voice", "kind": "phone"}
    not_offered = journey.expect(journey.browser.post("/codes/send", choice), 400)
    assert not_offered["code"] == "verification.option_not_offered"
    sends = journey.portal.deps.settings.verification.send_limit
    choice = {"token": token, "method": "sms", "kind": "cell"}
    for _ in range(sends):
        journey.expect(journey.browser.post("/codes/send", choice), 204)
    limited = journey.browser.post("/codes/send", choice)
    assert journey.expect(limited, 429)["code"].startswith("verification.")
    window = journey.portal.deps.settings.verification.send_window
    assert 0 < int(limited.headers["retry-after"]) <= window.total_seconds()
    journey.browser.headers["X-Request-Id"] = "two words"
    bad_id = journey.browser.post("/register/open", {"token": token})
    assert journey.expect(bad_id, 400)["code"] == "context.bad_request_id"
    assert token not in json.dumps(bad_id.body)


@pytest.mark.parametrize("host", ["", "testclient"])
def test_a_server_that_reports_no_address_is_served_without_one(
    host: str, portal: Portal, outbox: Outbox, clock: FakeClock, serve: Callable[[Portal], Open]
) -> None:
    """A unix socket reports no address, a test client a name: the events name no address."""
    journey = Journey(portal, outbox, clock, serve(portal)(host))
    journey.register()
    served = [e for e in audit_events(portal) if e["user_agent"] == USER_AGENT]
    assert {e["action"] for e in served} >= {"code.sent", "terms.accepted", "password.set"}
    assert {e["client_address"] for e in served} == {None}


@pytest.mark.parametrize("framework", ["flask", "django"])
def test_a_field_that_is_not_text_is_refused_naming_it(journey: Journey) -> None:
    """Flask and Django read the JSON themselves; FastAPI's own check is tested with it."""
    reply = journey.browser.post("/sign-in", {"email": ["x"], "password": "p"})
    refused = journey.expect(reply, 400)
    assert (refused["code"], refused["field"]) == ("text.not_text", "email")
    assert "x" not in refused["message"].split()
