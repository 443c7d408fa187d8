"""Which requests a claim takes: a `RequestFilter`, matched per request by the agent.

One shape everywhere: the launch.json / LSP `match` object is the filter's JSON, and its
canonical text (sorted keys, no spaces) is what a CLAIM frame carries, so two clients that asked
for the same thing send the same bytes. Regexes are Python `re` (the agent runs the same
engine), searched, not anchored: write `^…$` to anchor. `may_overlap` is conservative: it says
False only when no request can match both filters (docs/routing.md).
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from innerloop.core.errors import UserError

REGEX_MARK = "~"
"""A header value that starts with this is a regex (`x-tenant=~^acme-`)."""

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
_MATCH_KEYS = ("headers", "path", "pathPrefix", "pathRegex", "method")


class Mode(enum.Enum):
    """What a claim does with the requests its filter matches."""

    ROUTE = "route"
    """The request goes to the laptop instead of the app."""
    MIRROR = "mirror"
    """The app answers it; a copy goes to the laptop, whose answer is dropped."""

    @classmethod
    def parse(cls, value: object, where: str = "mode") -> Mode:
        for member in cls:
            if value == member.value or value is member:
                return member
        raise UserError(f'{where} must be "route" or "mirror", got {value!r}')


class AppProtocol(enum.Enum):
    """What a route's connections speak, as far as per-request routing cares."""

    AUTO = "auto"
    """HTTP: HTTP/2 if the connection starts with its preface, else HTTP/1.1."""
    HTTP1 = "http1"
    H2 = "h2"
    """HTTP/2 cleartext with prior knowledge (gRPC inside a cluster)."""
    TCP = "tcp"
    """Not HTTP (or TLS): whole connections only."""

    def label(self) -> str:
        """For people: how the requests on the port are read."""
        return _PROTOCOL_LABELS[self]

    @classmethod
    def parse(cls, value: object, where: str = "protocol") -> AppProtocol:
        for member in cls:
            if value == member.value or value is member:
                return member
        names = "|".join(m.value for m in cls)
        raise UserError(f"{where} must be one of {names}, got {value!r}")


_H2_NAMES = ("grpc", "h2c", "http2", "kubernetes.io/h2c")
_PROTOCOL_LABELS = {
    AppProtocol.AUTO: "HTTP/1.1 or HTTP/2, whichever each connection speaks",
    AppProtocol.HTTP1: "HTTP/1.1",
    AppProtocol.H2: "HTTP/2 (h2c)",
    AppProtocol.TCP: "TCP, whole connections",
}
_HTTP1_NAMES = ("grpc-web", "kubernetes.io/ws", "ws")
_TCP_NAMES = ("tcp", "udp", "tls", "https", "grpcs", "kubernetes.io/wss", "wss", "mongo",
              "mysql", "redis", "postgres", "postgresql", "amqp", "kafka", "mqtt", "sctp")


def protocol_hint(app_protocol: str | None, port_name: str | None) -> AppProtocol:
    """The protocol of a Service port from its `appProtocol`, else its name (Istio style:
    `http-web`, `grpc-api`, `tcp-db`). Unknown names are AUTO: a filter is only used when the
    user asked for one, and then they expect HTTP."""
    for hint in (app_protocol, port_name):
        if not hint:
            continue
        word = hint.lower()
        for names, proto in ((_HTTP1_NAMES, AppProtocol.HTTP1), (_H2_NAMES, AppProtocol.H2),
                             (_TCP_NAMES, AppProtocol.TCP)):
            if any(word == n or word.startswith(n + "-") for n in names):
                return proto
        if word == "http" or word.startswith("http-") or word == "kubernetes.io/http":
            return AppProtocol.AUTO
        if app_protocol:
            return AppProtocol.AUTO
    return AppProtocol.AUTO


def route_protocol(asked: AppProtocol | None, app_protocol: str | None, port_name: str | None,
                   flt: RequestFilter, mode: Mode, where: str) -> AppProtocol:
    """The protocol a claim on the Service port `where` carries: the user's, else the port's
    hint. A filter or mirror mode on a port that is not HTTP is refused, with the way out."""
    protocol = asked or protocol_hint(app_protocol, port_name)
    if protocol is AppProtocol.TCP and (not flt.is_empty or mode is Mode.MIRROR):
        why = "--protocol tcp" if asked else f"its {'appProtocol' if app_protocol else 'name'}"
        raise UserError(f"{where} is not HTTP ({why} says so): a filter or mirror mode needs "
                        "HTTP; if it does speak HTTP, add --protocol http1 (or h2, "
                        '"protocol" in a launch configuration)')
    return protocol


