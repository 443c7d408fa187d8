"""Kubernetes patch builders: agent sidecar in, Service takeover, and their exact reverse.

Shape: every builder takes an object as API JSON (camelCase dict) and returns a new, changed
copy (a *merged object*, never mutating its input). The gateway writes it back with a replace
(PUT) carrying the read resourceVersion, so a concurrent edit fails with 409 and is retried from
a fresh read instead of being overwritten.

Each change is recorded in the annotation `innerloop.dev/restore` of the object it changed, as
JSON of exactly what was added or replaced, so any process (another laptop, `uninstall`) can undo
it, and after undoing the spec deep-equals what it was before:

- workload: ``{"v": 1, "container": NAME, "volume": NAME, "volumesAdded": bool,
  "agent": {"fingerprint": HEX, "tunnelPort": N, "healthPort": N, "routes": [[LISTEN, APP]..]}}``
  (the sidecar is appended to `containers`, the volume to `volumes`; `volumesAdded` says the
  `volumes` list did not exist before);
- Service: ``{"v": 1, "ports": [{"port": "80/http", "targetPort": 8080 | "http" | null}]}``
  (null: the port had no targetPort).

Also here: rollout progress of a patched workload, judged from its status and pods.
"""

from __future__ import annotations

import base64
import copy
import enum
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from innerloop.core.errors import UserError

Manifest = dict[str, Any]
"""A Kubernetes object as API JSON (camelCase keys), e.g. from the API server's raw response."""

RESTORE_ANNOTATION = "innerloop.dev/restore"
AGENT_CONTAINER = "innerloop-agent"
AGENT_VOLUME = "innerloop-agent"
AGENT_MOUNT = "/innerloop-agent"
AGENT_KEY = "agent.pyz"
CONFIG_MAP_PREFIX = "innerloop-agent-"
DEFAULT_TUNNEL_PORT = 15400
DEFAULT_HEALTH_PORT = 15409
FIRST_ROUTE_PORT = 15401
RECORD_VERSION = 1


@dataclass(frozen=True)
class AgentConfig:
    """How the sidecar is built: what the user may choose, plus the ConfigMap holding the agent."""

    image: str
    config_map: str
    image_pull_policy: str = "IfNotPresent"
    cpu_request: str = "10m"
    memory_request: str = "32Mi"


@dataclass(frozen=True)
class AgentLayout:
    """The agent's ports in one workload: where the tunnel, health probe and routes listen."""

    tunnel_port: int
    health_port: int
    routes: tuple[tuple[int, int], ...]
    """(listen port, app port) pairs, sorted by app port."""

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


def _meta(obj: Manifest) -> dict[str, Any]:
    meta: dict[str, Any] = obj.setdefault("metadata", {})
    return meta


def _read_record(obj: Manifest) -> dict[str, Any] | None:
    raw = obj.get("metadata", {}).get("annotations", {}).get(RESTORE_ANNOTATION)
    if not raw:
        return None
    try:
        record = json.loads(raw)
    except ValueError as exc:
        raise UserError(
            f"annotation {RESTORE_ANNOTATION} on {_describe(obj)} is not JSON; "
            "remove it and restore the object by hand"
        ) from exc
    if not isinstance(record, dict) or record.get("v") != RECORD_VERSION:
        raise UserError(
            f"annotation {RESTORE_ANNOTATION} on {_describe(obj)} was written by "
            "another innerloop version; uninstall with that version"
        )
    return record


def _write_record(obj: Manifest, record: dict[str, Any] | None) -> None:
    """Set or drop the annotation; an emptied annotations map is dropped as the API does."""
    meta = _meta(obj)
    annotations = meta.setdefault("annotations", {})
    if record is None:
        annotations.pop(RESTORE_ANNOTATION, None)
    else:
        annotations[RESTORE_ANNOTATION] = json.dumps(record, sort_keys=True, separators=(",", ":"))
    if not annotations:
        del meta["annotations"]


