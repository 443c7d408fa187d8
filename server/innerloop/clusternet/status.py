"""What each running cluster network maps, for `innerloop status` in another shell.

One 0600 JSON file per network next to its control socket (the 0700 `innerloop-net` runtime
dir), rewritten when a forwarder or a connection comes or goes; a file whose process is gone is
stale and removed when read.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from innerloop.paths import pid_alive, runtime_dir, write_private

STATUS_DIR = "innerloop-net"  # the control sockets' directory (clusternet.control)


@dataclass(frozen=True)
class MappedPort:
    name: str
    """`svc.ns:port`."""
    local: str
    """`127.0.0.1:port`: the forwarder."""


@dataclass(frozen=True)
class LiveConnection:
    name: str
    client: str
    """The local process's end (`127.0.0.1:port`)."""
    via: str
    """The agent, or the pod a port-forward goes to."""
    since: float


@dataclass(frozen=True)
class NetworkStatus:
    pid: int
    namespace: str
    via: str
    """How connections leave: "the agents of deployment/x" or "port-forwards"."""
    started: float
    mapped: list[MappedPort] = field(default_factory=list)
    connections: list[LiveConnection] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NetworkStatus:
        return cls(
            pid=int(data["pid"]), namespace=str(data["namespace"]), via=str(data["via"]),
            started=float(data["started"]),
            mapped=[MappedPort(**m) for m in data.get("mapped", [])],
            connections=[LiveConnection(**c) for c in data.get("connections", [])],
        )


def status_path(name: str) -> Path:
    return runtime_dir(STATUS_DIR) / f"{name}.json"


def write_status(path: Path, status: NetworkStatus) -> None:
    write_private(path, json.dumps(asdict(status)))


def statuses() -> list[NetworkStatus]:
    found = []
    for path in sorted(runtime_dir(STATUS_DIR).glob("*.json")):
        try:
            status = NetworkStatus.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError, KeyError):
            continue
        if pid_alive(status.pid):
            found.append(status)
        else:
            path.unlink(missing_ok=True)
    return found


def describe(status: NetworkStatus, now: float | None = None) -> list[str]:
    """`innerloop status` lines for one network."""
    now = time.time() if now is None else now
    head = (f"cluster network of pid {status.pid} (namespace {status.namespace}, "
            f"connections leave through {status.via}): {len(status.mapped)} mapped, "
            f"{len(status.connections)} open")
    lines = [head]
    lines += [f"  {m.name} → {m.local}" for m in status.mapped]
    lines += [f"  {c.client} → {c.name} via {c.via}, {now - c.since:.0f} s"
              for c in status.connections]
    return lines
