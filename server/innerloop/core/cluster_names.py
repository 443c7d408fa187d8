"""Which host names and addresses are the cluster's Services, and the control-socket codec.

Pure: the gateway lists Services as API JSON; this module decides what a name means to a pod of
the workload's namespace, the way the pod's resolver (search path `<ns>.svc.<domain>`,
`svc.<domain>`) and kube-proxy (ClusterIPs) would. docs/network.md, "Names", is the contract.

The codec is the control socket's wire format: one JSON object per line, many per connection.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

DEFAULT_DOMAIN = "cluster.local"
LOOPBACK = "127.0.0.1"
"""Where forwarders listen: loopback aliases (127.0.0.2, …) need root on macOS, ports do not."""

_IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, order=True)
class ServiceKey:
    namespace: str
    name: str

    def dns_name(self, domain: str = DEFAULT_DOMAIN) -> str:
        return f"{self.name}.{self.namespace}.svc.{domain}"


@dataclass(frozen=True)
class NamedPort:
    """One entry of a Service's `spec.ports`."""

    port: int
    name: str | None = None
    protocol: str = "TCP"


@dataclass(frozen=True)
class ClusterService:
    """What names need of one Service: its key, ClusterIPs (none: headless) and ports."""

    key: ServiceKey
    cluster_ips: tuple[str, ...]
    ports: tuple[NamedPort, ...]

    @classmethod
    def from_manifest(cls, service: Mapping[str, Any]) -> ClusterService:
        meta, spec = service.get("metadata", {}), service.get("spec", {})
        ips = spec.get("clusterIPs") or [spec.get("clusterIP")]
        return cls(
            key=ServiceKey(meta["namespace"], meta["name"]),
            cluster_ips=tuple(ip for ip in ips if ip and ip != "None"),
            ports=tuple(
                NamedPort(int(p["port"]), p.get("name") or None, p.get("protocol", "TCP"))
                for p in spec.get("ports") or ()
            ),
        )


@dataclass(frozen=True)
class Cluster:
    """The host is this Service. `port` None: asked without a port (`gethostbyname`)."""

    service: ServiceKey
    port: int | None


@dataclass(frozen=True)
class NotFound:
    """Looks like a cluster name but is no Service (or no such TCP port): EAI_NONAME, as in a
    pod, and the name never reaches the system resolver."""

    reason: str = ""


@dataclass(frozen=True)
class NotCluster:
    """Not the cluster's: resolve as before (system resolver, /etc/hosts)."""


Answer: TypeAlias = Cluster | NotFound | NotCluster


class ClusterNames:
    """One snapshot of the cluster's Services, seen from a pod in `namespace`.

    `namespaces` adds namespaces that have no Service in the snapshot, so `x.<ns>` is known to
    be a cluster name (NotFound) rather than an outside one.
    """

    def __init__(
        self,
        services: Iterable[ClusterService],
        namespace: str,
        domain: str = DEFAULT_DOMAIN,
        namespaces: Iterable[str] = (),
    ) -> None:
        self.namespace = namespace.lower()
        self.domain = domain.lower().strip(".")
        self._by_key: dict[ServiceKey, ClusterService] = {}
        self._by_ip: dict[_IPAddress, ClusterService] = {}
        for svc in services:
            key = ServiceKey(svc.key.namespace.lower(), svc.key.name.lower())
            self._by_key[key] = svc
            for ip in svc.cluster_ips:
                self._by_ip[ipaddress.ip_address(ip)] = svc
        self._namespaces = {self.namespace, *(n.lower() for n in namespaces)}
        self._namespaces |= {key.namespace for key in self._by_key}

    def lookup(self, host: str, port: int | None) -> Answer:
        name = host.lower()
        name = name.removesuffix(".")
        address = _ip(name)
        if address is not None:
            svc = self._by_ip.get(address)
            return NotCluster() if svc is None else _on_port(svc, port)
        labels = name.split(".")
        shaped = _strip(labels, ["svc", *self.domain.split(".")]) or _strip(labels, ["svc"])
        if shaped is not None:
            if len(shaped) != 2:
                return NotFound(f"{host!r} is not <service>.<namespace>.svc.{self.domain}")
            return self._service(ServiceKey(shaped[1], shaped[0]), host, port)
        if name == self.domain or _strip(labels, self.domain.split(".")) is not None:
            return NotFound(f"{host!r} is in the cluster's domain but names no Service")
        if len(labels) == 1:
            svc = self._by_key.get(ServiceKey(self.namespace, name))
            return NotCluster() if svc is None else _on_port(svc, port)
        if len(labels) == 2 and labels[1] in self._namespaces:
            return self._service(ServiceKey(labels[1], labels[0]), host, port)
        return NotCluster()

    def _service(self, key: ServiceKey, host: str, port: int | None) -> Answer:
        svc = self._by_key.get(key)
        if svc is None:
            return NotFound(f"no service {key.name!r} in namespace {key.namespace!r} ({host!r})")
        return _on_port(svc, port)


