"""Which HTTP handler a logged request went to: its method and path against the routes that
`core.http_handlers` found, so the request log can open the handler's code.

Routes are read as the frameworks declare them: Flask/Django converters `<int:id>`, `<id>`,
`<path:rest>`, Starlette/FastAPI parameters `{id}`, `{rest:path}`, and Django `re_path` regexes.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from innerloop.core.http_handlers import HttpHandler

_PARAMETER = re.compile(r"<(?:(\w+):)?\w+>|\{\w+(?::(\w+))?\}")
_WHOLE_PATH = {"path"}


def route_pattern(route: str) -> re.Pattern[str] | None:
    """The route as a regex over a request's path; None when it is not one."""
    if route.startswith(("^", "/^")) or "(?P<" in route:
        body = route.removeprefix("/")
        body = body.removeprefix("^")
        try:
            return re.compile("/" + body.rstrip("$") + "$")
        except re.error:
            return None
    route = route.rstrip("/") or "/"  # a trailing slash is optional (Django redirects to it)
    parts: list[str] = []
    last = 0
    for match in _PARAMETER.finditer(route):
        parts.append(re.escape(route[last:match.start()]))
        converter = match.group(1) or match.group(2)
        parts.append(".+" if converter in _WHOLE_PATH else "[^/]+")
        last = match.end()
    parts.append(re.escape(route[last:]))
    return re.compile("".join(parts) + ("" if route == "/" else "/?") + "$")


def handler_for(handlers: list[HttpHandler], method: str, target: str) -> HttpHandler | None:
    """The handler whose route and method take this request; the most literal route wins
    (`/users/me` before `/users/{id}`), then one that names the method over one that takes any."""
    path = unquote(urlsplit(target).path) or "/"
    best: tuple[int, int, HttpHandler] | None = None
    for handler in handlers:
        if handler.methods and method.upper() not in handler.methods:
            continue
        pattern = route_pattern(handler.path)
        if pattern is None or not pattern.match(path):
            continue
        rank = (len(_PARAMETER.sub("", handler.path)), len(handler.methods) > 0, handler)
        if best is None or rank[:2] > best[:2]:
            best = rank
    return None if best is None else best[2]
