"""A stopping agent lets the exchanges in flight through its tunnels finish before it says
goodbye (bounded), so a replica that goes away never cuts a request mid-answer."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from innerloop.agent.main import DRAIN_LONGEST
from innerloop.agent.server import CLOSE_GRACE

from tests.integration.test_tunnel_dial import Cluster, running_agent

pytestmark = pytest.mark.integration
ANSWER = b"the whole answer, " * 1000


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with running_agent(tmp_path) as c:
        yield c


async def call(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    try:
        return await reader.read(-1)
    except ConnectionError:
        return b"(reset)"
    finally:
        writer.close()


async def slow_laptop(agent: Cluster, delay: float) -> None:
    """Claim the route for a local server that answers each request after ``delay`` s."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        await asyncio.sleep(delay)
        writer.write(ANSWER[: len(ANSWER) // 2])  # the answer in two parts, some time apart
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.write(ANSWER[len(ANSWER) // 2 :])
        writer.close()

    local = await agent.serve(answer)
    await (await agent.client()).claim(agent.route, local)


async def test_a_request_in_flight_when_the_agent_stops_gets_its_whole_answer(
    agent: Cluster,
) -> None:
    await slow_laptop(agent, delay=1.0)  # longer than the drain after SIGTERM
    caller = asyncio.ensure_future(call(agent.route, b"GET"))
    await asyncio.sleep(0.2)  # the request is on the laptop
    assert agent.proc is not None
    agent.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(caller, 10) == ANSWER
    await asyncio.wait_for(agent.proc.wait(), 10)


async def test_an_answer_that_never_comes_holds_the_stop_up_only_so_long(agent: Cluster) -> None:
    await slow_laptop(agent, delay=60)
    caller = asyncio.ensure_future(call(agent.route, b"GET"))
    await asyncio.sleep(0.2)
    assert agent.proc is not None
    started = time.monotonic()
    agent.proc.send_signal(signal.SIGTERM)
    await asyncio.wait_for(agent.proc.wait(), DRAIN_LONGEST + CLOSE_GRACE + 5)
    assert time.monotonic() - started < DRAIN_LONGEST + CLOSE_GRACE + 2
    assert "exchanges still in flight" in agent.log()
    caller.cancel()
