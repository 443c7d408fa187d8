"""The language server's feature layer against an in-memory intercept service.

Run as a script, this module is the server under test: the real `create_server` with
`MemoryIntercepts` injected through `Deps`, over stdio, hosting the real debug adapter proxy
(innerloop.dap) whose intercepts land in the same memory. The tests drive it with pytest-lsp and
check the wire: status notifications, $/progress with cancel, errors as one line. The VS Code
UI tests (tests/vscode) run it as the extension's server.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from innerloop.core.errors import UserError
from innerloop.core.filters import filter_to_json
from innerloop.core.report import Report
from innerloop.core.request import InterceptRequest
from innerloop.lsp.dap_host import HostedDebugAdapter
from innerloop.lsp.deps import (
    Deps,
    InterceptInfo,
    InterceptStateName,
    StatusInfo,
    TargetList,
)
from innerloop.lsp.settings import Settings
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

log = logging.getLogger("innerloop.test.memory")


class MemoryIntercepts:
    """Keeps intercepts in a dict; `start` of service "slow" waits until cancelled."""

    def __init__(self) -> None:
        self.intercepts: dict[str, InterceptInfo] = {}
        self.listeners: list[Callable[[StatusInfo], None]] = []
        self.settings = Settings()

    def configure(self, settings: Settings) -> None:
        self.settings = settings

    async def status(self) -> StatusInfo:
        return {"intercepts": list(self.intercepts.values())}

    def _changed(self) -> None:
        status: StatusInfo = {"intercepts": list(self.intercepts.values())}
        for listener in list(self.listeners):
            listener(status)

    async def list_targets(self, namespace: str | None) -> TargetList:
        return {
            "namespaces": ["default", "shop"],
            "namespace": namespace,
            "services": [
                {
                    "namespace": namespace or "default",
                    "name": "orders",
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                    "hasAgent": False,
                }
            ],
        }

    def set_state(self, intercept_id: str, state: InterceptStateName) -> None:
        self.intercepts[intercept_id]["state"] = state
        self._changed()

    async def start(self, request: InterceptRequest, progress: Report) -> InterceptInfo:
        progress(f"resolving {request.service}")
        if request.service == "slow":
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                log.info("start of slow cancelled: undone")
                raise
        namespace = request.namespace or "default"
        info: InterceptInfo = {
            "id": f"{namespace}/{request.service}",
            "namespace": namespace,
            "service": request.service,
            "servicePort": request.port.service_port or 80,
            "localPort": request.port.local_port or 8080,
            "state": "active",
            "replicas": 2,
            "envFile": None,
            "message": f"whilePaused={request.while_paused.value} image={self.settings.agentImage or 'default'}",
            "scope": request.scope(),
            "mode": request.mode.value,
            "match": filter_to_json(request.filter),
        }
        self.intercepts[info["id"]] = info
        self._changed()
        return info

    async def stop(self, intercept_id: str) -> None:
        if self.intercepts.pop(intercept_id, None) is None:
            raise UserError(f"there is no intercept {intercept_id!r}")
        self._changed()

    async def uninstall(self, namespace: str | None, service: str, progress: Report) -> None:
        progress(f"removing the agent behind {namespace}/{service}")

    def subscribe(self, callback: Callable[[StatusInfo], None]) -> Callable[[], None]:
        self.listeners.append(callback)
        return lambda: self.listeners.remove(callback)

    async def aclose(self) -> None:
        log.info("memory intercept service closed with %d intercepts", len(self.intercepts))


class MemoryHandle:
    """A debug session's intercept: pausing shows as state "paused"; the env is fixed."""

    def __init__(self, memory: MemoryIntercepts, intercept_id: str) -> None:
        self.memory = memory
        self.id = intercept_id
        self.env = {"GREETING": "hello from the workload"}

    async def set_paused(self, paused: bool) -> None:
        self.memory.set_state(self.id, "paused" if paused else "active")

    async def stop(self, keep: bool) -> None:
        if keep:
            self.memory.set_state(self.id, "active")
        else:
            await self.memory.stop(self.id)


class MemoryController:
    """What the debug adapter calls to intercept: the memory manager's start."""

    def __init__(self, memory: MemoryIntercepts) -> None:
        self.memory = memory

    async def start(self, request: InterceptRequest, report: Report) -> MemoryHandle:
        info = await self.memory.start(request, report)
        return MemoryHandle(self.memory, info["id"])


