"""How `k8s.api` sends one HTTP request: over `k8s.pool`'s keep-alive connections for the
settings `k8s.kubeconfig` read, through the `kubernetes` client (and urllib3, both imported
only then) for the rest.

Either way the caller gets the raw, unread `Response`, or `NoAnswer` with the reason the
server could not be asked (unreachable, TLS refused): the same request the `kubernetes` client
sends — its URL, JSON body, headers, timeouts, one retry on a stale kept connection. A body
that breaks off while read raises OSError (`pool.ReadFailed` for either client).
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, urlencode

from innerloop.k8s.kubeconfig import ClientConfig
from innerloop.k8s.pool import KeepAlivePool, ReadFailed

if TYPE_CHECKING:
    import urllib3
    from kubernetes.client import Configuration

Query = Sequence[tuple[str, Any]]
HEADERS = {"Accept": "application/json", "Content-Type": "application/json"}


class NoAnswer(Exception):
    """The request got no HTTP answer; `reason` says why, in the library's words."""

    def __init__(self, reason: str | BaseException) -> None:
        super().__init__(reason)
        self.reason = reason


class Response(Protocol):
    """An answer whose body is not read yet."""

    status: int

    @property
    def data(self) -> bytes:
        """The whole body (read once); OSError if it broke off."""

    def __iter__(self) -> Iterator[bytes]:
        """The body line by line (a watch); OSError if it broke off."""

    def shutdown(self) -> None:
        """Unblock a read in another thread."""

    def release_conn(self) -> None:
        """Done with it: its connection is kept for the next call if it can be."""


class HttpClient(Protocol):
    def open(self, method: str, path: str, query: Query, body: Any,
             timeout: tuple[float, float]) -> Response: ...

    def close(self) -> None: ...


def _target(path: str, query: Query) -> str:
    """Path and query as sent; characters a URL cannot hold are escaped (as urllib3 does)."""
    return quote(path, safe="/%:@!$&'()*+,;=~") + (f"?{urlencode(list(query), quote_via=quote)}" if query else "")


class PoolClient:
    """Keep-alive connections with the TLS and token of a `ClientConfig`."""

    def __init__(self, cfg: ClientConfig) -> None:
        self.cfg = cfg
        self._pool = KeepAlivePool(cfg)
        self._headers = {**HEADERS, "User-Agent": "innerloop"}
        if cfg.token:
            self._headers["Authorization"] = cfg.token

    def open(self, method: str, path: str, query: Query, body: Any,
             timeout: tuple[float, float]) -> Response:
        try:
            return self._pool.request(
                method, _target(path, query),
                None if body is None else json.dumps(body).encode(), self._headers, timeout)
        except (http.client.HTTPException, OSError) as exc:
            raise NoAnswer(exc) from exc

    def close(self) -> None:
        self._pool.close()


class _Urllib3Answer:
    """urllib3's response with its read errors as OSError, as `pool.Answer` raises them."""

    def __init__(self, raw: urllib3.BaseHTTPResponse) -> None:
        self._raw = raw
        self.status = raw.status

    @property
    def data(self) -> bytes:
        import urllib3

        try:
            return self._raw.data
        except urllib3.exceptions.HTTPError as exc:
            raise ReadFailed(f"the API server's answer broke off: {exc!r}") from exc

    def __iter__(self) -> Iterator[bytes]:
        import urllib3

        try:
            yield from self._raw
        except urllib3.exceptions.HTTPError as exc:
            raise ReadFailed(f"the API server's answer broke off: {exc!r}") from exc

    def shutdown(self) -> None:
        self._raw.shutdown()

    def release_conn(self) -> None:
        self._raw.release_conn()


class KubernetesClient:
    """The `kubernetes` client's ApiClient: exec plugins, auth providers, proxies."""

    def __init__(self, cfg: Configuration) -> None:
        from kubernetes.client import ApiClient
        from kubernetes.client.exceptions import ApiException

        self._client = ApiClient(cfg)
        self._api_exception = ApiException

    def open(self, method: str, path: str, query: Query, body: Any,
             timeout: tuple[float, float]) -> Response:
        import urllib3

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
        return _Urllib3Answer(raw)

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]


def http_client(cfg: ClientConfig | Configuration) -> HttpClient:
    return PoolClient(cfg) if isinstance(cfg, ClientConfig) else KubernetesClient(cfg)
