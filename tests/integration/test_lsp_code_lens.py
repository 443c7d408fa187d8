"""Code lens above HTTP handlers, over the wire (pytest-lsp) against the memory-backed server."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

pytestmark = pytest.mark.integration

SERVER = Path(__file__).with_name("test_lsp_features.py")

FLASK_APP = '''\
from flask import Flask

app = Flask(__name__)


def audited(f):
    return f


@app.route("/orders/<int:order_id>", methods=["GET"])
@audited
def order(order_id):
    """One order."""
    return {"id": order_id}
'''


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(FLASK_APP)
    return tmp_path


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, str(SERVER)]))
async def client(lsp_client: LanguageClient, workspace: Path):  # type: ignore[no-untyped-def]
    lsp_client.refreshes = []  # type: ignore[attr-defined]

    @lsp_client.feature(types.WORKSPACE_CODE_LENS_REFRESH)
    def refresh(_ls: LanguageClient, _params: None) -> None:
        lsp_client.refreshes.append(1)  # type: ignore[attr-defined]

    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=workspace.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name="ws")],
            initialization_options={"namespace": "shop"},
        )
    )
    yield
    await lsp_client.shutdown_session()


async def lenses_of(client: LanguageClient, path: Path) -> list[types.CodeLens]:
    uri = path.as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id="python", version=1, text=path.read_text())))
    result = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    return list(result or [])


def commands(lenses: list[types.CodeLens]) -> list[tuple[int, str, str, list[Any]]]:
    out = []
    for lens in lenses:
        assert lens.command is not None
        out.append((lens.range.start.line, lens.command.title, lens.command.command,
                    list(lens.command.arguments or [])))
    return out


async def test_without_a_mapping_the_lens_offers_to_choose_the_service(
    client: LanguageClient, workspace: Path
) -> None:
    assert commands(await lenses_of(client, workspace / "app.py")) == [
        (9, "Innerloop: choose the Service for this workspace", "innerloop.chooseService", []),
    ]


async def test_mapped_by_settings_the_lens_debugs_the_handler(
    client: LanguageClient, workspace: Path
) -> None:
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={
        "innerloop": {"namespace": "shop", "service": "orders", "servicePort": 80,
                      "localPort": 8080, "program": "${workspaceFolder}/app.py"}}))
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="innerloop.refreshCodeLenses"))
    assert client.refreshes == [1]  # type: ignore[attr-defined]
    argument = {
        "service": "orders", "namespace": "shop", "servicePort": "80", "localPort": 8080,
        "program": "${workspaceFolder}/app.py", "file": str(workspace / "app.py"),
        "line": 14, "handler": "order", "path": "/orders/<int:order_id>", "methods": ["GET"],
        "match": {"pathPrefix": "/orders/"},
    }
    assert commands(await lenses_of(client, workspace / "app.py")) == [
        (9, "▶ Debug live traffic", "innerloop.debugHandler", [argument]),
        (9, "Intercept GET /orders/<int:order_id>", "innerloop.interceptHandler", [argument]),
    ]


async def test_mapped_by_the_workspace_file_and_django_views(
    client: LanguageClient, workspace: Path
) -> None:
    (workspace / ".vscode").mkdir()
    (workspace / ".vscode" / "innerloop.json").write_text(
        json.dumps({"service": "shop-web", "localPort": 8000}))
    site = workspace / "shop"
    site.mkdir()
    (site / "urls.py").write_text(
        "from django.urls import path\nfrom . import views\n"
        "urlpatterns = [path('cart/<int:pk>/', views.CartView.as_view())]\n")
    (site / "views.py").write_text(
        "from django.views import View\n\n"
        "class CartView(View):\n"
        "    async def post(self, request, pk):\n"
        "        return pk\n")
    (found,) = commands(await lenses_of(client, site / "views.py"))[:1]
    assert found[:3] == (3, "▶ Debug live traffic", "innerloop.debugHandler")
    assert found[3][0] | {"file": ""} == {
        "service": "shop-web", "namespace": "shop", "servicePort": "", "localPort": 8000,
        "program": "", "file": "", "line": 5, "handler": "CartView.post",
        "path": "/cart/<int:pk>/", "methods": ["POST"], "match": {"pathPrefix": "/cart/"},
    }


async def test_no_lens_on_files_without_handlers_or_not_python(
    client: LanguageClient, workspace: Path
) -> None:
    (workspace / "util.py").write_text("def helper():\n    return 1\n")
    (workspace / "notes.txt").write_text('@app.get("/x")\ndef f():\n    pass\n')
    assert await lenses_of(client, workspace / "util.py") == []
    assert await lenses_of(client, workspace / "notes.txt") == []
