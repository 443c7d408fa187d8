"""`innerloop dap` over stdio, as nvim-dap or Emacs would run it, driving real debugpy."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.helpers.dap_client import (
    PYTHON,
    REPO,
    DapClient,
    debugpy_adapters,
    http_get,
    marked_line,
    read_calls,
)
from tools.net import free_port, port_open
from tools.sample import ECHO_APP
from tools.wait import wait_until

pytestmark = pytest.mark.integration

BREAK_LINE = marked_line(ECHO_APP, "# breakpoint")
CONTROLLER = "tests.helpers.dap_client:recording_factory"


async def start_stdio_adapter(log: Path, workload_env: dict[str, str]) -> DapClient:
    return await DapClient.stdio(
        PYTHON,
        "-m",
        "innerloop",
        "dap",
        "--controller",
        CONTROLLER,
        env={
            "INNERLOOP_TEST_CONTROLLER_LOG": str(log),
            "INNERLOOP_TEST_WORKLOAD_ENV": json.dumps(workload_env),
        },
    )


async def test_stdio_session_from_launch_to_disconnect(tmp_path: Path) -> None:
    log = tmp_path / "controller.jsonl"
    client = await start_stdio_adapter(log, {"SECRET_VALUE": "s3cret", "CONFIG_VALUE": "w"})
    assert client.process is not None
    port = free_port()
    await client.initialize()
    launched = await client.start(
        "launch",
        {
            "type": "innerloop",
            "request": "launch",
            "name": "echo",
            "service": "echo",
            "port": port,
            "program": str(ECHO_APP),
            "cwd": str(REPO),
            "env": {"PORT": str(port), "HOST": "127.0.0.1", "CONFIG_VALUE": "from-launch"},
        },
        {ECHO_APP: [BREAK_LINE]},
    )
    assert launched["success"], launched
    assert read_calls(log)[0][0] == "start"
    await wait_until(lambda: port_open(port), what="the debuggee to listen")

    answer = asyncio.create_task(http_get(port, "/from-stdio"))
    stopped = await client.event("stopped", reason="breakpoint")
    frame = await client.top_frame_locals(stopped["body"]["threadId"])
    assert frame["path"] == "'/from-stdio'"
    await wait_until(lambda: ("set_paused", True) in read_calls(log))
    await client.ok("continue", {"threadId": stopped["body"]["threadId"]})
    assert "path=/from-stdio secret=s3cret config=from-launch" in await asyncio.wait_for(answer, 10)
    await wait_until(lambda: ("set_paused", False) in read_calls(log))

    assert len(debugpy_adapters(client.process.pid)) == 1
    await client.ok("disconnect", {"terminateDebuggee": True})
    assert read_calls(log)[-1] == ("stop", False)
    assert client.console()[-1] == "left intercept"

    # The client closes the pipe: the adapter process exits, with its debugpy adapter gone.
    pid = client.process.pid
    client.process.stdin.close()  # type: ignore[union-attr]
    assert await asyncio.wait_for(client.process.wait(), 15) == 0
    assert debugpy_adapters(pid) == []
    assert not port_open(port)
    await client.aclose()


async def test_stdio_controller_that_cannot_load_fails_the_launch(tmp_path: Path) -> None:
    client = await DapClient.stdio(
        PYTHON, "-m", "innerloop", "dap", "--controller", "no.such:thing"
    )
    await client.initialize()
    reply = await client.request(
        "launch", {"service": "echo", "port": free_port(), "program": str(ECHO_APP)}
    )
    assert not reply["success"]
    assert reply["message"].startswith("cannot load the intercept controller 'no.such:thing'")
    assert (await client.request("disconnect"))["success"]
    assert client.process is not None
    assert await asyncio.wait_for(client.process.wait(), 15) == 0
    await client.aclose()
