"""A tiny stdlib client for the testbed's API server, authenticated with the admin cert.

The testbed's own waits and the DNS feeder use it, so they neither spawn kubectl in loops nor
depend on the `kubernetes` package.
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator
from typing import Any

from tools.testbed.certs import ADMIN, CA_CRT
from tools.testbed.config import API_PORT, NODE_IP, NODE_NAME


def _context() -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(CA_CRT))
    ctx.load_cert_chain(str(ADMIN.crt), str(ADMIN.key))
    return ctx


def _connection(timeout: float) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection(NODE_IP, API_PORT, context=_context(), timeout=timeout)


def get(path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET ``path``; (status, body). Raises OSError when the server is unreachable."""
    conn = _connection(timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def get_json(path: str, timeout: float = 5.0) -> Any:
    status, body = get(path, timeout)
    if status != 200:
        raise RuntimeError(f"GET {path}: HTTP {status}: {body[:200]!r}")
    return json.loads(body)


def probe(check: str) -> bool:
    """Never raises: for polling loops while the server starts."""
    try:
        if check == "readyz":
            return get("/readyz", timeout=5)[0] == 200
        if check == "node-ready":
            node = get_json(f"/api/v1/nodes/{NODE_NAME}", timeout=5)
            conditions = node.get("status", {}).get("conditions", [])
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
        if check == "default-sa":
            return get("/api/v1/namespaces/default/serviceaccounts/default", timeout=5)[0] == 200
    except (OSError, ValueError, RuntimeError, ssl.SSLError):
        return False
    raise ValueError(f"unknown check {check}")


def watch(path: str, resource_version: str, timeout_seconds: int = 300) -> Iterator[dict[str, Any]]:
    """Stream watch events of a list ``path`` from ``resource_version`` until the server ends it."""
    conn = _connection(timeout_seconds + 30)
    try:
        conn.request(
            "GET",
            f"{path}?watch=1&resourceVersion={resource_version}&timeoutSeconds={timeout_seconds}"
            "&allowWatchBookmarks=true",
        )
        resp = conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"watch {path}: HTTP {resp.status}")
        for line in resp:
            if line.strip():
                yield json.loads(line)
    finally:
        conn.close()
