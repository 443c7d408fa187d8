"""`attach`: to a debugpy that starts late, to one that never comes, and to a scripted adapter
that sends reverse requests the proxy must not pass on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from innerloop.core.dap_routes import PROXY_CAPABILITIES
from innerloop.core.dap_wire import DapParser, Message, encode
from innerloop.dap.server import DapEndpoint, start_dap_server

from tests.helpers.dap_client import (
    PYTHON,
    DapClient,
    RecordingController,
    http_get,
    marked_line,
)
from tools.net import free_port, port_open
from tools.sample import ECHO_APP
from tools.wait import wait_until

pytestmark = pytest.mark.integration

BREAK_LINE = marked_line(ECHO_APP, "# breakpoint")


@pytest.fixture
def controller() -> RecordingController:
    return RecordingController()


@pytest.fixture
async def endpoint(controller: RecordingController) -> AsyncIterator[DapEndpoint]:
    endpoint = await start_dap_server(lambda: controller)
    yield endpoint
    await endpoint.aclose()


def attach_config(endpoint: DapEndpoint, debugpy_port: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "innerloop",
        "request": "attach",
        "name": "attach",
        "service": "echo",
        "port": 8080,
        "connect": {"host": "127.0.0.1", "port": debugpy_port},
        "innerloopToken": endpoint.new_token(),
        **extra,
    }


async def test_attach_waits_for_a_debugpy_that_starts_late(
    endpoint: DapEndpoint, controller: RecordingController
) -> None:
    debugpy_port, app_port = free_port(), free_port()

    async def start_late() -> asyncio.subprocess.Process:
        await asyncio.sleep(1.5)
        return await asyncio.create_subprocess_exec(
            PYTHON,
            "-m",
            "debugpy",
            "--listen",
            f"127.0.0.1:{debugpy_port}",
            "--wait-for-client",
            str(ECHO_APP),
            env={"PORT": str(app_port), "HOST": "127.0.0.1", "PATH": "/usr/bin:/bin"},
        )

    late = asyncio.create_task(start_late())
    client = await DapClient.tcp(endpoint.host, endpoint.port)
    try:
        await client.initialize()
        began = time.monotonic()
        attached = await client.start(
            "attach",
            attach_config(endpoint, debugpy_port, connectTimeout=30),
            {ECHO_APP: [BREAK_LINE]},
        )
        assert attached["success"], attached
        assert time.monotonic() - began >= 1.5
        assert controller.calls[0][0] == "start"
        await wait_until(lambda: port_open(app_port), what="the debuggee to listen")

        answer = asyncio.create_task(http_get(app_port, "/attached"))
        stopped = await client.event("stopped", reason="breakpoint")
        frame = await client.top_frame_locals(stopped["body"]["threadId"])
        assert frame["path"] == "'/attached'"
        await wait_until(lambda: ("set_paused", True) in controller.calls)
        await client.ok("continue", {"threadId": stopped["body"]["threadId"]})
        assert "path=/attached" in await asyncio.wait_for(answer, 10)
        await wait_until(lambda: ("set_paused", False) in controller.calls)
        await client.ok("disconnect", {"terminateDebuggee": True})
        assert controller.calls[-1] == ("stop", False)
    finally:
        await client.aclose()
        proc = await late
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def test_attach_gives_up_after_connect_timeout(
    endpoint: DapEndpoint, controller: RecordingController
) -> None:
    port = free_port()
    client = await DapClient.tcp(endpoint.host, endpoint.port)
    await client.initialize()
    began = time.monotonic()
    reply = await client.request("attach", attach_config(endpoint, port, connectTimeout=1))
    took = time.monotonic() - began
    assert not reply["success"]
    assert reply["message"].startswith(f"no debugpy at 127.0.0.1:{port} after 1s")
    assert "connectTimeout" in reply["message"]
    assert 0.9 < took < 3
    assert controller.calls == []  # never intercept for a program that is not there
    await client.aclose()


class ScriptedAdapter:
    """A DAP adapter that, when asked to attach, sends the client two reverse requests: one the
    proxy must refuse for it and one it must carry both ways."""

    def __init__(self) -> None:
        self.received: list[Message] = []
        self._seq = 0
        self.denied_seq = 0
        self.allowed_seq = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def aclose(self) -> None:
        assert self._server is not None
        self._server.close()

    def _send(self, writer: asyncio.StreamWriter, msg: Message) -> int:
        self._seq += 1
        writer.write(encode({**msg, "seq": self._seq}))
        return self._seq

    def _answer(self, writer: asyncio.StreamWriter, request: Message, body: Message) -> None:
        self._send(
            writer,
            {
                "type": "response",
                "request_seq": request["seq"],
                "command": request["command"],
                "success": True,
                "body": body,
            },
        )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = DapParser()
        attach: Message = {}
        self._send(writer, {"type": "event", "event": "output", "body": {"output": "hello\n"}})
        while data := await reader.read(65536):
            for msg in parser.feed(data):
                self.received.append(msg)
                if msg["type"] != "request":
                    continue
                if msg["command"] == "initialize":
                    self._answer(writer, msg, PROXY_CAPABILITIES)
                elif msg["command"] == "attach":
                    self.denied_seq = self._send(
                        writer,
                        {"type": "request", "command": "evaluateInClient", "arguments": {}},
                    )
                    self.allowed_seq = self._send(
                        writer,
                        {
                            "type": "request",
                            "command": "runInTerminal",
                            "arguments": {"args": ["true"], "cwd": "/"},
                        },
                    )
                    self._send(writer, {"type": "event", "event": "initialized"})
                    attach = msg  # answered after configurationDone, as debugpy does
                elif msg["command"] == "configurationDone":
                    self._answer(writer, msg, {})
                    self._answer(writer, attach, {})
                else:
                    self._answer(writer, msg, {})
        writer.close()


async def test_reverse_requests_outside_the_allow_list_are_refused(
    endpoint: DapEndpoint, controller: RecordingController
) -> None:
    adapter = ScriptedAdapter()
    adapter_port = await adapter.start()
    client = await DapClient.tcp(endpoint.host, endpoint.port)

    async def run_in_terminal(request: Message) -> Message:
        return {"processId": 4242}

    client.handlers["runInTerminal"] = run_in_terminal
    await client.initialize(supportsRunInTerminalRequest=True)
    assert (await client.start("attach", attach_config(endpoint, adapter_port)))["success"]

    def responses() -> dict[int, Message]:
        return {m["request_seq"]: m for m in adapter.received if m["type"] == "response"}

    await wait_until(lambda: len(responses()) == 2, what="both reverse requests answered")
    denied, allowed = responses()[adapter.denied_seq], responses()[adapter.allowed_seq]
    assert denied["success"] is False and denied["command"] == "evaluateInClient"
    assert "does not pass 'evaluateInClient'" in denied["message"]
    assert allowed["success"] is True and allowed["body"] == {"processId": 4242}
    assert [r["command"] for r in client.reverse_requests] == ["runInTerminal"]
    assert client.reverse_requests[0]["arguments"] == {"args": ["true"], "cwd": "/"}

    await client.ok("disconnect")
    # Both sides see their own gap-free numbering although the proxy spoke on its own.
    assert [m["seq"] for m in client.received] == list(range(1, len(client.received) + 1))
    assert [m["seq"] for m in adapter.received] == list(range(1, len(adapter.received) + 1))
    # The adapter got the client's requests in order, with its own names for them.
    commands = [m["command"] for m in adapter.received if m["type"] == "request"]
    assert commands == ["initialize", "attach", "configurationDone", "disconnect"]
    attach = next(m for m in adapter.received if m.get("command") == "attach")
    assert attach["arguments"]["type"] == "python"
    assert not {"service", "port", "innerloopToken"} & set(attach["arguments"])
    await client.aclose()
    await adapter.aclose()
