"""What a tunnel client raises."""

from __future__ import annotations

from innerloop.core.errors import Category, InnerloopError
from innerloop.core.filters import EVERYTHING, Mode, RequestFilter


class TunnelError(InnerloopError):
    """The tunnel to an agent failed or the agent refused a request; the message says why."""

    category = Category.CLUSTER


class InterceptConflict(TunnelError):
    """Another client's claim may take the same requests: two intercepts may not steal the
    same traffic. `holder_filter` and `holder_mode` say what the holder claimed."""

    category = Category.USER

    def __init__(self, route_port: int, holder: str, holder_filter: RequestFilter = EVERYTHING,
                 holder_mode: Mode = Mode.ROUTE) -> None:
        self.route_port = route_port
        self.holder = holder
        self.holder_filter = holder_filter
        self.holder_mode = holder_mode
        super().__init__(f"port {route_port} is already {self.taken_by()}; {self.advice_text()}")

    def taken_by(self) -> str:
        """`intercepted by alice@laptop:1 for x-dev=alice`."""
        verb = "intercepted" if self.holder_mode is Mode.ROUTE else "mirrored"
        return f"{verb} by {self.holder} for {self.holder_filter.describe()}"

    def advice_text(self) -> str:
        if self.holder_filter.is_empty:
            return "ask them to leave, or wait until their intercept ends"
        return ("use a filter that cannot match theirs (e.g. another --header value), "
                "or ask them to leave")


class DialFailed(TunnelError):
    """The agent could not connect to ``host:port`` from its pod; ``reason`` is its word for it
    ("connection refused", "no such host", "timed out after 10 s")."""

    def __init__(self, host: str, port: int, agent: str, reason: str) -> None:
        super().__init__(f"{agent} cannot reach {host}:{port}: {reason}")
        self.host = host
        self.port = port
        self.reason = reason