def _describe(obj: Manifest) -> str:
    return f"{obj.get('kind', 'object').lower()}/{obj.get('metadata', {}).get('name', '?')}"


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
            "labels": {"app.kubernetes.io/managed-by": "innerloop"},
        },
        "binaryData": {AGENT_KEY: base64.b64encode(agent).decode("ascii")},
    }


# --- the sidecar --------------------------------------------------------------------------------


def _pod_spec(workload: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def _used_ports(pod_spec: Manifest) -> set[int]:
    used = set()
    for c in pod_spec.get("containers", []) + pod_spec.get("initContainers", []):
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
    pod_spec: Manifest, app_ports: Iterable[int], previous: AgentLayout | None
) -> AgentLayout:
    """Pick ports no container uses; keep the previous layout's ports so a Service already
    pointing at a route keeps working through an agent upgrade."""
    wanted = set(app_ports) | (previous.app_ports() if previous else set())
    taken = _used_ports(pod_spec) | wanted
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
        "readinessProbe": {
            "httpGet": {"path": "/healthz", "port": layout.health_port},
            "periodSeconds": 1,
        },
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
    record = _read_record(workload)
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
    spec = _pod_spec(out)
    names = {c["name"] for c in spec.get("containers", []) + spec.get("initContainers", [])}
    if AGENT_CONTAINER in names:
        raise UserError(
            f"{_describe(workload)} already has a container named "
            f"{AGENT_CONTAINER!r} that innerloop did not add; rename it"
        )
    if any(v["name"] == AGENT_VOLUME for v in spec.get("volumes", [])):
        raise UserError(
            f"{_describe(workload)} already has a volume named "
            f"{AGENT_VOLUME!r} that innerloop did not add; rename it"
        )
    layout = _plan_layout(spec, app_ports, previous)
    container = agent_container(config, layout)
    volume = agent_volume(config)
    volumes_added = "volumes" not in spec
    spec["containers"].append(container)
    spec.setdefault("volumes", []).append(volume)
    _write_record(
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
    record = _read_record(out)
    if record is None:
        return out
    spec = _pod_spec(out)
    spec["containers"] = [c for c in spec.get("containers", []) if c["name"] != record["container"]]
    if "volumes" in spec:
        spec["volumes"] = [v for v in spec["volumes"] if v["name"] != record["volume"]]
        if record["volumesAdded"] and not spec["volumes"]:
            del spec["volumes"]
    _write_record(out, None)
    return out


def agent_status(workload: Manifest, config: AgentConfig, app_ports: Iterable[int]) -> AgentStatus:
    """CURRENT when installing now would change nothing: the warm path, no rollout."""
    record = _read_record(workload)
    if record is None:
        return AgentStatus.ABSENT
    desired = install_agent(workload, config, app_ports)
    wanted = _agent_in(desired)
    present = _agent_in(workload)
    volume_ok = any(v["name"] == AGENT_VOLUME for v in _pod_spec(workload).get("volumes", []))
    desired_record = _read_record(desired) or {}
    if (
        record["agent"] == desired_record["agent"]
        and volume_ok
        and present is not None
        and wanted is not None
        and (present.get("image"), present.get("command")) == (wanted["image"], wanted["command"])
    ):
        return AgentStatus.CURRENT
    return AgentStatus.OUTDATED


def _agent_in(workload: Manifest) -> Manifest | None:
    for c in _pod_spec(workload).get("containers", []):
        if c["name"] == AGENT_CONTAINER:
            return dict(c)
    return None


# --- the Service --------------------------------------------------------------------------------


def port_label(port: int, name: str | None) -> str:
    """How a service port is named in the restore record: `80/http`, or `80` when unnamed."""
    return f"{port}/{name}" if name else str(port)


def _label_of(entry: Manifest) -> str:
    return port_label(int(entry["port"]), entry.get("name"))


def take_over_service(service: Manifest, label: str, listen_port: int) -> Manifest:
    """The Service with port `label`'s targetPort pointing at the agent's route `listen_port`."""
    out = copy.deepcopy(service)
    record = _read_record(out) or {"v": RECORD_VERSION, "ports": []}
    entries = [p for p in out.get("spec", {}).get("ports", []) if _label_of(p) == label]
    if not entries:
        raise UserError(f"service {out['metadata']['name']!r} has no port {label}")
    entry = entries[0]
    if not any(r["port"] == label for r in record["ports"]):
        record["ports"].append({"port": label, "targetPort": entry.get("targetPort")})
    entry["targetPort"] = listen_port
    _write_record(out, record)
    return out


def restore_service(service: Manifest, labels: Iterable[str] | None = None) -> Manifest:
    """The exact reverse of take_over_service, for the given ports (default: all taken over)."""
    out = copy.deepcopy(service)
    record = _read_record(out)
    if record is None:
        return out
    wanted = None if labels is None else set(labels)
    keep = []
    for r in record["ports"]:
        if wanted is not None and r["port"] not in wanted:
            keep.append(r)
            continue
        for entry in out["spec"]["ports"]:
            if _label_of(entry) == r["port"]:
                if r["targetPort"] is None:
                    entry.pop("targetPort", None)
                else:
                    entry["targetPort"] = r["targetPort"]
    record["ports"] = keep
    _write_record(out, record if keep else None)
    return out


def service_takeover(service: Manifest) -> dict[str, int | str | None]:
    """Port label → original targetPort (None: unset), for every port taken over."""
    record = _read_record(service)
    if record is None:
        return {}
    return {r["port"]: r["targetPort"] for r in record["ports"]}


# --- rollout ------------------------------------------------------------------------------------


def pod_ready(pod: Manifest) -> bool:
    """Ready and not on its way out: a pod whose agent can carry a tunnel."""
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in pod.get("status", {}).get("conditions", [])
    )


