"""The agent sidecar: the ConfigMap that carries the agent, and the workload patch that adds it.

Every builder takes a workload as API JSON and returns a changed copy (never mutating its input);
the gateway writes it back with a replace carrying the read resourceVersion, so a concurrent edit
fails with 409 and is retried from a fresh read instead of being overwritten.

The change is recorded on the workload (`core.manifest.read_record`) as
``{"v": 1, "container": NAME, "volume": NAME, "volumesAdded": bool,
"agent": {"fingerprint": HEX, "tunnelPort": N, "healthPort": N, "routes": [[LISTEN, APP]..]}}``
(the sidecar is appended to `containers`, the volume to `volumes`; `volumesAdded` says the
`volumes` list did not exist before).
"""

from __future__ import annotations

import base64
import copy
import enum
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from innerloop.core.errors import UserError
from innerloop.core.manifest import (
    RECORD_VERSION,
    Manifest,
    describe,
    pod_spec,
    read_record,
    write_record,
)
from innerloop.core.value import Value

AGENT_CONTAINER = "innerloop-agent"
AGENT_VOLUME = "innerloop-agent"
AGENT_MOUNT = "/innerloop-agent"
AGENT_KEY = "agent.pyz"
CONFIG_MAP_PREFIX = "innerloop-agent-"
MANAGED_BY = {"app.kubernetes.io/managed-by": "innerloop"}
"""The label on every object innerloop creates (only the agent ConfigMaps so far)."""
DEFAULT_TUNNEL_PORT = 15400
DEFAULT_HEALTH_PORT = 15409
FIRST_ROUTE_PORT = 15401
DEFAULT_AGENT_IMAGE = "python:3.12-slim"
"""What a first injection runs when the user names no image (any image with python3 serves)."""
DEFAULT_AGENT_CPU = "10m"
"""The sidecar's CPU request when the user names none: its weight against the app's on a busy
node (docs/reliability.md), so a heavily intercepted workload may want more (`--agent-cpu`)."""
_CPU = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)m?")


@dataclass(frozen=True)
class AgentConfig:
    """How the sidecar is built: what the user may choose, plus the ConfigMap holding the agent."""

    image: str
    config_map: str
    image_pull_policy: str = "IfNotPresent"
    cpu_request: str = DEFAULT_AGENT_CPU
    memory_request: str = "32Mi"


class AgentLayout(Value):
    """The agent's ports in one workload: where the tunnel, health probe and routes listen;
    `routes`: (listen port, app port) pairs, sorted by app port."""

    __slots__ = _fields = ("tunnel_port", "health_port", "routes")

    def __init__(self, tunnel_port: int, health_port: int,
                 routes: tuple[tuple[int, int], ...]) -> None:
        self.tunnel_port, self.health_port, self.routes = tunnel_port, health_port, routes

    def listen_port(self, app_port: int) -> int:
        for listen, app in self.routes:
            if app == app_port:
                return listen
        raise KeyError(app_port)

    def app_ports(self) -> frozenset[int]:
        return frozenset(app for _, app in self.routes)


class AgentStatus(enum.Enum):
    ABSENT = "absent"  # no sidecar: a cold start needs a rollout
    OUTDATED = "outdated"  # sidecar present but not what we would build now (image, agent, routes)
    CURRENT = "current"  # warm path: no rollout


# --- the agent ConfigMap ------------------------------------------------------------------------


def agent_config_map_name(agent: bytes) -> str:
    """Content-addressed, so a new agent build gets a new ConfigMap and rolls out on its own."""
    return CONFIG_MAP_PREFIX + hashlib.sha256(agent).hexdigest()[:12]


def agent_config_map(namespace: str, agent: bytes) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": agent_config_map_name(agent),
            "namespace": namespace,
            "labels": dict(MANAGED_BY),
        },
        "binaryData": {AGENT_KEY: base64.b64encode(agent).decode("ascii")},
    }


def _config_maps_used(workload: Manifest) -> set[str]:
    """ConfigMaps the workload's pod template mounts, directly or in a projected volume."""
    used = set()
    for volume in pod_spec(workload).get("volumes") or []:
        projected = (volume.get("projected") or {}).get("sources") or []
        sources = [volume, *projected]
        used |= {s["configMap"]["name"] for s in sources if s.get("configMap", {}).get("name")}
    return used


