"""Where each variable of a container's environment comes from, as the editor shows it on hover.

Follows the order `core.env.resolve` applies (envFrom, then env, later ones winning) but never
needs a Secret's values: a Secret contributes only its key names. ConfigMap and literal values
may be shown; a Secret's never is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from innerloop.core.env import pod_container
from innerloop.core.manifest import Manifest

NETWORK_VARIABLES = ("INNERLOOP_NET", "INNERLOOP_VOLUMES", "INNERLOOP_CLUSTER_DOMAIN")
"""What innerloop's cluster network adds to a launched program."""

_SHOWN = 200
"""ConfigMap and literal values longer than this are cut (a hover is no viewer)."""


def env_sources(
    pod: Manifest,
    container: str,
    config_maps: Mapping[str, Mapping[str, str]],
    secret_keys: Mapping[str, Iterable[str]],
) -> dict[str, str]:
    """Variable → one line (Markdown) saying where its value comes from.

    `config_maps`: name → data of the ConfigMaps the container refers to; `secret_keys`: name →
    the key names of its Secrets (values are not needed and must not be passed)."""
    c = pod_container(pod, container)
    out: dict[str, str] = {}
    for src in c.get("envFrom", []):
        prefix = src.get("prefix", "")
        if "configMapRef" in src:
            name = src["configMapRef"]["name"]
            for key, value in config_maps.get(name, {}).items():
                out[prefix + key] = f"ConfigMap `{name}` key `{key}` (envFrom): {_shown(value)}"
        else:
            name = src["secretRef"]["name"]
            for key in secret_keys.get(name, ()):
                out[prefix + key] = f"Secret `{name}` key `{key}` (envFrom)"
    for var in c.get("env", []):
        out[var["name"]] = _one(var, config_maps)
    for name in NETWORK_VARIABLES:
        out.setdefault(name, "set by innerloop (cluster network)")
    return out


def _one(var: Mapping[str, Any], config_maps: Mapping[str, Mapping[str, str]]) -> str:
    value_from = var.get("valueFrom")
    if value_from is None:
        return f"literal value: {_shown(var.get('value', ''))}"
    if "secretKeyRef" in value_from:
        ref = value_from["secretKeyRef"]
        return f"Secret `{ref['name']}` key `{ref['key']}`"
    if "configMapKeyRef" in value_from:
        ref = value_from["configMapKeyRef"]
        value = config_maps.get(ref["name"], {}).get(ref["key"])
        shown = "(missing)" if value is None else _shown(value)
        return f"ConfigMap `{ref['name']}` key `{ref['key']}`: {shown}"
    if "fieldRef" in value_from:
        return f"downward API field `{value_from['fieldRef']['fieldPath']}`"
    if "resourceFieldRef" in value_from:
        return f"downward API resource `{value_from['resourceFieldRef']['resource']}`"
    return f"valueFrom {sorted(value_from)}"


def _shown(value: str) -> str:
    text = value if len(value) <= _SHOWN else value[:_SHOWN] + "…"
    return "`" + text.replace("`", "'") + "`"
