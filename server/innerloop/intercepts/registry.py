"""Which local process holds which intercept, so `innerloop leave|status` from another shell works.

One small JSON file per intercept and holding process under the user's runtime dir (0700): two
terminals may hold the same Service with different filters. A file whose process is gone is
stale and ignored (the agents already dropped that client's routes by themselves).
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from innerloop.paths import pid_alive, runtime_dir, write_private


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
    scope: str = ""
    """Its filter or mode as `list` shows it (`x-dev=me`); "" for all of the port's traffic."""

    @property
    def alive(self) -> bool:
        return pid_alive(self.pid)


def _path(namespace: str, service: str, pid: int) -> Path:
    return registry_dir() / f"{namespace}__{service}__{pid}.json"


def record(entry: Entry) -> None:
    write_private(_path(entry.namespace, entry.service, entry.pid), json.dumps(asdict(entry)))


def forget(namespace: str, service: str) -> None:
    """This process no longer holds the Service (one intercept of a Service per process)."""
    _path(namespace, service, os.getpid()).unlink(missing_ok=True)


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


def find(namespace: str, service: str) -> list[Entry]:
    """Every process on this machine holding an intercept of the Service."""
    return [e for e in entries() if (e.namespace, e.service) == (namespace, service)]


def ask_to_leave(entry: Entry, timeout: float = 30.0) -> bool:
    """SIGTERM the holder (it leaves cleanly on it) and wait until its record is gone."""
    os.kill(entry.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _path(entry.namespace, entry.service, entry.pid).exists() or not entry.alive:
            return True
        time.sleep(0.1)
    return False
