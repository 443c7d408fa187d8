"""The workload container's volumes, as local read-only copies: what maps where, what each holds.

Kubernetes projects ConfigMap, Secret, downwardAPI and projected volumes into a container as
files (pkg/volume/{configmap,secret,downwardapi,projected}); the local process gets the same
files in a private directory, one subdirectory per volume, and the resolver hook maps the
container's mount paths to them for reads (docs/network.md, "Volumes"). Other volume kinds
(emptyDir, persistentVolumeClaim, hostPath, …) hold data the API server does not have: they are
listed, not copied.

Pure: the pod in, the fetched objects in, file sets and a mount table out. Secret and ConfigMap
data come in already decoded to bytes; a name absent from a mapping means the object does not
exist; a service-account token absent means none could be requested.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from innerloop.core.env import field_value, pod_container, resource_value
from innerloop.core.errors import UserError
from innerloop.core.manifest import Manifest

COPIED = ("configMap", "secret", "downwardAPI", "projected")
"""The volume kinds whose content comes from the API server."""
DEFAULT_MODE = 0o644
TABLE_NAME = "mounts.json"
"""The mount table's file in the volumes root (volume names are DNS labels: no dots)."""

ObjectData = Mapping[str, Mapping[str, bytes]]
"""ConfigMap or Secret name → key → bytes."""


@dataclass(frozen=True)
class TokenSpec:
    """A `serviceAccountToken` projection: what the TokenRequest asks for."""

    audience: str  # "" : the API server's own audiences
    expiration: int


@dataclass(frozen=True)
class Mount:
    """One mount of a copied volume in the container."""

    path: str  # the container's mount path, normalised
    volume: str
    sub_path: str = ""


@dataclass(frozen=True)
class VolumePlan:
    """Which of the container's mounts are copied, and which volumes (their specs) back them."""

    mounts: tuple[Mount, ...]
    volumes: Mapping[str, Manifest]
    skipped: tuple[str, ...] = ()
    """`name (kind) at /path` for each mount that is not copied."""

    @property
    def empty(self) -> bool:
        return not self.mounts


@dataclass(frozen=True)
class Needs:
    """What the shell must fetch (and keep fetching) for a plan."""

    config_maps: frozenset[str] = frozenset()
    secrets: frozenset[str] = frozenset()
    tokens: frozenset[TokenSpec] = frozenset()


@dataclass(frozen=True)
class Fetched:
    config_maps: ObjectData = field(default_factory=dict)
    secrets: ObjectData = field(default_factory=dict)
    tokens: Mapping[TokenSpec, str] = field(default_factory=dict)


@dataclass(frozen=True)
class File:
    data: bytes
    mode: int  # local: 0600, or 0700 when the pod's mode lets anyone execute it


def volume_kind(volume: Manifest) -> str:
    return next((k for k in volume if k != "name"), "unknown")


def plan(pod: Manifest, container: str) -> VolumePlan:
    """The container's mounts of copied volumes (in mount order) and the rest, by name."""
    spec = pod.get("spec", {})
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts: list[Mount] = []
    skipped: list[str] = []
    for m in pod_container(pod, container).get("volumeMounts", []):
        volume = volumes.get(m["name"], {"name": m["name"]})
        kind = volume_kind(volume)
        path = posixpath.normpath(m["mountPath"])
        if kind not in COPIED:
            skipped.append(f"{m['name']} ({kind}) at {m['mountPath']}")
        elif m.get("subPathExpr"):
            skipped.append(f"{m['name']} ({kind}, subPathExpr) at {m['mountPath']}")
        elif path == "/" or not path.startswith("/") or not _safe(m.get("subPath") or "."):
            skipped.append(f"{m['name']} ({kind}) at {m['mountPath']!r}: not a usable path")
        else:
            sub = posixpath.normpath(m["subPath"]) if m.get("subPath") else ""
            mounts.append(Mount(path, m["name"], sub))
    used = {m.volume for m in mounts}
    return VolumePlan(tuple(mounts), {n: v for n, v in volumes.items() if n in used},
                      tuple(skipped))


def _sources(volume: Manifest) -> list[tuple[str, Manifest]]:
    """A volume as (kind, source) pairs: one for a plain volume, one per projected source."""
    kind = volume_kind(volume)
    if kind == "projected":
        return [(volume_kind(s), s[volume_kind(s)]) for s in volume["projected"].get("sources", [])]
    return [(kind, volume[kind])]


def needs(volume_plan: VolumePlan) -> Needs:
    config_maps: set[str] = set()
    secrets: set[str] = set()
    tokens: set[TokenSpec] = set()
    for volume in volume_plan.volumes.values():
        for kind, source in _sources(volume):
            if kind == "configMap":
                config_maps.add(source["name"])
            elif kind == "secret":
                secrets.add(source.get("secretName") or source["name"])
            elif kind == "serviceAccountToken":
                tokens.add(token_spec(source))
    return Needs(frozenset(config_maps), frozenset(secrets), frozenset(tokens))


