"""Env awareness in Python files: hover on `os.environ["X"]`/`os.getenv("X")` shows where the
mapped Service's workload gets X (never a Secret's value), a warning where code reads a variable
the workload does not define, and completion of the workload's variable names in those calls.

The workload's env sources are fetched once per mapping and again when a file is saved.
"""

from __future__ import annotations

import logging

from lsprotocol import types

from innerloop.core.env_reads import EnvRead, completing_name, env_reads
from innerloop.core.errors import InnerloopError
from innerloop.lsp.deps import Deps, WorkloadEnvSources
from innerloop.lsp.server import InnerloopServer
from innerloop.lsp.service_map import ServiceMapping, workspace_mapping

log = logging.getLogger(__name__)

SOURCE = "innerloop"


def _range(read: EnvRead) -> types.Range:
    return types.Range(types.Position(read.line, read.start), types.Position(read.line, read.end))


def undefined_reads(reads: list[EnvRead], sources: dict[str, str], service: str
                    ) -> list[types.Diagnostic]:
    return [
        types.Diagnostic(
            _range(r), f"{r.name} is not defined in the env of {service}'s workload",
            severity=types.DiagnosticSeverity.Warning, source=SOURCE)
        for r in reads if r.name not in sources
    ]


def setup(server: InnerloopServer, deps: Deps) -> None:
    env = deps.env
    if env is None:
        return
    workload_env: WorkloadEnvSources = env

    async def sources_for(uri: str, refresh: bool = False
                          ) -> tuple[ServiceMapping, dict[str, str]] | None:
        document = server.workspace.get_text_document(uri)
        mapping = await workspace_mapping(server, document.path)
        if mapping is None:
            return None
        try:
            found = await workload_env.env_sources(
                mapping.namespace or None, mapping.service, mapping.servicePort or None, refresh)
        except InnerloopError as err:
            log.info("env of %s: %s", mapping.service, err.user_line())
            return None
        return mapping, found

    async def publish(uri: str, refresh: bool = False) -> None:
        if not uri.endswith(".py"):
            return
        known = await sources_for(uri, refresh)
        if known is None:
            return
        mapping, sources = known
        reads = env_reads(server.workspace.get_text_document(uri).source)
        server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=uri, diagnostics=undefined_reads(reads, sources, mapping.service)))

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    async def opened(ls: InnerloopServer, params: types.DidOpenTextDocumentParams) -> None:
        await publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    async def saved(ls: InnerloopServer, params: types.DidSaveTextDocumentParams) -> None:
        await publish(params.text_document.uri, refresh=True)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    async def hover(ls: InnerloopServer, params: types.HoverParams) -> types.Hover | None:
        uri, at = params.text_document.uri, params.position
        reads = env_reads(ls.workspace.get_text_document(uri).source)
        read = next((r for r in reads
                     if r.line == at.line and r.start <= at.character <= r.end), None)
        if read is None:
            return None
        known = await sources_for(uri)
        if known is None:
            return None
        mapping, sources = known
        where = sources.get(read.name, "not defined in the workload's env")
        text = f"**{read.name}** in `{mapping.service}`: {where}"
        return types.Hover(types.MarkupContent(types.MarkupKind.Markdown, text), _range(read))

    @server.feature(types.TEXT_DOCUMENT_COMPLETION,
                    types.CompletionOptions(trigger_characters=['"', "'"]))
    async def complete(ls: InnerloopServer, params: types.CompletionParams
                       ) -> list[types.CompletionItem]:
        document = ls.workspace.get_text_document(params.text_document.uri)
        lines = document.lines
        at = params.position
        line = lines[at.line] if at.line < len(lines) else ""
        typed = completing_name(line[: at.character])
        if typed is None:
            return []
        known = await sources_for(params.text_document.uri)
        if known is None:
            return []
        return [
            types.CompletionItem(name, kind=types.CompletionItemKind.Constant, detail=where)
            for name, where in sorted(known[1].items()) if name.startswith(typed)
        ]
