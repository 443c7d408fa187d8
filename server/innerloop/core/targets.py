"""Target resolution: Service → service port → targetPort → workload → container.

Pure: the gateway fetches the Service, the pods its selector picks and the candidate workloads
(Deployments, StatefulSets, ReplicaSets) as API JSON dicts; this module decides. Every refusal is
a UserError with one line that names what exists, so the user can fix the command.

Port spec (`--port`): `LOCAL[:SERVICE_PORT]` or `SERVICE_PORT_NAME`.
- `8080:http`, `8080:80` — run locally on 8080, intercept the service port named `http` or
  numbered 80 (after the colon: a Service port, never a targetPort);
- `8080` — run locally on 8080; the Service's only port, or with several ports the one numbered
  8080, else the one whose targetPort is 8080;
- `http` — the service port named `http`; locally on the app's container port.
What was chosen and why is said in the intercept's first progress line (`port_notes`).
When the Service has been taken over already, resolution uses the original targetPorts kept in
its `innerloop.dev/restore` annotation, so a warm intercept resolves exactly like a cold one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from innerloop.core.advice import Fix, advise
from innerloop.core.agent_patch import AGENT_CONTAINER, agent_layout
from innerloop.core.errors import UserError
from innerloop.core.manifest import Manifest
from innerloop.core.request import PortSpec
from innerloop.core.service_patch import port_label, service_takeover
from innerloop.core.value import Value

SUPPORTED_KINDS = ("Deployment", "StatefulSet", "ReplicaSet")


class ServicePort(Value):
    """One entry of a Service's `spec.ports`, with its original targetPort; `app_protocol` (its
    `appProtocol`: `http`, `kubernetes.io/h2c`, …) with the name says how to read its requests
    (`core.filters.protocol_hint`)."""

    __slots__ = _fields = ("name", "port", "protocol", "target_port", "app_protocol")

    def __init__(self, name: str | None, port: int, protocol: str, target_port: int | str,
                 app_protocol: str | None = None) -> None:
        self.name, self.port, self.protocol = name, port, protocol
        self.target_port, self.app_protocol = target_port, app_protocol

    def label(self) -> str:
        return port_label(self.port, self.name)


class WorkloadRef(Value):
    __slots__ = _fields = ("kind", "name", "namespace")

    def __init__(self, kind: str, name: str, namespace: str) -> None:
        self.kind, self.name, self.namespace = kind, name, namespace

    def __str__(self) -> str:
        return f"{self.kind.lower()}/{self.name}"


class Target(Value):
    """Everything an intercept needs to know about where the traffic goes today."""

    __slots__ = _fields = ("namespace", "service", "service_port", "workload", "container",
                           "container_port", "local_port")

    def __init__(self, namespace: str, service: str, service_port: ServicePort,
                 workload: WorkloadRef, container: str, container_port: int,
                 local_port: int) -> None:
        self.namespace, self.service, self.service_port = namespace, service, service_port
        self.workload, self.container = workload, container
        self.container_port, self.local_port = container_port, local_port


def service_ports(service: Manifest) -> list[ServicePort]:
    """The Service's ports as they were before innerloop took any of them over."""
    originals = service_takeover(service)
    ports = []
    for entry in service.get("spec", {}).get("ports", []):
        label = port_label(int(entry["port"]), entry.get("name"))
        target = originals[label] if label in originals else entry.get("targetPort")
        ports.append(
            ServicePort(
                name=entry.get("name") or None,
                port=int(entry["port"]),
                protocol=entry.get("protocol", "TCP"),
                target_port=int(entry["port"]) if target is None else target,
                app_protocol=entry.get("appProtocol") or None,
            )
        )
    return ports


def describe_ports(ports: Sequence[ServicePort]) -> str:
    return ", ".join(p.label() for p in ports) or "none"


