"""A container's environment, resolved from its pod plus fetched ConfigMaps and Secrets.

Kubernetes builds a container's environment in the kubelet; the local process must see the same
values, so this follows the kubelet's rules (pkg/kubelet/kubelet_pods.go,
third_party/forked/golang/expansion):

- `envFrom` first, in order, later sources overriding earlier ones; keys get the source's prefix;
  values are taken as they are (no `$(VAR)` expansion);
- then `env`, in order: a literal `value` has `$(VAR)` expanded against everything defined so far
  (`$$` is an escaped `$`, an unknown `$(NAME)` stays as written); `valueFrom` values are not
  expanded;
- a missing ConfigMap/Secret or key is an error unless the reference is `optional`, in which case
  the variable (or the whole envFrom source) is left out.

Not reproduced: the Service-link variables (`ORDERS_SERVICE_HOST` …), which name cluster-internal
addresses a laptop cannot reach.

ConfigMaps and Secrets are passed in as name → {key: value} with Secret values already decoded;
a name absent from the mapping means the object does not exist.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from innerloop.core.errors import UserError
from innerloop.core.manifest import Manifest

Data = Mapping[str, Mapping[str, str]]


@dataclass(frozen=True)
class Sources:
    """What the gateway must fetch before resolving: ConfigMap and Secret names."""

    config_maps: frozenset[str] = frozenset()
    secrets: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ResolvedEnv:
    values: dict[str, str]
    warnings: tuple[str, ...] = field(default=())
    """Variables left out, and why (e.g. a limit the node decides)."""


def pod_container(pod: Manifest, name: str) -> Manifest:
    for c in pod.get("spec", {}).get("containers", []):
        if c["name"] == name:
            return dict(c)
    names = ", ".join(c["name"] for c in pod.get("spec", {}).get("containers", []))
    raise UserError(f"pod has no container {name!r}; its containers are {names}")


def sources(pod: Manifest, container: str) -> Sources:
    """Every ConfigMap and Secret the container's env refers to."""
    c = pod_container(pod, container)
    cms: set[str] = set()
    secrets: set[str] = set()
    for src in c.get("envFrom", []):
        if "configMapRef" in src:
            cms.add(src["configMapRef"]["name"])
        if "secretRef" in src:
            secrets.add(src["secretRef"]["name"])
    for var in c.get("env", []):
        value_from = var.get("valueFrom", {})
        if "configMapKeyRef" in value_from:
            cms.add(value_from["configMapKeyRef"]["name"])
        if "secretKeyRef" in value_from:
            secrets.add(value_from["secretKeyRef"]["name"])
    return Sources(config_maps=frozenset(cms), secrets=frozenset(secrets))


