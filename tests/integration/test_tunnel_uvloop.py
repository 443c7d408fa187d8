"""The laptop end of the tunnel on uvloop, as the CLI runs it when `innerloop[fast]` is
installed (scripts/setup installs it): relays take sockets over from their stream pairs, and
uvloop's transports are not asyncio.Transport subclasses, so the stock-loop tests cannot see a
difference there. The agent subprocess stays on the stock loop, as in a pod."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
import uvloop

from bench.tunnel_load import echo, loopback, round_trips

pytestmark = pytest.mark.integration


async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()  # the app in the "pod": an answer can only have come through the tunnel


async def keep_alive_and_bulk() -> tuple[int, bytes, bytes]:
    async with loopback(refuse, echo) as lb:
        answered = len(await round_trips(lb.route, 200))
        body = bytes(range(256)) * 8192  # 2 MiB
        reader, writer = await asyncio.open_connection("127.0.0.1", lb.route)
        writer.write(body)
        await writer.drain()
        echoed = await asyncio.wait_for(reader.readexactly(len(body)), 30)
        writer.close()
        return answered, hashlib.sha256(body).digest(), hashlib.sha256(echoed).digest()


def test_relays_on_uvloop_carry_keep_alive_round_trips_and_bulk_intact() -> None:
    async def main() -> tuple[int, bytes, bytes, type]:
        result = await keep_alive_and_bulk()
        return (*result, type(asyncio.get_running_loop()))

    answered, sent, echoed, loop_type = uvloop.run(main())
    assert loop_type is uvloop.Loop
    assert answered == 200
    assert echoed == sent
