"""Turns innerloop's user-facing errors into JSON-RPC errors that carry one actionable line."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from pygls.exceptions import JsonRpcException

from innerloop.core.advice import Surface
from innerloop.core.errors import InnerloopError, is_expected
from innerloop.lsp.deps import Deps
from innerloop.lsp.server import InnerloopServer

log = logging.getLogger(__name__)

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
            line = err.user_line(Surface.EDITOR)
            if is_expected(err):
                log.warning("%s: %s", handler.__name__, line)
                raise RequestFailed(line, data={"category": err.category.value}) from None
            raise RequestFailed(line, data={"category": err.category.value}) from err

    return wrapper


class NoTracebackForUserErrors(logging.Filter):
    """pygls logs every failed request with its traceback (on stderr, which the editor shows
    in the Output channel). A user's error already went to the log as one line: drop it."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, RequestFailed) and isinstance(exc.data, dict)
                    and exc.data.get("category") not in (None, "unknown"))


def setup(server: InnerloopServer, _deps: Deps) -> None:
    quiet = NoTracebackForUserErrors()
    pygls_log = logging.getLogger("pygls.protocol.json_rpc")
    pygls_log.addFilter(quiet)

    async def detach() -> None:
        pygls_log.removeFilter(quiet)

    server.on_shutdown.append(detach)
