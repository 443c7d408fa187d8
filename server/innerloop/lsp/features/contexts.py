"""What the first-run walkthrough, the launch snippet and the status bar ask the server
(extension/src/walkthroughMapping.ts):

- `innerloop.listContexts`: the kubeconfig's contexts and their namespaces, read from the file
  only, so a context whose cluster is unreachable can still be picked away from;
- `innerloop.workspaceMapping`: the workspace ↔ Service mapping as the code lens sees it (the
  settings, else `.vscode/innerloop.json`), so every part of the editor reads it one way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pygls.uris import to_fs_path

from innerloop.lsp.deps import ContextList, Deps
from innerloop.lsp.features.errors import user_errors
from innerloop.lsp.server import InnerloopServer
from innerloop.lsp.service_map import workspace_mapping

LIST_CONTEXTS = "innerloop.listContexts"
WORKSPACE_MAPPING = "innerloop.workspaceMapping"


def setup(server: InnerloopServer, deps: Deps) -> None:
    @server.command(LIST_CONTEXTS)
    @user_errors
    async def list_contexts(*_args: Any) -> ContextList:
        return await deps.intercepts.list_contexts()

    @server.command(WORKSPACE_MAPPING)
    async def mapping(*args: Any) -> dict[str, str | int] | None:
        """Argument `{file?}`: the mapping for that file (default: the first folder's)."""
        arg = args[0] if args and isinstance(args[0], dict) else {}
        file = arg.get("file")
        if not isinstance(file, str) or not file:
            folders = [to_fs_path(f.uri) for f in server.workspace.folders.values()]
            if not folders or folders[0] is None:
                return None
            file = str(Path(folders[0]) / "__any__.py")  # the folder's own map file counts
        found = await workspace_mapping(server, file)
        return None if found is None else found.as_json()
