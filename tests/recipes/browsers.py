"""Each recipe of docs/examples served over its framework's own test client, as a `Browser`.

A server is built over a portal by the recipe's ``create_app``; it opens a
browser for each client address a test asks for. The journey
(`recipes.journey`) then drives every framework the same way.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from io import BytesIO
from typing import Any, cast

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from fastapi import FastAPI
from flask import Flask
from starlette.exceptions import StarletteDeprecationWarning
from werkzeug.test import TestResponse

with warnings.catch_warnings():
    # Starlette asks for httpx2 and, without it, warns that it uses httpx; either serves here.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

from recipes.journey import USER_AGENT, Browser, Reply, decoded, load_example
from securepractice import Portal

#: Opens a browser on a served recipe, from the client address given.
Open = Callable[[str], Browser]
#: Serves a recipe over a portal; what it opens is closed with the stack.
Serve = Callable[[Portal, ExitStack], Open]

flask_app = cast("Callable[[Portal], Flask]", load_example("flask_app").create_app)
fastapi_app = cast("Callable[[Portal], FastAPI]", load_example("fastapi_app").create_app)
django_app = cast("Callable[[Portal], object]", load_example("django_portal").create_app)


def reply(response: Any, content: bytes, cookies: Sequence[str]) -> Reply:
    """Return what a test client's ``response`` said: its body is ``content``."""
    headers = {name.lower(): value for name, value in response.headers.items()}
    return Reply(response.status_code, decoded(content), headers, tuple(cookies))


class FlaskBrowser:
    """Flask's test client, from one client address, with the journey's headers."""

    def __init__(self, app: Flask, address: str) -> None:
        self.client = app.test_client()
        self.client.environ_base["REMOTE_ADDR"] = address
        self.headers = {"User-Agent": USER_AGENT}

    @staticmethod
    def reply(response: TestResponse) -> Reply:
        return reply(response, response.get_data(), response.headers.getlist("Set-Cookie"))

    def get(self, path: str) -> Reply:
        return self.reply(self.client.get(path, headers=self.headers))

    def post(self, path: str, body: Mapping[str, object]) -> Reply:
        return self.reply(self.client.post(path, json=body, headers=self.headers))

    def upload(self, path: str, files: Sequence[tuple[str, bytes]]) -> Reply:
        form = {"file": [(BytesIO(content), name) for name, content in files]}
        return self.reply(self.client.post(path, data=form, headers=self.headers))


class StarletteBrowser:
    """Starlette's test client over HTTPS (the cookies are Secure), from one client address."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.headers = {"User-Agent": USER_AGENT}

    @staticmethod
    def reply(response: Any) -> Reply:  # an httpx or httpx2 response, as Starlette chose
        return reply(response, response.content, response.headers.get_list("set-cookie"))

    def get(self, path: str) -> Reply:
        return self.reply(self.client.get(path, headers=self.headers))

    def post(self, path: str, body: Mapping[str, object]) -> Reply:
        return self.reply(self.client.post(path, json=body, headers=self.headers))

    def upload(self, path: str, files: Sequence[tuple[str, bytes]]) -> Reply:
        form = [("file", (name, content, "application/octet-stream")) for name, content in files]
        return self.reply(self.client.post(path, files=form, headers=self.headers))


class DjangoBrowser:
    """Django's test client over HTTPS, from one client address."""

    def __init__(self, address: str) -> None:
        self.client = Client(REMOTE_ADDR=address)
        self.headers = {"User-Agent": USER_AGENT}

    @staticmethod
    def reply(response: Any) -> Reply:  # a django.http.HttpResponse
        cookies = [morsel.OutputString() for morsel in response.cookies.values()]
        return reply(response, response.content, cookies)

    def get(self, path: str) -> Reply:
        return self.reply(self.client.get(path, headers=self.headers, secure=True))

    def post(self, path: str, body: Mapping[str, object]) -> Reply:
        sent = self.client.post(
            path,
            json.dumps(body),
            content_type="application/json",
            headers=self.headers,
            secure=True,
        )
        return self.reply(sent)

    def upload(self, path: str, files: Sequence[tuple[str, bytes]]) -> Reply:
        form = {"file": [SimpleUploadedFile(name, content) for name, content in files]}
        return self.reply(self.client.post(path, form, headers=self.headers, secure=True))


def serve_flask(portal: Portal, _stack: ExitStack) -> Open:
    """The Flask recipe over ``portal``."""
    app = flask_app(portal)
    return lambda address: FlaskBrowser(app, address)


def serve_fastapi(portal: Portal, stack: ExitStack) -> Open:
    """The FastAPI recipe over ``portal``; each client runs the application's lifespan."""
    app = fastapi_app(portal)

    def open_browser(address: str) -> Browser:
        client = TestClient(app, base_url="https://testserver", client=(address, 50000))
        return StarletteBrowser(stack.enter_context(client))

    return open_browser


def serve_django(portal: Portal, _stack: ExitStack) -> Open:
    """The Django recipe over ``portal``: Django is configured once per process."""
    django_app(portal)
    return DjangoBrowser


SERVERS: dict[str, Serve] = {"flask": serve_flask, "fastapi": serve_fastapi, "django": serve_django}
