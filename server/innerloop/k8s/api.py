"""The raw API client: one HTTP call as API JSON, and every HTTP failure as our own error.

Objects travel as raw API JSON (camelCase dicts), read and written as the server sends them: the
client's typed models would drop fields newer than the client, and a replace built from them
would silently delete those fields. Failures become one actionable line:

- unreachable server → ClusterError with its URL;
- 404 → UserError naming what is missing (namespace vs the object);
- 403 → ClusterError naming who may not do what where (RBAC).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from innerloop.core.advice import Fix, advise
from innerloop.core.errors import ClusterError, UserError
from innerloop.core.manifest import Manifest
from innerloop.k8s.config import Settings, one_line
from innerloop.k8s.errors import from_status, unreachable
from innerloop.k8s.http import NoAnswer, Response, http_client

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = (5.0, 30.0)
"""(connect, read) seconds for ordinary calls: an unreachable server fails fast."""
UPDATE_ATTEMPTS = 5

WORKLOADS = {
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "ReplicaSet": "replicasets",
}
"""Workload kind → its plural in apps/v1."""

Query = Sequence[tuple[str, Any]]


class HttpError(Exception):
    """A non-2xx answer, before it is worded for the user (callers decide what 404/409 mean)."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def api_path(group_version: str, namespace: str | None, plural: str, name: str | None = None) -> str:
    prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    path = prefix + (f"/namespaces/{quote(namespace)}" if namespace else "") + f"/{plural}"
    return path + (f"/{quote(name)}" if name else "")


def workload_path(kind: str, namespace: str, name: str) -> str:
    return api_path("apps/v1", namespace, WORKLOADS[kind], name)


def root_cause(exc: BaseException) -> str:
    """The HTTP clients wrap the reason a few levels deep; the innermost says it best."""
    reason: BaseException = exc
    while True:
        inner = getattr(reason, "reason", None) or reason.__cause__ or reason.__context__
        if not isinstance(inner, BaseException) or inner is reason:
            break
        reason = inner
    return str(reason) or type(reason).__name__


class Api:
    """HTTP calls to one API server as the kubeconfig's user.

    The `*_sync` methods block (for worker threads, e.g. the pod watch); the others run them
    with `asyncio.to_thread` and word HTTP errors with what they were doing.
    """

    def __init__(self, configuration: Settings) -> None:
        self._client = http_client(configuration)
        self.configuration = configuration

    @property
    def server(self) -> str:
        return str(self.configuration.host)

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)

    def open_sync(
        self,
        method: str,
        path: str,
        query: Query = (),
        body: Any = None,
        timeout: Any = REQUEST_TIMEOUT,
    ) -> Response:
        """One request; the raw (unread) response, or HttpError."""
        try:
            raw = self._client.open(method, path, query, body, timeout)
        except NoAnswer as exc:
            why = exc.reason
            raise unreachable(self.server, one_line(why) if isinstance(why, str)
                              else root_cause(why)) from exc
        if not 200 <= raw.status <= 299:
            try:
                body = raw.data or b""
            except OSError:
                body = b""
            raise HttpError(raw.status, body)
        return raw

    def call_sync(self, method: str, path: str, query: Query = (), body: Any = None) -> Any:
        """One JSON call: the decoded answer, or HttpError."""
        resp = self.open_sync(method, path, query, body)
        try:
            return json.loads(resp.data)
        except OSError as exc:  # the body broke off
            raise unreachable(self.server, root_cause(exc)) from exc

    async def call_raw(self, method: str, path: str, query: Query = (), body: Any = None) -> Any:
        """One JSON call in a worker thread; HttpError left for the caller to judge."""
        return await asyncio.to_thread(self.call_sync, method, path, query, body)

    async def call(
        self, method: str, path: str, doing: str, query: Query = (), body: Any = None
    ) -> Any:
        """One JSON call; HTTP errors become our errors, worded with `doing`."""
        try:
            return await self.call_raw(method, path, query, body)
        except HttpError as exc:
            raise from_status(exc.status, exc.body, doing) from None

    async def get_or_none(self, path: str, doing: str) -> Manifest | None:
        try:
            obj: Manifest = await self.call_raw("GET", path)
            return obj
        except HttpError as exc:
            if exc.status == 404:
                return None
            raise from_status(exc.status, exc.body, doing) from None

    async def get(self, path: str, what: str, namespace: str) -> Manifest:
        """The object, or a UserError saying whether it or its namespace is missing."""
        obj = await self.get_or_none(path, f"get {what} in namespace {namespace!r}")
        if obj is None:
            raise await self.missing(what, namespace)
        return obj

    async def list_items(
        self,
        group_version: str,
        kind: str,
        plural: str,
        namespace: str,
        selector: str | None = None,
    ) -> list[Manifest]:
        query = [("labelSelector", selector)] if selector else []
        data = await self.call(
            "GET",
            api_path(group_version, namespace, plural),
            f"list {plural} in namespace {namespace!r}",
            query,
        )
        items: list[Manifest] = data.get("items", [])
        for item in items:  # list items carry no kind; the core resolvers rely on it
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", group_version)
        return items

    async def delete(self, path: str, doing: str) -> None:
        """Delete; already gone is fine."""
        try:
            await self.call_raw("DELETE", path)
        except HttpError as exc:
            if exc.status != 404:
                raise from_status(exc.status, exc.body, doing) from None

    async def namespace_exists(self, namespace: str) -> bool | None:
        """True/False, or None when we may not look (namespaces are cluster-scoped)."""
        try:
            await self.call_raw("GET", api_path("v1", None, "namespaces", namespace))
            return True
        except HttpError as exc:
            return False if exc.status == 404 else None

    async def missing(self, what: str, namespace: str) -> UserError:
        """The error for a 404 on `what`: the namespace or the object, and how to find it."""
        exists = await self.namespace_exists(namespace)
        if exists is False:
            return UserError(f"namespace {namespace!r} not found", advice=advise(Fix.NAMESPACE))
        maybe = "" if exists else " (or the namespace does not exist)"
        return UserError(
            f"{what} not found in namespace {namespace!r}{maybe}", advice=advise(Fix.FIND_SERVICE)
        )

    async def update(
        self, path: str, what: str, namespace: str, change: Callable[[Manifest], Manifest]
    ) -> Manifest:
        """Read, change (a pure builder), replace with the read resourceVersion; on 409 start
        over from a fresh read, so a concurrent edit is never overwritten."""
        for _ in range(UPDATE_ATTEMPTS):
            current = await self.get_or_none(path, f"get {what}")
            if current is None:
                raise await self.missing(what, namespace)
            desired = change(current)
            if desired == current:
                return current
            try:
                updated: Manifest = await self.call_raw("PUT", path, (), desired)
                return updated
            except HttpError as exc:
                if exc.status != 409:
                    raise from_status(
                        exc.status, exc.body, f"update {what} in namespace {namespace!r}"
                    ) from None
                log.debug("conflict updating %s; retrying from a fresh read", what)
        raise ClusterError(f"{what} kept changing while innerloop updated it; try again")
