"""API server failures as one actionable line (UserError / ConfigError / ClusterError).

Shared by the gateway (ApiException from the `kubernetes` client) and the port-forward client
(a refused WebSocket handshake): both hand over the HTTP status and the Status body.
"""

from __future__ import annotations

import json
import re

from innerloop.core.errors import ClusterError, ConfigError, InnerloopError, UserError

RBAC_HINT = "ask your cluster admin for that permission (docs/usage.md lists what innerloop needs)"

# Patterns, compiled (and cached by `re`) only when an error is worded: every start imports this
_FORBIDDEN = (
    r'User "(?P<user>[^"]*)" cannot (?P<verb>\S+) resource "(?P<resource>[^"]*)"'
    r'(?: in API group "(?P<group>[^"]*)")?(?: in the namespace "(?P<ns>[^"]*)")?'
)


def status_message(body: bytes | str | None) -> str:
    """The `message` of a Kubernetes Status body, or the body itself (trimmed)."""
    if not body:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        status = json.loads(text)
    except ValueError:
        return text.strip()[:300]
    if isinstance(status, dict) and isinstance(status.get("message"), str):
        return str(status["message"])
    return text.strip()[:300]


def forbidden(message: str) -> ClusterError:
    """403: who may not do what, where, and what to ask for."""
    m = re.search(_FORBIDDEN, message)
    if not m:
        return ClusterError(f"forbidden by the cluster: {message}; {RBAC_HINT}")
    resource = m["resource"]
    if m["group"]:
        resource = f"{resource}.{m['group']}"
    where = f" in namespace {m['ns']!r}" if m["ns"] else " cluster-wide"
    return ClusterError(
        f"forbidden: {m['user']} may not {m['verb']} {resource}{where} (RBAC); {RBAC_HINT}"
    )


def from_status(code: int, body: bytes | str | None, doing: str) -> InnerloopError:
    """An HTTP error from the API server while `doing` (e.g. "get service 'orders' in 'shop'")."""
    message = status_message(body)
    if code == 403:
        return forbidden(message)
    if code == 401:
        return ConfigError(
            f"the API server rejected your credentials while trying to {doing} (401 "
            "Unauthorized); log in again or fix the user in your kubeconfig"
        )
    if code == 404:
        return UserError(f"cannot {doing}: not found")
    if code == 409:
        return ClusterError(f"cannot {doing}: {message or 'conflict'}; try again")
    if code == 422:
        return UserError(f"cannot {doing}: the API server refused it: {message}")
    return ClusterError(f"cannot {doing}: HTTP {code} from the API server: {message}".rstrip(": "))


CERTIFICATE = (r"(?i)CERTIFICATE_VERIFY_FAILED|certificate verify failed|SSLCertVerification"
               r"|self.signed certificate|unable to get local issuer")


def unreachable(server: str, reason: object) -> ClusterError:
    if re.search(CERTIFICATE, str(reason)):  # it answered: running, but not trusted as configured
        return ClusterError(
            f"the API server at {server} presented a certificate your kubeconfig does not trust "
            f"({reason}); fix the cluster's certificate-authority(-data) in the kubeconfig, or "
            "check that the context points at the right cluster"
        )
    return ClusterError(
        f"cannot reach the API server at {server}: {reason}; check that the cluster is running "
        "and that your kubeconfig context points at it"
    )