# --- $(VAR) expansion, exactly as Kubernetes does it ----------------------------------------------


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Kubernetes' `$(VAR)` expansion: `$$` → `$`, `$(NAME)` → value or kept as written,
    an unclosed `$(` and a `$` before anything else are kept."""
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            nxt = text[cursor + 1]
            if nxt == "$":
                out.append("$")
                advance = 1
            elif nxt == "(":
                close = text.find(")", cursor + 2)
                if close == -1:
                    out.append("$(")
                    advance = 1
                else:
                    name = text[cursor + 2 : close]
                    value = lookup(name)
                    out.append(f"$({name})" if value is None else value)
                    advance = close - cursor
            else:
                out.append("$" + nxt)
                advance = 1
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)


# --- quantities, for resourceFieldRef -------------------------------------------------------------

_SUFFIX = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
}
_QUANTITY = re.compile(
    r"([+-]?(?:\d+\.?\d*|\.\d+))(?:[eE]([+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)"
)


def parse_quantity(text: str) -> Fraction:
    """A Kubernetes resource quantity (`100m`, `1.5Gi`, `1e3`) as an exact number."""
    m = _QUANTITY.fullmatch(str(text).strip())
    if not m:
        raise UserError(f"{text!r} is not a Kubernetes quantity")
    number = Fraction(m.group(1))
    if m.group(2) is not None:
        return number * Fraction(10) ** int(m.group(2))
    return number * _SUFFIX[m.group(3) or ""]


def resource_value(
    pod: Manifest, current: str, ref: Mapping[str, Any], node_allocatable: Mapping[str, str]
) -> str | None:
    """The kubelet's ConvertResourceCPUToString / ConvertResourceMemoryToString; None when the
    limit is unset and the node's allocatable capacity (the kubelet's fallback) is unknown."""
    c = pod_container(pod, ref.get("containerName") or current)
    kind, _, resource = ref["resource"].partition(".")
    if kind not in ("limits", "requests") or not resource:
        raise UserError(f"resourceFieldRef {ref['resource']!r} is not supported")
    raw = c.get("resources", {}).get(kind, {}).get(resource)
    if raw is None and kind == "limits":
        raw = node_allocatable.get(resource)
        if raw is None:
            return None
    value = parse_quantity(raw) if raw is not None else Fraction(0)
    divisor = parse_quantity(ref.get("divisor") or "1")
    if divisor <= 0:
        raise UserError(f"resourceFieldRef divisor {ref.get('divisor')!r} must be positive")
    if resource == "cpu":
        # CPU is rounded to millicores first, as MilliValue() does.
        return str(math.ceil(Fraction(math.ceil(value * 1000)) / math.ceil(divisor * 1000)))
    return str(math.ceil(Fraction(math.ceil(value)) / math.ceil(divisor)))


# --- fieldRef ---------------------------------------------------------------------------------

_SUBSCRIPT = re.compile(r"metadata\.(labels|annotations)\['(.*)'\]")


def field_value(pod: Manifest, path: str) -> str:
    meta = pod.get("metadata", {})
    spec = pod.get("spec", {})
    status = pod.get("status", {})
    m = _SUBSCRIPT.fullmatch(path)
    if m:
        return str(meta.get(m.group(1), {}).get(m.group(2), ""))
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": status.get("hostIP"),
        "status.podIP": status.get("podIP"),
        "status.hostIPs": ",".join(i["ip"] for i in status.get("hostIPs", [])),
        "status.podIPs": ",".join(i["ip"] for i in status.get("podIPs", [])),
    }
    if path in simple:
        return str(simple[path] or "")
    raise UserError(f"fieldRef {path!r} is not supported")


# --- resolution -------------------------------------------------------------------------------


def _key_ref(var: str, kind: str, ref: Mapping[str, Any], data: Data) -> str | None:
    name, key = ref["name"], ref["key"]
    values = data.get(name)
    if values is None:
        if ref.get("optional"):
            return None
        raise UserError(f"env {var}: {kind} {name!r} not found (and the reference is not optional)")
    if key not in values:
        if ref.get("optional"):
            return None
        raise UserError(
            f"env {var}: {kind} {name!r} has no key {key!r} (and the reference is not optional)"
        )
    return values[key]


def resolve(
    pod: Manifest,
    container: str,
    config_maps: Data,
    secrets: Data,
    node_allocatable: Mapping[str, str] | None = None,
) -> ResolvedEnv:
    """The container's environment, as the kubelet would build it in this pod."""
    c = pod_container(pod, container)
    env: dict[str, str] = {}
    warnings: list[str] = []
    for src in c.get("envFrom", []):
        prefix = src.get("prefix", "")
        kind, ref, data = (
            ("configMap", src["configMapRef"], config_maps)
            if "configMapRef" in src
            else ("secret", src["secretRef"], secrets)
        )
        values = data.get(ref["name"])
        if values is None:
            if ref.get("optional"):
                continue
            raise UserError(
                f"envFrom: {kind} {ref['name']!r} not found (and the reference is not optional)"
            )
        for key, text in values.items():
            if not _valid_name(prefix + key):
                warnings.append(
                    f"{kind} {ref['name']!r} key {key!r}: not a valid "
                    "variable name, skipped (as the kubelet does)"
                )
                continue
            env[prefix + key] = text
    for var in c.get("env", []):
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(var.get("value", ""), env.get)
            continue
        value_from = var["valueFrom"]
        value: str | None
        if "configMapKeyRef" in value_from:
            value = _key_ref(name, "configMap", value_from["configMapKeyRef"], config_maps)
        elif "secretKeyRef" in value_from:
            value = _key_ref(name, "secret", value_from["secretKeyRef"], secrets)
        elif "fieldRef" in value_from:
            value = field_value(pod, value_from["fieldRef"]["fieldPath"])
        elif "resourceFieldRef" in value_from:
            value = resource_value(
                pod, container, value_from["resourceFieldRef"], node_allocatable or {}
            )
            if value is None:
                warnings.append(
                    f"env {name}: {value_from['resourceFieldRef']['resource']} is "
                    "not set and the node's capacity is unknown; left out"
                )
                continue
        else:
            raise UserError(f"env {name}: unsupported valueFrom {sorted(value_from)}")
        if value is not None:
            env[name] = value
    return ResolvedEnv(values=env, warnings=tuple(warnings))


def _valid_name(name: str) -> bool:
    """Relaxed environment variable names (Kubernetes ≥ 1.32): printable ASCII except `=`."""
    return bool(name) and all(" " <= ch <= "~" and ch != "=" for ch in name)
