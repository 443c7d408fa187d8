"""The common kubeconfig without the `kubernetes` package: a CLI start skips its ~0.25 s import.

A context whose user authenticates with a client certificate or a static token, and whose
cluster names only its server, CA and TLS options, is read here exactly as the `kubernetes`
loader reads it (paths relative to the file, `*-data` written to private temporary files).
Anything else — exec plugins, auth providers, basic auth, token files, proxies, a KUBECONFIG list —
is left to that loader (`k8s.config`), which this never second-guesses.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import contextlib
import os
import tempfile
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

SIMPLE_USER = frozenset({"client-certificate", "client-certificate-data", "client-key",
                         "client-key-data", "token"})
SIMPLE_CLUSTER = frozenset({"server", "certificate-authority", "certificate-authority-data",
                            "insecure-skip-tls-verify", "tls-server-name", "extensions"})
_temporary: dict[bytes, str] = {}


@dataclass
class ClientConfig:
    """The connection settings the rest of `k8s` reads, under the names of the `kubernetes`
    client's Configuration (so either serves `api`, `portforward` and `volumes`)."""

    host: str
    ssl_ca_cert: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify_ssl: bool = True
    tls_server_name: str | None = None
    token: str | None = None
    """The whole header value, "Bearer …"."""
    assert_hostname: bool | None = None
    proxy: str | None = None
    retries: int | None = 1

    def auth_settings(self) -> dict[str, dict[str, str]]:
        if not self.token:
            return {}
        return {"BearerToken": {"type": "api_key", "in": "header", "key": "authorization",
                                "value": self.token}}


def _named(items: Any, name: str, key: str) -> dict[str, Any] | None:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            value = item.get(key)
            return value if isinstance(value, dict) else None
    return None


def _cleanup() -> None:
    for name in _temporary.values():
        with contextlib.suppress(OSError):
            os.unlink(name)


def _data_file(data: str) -> str:
    """A private temporary file holding base64 `data` decoded, one per content."""
    content = base64.standard_b64decode(data.encode())
    if content not in _temporary:
        if not _temporary:
            atexit.register(_cleanup)
        fd, name = tempfile.mkstemp(prefix="innerloop-kube-")
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        _temporary[content] = name
    return _temporary[content]


def _file(entry: dict[str, Any], key: str, base: str) -> str | None:
    """`key-data` as a file, else `key` relative to the kubeconfig; None if neither. Raises
    ValueError for a named file that does not exist (the loader's complaint)."""
    if entry.get(f"{key}-data"):
        return _data_file(str(entry[f"{key}-data"]))
    if f"{key}-data" not in entry and entry.get(key):
        path = os.path.normpath(os.path.join(base, str(entry[key])))
        if not os.path.isfile(path):
            raise ValueError(f"File does not exist: {path}")
        return path
    return None


def simple_config(raw: dict[str, Any], context: str, path: str) -> ClientConfig | None:
    """The settings of `context` in the parsed kubeconfig at `path`, or None when the
    `kubernetes` loader must read it. Raises ValueError where that loader would fail too."""
    chosen = _named(raw.get("contexts"), context, "context") or {}
    cluster = _named(raw.get("clusters"), str(chosen.get("cluster", "")), "cluster")
    user = _named(raw.get("users"), str(chosen.get("user", "")), "user") or {}
    if cluster is None or not set(cluster) <= SIMPLE_CLUSTER or not set(user) <= SIMPLE_USER:
        return None
    server = cluster.get("server")
    if not isinstance(server, str) or not server.startswith(("https://", "http://")):
        return None
    _ = urlsplit(server).port  # a bad port raises ValueError: the kubeconfig's, said once
    cfg = ClientConfig(host=server.rstrip("/"))
    base = os.path.dirname(os.path.abspath(path))
    try:
        if cfg.host.startswith("https"):
            cfg.ssl_ca_cert = _file(cluster, "certificate-authority", base)
            cfg.cert_file = _file(user, "client-certificate", base)
            cfg.key_file = _file(user, "client-key", base)
    except binascii.Error as exc:
        raise ValueError(f"bad base64 data: {exc}") from exc
    if "insecure-skip-tls-verify" in cluster:
        cfg.verify_ssl = not cluster["insecure-skip-tls-verify"]
    if "tls-server-name" in cluster:
        cfg.tls_server_name = cluster["tls-server-name"]
    if user.get("token"):
        cfg.token = f"Bearer {user['token']}"
    return cfg
