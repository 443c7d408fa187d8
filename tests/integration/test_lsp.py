"""The real `python -m innerloop.lsp` over stdio, driven by pytest-lsp."""

from __future__ import annotations

import asyncio
import json
import sys

import innerloop
import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tools.wait import wait_until

pytestmark = pytest.mark.integration

SERVER_COMMANDS = {
    "innerloop.status",
    "innerloop.listTargets",
    "innerloop.startIntercept",
    "innerloop.stopIntercept",
    "innerloop.toggleIntercept",
    "innerloop.uninstall",
    "innerloop.debugAdapterEndpoint",
    "innerloop.refreshCodeLenses",
    "innerloop.listContexts",
    "innerloop.workspaceMapping",
}


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=[sys.executable, "-m", "innerloop.lsp"])
)
async def client(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    params = types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"),
        initialization_options={"namespace": "shop", "kubeconfig": "", "python": "ignored"},
    )
    result = await lsp_client.initialize_session(params)
    assert result.server_info is not None
    assert (result.server_info.name, result.server_info.version) == (
        "innerloop",
        innerloop.__version__,
    )
    provider = result.capabilities.execute_command_provider
    assert provider is not None
    assert set(provider.commands) == SERVER_COMMANDS
    yield
    await lsp_client.shutdown_session()


async def test_status_answers_version_interpreter_and_intercepts(client: LanguageClient) -> None:
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="innerloop.status")
    )
    assert result == {"version": innerloop.__version__, "python": sys.executable, "intercepts": []}


async def test_changed_settings_are_logged_to_the_client(client: LanguageClient) -> None:
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"innerloop": {"namespace": "billing", "context": "kind"}}
        )
    )
    await wait_until(
        lambda: any("namespace='billing'" in m.message for m in client.log_messages),
        "the settings log line",
    )
    line = next(m for m in client.log_messages if "namespace='billing'" in m.message)
    assert line.type == types.MessageType.Info
    assert "context='kind'" in line.message
    assert line.message.startswith("innerloop.lsp.features.settings: ")


async def test_invalid_setting_gives_one_warning_and_the_default(client: LanguageClient) -> None:
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"innerloop": {"namespace": 5, "agentImage": "img:1"}}
        )
    )
    await wait_until(lambda: len(client.messages) > 0, "the warning")
    await asyncio.sleep(0.2)
    assert len(client.messages) == 1
    (message,) = client.messages
    assert message.type == types.MessageType.Warning
    assert message.message == "innerloop.namespace must be a string, got 5; using the default"
    await wait_until(
        lambda: any(
            "agentImage='img:1'" in m.message and "namespace=''" in m.message
            for m in client.log_messages
        ),
        "settings with the default namespace",
    )


async def dap_request(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    seq: int,
    command: str,
    **args: object,
) -> dict[str, object]:
    body = json.dumps({"seq": seq, "type": "request", "command": command, "arguments": args})
    writer.write(f"Content-Length: {len(body)}\r\n\r\n{body}".encode())
    await writer.drain()
    while True:
        header = await reader.readuntil(b"\r\n\r\n")
        length = int(header.split(b"Content-Length:")[1].split(b"\r\n")[0])
        message: dict[str, object] = json.loads(await reader.readexactly(length))
        if message.get("type") == "response" and message.get("request_seq") == seq:
            return message


async def test_hosted_debug_adapter_refuses_a_launch_without_the_token(
    client: LanguageClient,
) -> None:
    endpoint = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="innerloop.debugAdapterEndpoint")
    )
    assert endpoint["host"] == "127.0.0.1" and isinstance(endpoint["token"], str)
    reader, writer = await asyncio.open_connection(endpoint["host"], endpoint["port"])
    try:
        init = await dap_request(reader, writer, 1, "initialize", adapterID="innerloop")
        assert init["success"] is True
        launch = await dap_request(
            reader,
            writer,
            2,
            "launch",
            service="orders",
            port=8080,
            program="app.py",
            innerloopToken="not-the-token",
        )
        assert launch["success"] is False
        assert "no valid innerloopToken" in str(launch["message"])
    finally:
        writer.close()
