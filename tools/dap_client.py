"""A small DAP client, framing messages itself (not with innerloop's codec, so a codec bug
cannot hide on both ends): the tests drive the debug adapter with it, and so does the demo's
debug act (tools/demo_debug.py). With it, the echo sample's `innerloop` launch configuration and
the graceful end of an `innerloop dap` process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from tools.sample import ECHO_APP

Message = dict[str, Any]
ReverseHandler = Callable[[Message], Awaitable[Message | None]]
"""Answers a reverse request: a response body, or None to refuse it."""

REPO = Path(__file__).resolve().parents[1]


def echo_launch(namespace: str, port: int) -> Message:
    """The `innerloop` launch configuration of the echo sample for the echo Service. The
    workload's env comes along; these win over it. POD_NAME (downward API: the pod's name) is
    unset, so the local process answers pod=local."""
    return {
        "type": "innerloop",
        "request": "launch",
        "name": "echo (innerloop)",
        "service": "echo",
        "namespace": namespace,
        "servicePort": 80,
        "port": port,
        "program": str(ECHO_APP),
        "cwd": str(REPO),
        "env": {"PORT": str(port), "HOST": "127.0.0.1", "POD_NAME": None},
    }


async def end_adapter(proc: asyncio.subprocess.Process) -> None:
    """Closing stdin ends an `innerloop dap` session the graceful way (intercept left, debuggee
    stopped); its process group is killed if it has not exited 30 s later."""
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        await asyncio.wait_for(proc.wait(), 30)
    except asyncio.TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


class DapClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._seq = 0
        self._responses: dict[int, asyncio.Future[Message]] = {}
        self.received: list[Message] = []
        self.events: list[Message] = []
        self.reverse_requests: list[Message] = []
        self.handlers: dict[str, ReverseHandler] = {}
        self.process: asyncio.subprocess.Process | None = None
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._read_loop())

    @classmethod
    async def tcp(cls, host: str, port: int) -> DapClient:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    @classmethod
    async def stdio(cls, *argv: str, env: Mapping[str, str] | None = None) -> DapClient:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=REPO,
            env={**os.environ, **(env or {})},
        )
        assert proc.stdin is not None and proc.stdout is not None
        client = cls(proc.stdout, proc.stdin)
        client.process = proc
        return client

    # ------------------------------------------------------------------ wire

    def send(self, msg: Message) -> None:
        body = json.dumps(msg).encode()
        self._writer.write(f"Content-Length: {len(body)}\r\n\r\n".encode() + body)

    async def _read_one(self) -> Message | None:
        length = None
        while True:
            line = await self._reader.readline()
            if not line:
                return None
            if line == b"\r\n":
                break
            name, _, value = line.decode("ascii").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        assert length is not None, "message without Content-Length"
        return json.loads(await self._reader.readexactly(length))

    async def _read_loop(self) -> None:
        try:
            while (msg := await self._read_one()) is not None:
                self.received.append(msg)
                if msg["type"] == "response":
                    fut = self._responses.pop(msg["request_seq"])
                    if not fut.done():
                        fut.set_result(msg)
                elif msg["type"] == "event":
                    self.events.append(msg)
                else:
                    self.reverse_requests.append(msg)
                    asyncio.create_task(self._answer(msg))
                async with self._changed:
                    self._changed.notify_all()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            for fut in self._responses.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("adapter closed the connection"))
            async with self._changed:
                self._changed.notify_all()

    async def _answer(self, request: Message) -> None:
        handler = self.handlers.get(request["command"])
        body = await handler(request) if handler else None
        self._seq += 1
        reply: Message = {
            "type": "response",
            "seq": self._seq,
            "request_seq": request["seq"],
            "command": request["command"],
            "success": body is not None,
        }
        if body is not None:
            reply["body"] = body
        else:
            reply["message"] = "not supported by the test client"
        self.send(reply)

    # ------------------------------------------------------------------ API

    def request_nowait(
        self, command: str, arguments: Message | None = None
    ) -> asyncio.Future[Message]:
        self._seq += 1
        msg: Message = {"type": "request", "seq": self._seq, "command": command}
        if arguments is not None:
            msg["arguments"] = arguments
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._responses[self._seq] = fut
        self.send(msg)
        return fut

    async def request(
        self, command: str, arguments: Message | None = None, timeout: float = 30
    ) -> Message:
        return await asyncio.wait_for(self.request_nowait(command, arguments), timeout)

    async def ok(
        self, command: str, arguments: Message | None = None, timeout: float = 30
    ) -> Message:
        """Request, assert success, return the body."""
        reply = await self.request(command, arguments, timeout)
        assert reply["success"], f"{command} failed: {reply.get('message')}"
        return reply.get("body") or {}

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 30) -> Any:
        async def until() -> Any:
            async with self._changed:
                while not (result := predicate()):
                    if self._task.done():
                        raise ConnectionError("adapter closed the connection")
                    await self._changed.wait()
                return result

        return await asyncio.wait_for(until(), timeout)

    async def event(self, name: str, timeout: float = 30, after: int = 0, **body: Any) -> Message:
        """The first `name` event (from index `after` in self.events) whose body has `body`."""

        def match() -> Message | None:
            for e in self.events[after:]:
                if e["event"] == name and all(
                    e.get("body", {}).get(k) == v for k, v in body.items()
                ):
                    return e
            return None

        return await self.wait_for(match, timeout)

    def console(self) -> list[str]:
        """What innerloop told the user in the debug console."""
        return [
            e["body"]["output"].removeprefix("innerloop: ").rstrip("\n")
            for e in self.events
            if e["event"] == "output"
            and e["body"].get("category") == "console"
            and e["body"]["output"].startswith("innerloop: ")
        ]

    async def closed(self, timeout: float = 15) -> None:
        await asyncio.wait_for(asyncio.shield(self._task), timeout)

    async def aclose(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._task, 5)
        self._task.cancel()
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()

    # ------------------------------------------------------------------ a debug session

    async def initialize(self, **capabilities: Any) -> Message:
        return await self.ok(
            "initialize",
            {
                "clientID": "innerloop-tests",
                "adapterID": "innerloop",
                "linesStartAt1": True,
                "columnsStartAt1": True,
                "pathFormat": "path",
                **capabilities,
            },
        )

    async def start(
        self, command: str, config: Message, breakpoints: Mapping[Path, list[int]] | None = None
    ) -> Message:
        """launch/attach → initialized → setBreakpoints → configurationDone → its response."""
        started = self.request_nowait(command, config)
        initialized = asyncio.ensure_future(self.event("initialized"))
        done, _ = await asyncio.wait(
            {started, initialized}, return_when=asyncio.FIRST_COMPLETED, timeout=60
        )
        if started in done:  # failed before configuration
            initialized.cancel()
            return started.result()
        for path, lines in (breakpoints or {}).items():
            body = await self.ok(
                "setBreakpoints",
                {"source": {"path": str(path)}, "breakpoints": [{"line": n} for n in lines]},
            )
            assert all(b["verified"] for b in body["breakpoints"]), body
        await self.ok("configurationDone")
        return await asyncio.wait_for(started, 60)

    async def top_frame_locals(self, thread_id: int) -> dict[str, str]:
        frames = (await self.ok("stackTrace", {"threadId": thread_id, "levels": 1}))["stackFrames"]
        scopes = (await self.ok("scopes", {"frameId": frames[0]["id"]}))["scopes"]
        ref = next(s for s in scopes if s["name"] == "Locals")["variablesReference"]
        variables = (await self.ok("variables", {"variablesReference": ref}))["variables"]
        return {v["name"]: v["value"] for v in variables} | {"__line__": str(frames[0]["line"])}


def marked_line(path: Path, marker: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.rstrip().endswith(marker):
            return number
    raise AssertionError(f"no line ending in {marker!r} in {path}")
