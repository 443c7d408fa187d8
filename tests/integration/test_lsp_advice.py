"""Issue 12, snags 3, 6 and 8: errors seen in the editor name the editor's settings and launch keys
(never CLI flags or `innerloop list`, which is not on PATH inside VS Code), and user errors reach
the Output channel as one line, never as a traceback.

The real `python -m innerloop.lsp` with a kubeconfig setting that points nowhere: both the
palette's command and F5 (the debug adapter hosted by the server) fail on it.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
import pytest_lsp
from innerloop.core.advice import Fix, Surface, advise
from innerloop.core.errors import ConfigError, UserError
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.helpers.dap_client import DapClient

pytestmark = pytest.mark.integration

MISSING = "/nonexistent/innerloop-test/kubeconfig"
CLI_WORDS = ("--kubeconfig", "--context", "-n ", "innerloop list", "--port", "--agent-image")


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=[sys.executable, "-m", "innerloop.lsp"])
)
async def client(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            initialization_options={"kubeconfig": MISSING},
        )
    )
    yield
    await lsp_client.shutdown_session()


def no_cli_advice(message: str) -> None:
    assert not [w for w in CLI_WORDS if w in message], message


async def test_a_palette_command_names_the_kubeconfig_setting(client: LanguageClient) -> None:
    with pytest.raises(JsonRpcException) as failure:
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="innerloop.listTargets", arguments=[{}])
        )
    message = failure.value.message
    assert message == f'no kubeconfig at {MISSING}; set the "innerloop.kubeconfig" setting (or KUBECONFIG)'
    no_cli_advice(message)


async def test_f5_names_the_setting_in_the_debug_console_and_logs_one_line(
    client: LanguageClient, tmp_path: Path
) -> None:
    endpoint = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="innerloop.debugAdapterEndpoint")
    )
    dap = await DapClient.tcp(endpoint["host"], endpoint["port"])
    try:
        await dap.initialize()
        (tmp_path / "app.py").write_text("print('hi')\n")
        response = await dap.start(
            "launch",
            {
                "type": "innerloop",
                "name": "orders",
                "service": "orders",
                "port": 8080,
                "program": str(tmp_path / "app.py"),
                "innerloopToken": endpoint["token"],
            },
        )
    finally:
        await dap.aclose()
    assert not response["success"]
    assert '"innerloop.kubeconfig" setting' in response["message"], response
    no_cli_advice(response["message"])
    logged = "\n".join(m.message for m in client.log_messages)
    assert "launch failed" in logged, logged
    assert "Traceback" not in logged, logged


@pytest.mark.parametrize(
    "error, cli, editor",
    [
        (
            UserError("service 'orders' not found in namespace 'default'",
                      advice=advise(Fix.FIND_SERVICE)),
            "`innerloop list` shows what there is",
            '"Innerloop: Intercept Service…" lists the Services',
        ),
        (
            UserError("namespace 'shop' not found", advice=advise(Fix.NAMESPACE)),
            "pick one with -n",
            'set "namespace" in the launch configuration',
        ),
        (
            ConfigError("kubeconfig k has no current context", advice=advise(Fix.CONTEXT)),
            "pass --context",
            '"innerloop.context" setting',
        ),
        (
            ConfigError("rollout cannot finish", advice=advise(Fix.AGENT_IMAGE)),
            "see --agent-image",
            '"innerloop.agentImage" setting',
        ),
    ],
)
def test_one_catalogue_renders_each_advice_for_its_surface(
    error: ConfigError, cli: str, editor: str
) -> None:
    assert error.user_line() == error.user_line(Surface.CLI) == str(error)
    assert cli in error.user_line(Surface.CLI)
    assert editor in error.user_line(Surface.EDITOR)
    no_cli_advice(error.user_line(Surface.EDITOR))


async def test_a_user_error_is_one_log_line_not_a_traceback(
    client: LanguageClient, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(JsonRpcException):
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="innerloop.listTargets", arguments=[{}])
        )
    await asyncio.sleep(0.5)  # the server's stderr (the editor's Output channel) arrives async
    stderr = capfd.readouterr().err
    assert "Traceback" not in stderr, stderr
    logged = [m.message for m in client.log_messages]
    assert any("list_targets: no kubeconfig at" in m for m in logged), logged