def _retired_revision(workload: Manifest) -> bool:
    """A Deployment's old ReplicaSet, scaled to zero: kept for `rollout undo`, running nothing.

    Its template still holds the sidecar a removal rolled away; counting it would keep every
    agent ConfigMap of a Deployment forever.
    """
    owners = workload["metadata"].get("ownerReferences") or []
    return (
        workload["kind"] == "ReplicaSet"
        and any(o.get("controller") and o.get("kind") == "Deployment" for o in owners)
        and int(workload["spec"].get("replicas", 1)) == 0
        and int((workload.get("status") or {}).get("replicas", 0)) == 0
    )


def unused_agent_config_maps(
    config_maps: Iterable[Manifest], workloads: Iterable[Manifest]
) -> list[str]:
    """The agent ConfigMaps (ours: prefix and label) that no workload's pod template mounts.

    `workloads`: every Deployment, StatefulSet and ReplicaSet of the namespace, so an agent a
    second intercepted workload still runs keeps its ConfigMap.
    """
    used = {name for w in workloads if not _retired_revision(w) for name in _config_maps_used(w)}
    return sorted(
        name
        for cm in config_maps
        if (name := cm["metadata"]["name"]).startswith(CONFIG_MAP_PREFIX)
        and MANAGED_BY.items() <= (cm["metadata"].get("labels") or {}).items()
        and name not in used
    )


# --- the sidecar --------------------------------------------------------------------------------


def _used_ports(spec: Manifest) -> set[int]:
    used = set()
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        for p in c.get("ports", []):
            used.add(int(p["containerPort"]))
    return used


def _allocate(preferred: int, taken: set[int]) -> int:
    port = preferred
    while port in taken:
        port += 1
    if port > 65535:
        raise UserError("no free port for the innerloop agent in this pod")
    taken.add(port)
    return port


def _plan_layout(
    spec: Manifest, app_ports: Iterable[int], previous: AgentLayout | None
) -> AgentLayout:
    """Pick ports no container uses; keep the previous layout's ports so a Service already
    pointing at a route keeps working through an agent upgrade."""
    wanted = set(app_ports) | (previous.app_ports() if previous else set())
    taken = _used_ports(spec) | wanted
    keep = {app: listen for listen, app in previous.routes} if previous else {}
    tunnel = _allocate(previous.tunnel_port if previous else DEFAULT_TUNNEL_PORT, taken)
    health = _allocate(previous.health_port if previous else DEFAULT_HEALTH_PORT, taken)
    routes = tuple(
        (_allocate(keep.get(app, FIRST_ROUTE_PORT), taken), app) for app in sorted(wanted)
    )
    return AgentLayout(tunnel_port=tunnel, health_port=health, routes=routes)


def agent_command(layout: AgentLayout) -> list[str]:
    """The command line contract of docs/architecture.md."""
    cmd = [
        "python3",
        f"{AGENT_MOUNT}/{AGENT_KEY}",
        "--tunnel-port",
        str(layout.tunnel_port),
        "--health-port",
        str(layout.health_port),
    ]
    for listen, app in layout.routes:
        cmd += ["--route", f"{listen}:{app}"]
    return cmd


def agent_container(config: AgentConfig, layout: AgentLayout) -> Manifest:
    """The sidecar, without a readiness probe on purpose: a restarted container with one is not
    Ready until a probe after its start passes, so after an agent restart the pod stayed out of
    the endpoints up to a second past the new agent's listening (a one-replica Service had none,
    and callers failed). The takeover needs no probe: it waits for the agents' tunnels, which
    only a listening agent accepts; the client retries a new pod's agent quietly a moment."""
    ports = [listen for listen, _ in layout.routes] + [layout.health_port]
    return {
        "name": AGENT_CONTAINER,
        "image": config.image,
        "imagePullPolicy": config.image_pull_policy,
        "command": agent_command(layout),
        "ports": [{"containerPort": p, "protocol": "TCP"} for p in ports],
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {
                "name": "POD_NAMESPACE",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
            },
            {"name": "PYTHONUNBUFFERED", "value": "1"},
        ],
        "volumeMounts": [{"name": AGENT_VOLUME, "mountPath": AGENT_MOUNT, "readOnly": True}],
        "resources": {"requests": {"cpu": config.cpu_request, "memory": config.memory_request}},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def agent_volume(config: AgentConfig) -> Manifest:
    return {"name": AGENT_VOLUME, "configMap": {"name": config.config_map}}