pytestmark = pytest.mark.integration


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, str(Path(__file__))]))
async def client(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            initialization_options={"namespace": "shop", "agentImage": "local/python:3.12"},
        )
    )
    yield
    await lsp_client.shutdown_session()


async def run(client: LanguageClient, command: str, *args: Any) -> Any:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=command, arguments=list(args))
    )


def progress_of(client: LanguageClient, title_part: str) -> list[Any]:
    for reports in client.progress_reports.values():
        if (
            reports
            and isinstance(reports[0], types.WorkDoneProgressBegin)
            and title_part in reports[0].title
        ):
            return reports
    return []


async def test_start_reports_progress_then_pushes_status(client: LanguageClient) -> None:
    notification = asyncio.ensure_future(client.wait_for_notification("innerloop/status"))
    info = await run(
        client,
        "innerloop.startIntercept",
        {"service": "orders", "servicePort": "http", "localPort": 9000},
    )
    # The namespace setting from initializationOptions fills the missing namespace.
    assert info["id"] == "shop/orders"
    assert (info["servicePort"], info["localPort"], info["state"]) == ("http", 9000, "active")
    assert info["message"] == "whilePaused=cluster image=local/python:3.12"

    pushed = await asyncio.wait_for(notification, 5)
    assert [i.id for i in pushed.intercepts] == ["shop/orders"]
    assert pushed.version and pushed.python == sys.executable

    reports = progress_of(client, "intercepting orders")
    assert [type(r).__name__ for r in reports] == [
        "WorkDoneProgressBegin",
        "WorkDoneProgressReport",
        "WorkDoneProgressEnd",
    ]
    assert reports[0].cancellable is True
    assert reports[1].message == "resolving orders"
    assert reports[2].message == "done"

    status = await run(client, "innerloop.status")
    assert [i["id"] for i in status["intercepts"]] == ["shop/orders"]

    stopped = asyncio.ensure_future(client.wait_for_notification("innerloop/status"))
    assert await run(client, "innerloop.stopIntercept", {"id": "shop/orders"}) is None
    assert list((await asyncio.wait_for(stopped, 5)).intercepts) == []


async def test_cancelling_the_progress_cancels_the_start(client: LanguageClient) -> None:
    # Imported here: run as a script (the server under test) this module sees no repo root.
    from tools.wait import wait_until

    request = asyncio.ensure_future(run(client, "innerloop.startIntercept", {"service": "slow"}))
    await wait_until(
        lambda: len(progress_of(client, "intercepting slow")) >= 2, "the start to report progress"
    )
    token = next(
        t
        for t, r in client.progress_reports.items()
        if r is progress_of(client, "intercepting slow")
    )
    client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))

    with pytest.raises(JsonRpcException) as failure:
        await asyncio.wait_for(request, 5)
    assert "cancel" in failure.value.message.lower()
    await wait_until(
        lambda: any("start of slow cancelled: undone" in m.message for m in client.log_messages),
        "cleanup",
    )
    await wait_until(
        lambda: progress_of(client, "intercepting slow")[-1].kind == "end", "progress end"
    )
    assert progress_of(client, "intercepting slow")[-1].message == "cancelled"
    assert (await run(client, "innerloop.status"))["intercepts"] == []


@pytest.mark.parametrize(
    ("command", "argument", "message"),
    [
        ("innerloop.startIntercept", {"namespace": "shop"}, 'startIntercept needs "service": the Kubernetes Service to intercept'),
        (
            "innerloop.startIntercept",
            {"service": "orders", "localPort": 70000},
            'startIntercept: "localPort" must be a port number (1-65535), got 70000',
        ),
        (
            "innerloop.startIntercept",
            {"service": "orders", "whilePaused": "drop"},
            'startIntercept: "whilePaused" must be "cluster" or "hold", got \'drop\'',
        ),
        ("innerloop.stopIntercept", {"id": "shop/nothing"}, "there is no intercept 'shop/nothing'"),
        ("innerloop.listTargets", "shop", "listTargets takes one object argument, got ['shop']"),
    ],
)
async def test_user_errors_come_back_as_one_line(
    client: LanguageClient, command: str, argument: Any, message: str
) -> None:
    with pytest.raises(JsonRpcException) as failure:
        await run(client, command, argument)
    assert failure.value.code == -32803
    assert failure.value.message == message
    assert failure.value.data == {"category": "user"}


