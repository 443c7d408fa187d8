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


def registry_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "innerloop"
    )
    path = Path(base) / "innerloop-sessions"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


@dataclass(frozen=True)
class Entry:
    namespace: str
    service: str
    service_port: str
    local_port: int
    pid: int
    holder: str
    started: float

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
    path = _path(entry.namespace, entry.service)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(entry), f)
    tmp.replace(path)


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
