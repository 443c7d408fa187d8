"""The request log fed by a real tunnel: the zipapp agent, a TunnelClient with the log's tap and
a local app over loopback (the stack of test_tunnel.py). What the editor's view gets is what the
laptop end saw: method, path, status, body bytes, the caller's address and the replica."""

from __future__ import annotations

import time

import pytest
from innerloop.core.request_log import FlowKind, FlowOutcome, RequestLog
from innerloop.intercepts.http_tap import tap_factory
from innerloop.tunnel.client import TunnelClient
from innerloop.tunnel.transport import TcpTransport

from tests.integration.test_tunnel import Stack, http, stack  # noqa: F401 - the fixture
from tools.wait import wait_until

pytestmark = pytest.mark.integration


async def test_each_routed_request_is_logged_with_its_answer(stack: Stack) -> None:  # noqa: F811
    log = RequestLog()
    make = tap_factory(log, "shop/echo", time.time)
    transport = await TcpTransport.connect("127.0.0.1", stack.tunnel)
    client = TunnelClient(transport, "alice@laptop:1", name="pod-7",
                          tap=lambda opened: make("pod-7", opened.peer))
    stack.clients.append(client)
    await client.start()
    await client.claim(stack.route, stack.local.port)

    assert (await http(stack.route, "/orders/7", b"abcd")).startswith(b"local POST /orders/7 4")
    await wait_until(lambda: [r.outcome for r in log.records()] == [FlowOutcome.DONE],
                     "the request's record to end", 5, interval=0.01)
    [record] = log.records()
    assert (record.kind, record.method, record.path, record.status, record.request_bytes) == (
        FlowKind.HTTP, "POST", "/orders/7", 200, 4)
    assert record.response_bytes > 0 and record.replica == "pod-7"
    assert record.peer.startswith("127.0.0.1:"), record.peer  # the caller, as the agent saw it
    assert not record.held and record.duration is not None

    await client.release(stack.route)
    assert (await http(stack.route, "/x")).startswith(b"app ")
    assert len(log.records()) == 1, "a request the app served is not routed here"
