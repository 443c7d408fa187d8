"""Issue 12, snag 4: an intercept whose local port has no listener is reported, not silent.

The server under test is tests/integration/test_lsp_features.py run as a script (the real server
with an in-memory intercept service): an intercept to a free port says `listening: false` in
the `innerloop/status` notification once the grace period is over, and `true` once a program
listens there.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tools.net import free_port
from tools.wait import wait_until

pytestmark = pytest.mark.integration

MEMORY_SERVER = Path(__file__).with_name("test_lsp_features.py")


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, str(MEMORY_SERVER)]))
async def client(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    statuses: list[Any] = []

    @lsp_client.feature("innerloop/status")
    def on_status(_client: LanguageClient, params: Any) -> None:
        statuses.append(params)

    lsp_client.statuses = statuses  # type: ignore[attr-defined]
    await lsp_client.initialize_session(
        types.InitializeParams(capabilities=client_capabilities("visual-studio-code"))
    )
    yield
    await lsp_client.shutdown_session()


def listening_of(client: LanguageClient, port: int) -> list[Any]:
    """The `listening` values the notifications gave the intercept on `port`, in order."""
    seen = []
    for status in client.statuses:  # type: ignore[attr-defined]
        # pygls hands custom notifications over as namedtuples
        for i in status.intercepts:
            if i.localPort == port:
                seen.append(getattr(i, "listening", None))
    return seen


async def test_a_local_port_without_listener_is_reported_then_cleared(
    client: LanguageClient,
) -> None:
    port = free_port()
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="innerloop.startIntercept",
            arguments=[{"service": "orders", "localPort": port}],
        )
    )
    await wait_until(lambda: False in listening_of(client, port), "listening: false", 20)
    status = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="innerloop.status")
    )
    assert [i["listening"] for i in status["intercepts"]] == [False]
    assert any(
        f"nothing listens on 127.0.0.1:{port}" in m.message for m in client.log_messages
    ), [m.message for m in client.log_messages]

    with socket.create_server(("127.0.0.1", port)):
        await wait_until(lambda: listening_of(client, port)[-1] is True, "listening: true", 20)