def _fingerprint(container: Manifest, volume: Manifest) -> str:
    canonical = json.dumps([container, volume], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def agent_layout(workload: Manifest) -> AgentLayout | None:
    """The installed agent's ports, from the workload's restore annotation (None: no agent)."""
    record = read_record(workload)
    if record is None:
        return None
    agent = record["agent"]
    return AgentLayout(
        tunnel_port=agent["tunnelPort"],
        health_port=agent["healthPort"],
        routes=tuple((listen, app) for listen, app in agent["routes"]),
    )


def install_agent(workload: Manifest, config: AgentConfig, app_ports: Iterable[int]) -> Manifest:
    """The workload with the sidecar routing `app_ports` (plus any it routed already).

    Over an existing agent this starts from the restored original, so the restore record always
    describes the change from the user's own spec, however many upgrades happened in between.
    """
    previous = agent_layout(workload)
    out = remove_agent(workload)
    spec = pod_spec(out)
    names = {c["name"] for c in spec.get("containers", []) + spec.get("initContainers", [])}
    if AGENT_CONTAINER in names:
        raise UserError(
            f"{describe(workload)} already has a container named "
            f"{AGENT_CONTAINER!r} that innerloop did not add; rename it"
        )
    if any(v["name"] == AGENT_VOLUME for v in spec.get("volumes", [])):
        raise UserError(
            f"{describe(workload)} already has a volume named "
            f"{AGENT_VOLUME!r} that innerloop did not add; rename it"
        )
    layout = _plan_layout(spec, app_ports, previous)
    container = agent_container(config, layout)
    volume = agent_volume(config)
    volumes_added = "volumes" not in spec
    spec["containers"].append(container)
    spec.setdefault("volumes", []).append(volume)
    write_record(
        out,
        {
            "v": RECORD_VERSION,
            "container": AGENT_CONTAINER,
            "volume": AGENT_VOLUME,
            "volumesAdded": volumes_added,
            "agent": {
                "fingerprint": _fingerprint(container, volume),
                "tunnelPort": layout.tunnel_port,
                "healthPort": layout.health_port,
                "routes": [list(r) for r in layout.routes],
            },
        },
    )
    return out


def remove_agent(workload: Manifest) -> Manifest:
    """The exact reverse of install_agent (a copy; unchanged if no agent was installed)."""
    out = copy.deepcopy(workload)
    record = read_record(out)
    if record is None:
        return out
    spec = pod_spec(out)
    spec["containers"] = [c for c in spec.get("containers", []) if c["name"] != record["container"]]
    if "volumes" in spec:
        spec["volumes"] = [v for v in spec["volumes"] if v["name"] != record["volume"]]
        if record["volumesAdded"] and not spec["volumes"]:
            del spec["volumes"]
    write_record(out, None)
    return out


def agent_status(workload: Manifest, config: AgentConfig, app_ports: Iterable[int]) -> AgentStatus:
    """CURRENT when installing now would change nothing: the warm path, no rollout."""
    record = read_record(workload)
    if record is None:
        return AgentStatus.ABSENT
    desired = install_agent(workload, config, app_ports)
    wanted = _agent_in(desired)
    present = _agent_in(workload)
    volume_ok = any(v["name"] == AGENT_VOLUME for v in pod_spec(workload).get("volumes", []))
    desired_record = read_record(desired) or {}
    if (
        record["agent"] == desired_record["agent"]
        and volume_ok
        and present is not None
        and wanted is not None
        and (present.get("image"), present.get("command")) == (wanted["image"], wanted["command"])
    ):
        return AgentStatus.CURRENT
    return AgentStatus.OUTDATED


def agent_image_for(chosen: str | None, workload: Manifest | None = None) -> str:
    """The user's image, else the one the workload's sidecar runs now (re-injecting the default
    would break an agent installed with --agent-image where the default cannot be pulled),
    else the default."""
    agent = None if workload is None else _agent_in(workload)
    return chosen or (agent or {}).get("image") or DEFAULT_AGENT_IMAGE


def agent_cpu_for(chosen: str | None, workload: Manifest | None = None) -> str:
    """The user's CPU request, else the one the workload's sidecar has now (a start without
    the flag must not roll out an agent someone installed with it), else the default."""
    agent = None if workload is None else _agent_in(workload)
    installed = ((agent or {}).get("resources") or {}).get("requests", {}).get("cpu")
    return chosen or (str(installed) if installed else DEFAULT_AGENT_CPU)


def is_cpu_quantity(text: str) -> bool:
    """A positive CPU quantity as Kubernetes writes one: `10m`, `250m`, `0.5`, `1`."""
    return bool(_CPU.fullmatch(text)) and float(text.rstrip("m")) > 0


def _agent_in(workload: Manifest) -> Manifest | None:
    for c in pod_spec(workload).get("containers", []):
        if c["name"] == AGENT_CONTAINER:
            return dict(c)
    return None


def pod_has_agent(pod: Manifest) -> bool:
    return any(c["name"] == AGENT_CONTAINER for c in pod.get("spec", {}).get("containers", []))
