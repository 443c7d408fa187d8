"""Intercept commands: listTargets, startIntercept, stopIntercept, toggleIntercept, uninstall.

Each takes one JSON object argument (shapes in extension/src/protocol.ts) and translates it
to one call of the intercept service.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from innerloop.core.errors import UserError
from innerloop.core.request import InterceptRequest, optional_str, request_from_json
from innerloop.lsp.deps import Deps, InterceptInfo, TargetList
from innerloop.lsp.features.errors import user_errors
from innerloop.lsp.features.progress import with_progress
from innerloop.lsp.server import InnerloopServer


def _object_arg(command: str, args: Sequence[Any]) -> Mapping[str, Any]:
    if len(args) == 0:
        return {}
    if len(args) == 1 and isinstance(args[0], Mapping):
        return args[0]
    raise UserError(f"{command} takes one object argument, got {list(args)!r}")


def _req_str(command: str, obj: Mapping[str, Any], key: str) -> str:
    value = optional_str(obj, key, command)
    if value is None:
        raise UserError(f'{command} needs "{key}"')
    return value


def parse_request(obj: Mapping[str, Any]) -> InterceptRequest:
    return request_from_json(obj, "startIntercept", local_port_key="localPort")


def setup(server: InnerloopServer, deps: Deps) -> None:
    intercepts = deps.intercepts

    @server.command("innerloop.listTargets")
    @user_errors
    async def list_targets(*args: Any) -> TargetList:
        obj = _object_arg("listTargets", args)
        namespace = optional_str(obj, "namespace", "listTargets")
        return await intercepts.list_targets(namespace or server.settings.namespace or None)

    @server.command("innerloop.startIntercept")
    @user_errors
    async def start_intercept(*args: Any) -> InterceptInfo:
        request = parse_request(_object_arg("startIntercept", args))
        if request.namespace is None and server.settings.namespace:
            request = dataclasses.replace(request, namespace=server.settings.namespace)
        return await with_progress(
            server,
            f"innerloop: intercepting {request.service}",
            lambda report: intercepts.start(request, report),
        )

    @server.command("innerloop.stopIntercept")
    @user_errors
    async def stop_intercept(*args: Any) -> None:
        await intercepts.stop(_req_str("stopIntercept", _object_arg("stopIntercept", args), "id"))

    @server.command("innerloop.toggleIntercept")
    @user_errors
    async def toggle_intercept(*args: Any) -> InterceptInfo | None:
        """Stop the named (or the only) intercept if one runs, else start it: the status bar's
        click for clients that keep no state of their own. Returns the started intercept."""
        obj = _object_arg("toggleIntercept", args)
        running = (await intercepts.status())["intercepts"]
        if obj:
            request = parse_request(obj)
            namespace = request.namespace or server.settings.namespace or None
            match = [i for i in running if i["service"] == request.service
                     and (namespace is None or i["namespace"] == namespace)]
        else:
            match = running
        if len(match) == 1:
            await intercepts.stop(match[0]["id"])
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
        namespace = optional_str(obj, "namespace", "uninstall") or server.settings.namespace or None
        await with_progress(
            server,
            f"innerloop: removing the agent behind {service}",
            lambda report: intercepts.uninstall(namespace, service, report),
        )
