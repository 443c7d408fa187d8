"""The debug adapter hosted on loopback TCP (as inside the language server), driving real debugpy.

No cluster: the intercept controller is a recording implementation of innerloop's controller
protocol; everything between the DAP client and the debuggee is real.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from innerloop.dap.server import DapEndpoint, start_dap_server

from tests.helpers.dap_client import (
    DapClient,
    RecordingController,
    debugpy_adapters,
    echo_launch,
    http_get,
    marked_line,
)
from tools.net import free_port, port_open
from tools.sample import ECHO_APP
from tools.wait import wait_until

pytestmark = pytest.mark.integration

BREAK_LINE = marked_line(ECHO_APP, "# breakpoint")
WORKLOAD_ENV = {"SECRET_VALUE": "from-workload", "CONFIG_VALUE": "from-workload"}


@pytest.fixture
def controller() -> RecordingController:
    return RecordingController(env=dict(WORKLOAD_ENV))


@pytest.fixture
async def endpoint(controller: RecordingController) -> AsyncIterator[DapEndpoint]:
    endpoint = await start_dap_server(lambda: controller)
    yield endpoint
    await endpoint.aclose()
    await wait_until(lambda: not debugpy_adapters(os.getpid()), what="debugpy adapters to exit")


def launch_config(port: int, token: str | None, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {**echo_launch("shop", port), **extra}
    if token is not None:
        config["innerloopToken"] = token
    return config


async def test_breakpoint_on_a_request_pauses_and_resumes_the_intercept(
    endpoint: DapEndpoint, controller: RecordingController, tmp_path: Path
) -> None:
    env_file = tmp_path / "app.env"
    env_file.write_text("# from the envFile\nCONFIG_VALUE=from-file\n")
    port = free_port()
    client = await DapClient.tcp(endpoint.host, endpoint.port)
    await client.initialize(supportsRunInTerminalRequest=False)
    config = launch_config(port, endpoint.new_token(), envFile="app.env", cwd=str(tmp_path))
    launched = await client.start("launch", config, {ECHO_APP: [BREAK_LINE]})
    assert launched["success"], launched

    assert controller.calls[0] == (
        "start",
        {
            "service": "echo",
            "namespace": "shop",
            "service_port": 80,
            "port": port,
            "while_paused": "cluster",
        },
    )
    await wait_until(lambda: port_open(port), what="the debuggee to listen")

    answer = asyncio.create_task(http_get(port, "/orders/42"))
    stopped = await client.event("stopped", reason="breakpoint")
    thread = stopped["body"]["threadId"]
    frame = await client.top_frame_locals(thread)
    assert frame["path"] == "'/orders/42'"
    assert frame["__line__"] == str(BREAK_LINE)
    await wait_until(lambda: ("set_paused", True) in controller.calls)
    await asyncio.sleep(0.3)
    assert not answer.done(), "the request must wait while its handler is paused"

    await client.ok("continue", {"threadId": thread})
    text = await asyncio.wait_for(answer, 10)
    # workload env < envFile < launch env
    assert "path=/orders/42 secret=from-workload config=from-file" in text
    await wait_until(lambda: ("set_paused", False) in controller.calls)
    assert [c for c in controller.calls if c[0] == "set_paused"] == [
        ("set_paused", True),
        ("set_paused", False),
    ]

    assert len(debugpy_adapters(os.getpid())) == 1
    await client.ok("disconnect", {"terminateDebuggee": True})
    assert controller.calls[-1] == ("stop", False)
    assert client.console() == [
        f"intercepting echo.shop:80 → localhost:{port}",
        "recording controller: intercept faked",
        f"intercept active: live traffic for echo.shop:80 → localhost:{port}",
        "paused: new requests are served by the cluster until you continue",
        "resumed: new requests reach this process again",
        "left intercept",
    ]
    # The proxy answered initialize with what debugpy offers: no correction was needed.
    assert not [e for e in client.events if e["event"] == "capabilities"]
    # The proxy injected output events and answered initialize itself: the client still sees
    # one gap-free sequence.
    assert [m["seq"] for m in client.received] == list(range(1, len(client.received) + 1))
    await client.aclose()
    await wait_until(lambda: not debugpy_adapters(os.getpid()), what="the adapter to exit")
    await wait_until(lambda: not port_open(port), what="the debuggee to exit")


async def test_debuggee_exit_stops_the_intercept_and_keeps_it_if_asked(
    endpoint: DapEndpoint, controller: RecordingController
) -> None:
    port = free_port()
    client = await DapClient.tcp(endpoint.host, endpoint.port)
    await client.initialize()
    config = launch_config(port, endpoint.new_token(), keepIntercept=True, whilePaused="hold")
    del config["program"]
    config["module"] = "this"  # prints the Zen of Python and exits
    launched = await client.start("launch", config)
    assert launched["success"], launched
    await client.event("terminated")
    assert controller.calls[-1] == ("stop", True)
    assert controller.calls[0][1]["while_paused"] == "hold"
    assert client.console()[-1] == "intercept kept (traffic still comes here)"
    await client.aclose()


async def test_controller_error_fails_the_launch_with_its_line(
    endpoint: DapEndpoint, controller: RecordingController
) -> None:
    controller.fail = "service 'echo' not found in namespace 'shop'"
    client = await DapClient.tcp(endpoint.host, endpoint.port)
    await client.initialize()
    reply = await client.start("launch", launch_config(free_port(), endpoint.new_token()))
    assert not reply["success"]
    assert reply["message"] == "service 'echo' not found in namespace 'shop'"
    assert reply["body"]["error"]["showUser"] is True
    assert debugpy_adapters(os.getpid()) == []
    assert (await client.request("disconnect"))["success"]
    await client.closed()


async def test_invalid_configuration_fails_before_intercepting(
    endpoint: DapEndpoint, controller: RecordingController
) -> None:
    client = await DapClient.tcp(endpoint.host, endpoint.port)
    await client.initialize()
    config = launch_config(free_port(), endpoint.new_token())
    del config["service"]
    reply = await client.request("launch", config)
    assert not reply["success"] and '"service"' in reply["message"]
    assert controller.calls == []
    await client.aclose()


async def test_disconnect_while_intercepting_cancels_the_start(
    endpoint: DapEndpoint, controller: RecordingController
) -> None:
    controller.start_delay = 60
    client = await DapClient.tcp(endpoint.host, endpoint.port)
    await client.initialize()
    launch = client.request_nowait("launch", launch_config(free_port(), endpoint.new_token()))
    await wait_until(lambda: controller.calls)
    assert (await client.request("disconnect", {"terminateDebuggee": True}))["success"]
    await wait_until(lambda: ("start_cancelled", None) in controller.calls)
    reply = await asyncio.wait_for(launch, 5)
    assert not reply["success"] and "cancelled" in reply["message"]
    assert debugpy_adapters(os.getpid()) == []
    await client.closed()


@pytest.mark.parametrize("token", [None, "forged-token"])
async def test_launch_without_the_session_token_is_refused(
    endpoint: DapEndpoint, controller: RecordingController, token: str | None
) -> None:
    client = await DapClient.tcp(endpoint.host, endpoint.port)
    await client.initialize()
    reply = await client.request("launch", launch_config(free_port(), token))
    assert not reply["success"] and "innerloopToken" in reply["message"]
    await client.closed()  # the proxy hung up
    assert controller.calls == []
    assert debugpy_adapters(os.getpid()) == []


async def test_a_token_works_once(endpoint: DapEndpoint, controller: RecordingController) -> None:
    token = endpoint.new_token()
    first = await DapClient.tcp(endpoint.host, endpoint.port)
    await first.initialize()
    config = launch_config(free_port(), token)
    del config["program"]  # invalid, so nothing starts; the token is spent anyway
    assert "program" in (await first.request("launch", config))["message"]
    await first.aclose()

    second = await DapClient.tcp(endpoint.host, endpoint.port)
    await second.initialize()
    reply = await second.request("attach", {**config, "connect": {"port": 1}})
    assert not reply["success"] and "innerloopToken" in reply["message"]
    await second.closed()


async def test_requests_before_launch_are_answered_by_the_proxy(endpoint: DapEndpoint) -> None:
    client = await DapClient.tcp(endpoint.host, endpoint.port)
    caps = await client.initialize()
    assert caps["supportsConfigurationDoneRequest"] is True
    assert not (await client.request("initialize", {"adapterID": "x"}))["success"]
    threads = await client.request("threads")
    assert not threads["success"] and "needs a running debugpy session" in threads["message"]
    assert (await client.request("disconnect"))["success"]
    await client.closed()


async def launch_and_pause(
    endpoint: DapEndpoint, controller: RecordingController
) -> tuple[DapClient, int, asyncio.Task[str]]:
    """A launched echo app, stopped at the breakpoint on a request that is still waiting."""
    port = free_port()
    client = await DapClient.tcp(endpoint.host, endpoint.port)
    await client.initialize()
    launched = await client.start(
        "launch", launch_config(port, endpoint.new_token()), {ECHO_APP: [BREAK_LINE]}
    )
    assert launched["success"], launched
    await wait_until(lambda: port_open(port), what="the debuggee to listen")
    answer = asyncio.create_task(http_get(port, "/paused"))
    await client.event("stopped", reason="breakpoint")
    await wait_until(lambda: ("set_paused", True) in controller.calls)
    return client, port, answer


async def test_client_vanishing_while_paused_cleans_up(
    endpoint: DapEndpoint, controller: RecordingController
) -> None:
    client, port, answer = await launch_and_pause(endpoint, controller)
    await client.aclose()  # the editor window closed: no disconnect request
    await wait_until(lambda: controller.calls[-1] == ("stop", False), what="the intercept to stop")
    assert controller.calls[-2] == ("set_paused", True)  # left while paused: no resume first
    await wait_until(lambda: not debugpy_adapters(os.getpid()), what="the adapter to exit")
    await wait_until(lambda: not port_open(port), what="the debuggee to exit")
    with pytest.raises(OSError):
        await answer


async def test_adapter_crash_ends_the_session_for_the_client(
    endpoint: DapEndpoint, controller: RecordingController
) -> None:
    client, port, answer = await launch_and_pause(endpoint, controller)
    [adapter] = debugpy_adapters(os.getpid())
    os.kill(adapter, 9)  # our own child: the proxy started it for this test's session
    await client.event("terminated")
    assert controller.calls[-2:] == [("set_paused", True), ("stop", False)]
    assert client.console()[-1] == "left intercept"
    assert (await client.request("disconnect"))["success"]
    await client.closed()
    await wait_until(lambda: not port_open(port), what="the orphaned debuggee to exit")
    with pytest.raises(OSError):
        await answer


async def test_requests_sent_while_intercepting_reach_debugpy_after_it(
    endpoint: DapEndpoint, controller: RecordingController
) -> None:
    controller.start_delay = 0.5
    port = free_port()
    client = await DapClient.tcp(endpoint.host, endpoint.port)
    await client.initialize()
    launch = client.request_nowait("launch", launch_config(port, endpoint.new_token()))
    early = client.request_nowait(
        "setExceptionBreakpoints", {"filters": ["uncaught"]}
    )  # before the intercept is up: held, then forwarded in order
    await client.event("initialized")
    assert (await asyncio.wait_for(early, 10))["success"]
    await client.ok("configurationDone")
    assert (await asyncio.wait_for(launch, 30))["success"]
    await client.ok("disconnect", {"terminateDebuggee": True})
    await client.aclose()


async def test_unreadable_env_file_undoes_the_intercept(
    endpoint: DapEndpoint, controller: RecordingController, tmp_path: Path
) -> None:
    client = await DapClient.tcp(endpoint.host, endpoint.port)
    await client.initialize()
    config = launch_config(free_port(), endpoint.new_token(), envFile=str(tmp_path / "nope.env"))
    reply = await client.request("launch", config)
    assert not reply["success"]
    assert (
        reply["message"]
        == f"cannot read envFile {tmp_path / 'nope.env'}: No such file or directory"
    )
    assert [c[0] for c in controller.calls] == ["start", "stop"]
    assert controller.calls[-1] == ("stop", False)
    assert debugpy_adapters(os.getpid()) == []
    await client.aclose()


async def test_controller_failures_while_debugging_are_shown_not_fatal(
    endpoint: DapEndpoint, controller: RecordingController
) -> None:
    controller.failing = {"set_paused", "stop"}
    client, _, answer = await launch_and_pause(endpoint, controller)
    await wait_until(
        lambda: "could not switch routing: the agent did not answer" in client.console()
    )
    stopped = next(e for e in client.events if e["event"] == "stopped")
    await client.ok("continue", {"threadId": stopped["body"]["threadId"]})
    assert "path=/paused" in await asyncio.wait_for(answer, 10)
    await client.ok("disconnect", {"terminateDebuggee": True})
    assert client.console()[-1] == (
        "could not leave the intercept: "
        "innerloop failed: RuntimeError: tunnel already closed (see the log)"
    )
    await client.aclose()
