"""A new pod is Ready with its app while its agent may still be starting (the sidecar has no
readiness probe, issue 11): the first refused port-forwards go to the log, not to the user;
one that keeps failing is reported once."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from innerloop.core.errors import ClusterError
from innerloop.intercepts import tunnels
from innerloop.intercepts.tunnels import TunnelSet

from tests.unit.test_intercept_tunnels_known import SilentWatch, pod

REFUSED = "nothing listens on 127.0.0.1:15400 in the pod (connection refused)"


class Gateway:
    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.attempts = 0

    def watch_ready_pods(self, namespace: str, selector: str) -> SilentWatch:
        return SilentWatch()

    async def port_forward(self, namespace: str, name: str, port: int) -> None:
        self.attempts += 1
        if self.attempts <= self.refusals:
            raise ClusterError(REFUSED)
        await asyncio.Event().wait()  # then the agent listens; the port-forward opens


def reports_after(refusals: int) -> list[str]:
    async def run() -> list[str]:
        reports: list[str] = []
        gw = Gateway(refusals)
        tset = TunnelSet(cast(Any, gw), "shop", "app=orders", 15400, "me", reports.append)
        tset.follow([pod("web-1", True)])
        while gw.attempts <= refusals:
            await asyncio.sleep(0.001)
        await tset.close()
        return [r for r in reports if "failed" in r]

    return asyncio.run(run())


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tunnels, "RETRY_FIRST", 0.001)
    monkeypatch.setattr(tunnels, "RETRY_MAX", 0.005)  # 1:5 as the real 0.1 s and 0.5 s


def test_an_agent_still_starting_is_retried_quietly() -> None:
    assert reports_after(3) == []  # 0.001 + 0.002 + 0.004: the quiet retries


def test_a_port_forward_that_keeps_failing_is_reported_once() -> None:
    assert reports_after(8) == [f"tunnel to web-1 failed: {REFUSED}; retrying"]
