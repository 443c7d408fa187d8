"""A warm start opens its tunnels to the pods it has just read, without waiting for the pod
watch's own first list (one round trip less before the first port-forward)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from innerloop.intercepts.tunnels import TunnelSet

AGENT = {"name": "innerloop-agent"}


def pod(name: str, ready: bool, agent: bool = True) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"containers": [{"name": "app"}, *([AGENT] if agent else [])]},
            "status": {"conditions": [{"type": "Ready", "status": str(ready)}]}}


class SilentWatch:
    """A pod watch whose first list has not come back yet."""

    def __aiter__(self) -> SilentWatch:
        return self

    async def __anext__(self) -> dict[str, Any]:
        await asyncio.Event().wait()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        pass


class Gateway:
    def __init__(self) -> None:
        self.forwarded: list[str] = []

    def watch_ready_pods(self, namespace: str, selector: str) -> SilentWatch:
        return SilentWatch()

    async def port_forward(self, namespace: str, name: str, port: int) -> None:
        self.forwarded.append(name)
        await asyncio.Event().wait()  # the port-forward is still opening


def test_known_ready_pods_with_the_agent_get_a_tunnel_before_the_watch_lists() -> None:
    async def run() -> list[str]:
        gw = Gateway()
        tset = TunnelSet(cast(Any, gw), "shop", "app=orders", 15400, "me", lambda _: None)
        tset.follow([pod("ready", True), pod("starting", False),
                     pod("no-agent", True, agent=False)])
        await asyncio.sleep(0.01)
        assert set(tset.workers) == {"ready"}
        await tset.close()
        return gw.forwarded

    assert asyncio.run(run()) == ["ready"]
