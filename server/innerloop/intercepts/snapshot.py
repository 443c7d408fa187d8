"""What the user sees of one intercept: the CLI's status line and the editor's notification."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from innerloop.core.intercept import Phase


@dataclass
class Snapshot:
    """What the user sees of one intercept (CLI status line, LSP notification)."""

    id: str
    namespace: str
    service: str
    service_port: int | str | None
    local_port: int | None
    phase: Phase
    replicas: int = 0
    connected: int = 0
    message: str | None = None
    env_file: str | None = None
    started: float = field(default_factory=time.time)
    scope: str = ""
    """Which requests: `x-dev=me`, `mirror: all requests`; "" for all of the port's traffic."""
