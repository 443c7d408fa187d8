"""What the workload's volumes and in-cluster clients need from the API server.

ConfigMap and Secret contents (decoded to bytes), a service-account token (TokenRequest), the
API server's own address, and the cluster's DNS domain as the API server's certificate names it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import ssl
from urllib.parse import urlsplit

from innerloop.k8s.api import Api, api_path

SERVICE_PREFIX = "kubernetes.default.svc."


async def object_data(api: Api, namespace: str, plural: str, name: str) -> dict[str, bytes] | None:
    """A ConfigMap's (`data` and `binaryData`) or a Secret's keys as bytes; None if absent."""
    obj = await api.get_or_none(api_path("v1", namespace, plural, name),
                                f"get {plural[:-1]} {name!r} in namespace {namespace!r} "
                                "(for the volumes)")
    if obj is None:
        return None
    if plural == "secrets":
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
    data.update((k, base64.b64decode(v)) for k, v in (obj.get("binaryData") or {}).items())
    return data


async def service_account_token(api: Api, namespace: str, account: str, audience: str,
                                expiration: int) -> str:
    """A TokenRequest for the service account (the kubelet's projection, without the pod
    binding); an error names the missing permission (`create serviceaccounts/token`)."""
    body = {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"audiences": [audience] if audience else [],
                 "expirationSeconds": max(expiration, 600)},
    }
    answer = await api.call(
        "POST", api_path("v1", namespace, "serviceaccounts", account) + "/token",
        f"create a token for serviceaccount {account!r} in namespace {namespace!r}", (), body)
    return str(answer["status"]["token"])


def server_address(api: Api) -> tuple[str, int]:
    """The API server's host and port, as the kubeconfig names them."""
    url = urlsplit(api.server)
    return url.hostname or "localhost", url.port or (443 if url.scheme == "https" else 80)


def domain_from_names(names: list[str]) -> str | None:
    """The cluster domain in an API server certificate's DNS names: the API server's own
    Service name `kubernetes.default.svc.<domain>` is in it (kubeadm, kind, k3s, the clouds)."""
    domains = [n[len(SERVICE_PREFIX):].rstrip(".").lower() for n in names
               if n.lower().startswith(SERVICE_PREFIX) and len(n) > len(SERVICE_PREFIX)]
    return domains[0] if domains else None


def _certificate_names(api: Api, timeout: float) -> list[str]:
    """The DNS names in the API server's certificate, verified with the kubeconfig's CA (an
    unverified certificate does not show its names to `ssl`). Blocking."""
    cfg = api.configuration
    if not cfg.verify_ssl or urlsplit(api.server).scheme != "https":
        return []
    context = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
    context.check_hostname = False  # the names are what we want; the chain is still checked
    host, port = server_address(api)
    with socket.create_connection((host, port), timeout) as raw, \
            context.wrap_socket(raw, server_hostname=cfg.tls_server_name or host) as tls:
        cert = tls.getpeercert() or {}
    names: tuple[tuple[str, str], ...] = cert.get("subjectAltName", ())  # type: ignore[assignment]
    return [value for kind, value in names if kind == "DNS"]


async def cluster_domain(api: Api, timeout: float = 5.0) -> str | None:
    """The cluster's DNS domain, or None when the certificate does not say (or is unreadable)."""
    with contextlib.suppress(OSError, ValueError):
        return domain_from_names(await asyncio.to_thread(_certificate_names, api, timeout))
    return None
