"""The live request log of the editor's Innerloop view.

- `innerloop/requestLog` (notification, server → editor): the records that changed, at most
  every `PUSH_INTERVAL` (a burst of traffic costs one message), again when a caller's pod name
  became known;
- `innerloop/requestLog` (request): every record kept, for a view opened late (`clear: true`
  empties the log first);
- `innerloop/handlerLocation` (request): where the handler of a logged request is (`method`,
  `path`) in the workspace's Python files, found by the route finder the code lens uses.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any, TypedDict

from pygls.uris import to_fs_path

from innerloop.core.http_handlers import find_http_handlers
from innerloop.core.request_log import FlowRecord
from innerloop.core.route_match import handler_for
from innerloop.lsp.deps import Deps
from innerloop.lsp.flows import FlowSource, param
from innerloop.lsp.server import InnerloopServer

log = logging.getLogger(__name__)

REQUEST_LOG = "innerloop/requestLog"
HANDLER_LOCATION = "innerloop/handlerLocation"
PUSH_INTERVAL = 0.1
MAX_FILES = 2000
"""Python files read to find a handler: a workspace with more is cut (and says so in the log)."""
_SKIPPED_DIRS = {"node_modules", "__pycache__", "site-packages", "venv", "env", "build", "dist"}


class HandlerLocation(TypedDict):
    file: str
    line: int
    """1-based line of the handler's code lens (its first decorator, else its `def`)."""
    bodyLine: int
    handler: str
    route: str


def setup(server: InnerloopServer, deps: Deps) -> None:
    flows = deps.flows
    if flows is None:
        return
    pusher = _Pusher(server, flows)

    @server.feature(REQUEST_LOG)
    async def request_log(_ls: InnerloopServer, params: Any) -> dict[str, Any]:
        if param(params, "clear"):
            flows.log.clear()
        records = flows.log.records()
        pusher.name_later(records)
        return {"records": [flows.record_json(r) for r in records]}

    @server.feature(HANDLER_LOCATION)
    async def handler_location(ls: InnerloopServer, params: Any) -> HandlerLocation | None:
        method, path = str(param(params, "method") or ""), str(param(params, "path") or "/")
        roots = [Path(to_fs_path(f.uri) or "/") for f in ls.workspace.folders.values()]
        return await asyncio.to_thread(find_handler, roots, method, path)

    server.on_initialized.append(pusher.start)
    server.on_shutdown.append(pusher.aclose)


class _Pusher:
    def __init__(self, server: InnerloopServer, flows: FlowSource) -> None:
        self._server = server
        self._flows = flows
        self._timer: asyncio.TimerHandle | None = None
        self._naming: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._flows.log.on_change = self._schedule

    def _schedule(self) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(PUSH_INTERVAL, self._push)

    def _push(self) -> None:
        self._timer = None
        changed = self._flows.log.take_changes()
        if changed:
            self._send(changed)
            self.name_later(changed)

    def _send(self, records: list[FlowRecord]) -> None:
        self._server.protocol.notify(
            REQUEST_LOG, {"records": [self._flows.record_json(r) for r in records]})

    def name_later(self, records: list[FlowRecord]) -> None:
        """Look the callers' pods up; push the records again once named."""
        task = asyncio.ensure_future(self._name(records))
        self._naming.add(task)
        task.add_done_callback(self._naming.discard)

    async def _name(self, records: list[FlowRecord]) -> None:
        try:
            if await self._flows.name_callers(records):
                self._send([r for r in records if self._flows.log.get(r.id) is r])
        except Exception:
            log.exception("naming the callers' pods failed")

    async def aclose(self) -> None:
        self._flows.log.on_change = lambda: None
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._naming):
            task.cancel()
        await asyncio.gather(*self._naming, return_exceptions=True)


def find_handler(roots: list[Path], method: str, path: str) -> HandlerLocation | None:
    """The handler that takes `method path` in the roots' Python files. Blocking."""
    for file in _python_files(roots):
        try:
            source = file.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        if "route" not in source and "path(" not in source and "Route(" not in source \
                and not any(f".{verb}(" in source for verb in ("get", "post", "put", "delete")):
            continue
        urls = file.with_name("urls.py")
        try:
            url_source = urls.read_text() if urls != file and urls.is_file() else None
        except (OSError, UnicodeDecodeError):
            url_source = None
        found = handler_for(find_http_handlers(source, url_source), method, path)
        if found is not None:
            return {"file": str(file), "line": found.line, "bodyLine": found.body_line,
                    "handler": found.name, "route": found.path}
    return None


def _python_files(roots: list[Path]) -> list[Path]:
    files: list[Path] = []
    for root in roots:
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIPPED_DIRS)
            files.extend(Path(folder) / n for n in sorted(names) if n.endswith(".py"))
            if len(files) >= MAX_FILES:
                log.info("handler search: more than %d Python files; the rest not read",
                         MAX_FILES)
                return files[:MAX_FILES]
    return files


