"""The kube-proxy probe ends by its own deadline, even when nobody cancels it: on Python < 3.12
a cancellation from the caller's wait_for can be swallowed by a wait_for inside (when its call
completes at that moment), and the probe loop then ran forever (a CI rehearsal hung on it)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from innerloop.intercepts import kube_proxy


async def test_the_probe_loop_stops_at_its_deadline_without_a_cancel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    touched: list[str] = []

    async def touch(client: Any, host: str, port: int) -> None:
        touched.append(host)

    async def arrivals(client: Any, health_port: int, listen_port: int) -> int:
        return 0  # kube-proxy never follows

    monkeypatch.setattr(kube_proxy, "_touch", touch)
    monkeypatch.setattr(kube_proxy, "arrivals", arrivals)
    probe = kube_proxy.Probe([], [], health_port=1, listen_port=2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(asyncio.TimeoutError):
        # a guard far above the deadline: the old loop never returned
        await asyncio.wait_for(
            probe._until_routed(object(), "198.18.0.1", 80, 0, started + 0.2), 5)  # type: ignore[arg-type]
    assert 0.2 <= loop.time() - started < 2
    assert touched and set(touched) == {"198.18.0.1"}
