"""Env awareness over the wire (pytest-lsp): hover, diagnostics, completion, from a fake
workload env built by the real `core.env_sources`; no Secret value in any server message.

Run as a script, this module is the server under test (the memory intercepts of
test_lsp_features plus `FakeWorkloadEnv`), writing every byte it sends to $TRANSCRIPT.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, BinaryIO

import pytest
import pytest_lsp
from innerloop.core.env_sources import env_sources
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

pytestmark = pytest.mark.integration

SECRET_VALUE = "hunter2-do-not-show"
TRANSCRIPT = Path(os.environ.get("INNERLOOP_TEST_TRANSCRIPT", "/tmp/innerloop-lsp-env.transcript"))

POD = {
    "metadata": {"name": "orders-1", "namespace": "shop"},
    "spec": {"containers": [{
        "name": "app",
        "envFrom": [{"configMapRef": {"name": "orders-config"}}],
        "env": [
            {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "password"}}},
            {"name": "GREETING", "value": "hello"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
    }]},
}
SECRETS = {"db-creds": {"password": SECRET_VALUE}}

APP = '''\
import os
from os import getenv

password = os.environ["DB_PASSWORD"]
level = os.environ.get("LOG_LEVEL", "info")
missing = getenv("NOT_IN_WORKLOAD")
net = os.getenv("INNERLOOP_NET")
'''


class FakeWorkloadEnv:
    """The workload above; like the real service, hands only the Secret's key names on."""

    async def env_sources(self, namespace: str | None, service: str, service_port: str | None,
                          refresh: bool = False) -> dict[str, str]:
        keys = {name: list(data) for name, data in SECRETS.items()}
        return env_sources(POD, "app", {"orders-config": {"LOG_LEVEL": "debug"}}, keys)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / ".vscode").mkdir()
    (tmp_path / ".vscode" / "innerloop.json").write_text('{"service": "orders"}')
    return tmp_path


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, __file__]))
async def client(lsp_client: LanguageClient, workspace: Path):  # type: ignore[no-untyped-def]
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"),
        root_uri=workspace.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name="ws")],
    ))
    yield
    await lsp_client.shutdown_session()


async def open_app(client: LanguageClient, workspace: Path) -> str:
    uri = (workspace / "app.py").as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id="python", version=1, text=APP)))
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return uri


async def hover_text(client: LanguageClient, uri: str, line: int, character: int) -> Any:
    hover = await client.text_document_hover_async(types.HoverParams(
        types.TextDocumentIdentifier(uri), types.Position(line, character)))
    return None if hover is None else hover.contents.value  # type: ignore[union-attr]


async def test_hover_diagnostics_completion_and_no_secret_value_on_the_wire(
    client: LanguageClient, workspace: Path
) -> None:
    uri = await open_app(client, workspace)
    diagnostics = client.diagnostics[uri]
    assert [(d.range.start.line, d.message, d.severity) for d in diagnostics] == [
        (5, "NOT_IN_WORKLOAD is not defined in the env of orders's workload",
         types.DiagnosticSeverity.Warning),
    ]
    assert await hover_text(client, uri, 3, 25) == (
        "**DB_PASSWORD** in `orders`: Secret `db-creds` key `password`")
    assert await hover_text(client, uri, 4, 27) == (
        "**LOG_LEVEL** in `orders`: ConfigMap `orders-config` key `LOG_LEVEL` (envFrom): `debug`")
    assert await hover_text(client, uri, 6, 20) == (
        "**INNERLOOP_NET** in `orders`: set by innerloop (cluster network)")
    assert await hover_text(client, uri, 0, 3) is None

    completion = await client.text_document_completion_async(types.CompletionParams(
        types.TextDocumentIdentifier(uri), types.Position(6, 17)))
    assert [i.label for i in completion] == [  # type: ignore[union-attr]
        "DB_PASSWORD", "GREETING", "INNERLOOP_CLUSTER_DOMAIN", "INNERLOOP_NET",
        "INNERLOOP_VOLUMES", "LOG_LEVEL", "POD_NAME"]
    outside = await client.text_document_completion_async(types.CompletionParams(
        types.TextDocumentIdentifier(uri), types.Position(0, 9)))
    assert outside == []

    transcript = TRANSCRIPT.read_bytes()
    assert b"db-creds" in transcript  # the transcript holds the hover: the scan is real
    assert SECRET_VALUE.encode() not in transcript


class _Tee:
    def __init__(self, out: BinaryIO, copy: BinaryIO) -> None:
        self.out, self.copy = out, copy

    def write(self, data: bytes) -> int:
        self.copy.write(data)
        self.copy.flush()
        return self.out.write(data)

    def flush(self) -> None:
        self.out.flush()

    def close(self) -> None:
        self.copy.close()
        self.out.close()


class _Stdout:
    def __init__(self, buffer: _Tee) -> None:
        self.buffer = buffer


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    from innerloop.lsp.dap_host import HostedDebugAdapter
    from innerloop.lsp.deps import Deps
    from innerloop.lsp.setup import serve_stdio
    from test_lsp_features import MemoryController, MemoryIntercepts

    sys.stdout = _Stdout(_Tee(sys.stdout.buffer, TRANSCRIPT.open("wb")))  # type: ignore[assignment]
    memory = MemoryIntercepts()
    serve_stdio(Deps(intercepts=memory,
                     debug_adapter=HostedDebugAdapter(lambda: MemoryController(memory)),
                     env=FakeWorkloadEnv()))
