"""Which Service a workspace's code serves: the `innerloop.service` settings, else the nearest
`.vscode/innerloop.json` (same keys, flat) above the file, within the workspace.

The code lens debugs that Service; hover and diagnostics read its workload's env.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from pygls.uris import to_fs_path

from innerloop.lsp.server import InnerloopServer
from innerloop.lsp.settings import Settings, parse_settings

log = logging.getLogger(__name__)

MAP_FILE = Path(".vscode") / "innerloop.json"


@dataclass(frozen=True)
class ServiceMapping:
    service: str
    namespace: str
    """Empty: the context's namespace, as kubectl does."""
    servicePort: str
    localPort: int
    program: str

    def as_json(self) -> dict[str, str | int]:
        """The keys the extension's lens commands read (extension/src/codeLens.ts)."""
        return {
            "service": self.service,
            "namespace": self.namespace,
            "servicePort": self.servicePort,
            "localPort": self.localPort,
            "program": self.program,
        }


def mapping_from(settings: Settings) -> ServiceMapping | None:
    if not settings.service:
        return None
    return ServiceMapping(settings.service, settings.namespace, settings.servicePort,
                          settings.localPort, settings.program)


async def workspace_mapping(server: InnerloopServer, file: str) -> ServiceMapping | None:
    """The settings' mapping, else the map file's; None when the workspace maps to none."""
    found = mapping_from(server.settings)
    if found is not None:
        return found
    roots = [Path(to_fs_path(f.uri) or "/") for f in server.workspace.folders.values()]
    return await asyncio.to_thread(_from_file, Path(file), roots, server.settings)


def _from_file(file: Path, roots: list[Path], settings: Settings) -> ServiceMapping | None:
    for folder in file.parents:
        candidate = folder / MAP_FILE
        if candidate.is_file():
            return _read(candidate, settings)
        if folder in roots:
            return None
    return None


def _read(path: Path, settings: Settings) -> ServiceMapping | None:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        log.warning("%s: %s; ignored", path, err)
        return None
    parsed, problems = parse_settings(raw)
    for problem in problems:
        log.warning("%s: %s", path, problem)
    # The file maps the Service; the cluster settings still come from the editor's.
    return mapping_from(Settings(
        kubeconfig=settings.kubeconfig, context=settings.context,
        namespace=parsed.namespace or settings.namespace, agentImage=settings.agentImage,
        service=parsed.service, servicePort=parsed.servicePort, localPort=parsed.localPort,
        program=parsed.program,
    ))
