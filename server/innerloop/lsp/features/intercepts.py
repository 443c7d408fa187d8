"""Intercept commands: listTargets, startIntercept, stopIntercept, toggleIntercept, uninstall.

Each takes one JSON object argument (shapes in extension/src/protocol.ts) and translates it
to one session-manager call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from innerloop.core.errors import UserError
from innerloop.lsp.deps import InterceptInfo, InterceptSpec, TargetList
from innerloop.lsp.features.errors import user_errors
from innerloop.lsp.features.progress import with_progress

if TYPE_CHECKING:
    from innerloop.lsp.deps import Deps
    from innerloop.lsp.server import InnerloopServer


def _object_arg(command: str, args: Sequence[Any]) -> Mapping[str, Any]:
    if len(args) == 0:
        return {}
    if len(args) == 1 and isinstance(args[0], Mapping):
        return args[0]
    raise UserError(f"{command} takes one object argument, got {list(args)!r}")


def _opt_str(command: str, obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise UserError(f"{command}: {key} must be a string, got {value!r}")
    return value


def _req_str(command: str, obj: Mapping[str, Any], key: str) -> str:
    value = _opt_str(command, obj, key)
    if value is None:
        raise UserError(f"{command}: {key} is required")
    return value


def _opt_port(command: str, obj: Mapping[str, Any], key: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
        return value
    raise UserError(f"{command}: {key} must be a port number (1-65535), got {value!r}")


def _opt_port_ref(command: str, obj: Mapping[str, Any], key: str) -> int | str | None:
    """A port number or a port name."""
    value = obj.get(key)
    if isinstance(value, str) and value:
        return value
    return _opt_port(command, obj, key)


def parse_spec(obj: Mapping[str, Any]) -> InterceptSpec:
    command = "startIntercept"
    while_paused = obj.get("whilePaused", "cluster")
    if while_paused not in ("cluster", "hold"):
        raise UserError(f'{command}: whilePaused must be "cluster" or "hold", got {while_paused!r}')
    return InterceptSpec(
        service=_req_str(command, obj, "service"),
        namespace=_opt_str(command, obj, "namespace"),
        service_port=_opt_port_ref(command, obj, "servicePort"),
        local_port=_opt_port(command, obj, "localPort"),
        while_paused=while_paused,
    )


def setup(server: InnerloopServer, deps: Deps) -> None:
    sessions = deps.sessions

    @server.command("innerloop.listTargets")
    @user_errors
    async def list_targets(*args: Any) -> TargetList:
        obj = _object_arg("listTargets", args)
        namespace = _opt_str("listTargets", obj, "namespace")
        return await sessions.list_targets(namespace or server.settings.namespace or None)

    @server.command("innerloop.startIntercept")
    @user_errors
    async def start_intercept(*args: Any) -> InterceptInfo:
        spec = parse_spec(_object_arg("startIntercept", args))
        if spec.namespace is None and server.settings.namespace:
            spec = dataclasses.replace(spec, namespace=server.settings.namespace)
        return await with_progress(
            server,
            f"innerloop: intercepting {spec.service}",
            lambda report: sessions.start(spec, report),
        )

    @server.command("innerloop.stopIntercept")
    @user_errors
    async def stop_intercept(*args: Any) -> None:
        await sessions.stop(_req_str("stopIntercept", _object_arg("stopIntercept", args), "id"))

    @server.command("innerloop.toggleIntercept")
    @user_errors
    async def toggle_intercept(*args: Any) -> InterceptInfo | None:
        """Stop the named (or the only) intercept if one runs, else start it: the status bar's
        click for clients that keep no state of their own. Returns the started intercept."""
        obj = _object_arg("toggleIntercept", args)
        running = (await sessions.status())["intercepts"]
        if obj:
            spec = parse_spec(obj)
            namespace = spec.namespace or server.settings.namespace or None
            match = [i for i in running if i["service"] == spec.service
                     and (namespace is None or i["namespace"] == namespace)]
        else:
            match = running
        if len(match) == 1:
            await sessions.stop(match[0]["id"])
            return None
        if not obj:
            raise UserError("toggleIntercept: " + (
                "no intercept runs; pass {\"service\": …} to start one" if not running else
                "several intercepts run; name the service to toggle"))
        result: InterceptInfo = await start_intercept(obj)
        return result

    @server.command("innerloop.uninstall")
    @user_errors
    async def uninstall(*args: Any) -> None:
        obj = _object_arg("uninstall", args)
        service = _req_str("uninstall", obj, "service")
        namespace = _opt_str("uninstall", obj, "namespace") or server.settings.namespace or None
        await with_progress(
            server,
            f"innerloop: removing the agent behind {service}",
            lambda report: sessions.uninstall(namespace, service, report),
        )
