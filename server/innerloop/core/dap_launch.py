"""How an `innerloop` launch/attach becomes an intercept plus a debugpy launch/attach.

Everything is decided from the request alone (`plan_start`), so that a bad configuration is
refused with one line before anything starts.
"""

from __future__ import annotations

import os.path
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from innerloop.core.dap_wire import Message, is_int
from innerloop.core.errors import UserError
from innerloop.core.request import InterceptRequest, port_number, request_from_json

DEBUG_TYPE = "innerloop"
DEBUGPY_TYPE = "python"

INNERLOOP_KEYS = frozenset(
    {
        "service",
        "namespace",
        "context",
        "agentImage",
        "servicePort",
        "port",
        "whilePaused",
        "match",
        "mode",
        "protocol",
        "keepIntercept",
        "clusterNetwork",
        "envFile",
        "connectTimeout",
        "innerloopToken",
        "pythonSource",
    }
)
"""Arguments that mean something to innerloop only; debugpy never sees them."""

DEFAULT_CONNECT_TIMEOUT = 30.0
SUBPROCESS_CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class StartPlan:
    """How to start one debug session, decided from its launch/attach request alone."""

    command: Literal["launch", "attach"]
    intercept: InterceptRequest | None
    """None for a debugpy subprocess session: it joins its parent's intercept."""
    connect: Endpoint | None
    """Where a debugpy adapter already listens; None: spawn our own."""
    connect_timeout: float
    arguments: Message
    """The debugpy launch/attach arguments (launch: before the env is merged in)."""
    env_file: str | None = None
    env: Mapping[str, str | None] = field(default_factory=dict)
    keep_intercept: bool = False
    """`keepIntercept`: the intercept outlives the debug session."""
    cluster_network: bool = False
    """`clusterNetwork` (launch only, default true): the debuggee reaches the cluster's
    Services by name, its connections leaving from the workload's pods (docs/network.md)."""


def start_token(arguments: Mapping[str, Any]) -> str | None:
    token = arguments.get("innerloopToken")
    return token if isinstance(token, str) else None


def plan_start(request: Message) -> StartPlan:
    """Validate an `innerloop` launch/attach; raises UserError with one line to fix it."""
    command = request["command"]
    args = request.get("arguments")
    if not isinstance(args, dict):
        raise UserError(f"{command} request without arguments")
    if command == "launch":
        return _plan_launch(args)
    if "subProcessId" in args:
        return _plan_subprocess(args)
    return _plan_attach(args)


def _debugpy_arguments(args: Mapping[str, Any]) -> Message:
    out = {k: v for k, v in args.items() if k not in INNERLOOP_KEYS}
    out["type"] = DEBUGPY_TYPE
    return out


def _plan_launch(args: Mapping[str, Any]) -> StartPlan:
    targets = [k for k in ("program", "module") if k in args]
    if len(targets) != 1:
        raise UserError('launch configuration needs exactly one of "program" or "module"')
    if not isinstance(args[targets[0]], str) or not args[targets[0]]:
        raise UserError(f'"{targets[0]}" must be a non-empty string')
    cwd = _optional_str(args, "cwd")
    env_file = _optional_str(args, "envFile")
    if env_file is not None and cwd is not None and not os.path.isabs(env_file):
        env_file = os.path.join(cwd, env_file)
    arguments = _debugpy_arguments(args)
    arguments.setdefault("console", "internalConsole")
    arguments.pop("env", None)
    return StartPlan(
        command="launch",
        intercept=_intercept(args, "launch"),
        keep_intercept=_keep_intercept(args),
        cluster_network=_flag(args, "clusterNetwork", True),
        connect=None,
        connect_timeout=0.0,
        arguments=arguments,
        env_file=env_file,
        env=_env(args),
    )


def _plan_attach(args: Mapping[str, Any]) -> StartPlan:
    return StartPlan(
        command="attach",
        intercept=_intercept(args, "attach"),
        keep_intercept=_keep_intercept(args),
        connect=_connect(args, 'attach configuration needs "connect": {"host", "port"} of debugpy'),
        connect_timeout=_timeout(args, DEFAULT_CONNECT_TIMEOUT),
        arguments=_debugpy_arguments(args),
    )


def _plan_subprocess(args: Mapping[str, Any]) -> StartPlan:
    if not is_int(args["subProcessId"]):
        raise UserError('"subProcessId" must be an integer')
    return StartPlan(
        command="attach",
        intercept=None,
        connect=_connect(args, 'subprocess attach without "connect"'),
        connect_timeout=_timeout(args, SUBPROCESS_CONNECT_TIMEOUT),
        arguments=_debugpy_arguments(args),
    )


def _intercept(args: Mapping[str, Any], command: str) -> InterceptRequest:
    return request_from_json(args, f"{command} configuration", "port", local_port_required=True)


def _keep_intercept(args: Mapping[str, Any]) -> bool:
    return _flag(args, "keepIntercept", False)


def _flag(args: Mapping[str, Any], key: str, default: bool) -> bool:
    value = args.get(key, default)
    if not isinstance(value, bool):
        raise UserError(f'"{key}" must be true or false')
    return value


def _optional_str(args: Mapping[str, Any], key: str) -> str | None:
    value = args.get(key)
    if value is not None and not isinstance(value, str):
        raise UserError(f'"{key}" must be a string')
    return value


def _connect(args: Mapping[str, Any], missing: str) -> Endpoint:
    if "connect" not in args:
        raise UserError(missing)
    return parse_endpoint(args["connect"])


def parse_endpoint(connect: object) -> Endpoint:
    """A "connect" object of a configuration; raises UserError naming what to fix."""
    if not isinstance(connect, dict):
        raise UserError('"connect" must be {"host": ..., "port": ...}')
    host = connect.get("host", "127.0.0.1")
    if not isinstance(host, str) or not host:
        raise UserError('"connect.host" must be a host name or address')
    return Endpoint(host, port_number(connect.get("port"), '"connect.port"'))


def _timeout(args: Mapping[str, Any], default: float) -> float:
    value = args.get("connectTimeout", default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise UserError('"connectTimeout" must be a positive number of seconds')
    return float(value)


def _env(args: Mapping[str, Any]) -> dict[str, str | None]:
    env = args.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) or v is None for v in env.values()):
        raise UserError('"env" must map names to strings (or null to unset)')
    return dict(env)


# Environment: the workload's env, overridden by envFile, overridden by the launch's env.


def merge_env(
    workload: Mapping[str, str],
    env_file: Mapping[str, str],
    launch: Mapping[str, str | None],
) -> dict[str, str | None]:
    """The debuggee's env changes: later sources win; None unsets an inherited variable."""
    return {**workload, **env_file, **launch}


def launch_arguments(plan: StartPlan, env: Mapping[str, str | None]) -> Message:
    return {**plan.arguments, "env": dict(env)}


def keep_on_disconnect(keep_intercept: bool, disconnect_args: Mapping[str, Any]) -> bool:
    """Keep the intercept if asked to, or when the client restarts the session right away."""
    return keep_intercept or disconnect_args.get("restart") is True
