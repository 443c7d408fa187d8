"""Which messages the proxy overrides, which pass, and which reverse requests it denies.

Pass-through by default (as debugpy's own adapter delegates any request it does not name):
only `initialize` and `launch`/`attach` are the proxy's; reverse requests from the adapter
reach the client only from an allow-list, since some could make the client run code.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from innerloop.core.dap_wire import Message, error_response


class ClientRoute(enum.Enum):
    INITIALIZE = "initialize"  # answered by the proxy; forwarded once the upstream exists
    START = "start"  # launch/attach: rewritten after the intercept is up
    FORWARD = "forward"


_CLIENT_ROUTES = {
    "initialize": ClientRoute.INITIALIZE,
    "launch": ClientRoute.START,
    "attach": ClientRoute.START,
}

ALLOWED_REVERSE_REQUESTS = frozenset({"runInTerminal", "startDebugging"})
"""Requests the adapter may send to the client; anything else could make the client run code."""


def client_route(msg: Message) -> ClientRoute:
    if msg["type"] != "request":
        return ClientRoute.FORWARD
    return _CLIENT_ROUTES.get(msg["command"], ClientRoute.FORWARD)


def reverse_request_allowed(msg: Message) -> bool:
    return msg["command"] in ALLOWED_REVERSE_REQUESTS


def denied_reverse_request(msg: Message) -> Message:
    return error_response(msg, f"innerloop does not pass {msg['command']!r} to the client")


PROXY_CAPABILITIES: Message = {
    "supportsConfigurationDoneRequest": True,
    "supportsConditionalBreakpoints": True,
    "supportsHitConditionalBreakpoints": True,
    "supportsFunctionBreakpoints": True,
    "supportsLogPoints": True,
    "supportsEvaluateForHovers": True,
    "supportsSetVariable": True,
    "supportsSetExpression": True,
    "supportsExceptionInfoRequest": True,
    "supportsExceptionOptions": True,
    "supportsCompletionsRequest": True,
    "supportsModulesRequest": True,
    "supportsValueFormattingOptions": True,
    "supportsTerminateRequest": True,
    "supportsTerminateDebuggee": True,
    "supportsDelayedStackTraceLoading": True,
    "supportsGotoTargetsRequest": True,
    "supportsStepInTargetsRequest": True,
    "supportsClipboardContext": True,
    "supportsDebuggerProperties": True,
    "exceptionBreakpointFilters": [
        {
            "filter": "raised",
            "label": "Raised Exceptions",
            "default": False,
            "description": "Break whenever any exception is raised.",
        },
        {
            "filter": "uncaught",
            "label": "Uncaught Exceptions",
            "default": True,
            "description": "Break when the process is exiting due to unhandled exception.",
        },
        {
            "filter": "userUnhandled",
            "label": "User Uncaught Exceptions",
            "default": False,
            "description": "Break when exception escapes into library code.",
        },
    ],
}
"""What the proxy answers to `initialize` before any upstream exists.

The upstream is only chosen (and, on TCP, only created at all) by an authorised launch/attach,
so the proxy answers `initialize` itself with what debugpy 1.8 offers (an integration test
checks they agree); if the real adapter differs, `capabilities_update` tells the client.
"""


def capabilities_update(announced: Mapping[str, Any], actual: Mapping[str, Any]) -> Message | None:
    """Body of a `capabilities` event correcting what we announced, or None if nothing differs."""
    changed = {k: v for k, v in actual.items() if announced.get(k) != v}
    for key, value in announced.items():
        if key not in actual and value is True:
            changed[key] = False
    return {"capabilities": changed} if changed else None
