"""What a tunnel client raises."""

from __future__ import annotations

from innerloop.core.errors import Category, InnerloopError


class TunnelError(InnerloopError):
    """The tunnel to an agent failed or the agent refused a request; the message says why."""

    category = Category.CLUSTER


class InterceptConflict(TunnelError):
    """Another client already holds the route: two intercepts may not steal the same traffic."""

    category = Category.USER

    def __init__(self, route_port: int, holder: str) -> None:
        super().__init__(f"port {route_port} is already intercepted by {holder}; "
                         f"ask them to leave, or wait until their intercept ends")
        self.route_port = route_port
        self.holder = holder


class DialFailed(TunnelError):
    """The agent could not connect to ``host:port`` from its pod; ``reason`` is its word for it
    ("connection refused", "no such host", "timed out after 10 s")."""

    def __init__(self, host: str, port: int, agent: str, reason: str) -> None:
        super().__init__(f"{agent} cannot reach {host}:{port}: {reason}")
        self.host = host
        self.port = port
        self.reason = reason
