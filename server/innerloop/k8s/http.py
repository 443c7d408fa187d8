"""How `k8s.api` sends one HTTP request: straight through urllib3 for the settings
`k8s.kubeconfig` read, through the `kubernetes` client (imported only then) for the rest.

Either way the caller gets the raw, unread urllib3 response, or `NoAnswer` with the reason the
server could not be asked (unreachable, TLS refused): the same request the `kubernetes` client
sends — its URL, JSON body, headers, timeouts, one retry on a stale pooled connection.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, urlencode

import urllib3

from innerloop.k8s.kubeconfig import ClientConfig

if TYPE_CHECKING:
    from kubernetes.client import Configuration

Query = Sequence[tuple[str, Any]]
HEADERS = {"Accept": "application/json", "Content-Type": "application/json"}


class NoAnswer(Exception):
    """The request got no HTTP answer; `reason` says why, in the library's words."""

    def __init__(self, reason: str | BaseException) -> None:
        super().__init__(reason)
        self.reason = reason


class HttpClient(Protocol):
    def open(self, method: str, path: str, query: Query, body: Any,
             timeout: tuple[float, float]) -> urllib3.BaseHTTPResponse: ...

    def close(self) -> None: ...


class PoolClient:
    """urllib3 with the TLS and token of a `ClientConfig` (as the `kubernetes` client sets its
    pool up for the same settings)."""

    def __init__(self, cfg: ClientConfig) -> None:
        self.cfg = cfg
        pool: dict[str, Any] = {
            "cert_reqs": ssl.CERT_REQUIRED if cfg.verify_ssl else ssl.CERT_NONE,
            "ca_certs": cfg.ssl_ca_cert, "cert_file": cfg.cert_file, "key_file": cfg.key_file,
            "retries": cfg.retries, "maxsize": (os.cpu_count() or 1) * 5,
        }
        if cfg.tls_server_name:
            pool["server_hostname"] = cfg.tls_server_name
        self._pool = urllib3.PoolManager(num_pools=4, **pool)

    def open(self, method: str, path: str, query: Query, body: Any,
             timeout: tuple[float, float]) -> urllib3.BaseHTTPResponse:
        url = self.cfg.host + path + (f"?{urlencode(list(query), quote_via=quote)}" if query
                                      else "")
        headers = dict(HEADERS)
        if self.cfg.token:
            headers["authorization"] = self.cfg.token
        try:
            return self._pool.request(
                method, url, body=None if body is None else json.dumps(body), headers=headers,
                timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]),
                preload_content=False)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise NoAnswer(exc) from exc

    def close(self) -> None:
        self._pool.clear()


class KubernetesClient:
    """The `kubernetes` client's ApiClient: exec plugins, auth providers, proxies."""

    def __init__(self, cfg: Configuration) -> None:
        from kubernetes.client import ApiClient
        from kubernetes.client.exceptions import ApiException

        self._client = ApiClient(cfg)
        self._api_exception = ApiException

    def open(self, method: str, path: str, query: Query, body: Any,
             timeout: tuple[float, float]) -> urllib3.BaseHTTPResponse:
        params = self._client.param_serialize(
            method=method, resource_path=path, query_params=list(query),
            header_params=dict(HEADERS), body=body, auth_settings=["BearerToken"])
        try:
            resp = self._client.call_api(*params, _request_timeout=timeout)
        except self._api_exception as exc:  # the client's wrapper for TLS failures (status 0)
            raise NoAnswer(str(exc.reason)) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise NoAnswer(exc) from exc
        raw: urllib3.BaseHTTPResponse = resp.response
        return raw

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]


def http_client(cfg: ClientConfig | Configuration) -> HttpClient:
    return PoolClient(cfg) if isinstance(cfg, ClientConfig) else KubernetesClient(cfg)
