"""debugpy subprocesses: a child process arrives as its own debug session (startDebugging), is
carried through the root session's relay, and its breakpoint pauses the root's intercept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from innerloop.dap.server import start_dap_server

from tests.helpers.dap_client import (
    PYTHON,
    REPO,
    DapClient,
    Message,
    RecordingController,
    http_get,
    marked_line,
    read_calls,
)
from tools.net import free_port, port_open
from tools.sample import ECHO_APP
from tools.wait import wait_until

pytestmark = pytest.mark.integration

BREAK_LINE = marked_line(ECHO_APP, "# breakpoint")
SPAWNER = Path(__file__).parent / "data" / "dap_spawner.py"


class Host:
    """Where debug sessions run: the in-process TCP server, or one `innerloop dap` per session."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[DapClient]],
        calls: Callable[[], list[tuple[str, Any]]],
        token: Callable[[], str | None],
    ):
        self.connect = connect
        self.calls = calls
        self.token = token


@pytest.fixture(params=["tcp", "stdio"])
async def host(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Host]:
    if request.param == "tcp":
        controller = RecordingController()
        endpoint = await start_dap_server(lambda: controller)

        async def tcp() -> DapClient:
            return await DapClient.tcp(endpoint.host, endpoint.port)

        yield Host(tcp, lambda: controller.calls, endpoint.new_token)
        await endpoint.aclose()
    else:
        log = tmp_path / "controller.jsonl"

        async def stdio() -> DapClient:
            return await DapClient.stdio(
                PYTHON, "-m", "innerloop", "dap",
                "--controller", "tests.helpers.dap_client:recording_factory",
                env={"INNERLOOP_TEST_CONTROLLER_LOG": str(log)},
            )  # fmt: skip

        yield Host(stdio, lambda: read_calls(log), lambda: None)


async def test_a_stopped_subprocess_pauses_the_intercept(host: Host) -> None:
    port = free_port()
    root = await host.connect()
    children: list[DapClient] = []
    announced: list[Message] = []
    child_sessions: list[asyncio.Task[Message]] = []

    async def start_debugging(request: Message) -> Message:
        """What an editor does: start a new session of the announced configuration."""
        announced.append(request["arguments"])

        async def run_child() -> Message:
            child = await host.connect()
            children.append(child)
            await child.initialize(supportsStartDebuggingRequest=True)
            config = request["arguments"]["configuration"]
            return await child.start(
                request["arguments"]["request"], config, {ECHO_APP: [BREAK_LINE]}
            )

        child_sessions.append(asyncio.create_task(run_child()))
        return {}

    root.handlers["startDebugging"] = start_debugging
    try:
        await root.initialize(supportsStartDebuggingRequest=True)
        token = host.token()
        launched = await root.start(
            "launch",
            {
                "type": "innerloop",
                "request": "launch",
                "name": "spawner",
                "service": "echo",
                "port": port,
                "program": str(SPAWNER),
                "cwd": str(REPO),
                "subProcess": True,
                "env": {"PORT": str(port), "HOST": "127.0.0.1"},
                **({"innerloopToken": token} if token else {}),
            },
        )
        assert launched["success"], launched

        await wait_until(lambda: child_sessions, what="debugpy to announce the child")
        attached = await asyncio.wait_for(child_sessions[0], 60)
        assert attached["success"], attached
        config = announced[0]["configuration"]
        assert announced[0]["request"] == "attach"
        assert config["type"] == "innerloop" and isinstance(config["subProcessId"], int)
        assert ("innerloopToken" in config) == (token is not None)
        await wait_until(lambda: port_open(port), what="the child to listen")

        answer = asyncio.create_task(http_get(port, "/in-child"))
        child = children[0]
        stopped = await child.event("stopped", reason="breakpoint")
        frame = await child.top_frame_locals(stopped["body"]["threadId"])
        assert frame["path"] == "'/in-child'"
        await wait_until(lambda: ("set_paused", True) in host.calls(), what="the root to pause")
        assert not [e for e in root.events if e["event"] == "stopped"]

        await child.ok("continue", {"threadId": stopped["body"]["threadId"]})
        assert "path=/in-child" in await asyncio.wait_for(answer, 10)
        await wait_until(lambda: ("set_paused", False) in host.calls(), what="the root to resume")

        await root.ok("disconnect", {"terminateDebuggee": True})
        await child.event("terminated")
        assert host.calls()[-1] == ("stop", False)
        assert [c[0] for c in host.calls()] == ["start", "set_paused", "set_paused", "stop"]
        await wait_until(lambda: not port_open(port), what="the child to exit")
    finally:
        for task in child_sessions:
            task.cancel()
        for client in [root, *children]:
            await client.aclose()
