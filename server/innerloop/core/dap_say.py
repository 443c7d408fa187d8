"""What the user reads in the debug console: one line per thing innerloop does or fails to do."""

from __future__ import annotations

from innerloop.core.advice import Surface
from innerloop.core.errors import InnerloopError
from innerloop.core.filters import Mode
from innerloop.core.request import InterceptRequest, WhilePaused


def say_intercepting(request: InterceptRequest) -> str:
    return f"intercepting {request.describe()}"


def say_active(request: InterceptRequest) -> str:
    return f"intercept active: live traffic for {request.describe()}"


def say_paused(request: InterceptRequest, paused: bool) -> str:
    if not paused:
        return "resumed: new requests reach this process again"
    if request.mode is Mode.MIRROR:
        return ("paused: copies of new requests are dropped (and counted) until you continue; "
                "the cluster answers every request")
    # A filtered intercept's pause touches only the requests its filter takes.
    only = "" if request.filter.is_empty else \
        f" (only those matching {request.filter.describe()}; others' are not affected)"
    if request.while_paused is WhilePaused.HOLD:
        return f"paused: new requests are held until you continue{only}"
    return f"paused: new requests are served by the cluster until you continue{only}"


def say_left(keep: bool) -> str:
    return "intercept kept (traffic still comes here)" if keep else "left intercept"


def say_failure(exc: Exception, surface: Surface = Surface.CLI) -> str:
    """Ours say what to do, as `surface` lets the user do it; anything else is a bug, for the log."""
    if isinstance(exc, InnerloopError):
        return exc.user_line(surface)
    return f"innerloop failed: {type(exc).__name__}: {exc} (see the log)"
