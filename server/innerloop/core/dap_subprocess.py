"""debugpy subprocesses, carried through the root session.

The adapter announces each child process with a `startDebugging` reverse request (or a
`debugpyAttach` event for clients without it) carrying an attach configuration whose "connect"
is the adapter's own client listener. innerloop points it at a relay of the root session
instead, so the child's stops count towards the intercept's pause.
"""

from __future__ import annotations

from innerloop.core.dap_launch import DEBUG_TYPE, Endpoint, parse_endpoint
from innerloop.core.dap_wire import Message
from innerloop.core.errors import UserError


def subprocess_configuration(msg: Message) -> Message | None:
    """The attach configuration of a subprocess announcement, or None for other messages."""
    if msg["type"] == "request" and msg["command"] == "startDebugging":
        config = msg.get("arguments", {}).get("configuration")
    elif msg["type"] == "event" and msg["event"] == "debugpyAttach":
        config = msg.get("body")
    else:
        return None
    return config if isinstance(config, dict) else None


def subprocess_target(msg: Message) -> Endpoint | None:
    """Where the announced child can really be reached (the adapter's client listener)."""
    config = subprocess_configuration(msg)
    if config is None:
        return None
    try:
        return parse_endpoint(config.get("connect"))
    except UserError:
        return None


def redirect_subprocess(msg: Message, relay: Endpoint, token: str | None) -> Message:
    """The same announcement, for an `innerloop` session that connects through `relay`."""
    config = dict(subprocess_configuration(msg) or {})
    config["type"] = DEBUG_TYPE
    config["connect"] = {"host": relay.host, "port": relay.port}
    if token is not None:
        config["innerloopToken"] = token
    if msg["type"] == "event":
        return {**msg, "body": config}
    return {**msg, "arguments": {**msg["arguments"], "configuration": config}}