def pod_has_agent(pod: Manifest) -> bool:
    return any(c["name"] == AGENT_CONTAINER for c in pod.get("spec", {}).get("containers", []))


def _container_signature(spec: Manifest) -> list[tuple[Any, ...]]:
    return [
        (c["name"], c.get("image"), c.get("command"), c.get("args"))
        for key in ("initContainers", "containers")
        for c in spec.get(key, [])
    ]


def pod_matches_template(pod: Manifest, workload: Manifest) -> bool:
    """Whether the pod runs the workload's current containers (a ReplicaSet does not replace its
    pods when its template changes, so the gateway replaces the ones that do not match)."""
    return _container_signature(pod.get("spec", {})) == _container_signature(_pod_spec(workload))


@dataclass(frozen=True)
class Rollout:
    """Where a workload's rollout stands; `done` or a line saying what it waits for."""

    done: bool
    message: str
    replace: tuple[str, ...] = ()
    """Pods the gateway must delete to make progress (ReplicaSet, StatefulSet OnDelete)."""


def manual_rollout(workload: Manifest) -> bool:
    """No controller replaces this workload's pods when its template changes: we must."""
    kind: str = workload["kind"]
    strategy = workload["spec"].get("updateStrategy", {}).get("type")
    return kind == "ReplicaSet" or (kind == "StatefulSet" and strategy == "OnDelete")