def token_spec(source: Manifest) -> TokenSpec:
    return TokenSpec(source.get("audience") or "", int(source.get("expirationSeconds") or 3600))


def local_mode(mode: int) -> int:
    """Owner only: read and write for innerloop's updates; execute if the pod's file had it."""
    return 0o700 if mode & 0o111 else 0o600


def _safe(path: str) -> bool:
    """A relative path that stays inside its volume (the API server validates this too)."""
    return bool(path) and not path.startswith("/") and ".." not in path.split("/")


def _format_map(values: Mapping[str, Any]) -> str:
    """The kubelet's fieldpath.FormatMap: sorted `key="value"` lines."""
    return "\n".join(f"{k}={_go_quote(str(values[k]))}" for k in sorted(values))


def _go_quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return f'"{escaped}"'


def _downward(pod: Manifest, container: str, item: Manifest) -> bytes | None:
    if "fieldRef" in item:
        path = item["fieldRef"]["fieldPath"]
        if path in ("metadata.labels", "metadata.annotations"):
            return _format_map(pod.get("metadata", {}).get(path.split(".")[1], {})).encode()
        return field_value(pod, path).encode()
    value = resource_value(pod, container, item["resourceFieldRef"], {})
    return None if value is None else value.encode()


def volume_files(volume: Manifest, pod: Manifest, container: str, fetched: Fetched
                 ) -> tuple[dict[str, File], list[str]]:
    """The files of one volume (relative path → content and local mode), and warnings for
    what is left out (a missing object or key that is not optional, an unsupported source)."""
    name = volume["name"]
    kind = volume_kind(volume)
    default = volume[kind].get("defaultMode", DEFAULT_MODE)
    files: dict[str, File] = {}
    warnings: list[str] = []

    def put(path: str, data: bytes, mode: int | None) -> None:
        if _safe(path):
            files[posixpath.normpath(path)] = File(data, local_mode(default if mode is None
                                                                    else mode))
        else:
            warnings.append(f"volume {name}: {path!r} is not a relative path inside it; skipped")

    for source_kind, source in _sources(volume):
        if source_kind in ("configMap", "secret"):
            label = "configmap" if source_kind == "configMap" else "secret"
            obj_name = source.get("secretName") or source["name"]
            objects = fetched.config_maps if source_kind == "configMap" else fetched.secrets
            data = objects.get(obj_name)
            if data is None:
                if not source.get("optional"):
                    warnings.append(f"volume {name}: {label} {obj_name!r} not found")
                continue
            items = source.get("items") or [{"key": k, "path": k} for k in sorted(data)]
            for item in items:
                if item["key"] in data:
                    put(item["path"], data[item["key"]], item.get("mode"))
                elif not source.get("optional"):
                    warnings.append(f"volume {name}: {label} {obj_name!r} has no key "
                                    f"{item['key']!r}")
        elif source_kind == "downwardAPI":
            for item in source.get("items", []):
                try:
                    value = _downward(pod, container, item)
                except UserError as exc:
                    warnings.append(f"volume {name}: {item['path']}: {exc}")
                    continue
                if value is None:
                    warnings.append(f"volume {name}: {item['path']}: the limit is the node's "
                                    "capacity, which innerloop cannot read; left out")
                else:
                    put(item["path"], value, item.get("mode"))
        elif source_kind == "serviceAccountToken":
            token = fetched.tokens.get(token_spec(source))
            if token is not None:  # the shell says once why there is none
                put(source["path"], token.encode(), None)
        else:
            warnings.append(f"volume {name}: {source_kind} sources are not copied")
    return files, warnings


def mount_table(volume_plan: VolumePlan, root: str) -> list[tuple[str, str]]:
    """(container path, local path) for each copied mount, the most specific first, so a
    mount inside another mount's path wins (as the later mount does in the container)."""
    table = {m.path: posixpath.join(root, m.volume, m.sub_path) if m.sub_path
             else posixpath.join(root, m.volume) for m in volume_plan.mounts}
    return sorted(table.items(), key=lambda entry: (-len(entry[0]), entry[0]))


def local_path(table: Sequence[tuple[str, str]], path: str) -> str | None:
    """The copy that an absolute container path reads, or None (not under a copied mount).

    The resolver hook carries a stdlib twin of this (`_innerloop_volumes.local`), proven equal by
    tests/integration/test_volume_hook.py over the same table."""
    if not path.startswith("/"):
        return None
    path = posixpath.normpath(path)
    for mounted, local in table:
        if path == mounted:
            return local
        if path.startswith(mounted + "/"):
            return local + path[len(mounted):]
    return None