def select_service_port(
    service: Manifest, wanted: str | int | None, local: int | None = None
) -> ServicePort:
    """Pick the service port the user means (`wanted`, else the one `local` points at when
    there are several); the error lists the ports there are."""
    name = service["metadata"]["name"]
    ports = service_ports(service)
    if wanted is None:
        if len(ports) == 1:
            return ports[0]
        tcp = [p for p in ports if p.protocol == "TCP"]
        found = [p for p in tcp if p.port == local] or [p for p in tcp if p.target_port == local]
        if local is None or not found:
            raise UserError(
                f"service {name!r} has {len(ports)} ports; its ports are {describe_ports(ports)}",
                advice=advise(Fix.SERVICE_PORT),
            )
        wanted = local
    elif isinstance(wanted, int):
        found = [p for p in ports if p.port == wanted]
    else:
        found = [p for p in ports if p.name == wanted]
    tcp = [p for p in found if p.protocol == "TCP"]
    if len(tcp) == 1:
        return tcp[0]
    if found and not tcp:
        raise UserError(
            f"service {name!r} port {wanted} is {found[0].protocol}; innerloop intercepts TCP only"
        )
    if len(tcp) > 1:
        raise UserError(
            f"service {name!r}: {wanted} matches several ports ({describe_ports(tcp)})",
            advice=advise(Fix.SERVICE_PORT_NAME),
        )
    behind = [p for p in ports if p.target_port == wanted]
    if behind:
        raise UserError(
            f"service {name!r} has no port {wanted}; {wanted} is the targetPort of its port "
            f"{behind[0].label()}: after the colon goes the Service port, e.g. "
            f"--port LOCAL:{behind[0].name or behind[0].port}"
        )
    raise UserError(f"service {name!r} has no port {wanted}; its ports are {describe_ports(ports)}")


def port_notes(service: Manifest, spec: PortSpec, target: Target) -> tuple[str, str]:
    """Why this service port and this local port, when the user did not name them (shown in
    the first progress line, so no choice is silent); "" where the user named it."""
    chosen, local = target.service_port, spec.local_port
    if spec.service_port is not None:
        service_note = ""
    elif len(service_ports(service)) == 1:
        service_note = "the Service's only port"
    elif chosen.port == local:
        service_note = f"numbered like the local port {local}"
    else:
        service_note = f"its targetPort is the local port {local}"
    local_note = "" if local is not None else (
        "the container's port; --port LOCAL:SERVICE_PORT picks another")
    return service_note, local_note


def first_line(t: Target, service: Manifest, spec: PortSpec, agent_image: str) -> str:
    """What was resolved, every choice the user left to us with its reason, and the agent
    image (whether the cluster can pull it is not knowable from here)."""
    service_note, local_note = port_notes(service, spec, t)
    return (f"{t.service}.{t.namespace}:{t.service_port.label()}"
            f"{f' ({service_note})' if service_note else ''} → {t.workload} container "
            f"{t.container!r} port {t.container_port}; locally 127.0.0.1:{t.local_port}"
            f"{f' ({local_note})' if local_note else ''}; agent image {agent_image} "
            "(--agent-image or \"agentImage\" to change)")


def service_selector(service: Manifest) -> dict[str, str]:
    """The label selector the Service routes by; a Service without one is refused."""
    selector = service.get("spec", {}).get("selector") or {}
    if not selector:
        name = service["metadata"]["name"]
        raise UserError(
            f"service {name!r} has no selector (its endpoints are managed by hand); "
            "innerloop can only intercept a Service that selects pods of a workload"
        )
    return dict(selector)


def label_selector(labels: Mapping[str, str]) -> str:
    """`a=1,b=2`: the form list calls take."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def workload_selector(workload: Manifest) -> str:
    """A workload's `spec.selector` (matchLabels and matchExpressions) as a list-call selector."""
    selector = workload["spec"].get("selector", {})
    parts = [label_selector(selector.get("matchLabels", {}))] if selector.get("matchLabels") else []
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], sorted(expr.get("values", []))
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            raise UserError(
                f"{workload['kind'].lower()}/{workload['metadata']['name']}: "
                f"unknown selector operator {op!r}"
            )
    return ",".join(parts)


def matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _controller(obj: Manifest) -> tuple[str, str] | None:
    for ref in obj.get("metadata", {}).get("ownerReferences", []):
        if ref.get("controller"):
            return ref["kind"], ref["name"]
    return None


def _index(workloads: Sequence[Manifest]) -> dict[tuple[str, str], Manifest]:
    return {(w["kind"], w["metadata"]["name"]): w for w in workloads}


def _top_workload(
    kind: str, name: str, index: Mapping[tuple[str, str], Manifest]
) -> tuple[str, str]:
    """Climb ReplicaSet → Deployment; other supported kinds are their own top."""
    if kind == "ReplicaSet":
        rs = index.get((kind, name))
        owner = _controller(rs) if rs else None
        if owner and owner[0] == "Deployment":
            return owner
    return kind, name


def _workloads_of_pods(
    pods: Sequence[Manifest], index: Mapping[tuple[str, str], Manifest]
) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for pod in pods:
        owner = _controller(pod)
        pod_name = pod["metadata"]["name"]
        if owner is None:
            raise UserError(
                f"pod {pod_name!r} has no controller (a bare Pod); innerloop patches a workload's "
                "pod template, so run it from a Deployment, StatefulSet or ReplicaSet"
            )
        if owner[0] not in SUPPORTED_KINDS:
            raise UserError(
                f"pod {pod_name!r} belongs to {owner[0].lower()}/{owner[1]}; innerloop supports "
                "Deployments, StatefulSets and ReplicaSets"
            )
        found.add(_top_workload(owner[0], owner[1], index))
    return found


def _workloads_by_template(
    selector: Mapping[str, str], workloads: Sequence[Manifest]
) -> set[tuple[str, str]]:
    """With no pods running (scaled to zero): workloads whose pod template the selector picks."""
    found = set()
    for w in workloads:
        if w["kind"] == "ReplicaSet" and _controller(w) is not None:
            continue
        labels = w.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
        if matches(selector, labels):
            found.add((w["kind"], w["metadata"]["name"]))
    return found


def find_workload(
    service: Manifest, pods: Sequence[Manifest], workloads: Sequence[Manifest]
) -> Manifest:
    """The one workload whose pods the Service selects."""
    name = service["metadata"]["name"]
    selector = service_selector(service)
    index = _index(workloads)
    selected = [p for p in pods if matches(selector, p["metadata"].get("labels", {}))]
    found = (
        _workloads_of_pods(selected, index)
        if selected
        else _workloads_by_template(selector, workloads)
    )
    if not found:
        raise UserError(
            f"service {name!r} selects no pods and no workload ({label_selector(selector)})"
        )
    if len(found) > 1:
        listed = ", ".join(f"{k.lower()}/{n}" for k, n in sorted(found))
        raise UserError(
            f"service {name!r} selects pods of several workloads ({listed}); innerloop "
            "intercepts a Service backed by one workload"
        )
    key = found.pop()
    if key not in index:
        raise UserError(f"{key[0].lower()}/{key[1]} behind service {name!r} was not found")
    return index[key]


def containers(template_spec: Manifest) -> list[Manifest]:
    """The app's containers: everything but our own agent."""
    return [c for c in template_spec.get("containers", []) if c["name"] != AGENT_CONTAINER]


