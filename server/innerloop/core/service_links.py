"""The Service-link variables the kubelet gives a container, and the endpoints behind a Service.

Pure. The kubelet (pkg/kubelet/envvars/envvars.go) gives every container, when its pod's
`enableServiceLinks` is on (the default), variables for each Service of the pod's namespace with
a ClusterIP, plus the `kubernetes` Service of `default` in any case:

    PAYMENTS_SERVICE_HOST=10.96.0.10        PAYMENTS_SERVICE_PORT=80 (the first port)
    PAYMENTS_SERVICE_PORT_HTTP=80           (every named port)
    PAYMENTS_PORT=tcp://10.96.0.10:80       (Docker links: the first port)
    PAYMENTS_PORT_80_TCP=tcp://10.96.0.10:80, …_PROTO=tcp, …_PORT=80, …_ADDR=10.96.0.10

The local process gets the same values: the resolver hook and the proxy map ClusterIPs to the
forwarders, so an app that reads them reaches the Service (docs/network.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from innerloop.core.cluster_names import ClusterService, ServiceKey

MASTER_SERVICE = ServiceKey("default", "kubernetes")


def env_name(name: str) -> str:
    """The kubelet's makeEnvVariableName: upper case, `-` → `_`."""
    return name.replace("-", "_").upper()


def service_link_env(
    services: Iterable[ClusterService], namespace: str, enable_service_links: bool = True
) -> dict[str, str]:
    """The variables the kubelet gives a container of a pod in `namespace`."""
    by_name: dict[str, ClusterService] = {}
    master: ClusterService | None = None
    for svc in services:
        if svc.key.namespace == namespace and enable_service_links:
            by_name[svc.key.name] = svc
        if svc.key == MASTER_SERVICE:
            master = svc
    if master is not None:
        by_name.setdefault(master.key.name, master)  # a Service of the namespace wins
    env: dict[str, str] = {}
    for name in sorted(by_name):
        env.update(_links(by_name[name]))
    return env


def _links(svc: ClusterService) -> dict[str, str]:
    if not svc.cluster_ips or not svc.ports:  # headless and ExternalName: none
        return {}
    prefix, ip = env_name(svc.key.name), svc.cluster_ips[0]
    host = f"[{ip}]" if ":" in ip else ip  # Go's net.JoinHostPort
    env = {f"{prefix}_SERVICE_HOST": ip, f"{prefix}_SERVICE_PORT": str(svc.ports[0].port)}
    for p in svc.ports:
        if p.name:
            env[f"{prefix}_SERVICE_PORT_{env_name(p.name)}"] = str(p.port)
    for i, p in enumerate(svc.ports):
        proto = (p.protocol or "TCP").lower()
        url = f"{proto}://{host}:{p.port}"
        if i == 0:
            env[f"{prefix}_PORT"] = url
        each = f"{prefix}_PORT_{p.port}_{proto.upper()}"
        env.update({each: url, f"{each}_PROTO": proto, f"{each}_PORT": str(p.port),
                    f"{each}_ADDR": ip})
    return env


# ---- endpoints ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PodPort:
    """Where a Service port's traffic goes in one Ready pod: the pod and its targetPort number."""

    pod: str
    port: int


def ready_pod_ports(
    slices: Sequence[Mapping[str, Any]], port_name: str | None
) -> list[PodPort]:
    """The Ready pods behind a Service port, from the Service's EndpointSlices (one per pod,
    in the slices' order). EndpointSlice ports carry the Service port's name ("" when unnamed)
    and the resolved target port number; endpoints that are not pods (the API server behind
    `kubernetes`, manual Endpoints) are left out."""
    found: dict[str, PodPort] = {}
    for piece in slices:
        numbers = [p.get("port") for p in piece.get("ports") or ()
                   if (p.get("name") or None) == port_name
                   and (p.get("protocol") or "TCP") == "TCP"]
        if not numbers or not isinstance(numbers[0], int):
            continue
        for endpoint in piece.get("endpoints") or ():
            ref = endpoint.get("targetRef") or {}
            ready = (endpoint.get("conditions") or {}).get("ready")
            if ref.get("kind") == "Pod" and ref.get("name") and ready is not False:
                found.setdefault(ref["name"], PodPort(ref["name"], numbers[0]))
    return list(found.values())