@dataclass(frozen=True)
class HeaderMatch:
    """One header condition: the header (name case-insensitive) has this value, or a value the
    regex finds a match in."""

    name: str
    value: str
    regex: bool = False

    def text(self) -> str:
        """The value as typed: `me`, or `~^acme-` for a regex."""
        return REGEX_MARK + self.value if self.regex else self.value


@dataclass(frozen=True)
class RequestFilter:
    """Conditions a request must all meet; the empty filter matches every request.

    Built normalized (header names lower-case and sorted, method upper-case), so equal filters
    compare equal and encode to the same canonical JSON. Invalid input raises UserError."""

    headers: tuple[HeaderMatch, ...] = ()
    path: str | None = None
    path_prefix: str | None = None
    path_regex: str | None = None
    method: str | None = None
    _patterns: dict[str, re.Pattern[str]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        headers = tuple(sorted((HeaderMatch(h.name.lower(), h.value, h.regex)
                                for h in self.headers), key=lambda h: h.name))
        object.__setattr__(self, "headers", headers)
        for h in headers:
            if not _TOKEN.fullmatch(h.name):
                raise UserError(f"bad header name {h.name!r} in a filter")
            if h.regex:
                self._patterns[h.name] = _compile(h.value, f"header {h.name}")
            elif _BAD_VALUE.search(h.value):
                raise UserError(f"bad value {h.value!r} for header {h.name} in a filter")
        names = [h.name for h in headers]
        if len(set(names)) != len(names):
            twice = next(n for n in names if names.count(n) > 1)
            raise UserError(f"header {twice} is in a filter twice: give one value (or a regex)")
        for what, path in (("path", self.path), ("path prefix", self.path_prefix)):
            if path is not None and (not path.startswith("/") or _BAD_VALUE.search(path)):
                raise UserError(f"bad {what} {path!r} in a filter: it must start with /")
        if self.path_regex is not None:
            self._patterns[""] = _compile(self.path_regex, "path")
        if self.method is not None:
            if not _TOKEN.fullmatch(self.method):
                raise UserError(f"bad method {self.method!r} in a filter")
            object.__setattr__(self, "method", self.method.upper())
        if self.path is not None and not self._path_ok(self.path):
            raise UserError(f"path {self.path} does not meet the filter's other path "
                            "conditions: this filter would match no request")

    @property
    def is_empty(self) -> bool:
        return self == EVERYTHING

    def describe(self) -> str:
        """`x-dev=me path-prefix=/api method=POST`, or `all requests`: one line for people."""
        parts = [f"{h.name}={h.text()}" for h in self.headers]
        parts += [f"{word}={value}" for word, value in (
            ("path", self.path), ("path-prefix", self.path_prefix),
            ("path-regex", self.path_regex), ("method", self.method)) if value is not None]
        return " ".join(parts) or "all requests"

    def matches(self, request: RequestParts) -> bool:
        """Does the request meet every condition (see `matches`)?"""
        if self.method is not None and request.method != self.method:
            return False
        if ((self.path is not None or self.path_prefix is not None
             or self.path_regex is not None) and not self._path_ok(request.path)):
            return False
        for cond in self.headers:  # loops, not generators: this runs per request and claim
            for value in request.headers.get(cond.name, ()):
                if self._header_ok(cond, value):
                    break
            else:
                return False
        return True

    def _path_ok(self, path: str) -> bool:
        if self.path is not None and path != self.path:
            return False
        if self.path_prefix is not None and not path.startswith(self.path_prefix):
            return False
        pattern = self._patterns.get("")
        return pattern is None or pattern.search(path) is not None

    def _header_ok(self, cond: HeaderMatch, value: str) -> bool:
        if cond.regex:
            return self._patterns[cond.name].search(value) is not None
        return value == cond.value


EVERYTHING = RequestFilter()
"""The empty filter: every request (a whole-route intercept)."""


def _compile(pattern: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UserError(f"bad regex {pattern!r} for {where}: {exc}") from None


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def request_path(target: str | bytes) -> str:
    """The path of a request target, without the query: `/a?b` → `/a`; absolute-form
    `http://h/a?b` → `/a`."""
    text = _text(target)
    if not text.startswith("/") and "://" in text:
        rest = text.split("://", 1)[1]
        slash = rest.find("/")
        text = rest[slash:] if slash >= 0 else "/"
    return text.split("?", 1)[0]


@dataclass(frozen=True)
class RequestParts:
    """A request as filters read it, read once for all of them: the method upper-case, the path
    without the query, each header's values by lower-case name (bytes read as latin-1, as h11
    and h2 give them)."""

    method: str
    path: str
    headers: dict[str, list[str]]


def request_parts(method: str | bytes, target: str | bytes,
                  headers: Iterable[tuple[str | bytes, str | bytes]]) -> RequestParts:
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(_text(name).lower(), []).append(_text(value))
    return RequestParts(_text(method).upper(), request_path(target), values)


def matches(
    flt: RequestFilter,
    method: str | bytes,
    path: str | bytes,
    headers: Iterable[tuple[str | bytes, str | bytes]],
) -> bool:
    """Does this request meet every condition? `path` is the request target (the query is
    ignored); header names are case-insensitive; a header sent several times matches if any of
    its values does. (Matching one request against several filters: `request_parts` once,
    then `RequestFilter.matches`.)"""
    return flt.matches(request_parts(method, path, headers))


def may_overlap(a: RequestFilter, b: RequestFilter) -> bool:
    """Could one request (each header sent once) match both? False only when provably not:
    different methods, different exact header values (or an exact value the other's regex
    cannot find a match in), disjoint exact/prefix paths (or an exact path the other's regex
    rejects). Two regexes on one field always may overlap."""
    if a.is_empty or b.is_empty:
        return True
    if a.method is not None and b.method is not None and a.method != b.method:
        return False
    b_headers = {h.name: h for h in b.headers}
    for ha in a.headers:
        hb = b_headers.get(ha.name)
        if hb is None or (ha.regex and hb.regex):
            continue
        exact, other, holder = (ha, hb, b) if not ha.regex else (hb, ha, a)
        if not holder._header_ok(other, exact.value):
            return False
    for path, rival in ((a.path, b), (b.path, a)):
        if path is not None and not rival._path_ok(path):
            return False
    pa, pb = a.path_prefix, b.path_prefix
    return pa is None or pb is None or pa.startswith(pb) or pb.startswith(pa)


def filter_to_json(flt: RequestFilter) -> dict[str, Any]:
    """The `match` object: `{"headers": {"x-dev": "me"}, "pathPrefix": "/api", ...}`."""
    out: dict[str, Any] = {}
    if flt.headers:
        out["headers"] = {h.name: h.text() for h in flt.headers}
    for key, value in (("path", flt.path), ("pathPrefix", flt.path_prefix),
                       ("pathRegex", flt.path_regex), ("method", flt.method)):
        if value is not None:
            out[key] = value
    return out


def filter_from_json(obj: object, where: str = "match") -> RequestFilter:
    """Validate a `match` object (launch.json, LSP, the wire); one UserError line if bad."""
    if obj is None:
        return EVERYTHING
    if not isinstance(obj, Mapping):
        raise UserError(f"{where} must be an object like "
                        '{"headers": {"x-dev": "me"}, "pathPrefix": "/api"}, got ' f"{obj!r}")
    unknown = sorted(str(k) for k in obj if k not in _MATCH_KEYS)
    if unknown:
        raise UserError(f"{where} has unknown key {unknown[0]!r} "
                        f"(known: {', '.join(_MATCH_KEYS)})")
    headers = obj.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise UserError(f'{where}: "headers" must map header names to values, '
                        f'e.g. {{"x-dev": "me"}}, got {headers!r}')
    strings = {}
    for key in _MATCH_KEYS[1:]:
        value = obj.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise UserError(f'{where}: "{key}" must be a non-empty string, got {value!r}')
        strings[key] = value
    try:
        return RequestFilter(
            headers=tuple(header_match(name, value) for name, value in headers.items()),
            path=strings["path"], path_prefix=strings["pathPrefix"],
            path_regex=strings["pathRegex"], method=strings["method"])
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None


def header_match(name: str, text: str) -> HeaderMatch:
    """`("x-tenant", "~^acme-")` → a regex condition; any other value is exact."""
    if text.startswith(REGEX_MARK):
        return HeaderMatch(name, text[len(REGEX_MARK):], regex=True)
    return HeaderMatch(name, text)


def parse_header_flag(flag: str) -> HeaderMatch:
    """`--header NAME=VALUE` (`NAME=~REGEX` for a regex)."""
    name, sep, value = flag.partition("=")
    if not sep or not name.strip():
        raise UserError(f"bad --header {flag!r}: expected NAME=VALUE or NAME=~REGEX, "
                        "e.g. x-dev=me")
    return header_match(name.strip(), value)


def encode_filter(flt: RequestFilter) -> str:
    """The canonical JSON a CLAIM carries (`{}` for the empty filter)."""
    return json.dumps(filter_to_json(flt), sort_keys=True, separators=(",", ":"))


def parse_filter(text: str) -> RequestFilter:
    """The inverse of `encode_filter`; bad text raises one UserError line."""
    try:
        obj = json.loads(text)
    except ValueError:
        raise UserError(f"a filter must be JSON, got {text[:80]!r}") from None
    return filter_from_json(obj, "filter")
