"""The settings the editor sends (initializationOptions, workspace/didChangeConfiguration).

Validated once into a frozen dataclass: an invalid value gives one message and the default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


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
        if isinstance(value, str):
            values[key] = value.strip()
        else:
            problems.append(f"innerloop.{key} must be a string, got {value!r}; using the default")
    return Settings(**values), problems
