"""Turns innerloop's user-facing errors into JSON-RPC errors that carry one actionable line."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from pygls.exceptions import JsonRpcException

from innerloop.core.advice import Surface
from innerloop.core.errors import InnerloopError

REQUEST_FAILED = -32803  # LSP ErrorCodes.RequestFailed

P = ParamSpec("P")
R = TypeVar("R")


class RequestFailed(JsonRpcException):
    CODE = REQUEST_FAILED


def user_errors(handler: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """The client shows `message` as is; `data.category` tells user/config/cluster/unknown apart.
    The advice names the editor's settings and commands, not CLI flags."""

    @functools.wraps(handler)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await handler(*args, **kwargs)
        except InnerloopError as err:
            raise RequestFailed(err.user_line(Surface.EDITOR), data={"category": err.category.value}) from err

    return wrapper