def _ip(name: str) -> _IPAddress | None:
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _strip(labels: list[str], suffix: list[str]) -> list[str] | None:
    """`labels` without `suffix`, if it ends so (and something is left)."""
    if len(labels) > len(suffix) and labels[-len(suffix):] == suffix:
        return labels[: -len(suffix)]
    return None


def _on_port(svc: ClusterService, port: int | None) -> Answer:
    if port is None or any(p.port == port and p.protocol == "TCP" for p in svc.ports):
        return Cluster(svc.key, port)
    ports = ", ".join(f"{p.port}/{p.protocol}" for p in svc.ports) or "none"
    return NotFound(f"service {svc.key.name!r} has no TCP port {port}; its ports: {ports}")


# ---- control socket codec ----------------------------------------------------------------

MAX_LINE = 4096
"""Longer lines are refused: a host name is at most 253 characters."""


class ControlMessageError(ValueError):
    """A control-socket line that is not a message of the protocol (one sentence why)."""


@dataclass(frozen=True)
class ResolveRequest:
    host: str
    port: int | None


@dataclass(frozen=True)
class LocalAddress:
    """Connect here instead: a forwarder on loopback."""

    host: str
    port: int


ResolveResult: TypeAlias = LocalAddress | NotFound | NotCluster
"""What a `resolve(host, port)` gives the control server (and the proxy)."""


def encode_request(request: ResolveRequest) -> bytes:
    return _line({"op": "resolve", "host": request.host, "port": request.port})


def parse_request(line: bytes) -> ResolveRequest:
    message = _object(line)
    if message.get("op") != "resolve":
        raise ControlMessageError(f"unknown op {message.get('op')!r} (expected 'resolve')")
    host, port = message.get("host"), message.get("port")
    if not isinstance(host, str) or not host:
        raise ControlMessageError("'host' must be a non-empty string")
    if port is not None and not _is_port(port):
        raise ControlMessageError("'port' must be an integer 0-65535 or null")
    return ResolveRequest(host, port)


def encode_result(result: ResolveResult) -> bytes:
    if isinstance(result, LocalAddress):
        return _line({"ok": True, "host": result.host, "port": result.port})
    return _line({"ok": False, "error": "noname" if isinstance(result, NotFound) else "notcluster"})


def encode_error(message: str) -> bytes:
    """The reply to a line that is no request, or a resolve that failed: the hook then acts as
    if the control socket were gone."""
    return _line({"ok": False, "error": "failed", "message": message})


def parse_result(line: bytes) -> ResolveResult:
    message = _object(line)
    if message.get("ok") is True:
        host, port = message.get("host"), message.get("port")
        if isinstance(host, str) and host and isinstance(port, int) and _is_port(port):
            return LocalAddress(host, port)
        raise ControlMessageError("an ok reply needs 'host' (string) and 'port' (0-65535)")
    error = message.get("error")
    if error == "noname":
        return NotFound()
    if error == "notcluster":
        return NotCluster()
    raise ControlMessageError(f"the server failed: {message.get('message', error)!r}")


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def _object(line: bytes) -> dict[str, Any]:
    if len(line) > MAX_LINE:
        raise ControlMessageError(f"line longer than {MAX_LINE} bytes")
    try:
        message = json.loads(line.decode())
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError included
        raise ControlMessageError(f"not a JSON line: {e}") from None
    if not isinstance(message, dict):
        raise ControlMessageError("not a JSON object")
    return message


def _is_port(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535
