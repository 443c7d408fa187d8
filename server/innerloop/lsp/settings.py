"""The settings the editor sends (initializationOptions, workspace/didChangeConfiguration).

Validated once into a frozen dataclass: an invalid value gives one message and the default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from innerloop.core.agent_patch import is_cpu_quantity


@dataclass(frozen=True)
class Settings:
    kubeconfig: str = ""
    """Path of the kubeconfig; empty: $KUBECONFIG, else ~/.kube/config."""

    context: str = ""
    """kubeconfig context; empty: the kubeconfig's current context."""

    namespace: str = ""
    """Default namespace; empty: the context's namespace."""

    agentImage: str = ""
    """Image of the agent sidecar (any image with python3 >= 3.10); empty: the default image."""

    agentCpu: str = ""
    """CPU request of the agent sidecar (`100m`, `0.5`); empty: the installed agent's, else 10m."""

    # The workspace <-> Service mapping (also `.vscode/innerloop.json`): what the code lens debugs.
    service: str = ""
    """The Service this workspace's code serves; empty: no mapping (the lens offers to pick one)."""

    servicePort: str = ""
    """The Service's port, number or name; empty: its only port."""

    localPort: int = 0
    """Where the program listens locally; 0: the Service port's target port."""

    program: str = ""
    """The program the debug session runs (a path, `${workspaceFolder}` allowed); empty: the file."""


_NUMBER_OR_NAME = {"servicePort"}


_FIELDS = {f.name for f in dataclasses.fields(Settings)}


def parse_settings(raw: object) -> tuple[Settings, list[str]]:
    """Returns the settings and one problem per ignored value.

    Accepts the flat form (initializationOptions) and VS Code's `{"innerloop": {...}}` form
    (didChangeConfiguration). Unknown keys (e.g. the client-side `python`, `trace`) are ignored.
    """
    if raw is None:
        return Settings(), []
    if not isinstance(raw, Mapping):
        return Settings(), [f"innerloop settings must be an object, got {type(raw).__name__}"]
    section: object = raw.get("innerloop", raw)
    if not isinstance(section, Mapping):
        return Settings(), [f"innerloop settings must be an object, got {type(section).__name__}"]
    values: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in section.items():
        if key not in _FIELDS or value is None:
            continue
        if key == "localPort":
            port = _port(value)
            if port is None:
                problems.append(f"innerloop.localPort must be a port number, got {value!r}; "
                                "using the default")
            else:
                values[key] = port
        elif key == "agentCpu" and isinstance(value, str) and value.strip() and \
                not is_cpu_quantity(value.strip()):
            problems.append(f"innerloop.agentCpu must be a CPU quantity such as 10m, 100m or "
                            f"0.5, got {value!r}; using the default")
        elif isinstance(value, str):
            values[key] = value.strip()
        elif key in _NUMBER_OR_NAME and _port(value) is not None:
            values[key] = str(value)
        else:
            problems.append(f"innerloop.{key} must be a string, got {value!r}; using the default")
    return Settings(**values), problems


def _port(value: object) -> int | None:
    """1..65535 as a number or its digits; 0 or "" for "not set"."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    elif value == "":
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535:
        return value
    return None