def rollout_status(workload: Manifest, pods: Sequence[Manifest]) -> Rollout:
    """kubectl's rollout-status rules, plus manual replacement where no controller rolls pods."""
    kind = workload["kind"]
    spec = workload["spec"]
    status = workload.get("status", {})
    want = int(spec.get("replicas", 1))
    if status.get("observedGeneration", 0) < workload["metadata"].get("generation", 0):
        return Rollout(False, f"waiting for the {kind} controller to see the change")
    if kind == "Deployment":
        for cond in status.get("conditions", []):
            if (
                cond.get("type") == "Progressing"
                and cond.get("reason") == "ProgressDeadlineExceeded"
            ):
                raise UserError(
                    f"{_describe(workload)} rollout exceeded its progress deadline: "
                    f"{cond.get('message', '')}".rstrip(": ")
                )
        updated = int(status.get("updatedReplicas", 0))
        if updated < want:
            return Rollout(False, f"{updated} of {want} replicas updated")
        if int(status.get("replicas", 0)) > updated:
            old = int(status["replicas"]) - updated
            return Rollout(False, f"{old} old replicas pending termination")
        available = int(status.get("availableReplicas", 0))
        if available < updated:
            return Rollout(False, f"{available} of {updated} updated replicas available")
        return Rollout(True, f"{want} replicas updated and available")
    if kind == "StatefulSet" and not manual_rollout(workload):
        ready = int(status.get("readyReplicas", 0))
        if ready < want:
            return Rollout(False, f"{ready} of {want} replicas ready")
        if status.get("updateRevision") != status.get("currentRevision"):
            updated = int(status.get("updatedReplicas", 0))
            return Rollout(False, f"{updated} of {want} replicas updated")
        return Rollout(True, f"{want} replicas updated and ready")
    return _manual_rollout(workload, pods, want)


def _manual_rollout(workload: Manifest, pods: Sequence[Manifest], want: int) -> Rollout:
    """One pod at a time, only while every other replica is Ready, so capacity never drops by
    more than one."""
    live = [p for p in pods if not p.get("metadata", {}).get("deletionTimestamp")]
    stale = sorted(p["metadata"]["name"] for p in live if not pod_matches_template(p, workload))
    ready = [p for p in live if pod_ready(p) and pod_matches_template(p, workload)]
    if not stale:
        if len(ready) < want:
            return Rollout(False, f"{len(ready)} of {want} replicas ready")
        return Rollout(True, f"{want} replicas updated and ready")
    if len(live) < want or len(live) > want or not all(pod_ready(p) for p in live):
        return Rollout(False, f"{len(stale)} replicas to replace; waiting for pods to be ready")
    return Rollout(False, f"replacing pod {stale[0]} ({len(stale)} to go)", replace=(stale[0],))


FATAL_WAITING = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "CrashLoopBackOff",
    }
)


def rollout_problem(workload: Manifest, pods: Sequence[Manifest]) -> str | None:
    """Why the new pods cannot become Ready, as one line, or None while they still may.

    Only pods that run the current template count: an old pod's trouble is not this rollout's.
    The agent must never exit, so any termination of it is a problem too (e.g. an image without
    python3).
    """
    for p in pods:
        if p.get("metadata", {}).get("deletionTimestamp") or not pod_matches_template(p, workload):
            continue
        name = p["metadata"]["name"]
        for cond in p.get("status", {}).get("conditions", []):
            if cond.get("type") == "PodScheduled" and cond.get("reason") == "Unschedulable":
                return f"pod {name} cannot be scheduled: {cond.get('message', '')}".rstrip(": ")
        statuses = p.get("status", {}).get("initContainerStatuses", []) + p.get("status", {}).get(
            "containerStatuses", []
        )
        for cs in statuses:
            waiting = cs.get("state", {}).get("waiting", {})
            ended = cs.get("state", {}).get("terminated") or cs.get("lastState", {}).get(
                "terminated"
            )
            is_agent = cs.get("name") == AGENT_CONTAINER
            if waiting.get("reason") not in FATAL_WAITING and not (is_agent and ended):
                continue
            detail = waiting.get("reason", "")
            if ended:
                detail = (f"{detail}; " if detail else "") + (
                    f"exited {ended.get('exitCode')}: "
                    f"{ended.get('message') or ended.get('reason') or ''}".rstrip(": ")
                )
            elif waiting.get("message"):
                detail += f": {waiting['message']}"
            line = f"pod {name} container {cs.get('name')}: {detail}"
            if is_agent:
                line += " (the agent image must run python3 >= 3.10; see --agent-image)"
            return line
    return None