def find_container(workload: Manifest, target_port: int | str) -> tuple[str, int]:
    """The container that owns targetPort, and its port number."""
    spec = workload["spec"]["template"]["spec"]
    wanted = containers(spec)
    for c in wanted:
        for p in c.get("ports", []):
            if p.get("protocol", "TCP") != "TCP":
                continue
            if target_port in (p.get("name"), p["containerPort"]):
                return c["name"], int(p["containerPort"])
    ref = f"{workload['kind'].lower()}/{workload['metadata']['name']}"
    if isinstance(target_port, str):
        raise UserError(
            f"no container of {ref} has a port named {target_port!r}; "
            f"its containers declare {_describe_container_ports(wanted)}"
        )
    if len(wanted) == 1:
        return wanted[0]["name"], target_port
    raise UserError(
        f"no container of {ref} declares port {target_port} and it has several containers "
        f"({', '.join(c['name'] for c in wanted)}); declare the port in the container's ports"
    )


def _describe_container_ports(cs: Sequence[Manifest]) -> str:
    parts = []
    for c in cs:
        ports = [
            f"{p['containerPort']}/{p['name']}" if p.get("name") else str(p["containerPort"])
            for p in c.get("ports", [])
        ]
        parts.append(f"{c['name']}: {', '.join(ports) or 'no ports'}")
    return "; ".join(parts)


def workload_ref(workload: Manifest) -> WorkloadRef:
    meta = workload["metadata"]
    return WorkloadRef(kind=workload["kind"], name=meta["name"], namespace=meta["namespace"])


def resolve_target(
    service: Manifest, spec: PortSpec, pods: Sequence[Manifest], workloads: Sequence[Manifest]
) -> Target:
    """Service → port → workload → container, or a UserError that says what exists."""
    port = select_service_port(service, spec.service_port, spec.local_port)
    workload = find_workload(service, pods, workloads)
    container, container_port = find_container(workload, port.target_port)
    meta = service["metadata"]
    return Target(
        namespace=meta["namespace"],
        service=meta["name"],
        service_port=port,
        workload=workload_ref(workload),
        container=container,
        container_port=container_port,
        local_port=spec.local_port if spec.local_port is not None else container_port,
    )


class ServiceSummary(Value):
    """One line of `innerloop list`. `workload`: None when there is no selector, or no single
    workload behind it; `taken_over`: labels of the ports whose traffic goes through the agent;
    `tunnel_port`: where the agent's tunnel listens (None: no agent), to ask it for its claims;
    `selector`: the workload's pod selector (with an agent), to find a replica to ask;
    `routes`: (agent listen port, service port label) of the ports taken over."""

    __slots__ = _fields = ("name", "ports", "workload", "agent", "taken_over", "tunnel_port",
                           "selector", "routes")

    def __init__(self, name: str, ports: tuple[ServicePort, ...], workload: WorkloadRef | None,
                 agent: bool, taken_over: tuple[str, ...], tunnel_port: int | None = None,
                 selector: str = "", routes: tuple[tuple[int, str], ...] = ()) -> None:
        self.name, self.ports, self.workload, self.agent = name, ports, workload, agent
        self.taken_over, self.tunnel_port, self.selector = taken_over, tunnel_port, selector
        self.routes = routes


def summarize_services(
    services: Sequence[Manifest], workloads: Sequence[Manifest]
) -> list[ServiceSummary]:
    """Services with their ports, the workload behind each and whether our agent is in it."""
    summaries = []
    for svc in sorted(services, key=lambda s: str(s["metadata"]["name"])):
        try:
            workload: Manifest | None = find_workload(svc, [], workloads)
        except UserError:
            workload = None
        layout = agent_layout(workload) if workload is not None else None
        taken = service_takeover(svc)
        summaries.append(
            ServiceSummary(
                name=svc["metadata"]["name"],
                ports=tuple(service_ports(svc)),
                workload=workload_ref(workload) if workload else None,
                agent=layout is not None,
                taken_over=tuple(sorted(taken)),
                tunnel_port=None if layout is None else layout.tunnel_port,
                selector="" if layout is None or workload is None else workload_selector(workload),
                routes=tuple(sorted(
                    (int(p["targetPort"]), label) for p in svc["spec"].get("ports", [])
                    if (label := port_label(int(p["port"]), p.get("name"))) in taken)),
            )
        )
    return summaries
