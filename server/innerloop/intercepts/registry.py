"""Which local process holds which intercept, so `innerloop leave|status` from another shell works.

One small JSON file per intercept under the user's runtime dir (0700); a file whose process is
gone is stale and ignored (the agents already dropped that client's routes by themselves).
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from innerloop.paths import runtime_dir, write_private


def registry_dir() -> Path:
    return runtime_dir("innerloop-intercepts")


@dataclass(frozen=True)
class Entry:
    namespace: str
    service: str
    service_port: str
    local_port: int
    pid: int
    holder: str
    started: float
    tool: str = "cli"
    """Which program holds it: "cli" leaves on SIGTERM; "editor" and "dap" are stopped there."""

    @property
    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _path(namespace: str, service: str) -> Path:
    return registry_dir() / f"{namespace}__{service}.json"


def record(entry: Entry) -> None:
    write_private(_path(entry.namespace, entry.service), json.dumps(asdict(entry)))


def forget(namespace: str, service: str) -> None:
    _path(namespace, service).unlink(missing_ok=True)


def entries() -> list[Entry]:
    found = []
    for path in sorted(registry_dir().glob("*.json")):
        try:
            entry = Entry(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if entry.alive:
            found.append(entry)
        else:
            path.unlink(missing_ok=True)
    return found


def find(namespace: str, service: str) -> Entry | None:
    for entry in entries():
        if (entry.namespace, entry.service) == (namespace, service):
            return entry
    return None


def ask_to_leave(entry: Entry, timeout: float = 30.0) -> bool:
    """SIGTERM the holder (it leaves cleanly on it) and wait until its record is gone."""
    os.kill(entry.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _path(entry.namespace, entry.service).exists() or not entry.alive:
            return True
        time.sleep(0.1)
    return False
