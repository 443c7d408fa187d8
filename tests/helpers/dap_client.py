"""Test side of the debug adapter: a recording intercept controller and process helpers; the
DAP client itself is tools/dap_client.py (shared with the demo), re-exported here for the tests.

The controller is a real implementation of innerloop's narrow controller protocol that records
its calls (in memory, and to a JSON-lines file when it runs in another process).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from innerloop.core.errors import ClusterError, UserError
from innerloop.core.request import InterceptRequest
from innerloop.dap.controller import Report

from tools.dap_client import REPO, DapClient, Message, echo_launch, end_adapter, marked_line

__all__ = [  # the client (tools.dap_client) and what this module adds for the tests
    "PYTHON",
    "REPO",
    "DapClient",
    "Message",
    "RecordingController",
    "RecordingHandle",
    "children",
    "debugpy_adapters",
    "echo_launch",
    "end_adapter",
    "http_get",
    "marked_line",
    "read_calls",
    "recording_factory",
]


# ---------------------------------------------------------------------------------- controller


@dataclass
class RecordingHandle:
    env: dict[str, str]
    record: Callable[[str, Any], None]
    failing: set[str]

    async def set_paused(self, paused: bool) -> None:
        self.record("set_paused", paused)
        if "set_paused" in self.failing:
            raise ClusterError("the agent did not answer")

    async def stop(self, keep: bool) -> None:
        self.record("stop", keep)
        if "stop" in self.failing:
            raise RuntimeError("tunnel already closed")


@dataclass
class RecordingController:
    """Returns `env` as the workload's environment and records every call."""

    env: dict[str, str] = field(default_factory=dict)
    fail: str | None = None
    failing: set[str] = field(default_factory=set)
    """Handle calls that raise after being recorded: "set_paused", "stop"."""
    start_delay: float = 0.0
    log_path: Path | None = None
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def record(self, name: str, arg: Any) -> None:
        self.calls.append((name, arg))
        if self.log_path is not None:
            with self.log_path.open("a") as f:
                f.write(json.dumps([name, arg]) + "\n")

    async def start(self, request: InterceptRequest, report: Report) -> RecordingHandle:
        self.record("start", {
            "service": request.service,
            "namespace": request.namespace,
            "service_port": request.port.service_port,
            "port": request.port.local_port,
            "while_paused": request.while_paused.value,
        })
        try:
            await asyncio.sleep(self.start_delay)
        except asyncio.CancelledError:
            self.record("start_cancelled", None)
            raise
        report("recording controller: intercept faked")
        if self.fail is not None:
            raise UserError(self.fail)
        return RecordingHandle(dict(self.env), self.record, self.failing)


def recording_factory() -> RecordingController:
    """Factory for `innerloop dap --controller tests.helpers.dap_client:recording_factory`,
    configured by INNERLOOP_TEST_CONTROLLER_LOG and INNERLOOP_TEST_WORKLOAD_ENV (JSON)."""
    return RecordingController(
        env=json.loads(os.environ.get("INNERLOOP_TEST_WORKLOAD_ENV", "{}")),
        log_path=Path(os.environ["INNERLOOP_TEST_CONTROLLER_LOG"]),
    )


def read_calls(path: Path) -> list[tuple[str, Any]]:
    if not path.exists():
        return []
    return [tuple(json.loads(line)) for line in path.read_text().splitlines()]  # type: ignore[misc]


# ---------------------------------------------------------------------------------- processes


async def http_get(port: int, path: str, timeout: float = 30) -> str:
    def get() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.read().decode()

    return await asyncio.to_thread(get)


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live children of `pid`, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if (
            fields.get("PPid", "").strip() == str(pid)
            and fields.get("State", "").strip()[:1] != "Z"
        ):
            found.append((int(entry.name), cmdline))
    return found


def debugpy_adapters(pid: int) -> list[int]:
    return [p for p, cmd in children(pid) if "debugpy.adapter" in cmd]


PYTHON = sys.executable
