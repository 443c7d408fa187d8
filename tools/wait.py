"""Poll until a condition holds, for the places that have no event to wait on (another
process's state, a cluster object): one deadline rule and one timeout message everywhere."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def _timed_out(what: str, predicate: object, timeout: float) -> AssertionError:
    return AssertionError(f"timed out after {timeout:g}s waiting for {what or predicate}")


def poll_until(predicate: Callable[[], T], what: str = "", timeout: float = 15.0,
               interval: float = 0.1) -> T:
    """The first truthy result of ``predicate``; AssertionError naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise _timed_out(what, predicate, timeout)
        time.sleep(interval)
    return result


async def wait_until(predicate: Callable[[], T], what: str = "", timeout: float = 15.0,
                     interval: float = 0.05) -> T:
    """``poll_until`` for coroutines: sleeps without blocking the event loop."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise _timed_out(what, predicate, timeout)
        await asyncio.sleep(interval)
    return result


async def retry(attempt: Callable[[], Awaitable[T]],
                errors: type[BaseException] | tuple[type[BaseException], ...],
                timeout: float = 15.0, interval: float = 0.05) -> T:
    """The result of the first call of ``attempt`` that raises none of ``errors`` (for a state
    that only a try can show, such as a permission the server takes a moment to see); once
    ``timeout`` has passed, the last such error."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await attempt()
        except errors:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(interval)
