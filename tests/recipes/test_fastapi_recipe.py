"""What only the FastAPI recipe (docs/examples/fastapi_app.py) does: pydantic forms, a lifespan.

The journey every recipe shares is in test_recipes.py.
"""

from __future__ import annotations

import json
from contextlib import ExitStack

import pytest

from recipes.browsers import serve_fastapi
from recipes.journey import ADDRESS, Journey
from securepractice import Portal


@pytest.mark.parametrize("framework", ["fastapi"])
def test_a_form_of_the_wrong_shape_is_refused_without_echoing_it(journey: Journey) -> None:
    reply = journey.browser.post("/sign-in", {"email": "a@smile.example", "password": 31415926})
    assert reply.status == 422
    assert [error["loc"] for error in reply.body["detail"]] == [["body", "password"]]
    assert "31415926" not in json.dumps(reply.body)


def test_the_async_portal_closes_with_the_application(portal: Portal) -> None:
    with ExitStack() as stack:
        assert serve_fastapi(portal, stack)(ADDRESS).get("/session").status == 401
    with ExitStack() as stack:  # a new loop, a new AsyncPortal
        assert serve_fastapi(portal, stack)(ADDRESS).get("/session").status == 401
