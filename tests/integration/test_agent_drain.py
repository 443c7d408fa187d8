"""The agent's graceful stop: after SIGTERM it serves on while callers still arrive (kube-proxy
still sends a deleted pod new connections for a moment), then exits once they stop — so a
deleted replica refuses nobody (tests/faults/test_replicas.py shows it on the testbed)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from innerloop.agent.main import DRAIN_LONGEST, DRAIN_QUIET

from tests.integration.test_tunnel_dial import Cluster, running_agent

pytestmark = pytest.mark.integration


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with running_agent(tmp_path) as c:
        yield c


async def call(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"ping")
    writer.write_eof()
    answer = await reader.read()
    writer.close()
    return answer


async def test_callers_arriving_after_sigterm_are_served_then_it_exits(agent: Cluster) -> None:
    assert agent.proc is not None
    agent.proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    answers = []
    while time.monotonic() - t0 < DRAIN_LONGEST - DRAIN_QUIET:  # a steady stream of callers
        answers.append(await call(agent.route))
        await asyncio.sleep(DRAIN_QUIET / 5)
    assert answers and all(a == b"ping" for a in answers), answers
    await asyncio.wait_for(agent.proc.wait(), DRAIN_LONGEST + 3)
    assert time.monotonic() - t0 <= DRAIN_LONGEST + 2, "the drain is bounded"
    assert "Traceback" not in agent.log(), agent.log()


async def test_without_callers_it_exits_after_a_short_quiet(agent: Cluster) -> None:
    assert agent.proc is not None
    t0 = time.monotonic()
    agent.proc.send_signal(signal.SIGTERM)
    await asyncio.wait_for(agent.proc.wait(), DRAIN_LONGEST + 3)
    assert time.monotonic() - t0 < DRAIN_LONGEST, "no callers: no need to wait the longest"
