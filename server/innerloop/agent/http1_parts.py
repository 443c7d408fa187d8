"""What per-request routing knows of a caller's connection around the HTTP/1.1 router: what
its first bytes speak, and what the router asks of the agent (`RequestRoutes`)."""

from __future__ import annotations

import asyncio
import re
from typing import Protocol

from innerloop.agent.mirror import MirrorTarget
from innerloop.agent.upstream import Destination
from innerloop.core.http1_quick import QuickRequest

_METHOD = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,32}(?: |$)")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
"""What an HTTP/2 connection with prior knowledge starts with."""


class RequestRoutes(Protocol):
    """What the router needs from the agent for one listen port."""

    async def route_parts(self, method: bytes, target: bytes,
                          headers: list[tuple[bytes, bytes]]) -> Destination:
        """Where this request goes (waits while its owner holds it)."""

    def decide_quick(self, request: QuickRequest) -> Destination | None:
        """`route_parts` of a quick request, without waiting: None while the request would
        be held."""

    def mirror_parts(self, method: bytes, target: bytes,
                     headers: list[tuple[bytes, bytes]]) -> list[MirrorTarget]:
        """The mirror claims this request should be copied to."""

    def mirror_quick(self, request: QuickRequest) -> list[MirrorTarget]:
        """`mirror_parts` for a quick request."""

    @property
    def app(self) -> Destination:
        """Serves what an owner's client did not accept."""

    async def raw_to_app(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         replay: bytes) -> None:
        """Not HTTP/1.1: serve the connection from the app as bytes."""


class NotHttp1(Exception):
    """The caller's first bytes are not an HTTP/1.x request."""


def is_h2_preface(prefix: bytes) -> bool | None:
    """True/False once the first bytes tell whether they start HTTP/2; None: read more."""
    if len(prefix) >= len(PREFACE):
        return prefix.startswith(PREFACE)
    return None if PREFACE.startswith(prefix) else False


def looks_like_http1(prefix: bytes) -> bool:
    """Could these first bytes start an HTTP/1.x request line (a method token, then a space)?"""
    return _METHOD.match(prefix[:33]) is not None