async def test_list_targets_uses_the_namespace_setting_by_default(client: LanguageClient) -> None:
    targets = await run(client, "innerloop.listTargets", {})
    assert targets["namespace"] == "shop"
    assert targets["services"][0]["name"] == "orders"
    assert (await run(client, "innerloop.listTargets", {"namespace": "default"}))[
        "namespace"
    ] == "default"


async def test_uninstall_reports_progress(client: LanguageClient) -> None:
    assert await run(client, "innerloop.uninstall", {"service": "orders"}) is None
    reports = progress_of(client, "removing the agent behind orders")
    assert [getattr(r, "message", None) for r in reports[1:]] == [
        "removing the agent behind shop/orders",
        "done",
    ]


async def test_debug_adapter_endpoint_hands_out_one_token_per_session(
    client: LanguageClient,
) -> None:
    first = await run(client, "innerloop.debugAdapterEndpoint")
    second = await run(client, "innerloop.debugAdapterEndpoint")
    assert first["host"] == "127.0.0.1" and first["port"] == second["port"]
    assert len({first["token"], second["token"]}) == 2


if __name__ == "__main__":
    from innerloop.lsp.setup import serve_stdio

    memory = MemoryIntercepts()
    serve_stdio(
        Deps(intercepts=memory, debug_adapter=HostedDebugAdapter(lambda: MemoryController(memory)))
    )


async def test_toggle_starts_then_stops_the_named_intercept(client: LanguageClient) -> None:
    started = await run(client, "innerloop.toggleIntercept", {"service": "orders"})
    assert started["service"] == "orders" and started["state"] == "active"
    assert [i["id"] for i in (await run(client, "innerloop.status"))["intercepts"]] == [
        started["id"]
    ]
    assert await run(client, "innerloop.toggleIntercept", {"service": "orders"}) is None
    assert (await run(client, "innerloop.status"))["intercepts"] == []


async def test_toggle_without_arguments_stops_the_only_intercept(client: LanguageClient) -> None:
    with pytest.raises(JsonRpcException) as failure:
        await run(client, "innerloop.toggleIntercept")
    assert failure.value.message.startswith("toggleIntercept: no intercept runs")
    await run(client, "innerloop.startIntercept", {"service": "orders"})
    assert await run(client, "innerloop.toggleIntercept") is None
    assert (await run(client, "innerloop.status"))["intercepts"] == []


async def test_start_takes_match_and_mode_and_status_shows_the_scope(
    client: LanguageClient,
) -> None:
    """`match`/`mode` are validated by core and passed through; the intercept (the answer, the
    pushed status and `innerloop.status`) says which requests it takes."""
    notification = asyncio.ensure_future(client.wait_for_notification("innerloop/status"))
    info = await run(client, "innerloop.startIntercept", {
        "service": "orders", "localPort": 9000, "mode": "mirror",
        "match": {"headers": {"X-Innerloop-User": "me"}, "pathPrefix": "/api"},
    })
    assert (info["scope"], info["mode"]) == ("mirror: x-innerloop-user=me path-prefix=/api",
                                             "mirror")
    assert info["match"] == {"headers": {"x-innerloop-user": "me"}, "pathPrefix": "/api"}
    pushed = await asyncio.wait_for(notification, 5)
    assert [(i.scope, i.mode) for i in pushed.intercepts] == [(info["scope"], "mirror")]
    [shown] = (await run(client, "innerloop.status"))["intercepts"]
    assert (shown["scope"], shown["mode"], shown["match"]) == (
        info["scope"], "mirror", info["match"])
    await run(client, "innerloop.stopIntercept", {"id": info["id"]})

    whole = await run(client, "innerloop.startIntercept", {"service": "orders"})
    assert (whole["scope"], whole["mode"], whole["match"]) == ("", "route", {})
    await run(client, "innerloop.stopIntercept", {"id": whole["id"]})


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"mode": "copy"}, 'startIntercept: "mode"'),
        ({"match": {"headers": {"x-dev": 1}}}, 'startIntercept: "match": "headers"'),
        ({"match": {"pathPrefix": "api"}}, "bad path prefix 'api'"),
    ],
)
async def test_a_bad_match_or_mode_is_refused_in_one_line(
    client: LanguageClient, extra: dict[str, Any], error: str
) -> None:
    with pytest.raises(JsonRpcException) as failure:
        await run(client, "innerloop.startIntercept", {"service": "orders", **extra})
    assert error in failure.value.message
    assert (await run(client, "innerloop.status"))["intercepts"] == []
