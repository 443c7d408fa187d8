"""Ready pods over time: a list+watch of a selector's pods, as snapshots of the Ready ones."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

from innerloop.core.errors import ClusterError, InnerloopError
from innerloop.core.manifest import Manifest
from innerloop.core.rollout import pod_ready
from innerloop.k8s.api import Api, HttpError, api_path
from innerloop.k8s.errors import from_status
from innerloop.k8s.http import Response

log = logging.getLogger(__name__)

WATCH_SECONDS = 60


def _signature(pod: Manifest) -> tuple[Any, ...]:
    statuses = pod.get("status", {}).get("containerStatuses", [])
    return (
        pod["metadata"]["name"],
        pod["metadata"].get("uid"),
        pod.get("status", {}).get("podIP"),
        tuple(sorted((c["name"], bool(c.get("ready"))) for c in statuses)),
    )


class ReadyPods:
    """Async iterator of {pod name: pod} for the Ready pods of a selector.

    A list+watch loop runs in its own thread (a watch blocks for minutes, which would starve
    the shared to_thread pool); it re-lists after a 410 and retries transient failures with
    backoff, so a laptop waking from sleep picks up where it was. The iterator yields the newest
    snapshot only (bursts of changes coalesce) and always starts with the current set.
    Permanent failures (401/403/404) end the iteration with the error.
    """

    def __init__(self, api: Api, namespace: str, selector: str) -> None:
        self._api = api
        self._namespace = namespace
        self._selector = selector
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self._latest: dict[str, Manifest] | None = None
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._response: Response | None = None
        self._delivered: list[tuple[Any, ...]] | None = None
        """Signature of the last snapshot sent (None: nothing sent yet, so the first always is)."""
        self._thread = threading.Thread(
            target=self._run, daemon=True, name=f"watch-pods-{namespace}"
        )
        self._thread.start()

    def __aiter__(self) -> ReadyPods:
        return self

    async def __anext__(self) -> dict[str, Manifest]:
        while True:
            if self._latest is not None:
                snapshot, self._latest = self._latest, None
                return snapshot
            if self._error is not None:
                raise self._error
            if self._stop.is_set():
                raise StopAsyncIteration
            self._changed.clear()
            await self._changed.wait()

    async def __aenter__(self) -> ReadyPods:  # noqa: PYI034 (Self needs Python 3.11)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            response.shutdown()  # unblocks the thread's read
        self._changed.set()

    # the thread ----------------------------------------------------------------------------

    def _publish(self, pods: Mapping[str, Manifest]) -> None:
        ready = {name: p for name, p in pods.items() if pod_ready(p)}
        signature = sorted(_signature(p) for p in ready.values())
        if signature == self._delivered:
            return
        self._delivered = signature

        def deliver() -> None:
            self._latest = ready
            self._changed.set()

        self._loop.call_soon_threadsafe(deliver)

    def _fail(self, exc: BaseException) -> None:
        def deliver() -> None:
            self._error = exc
            self._changed.set()

        self._loop.call_soon_threadsafe(deliver)

    def _run(self) -> None:
        path = api_path("v1", self._namespace, "pods")
        backoff = 0.5
        try:
            while not self._stop.is_set():
                try:
                    listing = self._api.call_sync("GET", path, [("labelSelector", self._selector)])
                    pods = {p["metadata"]["name"]: p for p in listing.get("items", [])}
                    version = listing["metadata"]["resourceVersion"]
                    self._publish(pods)
                    backoff = 0.5
                    while not self._stop.is_set():
                        next_version = self._watch(path, version, pods)
                        if next_version is None:
                            break  # 410 Gone: re-list
                        version = next_version
                except HttpError as exc:
                    if exc.status in (401, 403, 404):
                        raise from_status(
                            exc.status, exc.body, f"watch pods in namespace {self._namespace!r}"
                        ) from None
                    log.debug("pod watch: HTTP %s; retrying", exc.status)
                except (ClusterError, OSError, ValueError) as exc:
                    if self._stop.is_set():
                        return
                    log.debug("pod watch interrupted (%s); retrying in %.1f s", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        except InnerloopError as exc:
            if not self._stop.is_set():
                self._fail(exc)

    def _watch(self, path: str, version: str, pods: dict[str, Manifest]) -> str | None:
        """One watch request; the resourceVersion to go on from, or None to re-list."""
        query = [
            ("labelSelector", self._selector),
            ("watch", "true"),
            ("resourceVersion", version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", WATCH_SECONDS),
        ]
        response = self._api.open_sync("GET", path, query, timeout=(5.0, WATCH_SECONDS + 30))
        self._response = response
        try:
            for line in response:
                if self._stop.is_set():
                    return version
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event.get("object", {})
                kind = event.get("type")
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        return None
                    raise HttpError(int(obj.get("code", 500)), json.dumps(obj).encode())
                version = obj.get("metadata", {}).get("resourceVersion", version)
                if kind == "BOOKMARK":
                    continue
                name = obj["metadata"]["name"]
                if kind == "DELETED":
                    pods.pop(name, None)
                else:
                    pods[name] = obj
                self._publish(pods)
            return version
        finally:
            self._response = None
            response.release_conn()
