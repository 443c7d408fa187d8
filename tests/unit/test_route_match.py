"""A logged request → the handler that took it (core.route_match), for "click a request, see its
handler" in the editor's request log."""

from __future__ import annotations

import pytest
from innerloop.core.http_handlers import HttpHandler
from innerloop.core.route_match import handler_for, route_pattern


def h(name: str, path: str, *methods: str) -> HttpHandler:
    return HttpHandler(name, 1, 2, path, tuple(methods))


HANDLERS = [
    h("index", "/"),
    h("order", "/orders/<int:order_id>", "GET", "POST"),
    h("drop", "/orders/<id>", "DELETE"),
    h("me", "/users/me", "GET"),
    h("user", "/users/{user_id}", "GET"),
    h("files", "/files/{rest:path}", "GET"),
    h("static", "/static/<path:name>"),
    h("legacy", "/^legacy/(?P<year>[0-9]{4})/$"),
    h("article", "/articles/<slug:slug>/"),
]


@pytest.mark.parametrize(("method", "target", "name"), [
    ("GET", "/", "index"),
    ("GET", "/?q=1", "index"),
    ("POST", "/orders/7", "order"),
    ("DELETE", "/orders/7", "drop"),
    ("get", "/users/me", "me"),  # the literal route before the parameter
    ("GET", "/users/42", "user"),
    ("GET", "/files/a/b/c.txt", "files"),
    ("GET", "/static/css/site.css", "static"),
    ("GET", "/legacy/2024/", "legacy"),
    ("GET", "/articles/hello-world/", "article"),
    ("GET", "/articles/hello-world", "article"),
    ("GET", "/users/caf%C3%A9", "user"),
])
def test_a_request_finds_its_handler(method: str, target: str, name: str) -> None:
    found = handler_for(HANDLERS, method, target)
    assert found is not None and found.name == name


@pytest.mark.parametrize(("method", "target"), [
    ("PUT", "/orders/7"),
    ("GET", "/orders"),
    ("GET", "/users/1/extra"),
    ("GET", "/legacy/24/"),
])
def test_a_request_no_handler_takes(method: str, target: str) -> None:
    assert handler_for(HANDLERS, method, target) is None


def test_a_broken_regex_route_matches_nothing() -> None:
    assert route_pattern("/^bad/(?P<x[/$") is None
