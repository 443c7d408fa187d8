"""Env awareness against the testbed (issue 12): `python -m innerloop.lsp`, driven by pytest-lsp,
reads the real echo Deployment's env (a Secret by secretKeyRef, a ConfigMap by envFrom, a literal,
the downward API) for a workspace mapped to the echo Service by `.vscode/innerloop.json` without a
namespace, so the namespace comes from the kubeconfig context, as kubectl's does.

Hover names each variable's source (a Secret by name and key; a ConfigMap's value may show), a
variable the workload lacks gets a warning, completion offers the workload's names; saving reads
the cluster again. Every byte the server wrote (stdout, the LSP transcript, and stderr, its log)
is scanned: the Secret's value is never in it. tests/integration/test_lsp_env.py covers the same
features against a fake workload.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tools.cluster import Cluster
from tools.sample import manifests

pytestmark = pytest.mark.e2e

APP = """\
import os

secret = os.environ["SECRET_VALUE"]
config = os.getenv("CONFIG_VALUE", "")
port = int(os.environ.get("PORT", "8080"))
pod = os.environ["POD_NAME"]
feature = os.getenv("NOT_IN_THE_WORKLOAD")
name = os.getenv("")
"""
COMPLETE_AT = (7, 18)
"""Inside the empty string of the last line."""
CHANGED = "changed-in-the-cluster"


@dataclass
class Lsp:
    client: LanguageClient
    uri: str
    transcript: Path
    stderr: Path
    shut: bool = False

    async def hover(self, line: int, character: int) -> str | None:
        hover = await self.client.text_document_hover_async(types.HoverParams(
            types.TextDocumentIdentifier(self.uri), types.Position(line, character)))
        if hover is None:
            return None
        return cast(types.MarkupContent, hover.contents).value

    def diagnostics(self) -> list[tuple[int, str, Any]]:
        return [(d.range.start.line, d.message, d.severity)
                for d in self.client.diagnostics[self.uri]]

    async def shutdown(self) -> None:
        """The LSP way; the server exits and so does the tee: the transcript is whole."""
        if not self.shut:
            self.shut = True
            await asyncio.wait_for(self.client.shutdown_session(), 60)


def context_kubeconfig(cluster: Cluster, namespace: str, folder: Path) -> tuple[Path, str]:
    """A copy of the kubeconfig whose current context has `namespace`, as after
    `kubectl config set-context --current --namespace=...`; returns it and the context's name.
    (Also the newcomer's kubeconfig in tests/vscode/test_vscode_walkthrough.py.)"""
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    current = config["current-context"]
    for entry in config["contexts"]:
        if entry["name"] == current:
            entry["context"]["namespace"] = namespace
    path = folder / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path, current


@pytest.fixture
async def lsp(cluster: Cluster, namespace: str, tmp_path: Path) -> AsyncIterator[Lsp]:
    await asyncio.to_thread(cluster.deploy_echo, namespace, 1)
    workspace = tmp_path / "workspace"
    (workspace / ".vscode").mkdir(parents=True)
    (workspace / "app.py").write_text(APP)
    (workspace / ".vscode" / "innerloop.json").write_text(json.dumps({"service": "echo"}))
    transcript, stderr = tmp_path / "server-stdout", tmp_path / "server-stderr"
    # tee keeps a copy of every byte the server sends; it ends when the server does.
    config = ClientServerConfig(
        server_command=["sh", "-c", '"$0" -m innerloop.lsp 2>"$1" | tee "$2"',
                        sys.executable, str(stderr), str(transcript)],
        server_env={**os.environ, "PYTHONUNBUFFERED": "1",
                    "XDG_RUNTIME_DIR": str(tmp_path / "runtime")},
    )
    client = cast(LanguageClient, await config.start())
    try:
        await client.initialize_session(types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=workspace.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name="ws")],
            initialization_options={
                "kubeconfig": str(context_kubeconfig(cluster, namespace, tmp_path)[0]),
                "agentImage": manifests.PYTHON_IMAGE,
            },
        ))
        uri = (workspace / "app.py").as_uri()
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri=uri, language_id="python", version=1, text=APP)))
        await asyncio.wait_for(
            client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS), 60)
        lsp = Lsp(client, uri, transcript, stderr)
        yield lsp
        await lsp.shutdown()
    finally:
        await client.stop()  # type: ignore[no-untyped-call]


async def test_hover_warning_completion_from_the_workloads_env_and_no_secret_value_anywhere(
    cluster: Cluster, namespace: str, lsp: Lsp
) -> None:
    assert lsp.diagnostics() == [(
        6, "NOT_IN_THE_WORKLOAD is not defined in the env of echo's workload",
        types.DiagnosticSeverity.Warning)]

    assert await lsp.hover(2, 22) == "**SECRET_VALUE** in `echo`: Secret `echo-secret` key `secret`"
    assert await lsp.hover(3, 22) == (
        f"**CONFIG_VALUE** in `echo`: ConfigMap `echo-config` key `CONFIG_VALUE` (envFrom): "
        f"`{manifests.CONFIG_VALUE}`")
    assert await lsp.hover(4, 30) == "**PORT** in `echo`: literal value: `8080`"
    assert await lsp.hover(5, 22) == (
        "**POD_NAME** in `echo`: downward API field `metadata.name`")
    assert await lsp.hover(6, 25) == (
        "**NOT_IN_THE_WORKLOAD** in `echo`: not defined in the workload's env")
    assert await lsp.hover(0, 3) is None

    completion = await lsp.client.text_document_completion_async(types.CompletionParams(
        types.TextDocumentIdentifier(lsp.uri), types.Position(*COMPLETE_AT)))
    items = {i.label: i.detail for i in cast(list[types.CompletionItem], completion)}
    assert {"SECRET_VALUE", "CONFIG_VALUE", "PORT", "POD_NAME"} <= set(items), items
    assert items["SECRET_VALUE"] == "Secret `echo-secret` key `secret`"

    # The ConfigMap changes in the cluster; a save reads it again.
    await asyncio.to_thread(cluster.apply, namespace, [manifests.echo_config(value=CHANGED)])
    before = len(lsp.client.diagnostics[lsp.uri])
    lsp.client.text_document_did_save(types.DidSaveTextDocumentParams(
        types.TextDocumentIdentifier(lsp.uri)))
    await lsp.client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    assert len(lsp.client.diagnostics[lsp.uri]) == before
    hover = await lsp.hover(3, 22)
    assert hover is not None and hover.endswith(f"`{CHANGED}`"), hover

    # The walkthrough's context pick: read from the file, the namespace as kubectl has it.
    listed = await lsp.client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="innerloop.listContexts"))
    current = next(c for c in listed["contexts"] if c["name"] == listed["current"])
    assert current["namespace"] == namespace, listed

    # The mapping every part of the editor reads (here from .vscode/innerloop.json).
    mapped = await lsp.client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="innerloop.workspaceMapping"))
    assert mapped == {"service": "echo", "namespace": "", "servicePort": "", "localPort": 0,
                      "program": ""}, mapped

    await lsp.shutdown()
    sent = lsp.transcript.read_bytes()
    logged = lsp.stderr.read_bytes()
    assert b"echo-secret" in sent  # the transcript holds the hovers: the scan is real
    secret = manifests.SECRET_VALUE.encode()
    assert secret not in sent, "the Secret's value went over the wire"
    assert secret not in logged, "the Secret's value is in the server's log"
