"""What a user asks for when they intercept: one type and one validator for every surface.

The CLI builds an `InterceptRequest` from its flags, the language server from a command's JSON
argument, the debug adapter from a launch/attach configuration; all of them end up here, so a
bad value gets the same one-line answer wherever it was typed.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from innerloop.core.errors import UserError
from innerloop.core.filters import EVERYTHING, AppProtocol, Mode, RequestFilter, filter_from_json
from innerloop.core.value import Value


class PortSpec(Value):
    """What the user asked for: which service port, and where the local process listens.

    `--port` is `LOCAL[:SERVICE_PORT]` or `SERVICE_PORT_NAME`: a bare number is always the local
    port (the Service port is then chosen by `core.targets.select_service_port`), what follows a
    colon is always one of the Service's ports (number or name, never a targetPort), and a bare
    name leaves the local port to the container's port.
    """

    __slots__ = _fields = ("service_port", "local_port")

    def __init__(self, service_port: str | int | None, local_port: int | None) -> None:
        self.service_port, self.local_port = service_port, local_port

    @classmethod
    def parse(cls, text: str) -> PortSpec:
        local, sep, svc = text.strip().partition(":")
        if sep:
            if not local.isdigit() or not svc:
                raise UserError(
                    f"bad --port {text!r}: expected LOCAL_PORT[:SERVICE_PORT], e.g. 8080:http"
                )
            return cls(service_port=_number_or_name(svc), local_port=_flag_port(local, text))
        if not local:
            raise UserError("bad --port '': expected LOCAL_PORT[:SERVICE_PORT], e.g. 8080:http")
        if local.isdigit():
            return cls(service_port=None, local_port=_flag_port(local, text))
        return cls(service_port=local, local_port=None)


def _flag_port(text: str, spec: str) -> int:
    number = int(text)
    if not 0 < number < 65536:
        raise UserError(f"bad --port {spec!r}: {number} is not a TCP port (1-65535)")
    return number


def _number_or_name(text: str) -> int | str:
    return int(text) if text.isdigit() else text


class WhilePaused(enum.Enum):
    """Where new requests go while the local debuggee is stopped at a breakpoint."""

    CLUSTER = "cluster"
    """Served by the app in the pod, as if there were no intercept."""
    HOLD = "hold"
    """Kept waiting until the debuggee runs again (or the intercept ends)."""

    @classmethod
    def parse(cls, value: object, where: str = "whilePaused") -> WhilePaused:
        for member in cls:
            if value == member.value or value is member:
                return member
        raise UserError(f'{where} must be "cluster" or "hold", got {value!r}')


@dataclass(frozen=True)
class InterceptRequest:
    """An intercept as the user asked for it; unset fields are resolved against the cluster."""

    service: str
    namespace: str | None = None
    """None: the namespace of the kubeconfig context (or the configured default)."""
    port: PortSpec = field(default_factory=lambda: PortSpec(None, None))
    while_paused: WhilePaused = WhilePaused.CLUSTER
    context: str | None = None
    """The kubeconfig context (launch key `context`); None: the configured one."""
    agent_image: str | None = None
    """The agent sidecar's image (launch key `agentImage`); None: the configured one."""
    filter: RequestFilter = EVERYTHING
    """Which requests are taken (launch key `match`, docs/routing.md); empty: all of them."""
    mode: Mode = Mode.ROUTE
    """`route`: the requests come here; `mirror`: a copy comes, the cluster still answers."""
    protocol: AppProtocol | None = None
    """How the port's requests are read (launch key `protocol`); None: from the Service
    port's appProtocol or name."""

    def __post_init__(self) -> None:
        if self.protocol is AppProtocol.TCP and (
                not self.filter.is_empty or self.mode is Mode.MIRROR):
            raise UserError("protocol tcp cannot be combined with a filter or mirror mode: "
                            "they read HTTP requests (use http1 or h2)")

    @property
    def key(self) -> str:
        """`namespace/service`: one intercept per Service and namespace in a process."""
        return f"{self.namespace}/{self.service}"

    def describe(self) -> str:
        """`orders.shop:80 → localhost:8080`: how the user names what is intercepted."""
        name = self.service if self.namespace is None else f"{self.service}.{self.namespace}"
        if self.port.service_port is not None:
            name = f"{name}:{self.port.service_port}"
        if self.port.local_port is not None:
            name = f"{name} → localhost:{self.port.local_port}"
        scope = self.scope()
        return f"{name} ({scope})" if scope else name

    def scope(self) -> str:
        """`x-dev=me`, `mirror: all requests`; "" for a whole-port intercept."""
        if self.mode is Mode.MIRROR:
            return f"mirror: {self.filter.describe()}"
        return "" if self.filter.is_empty else self.filter.describe()

    def announce(self, protocol: AppProtocol) -> str:
        """The start's line about which requests it takes, "" for a whole-port intercept."""
        if self.mode is Mode.MIRROR:
            what = f"copies of {self.filter.describe()}"
        elif self.filter.is_empty:
            return ""
        else:
            what = f"only requests with {self.filter.describe()}"
        return f"{what} (read as {protocol.label()})"


def request_from_json(
    obj: Mapping[str, Any], what: str, local_port_key: str, local_port_required: bool = False
) -> InterceptRequest:
    """Validate the camelCase keys `service`, `namespace`, `servicePort`, the local port,
    `whilePaused`, `match`, `mode` and `protocol`; raises UserError naming `what` (a command or
    configuration) and the key."""
    service = obj.get("service")
    if not isinstance(service, str) or not service:
        raise UserError(f'{what} needs "service": the Kubernetes Service to intercept')
    if local_port_required and obj.get(local_port_key) is None:
        raise UserError(f'{what} needs "{local_port_key}": where your program listens locally')
    local = obj.get(local_port_key)
    return InterceptRequest(
        service=service,
        namespace=optional_str(obj, "namespace", what),
        port=PortSpec(
            service_port=_port_ref(obj.get("servicePort"), what),
            local_port=None if local is None else port_number(local, f'{what}: "{local_port_key}"'),
        ),
        while_paused=WhilePaused.parse(obj.get("whilePaused", "cluster"),
                                       f'{what}: "whilePaused"'),
        context=optional_str(obj, "context", what),
        agent_image=optional_str(obj, "agentImage", what),
        filter=filter_from_json(obj.get("match"), f'{what}: "match"'),
        mode=Mode.parse(obj.get("mode") or "route", f'{what}: "mode"'),
        protocol=(None if not obj.get("protocol")
                  else AppProtocol.parse(obj["protocol"], f'{what}: "protocol"')),
    )


def port_number(value: object, where: str) -> int:
    """A TCP port given as a number (or a string of digits, as editors sometimes send)."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536:
        return value
    raise UserError(f"{where} must be a port number (1-65535), got {value!r}")


def optional_str(obj: Mapping[str, Any], key: str, what: str) -> str | None:
    """A string setting; absent, null and "" all mean unset."""
    value = obj.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise UserError(f'{what}: "{key}" must be a string, got {value!r}')
    return value


def _port_ref(value: object, what: str) -> int | str | None:
    """A service port, by number or by name."""
    if value is None:
        return None
    if isinstance(value, str) and value and not value.isdigit():
        return value
    return port_number(value, f'{what}: "servicePort"')
