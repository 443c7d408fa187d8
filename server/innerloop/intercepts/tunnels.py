"""One tunnel per Ready replica of the intercepted workload, following pod churn.

The set holds a *desired* state (which route is claimed to which local port, whether the
debuggee is paused) and every per-pod worker converges its tunnel to it: on connect, on
reconnect after the agent restarted or the laptop slept, and whenever the desired state changes.
Pods come and go through `Gateway.watch_ready_pods`; a tunnel that dies while its pod is still
Ready is reopened with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal, TypeAlias, assert_never

from innerloop.core.agent_patch import pod_has_agent
from innerloop.core.errors import ClusterError, InnerloopError
from innerloop.core.manifest import Manifest
from innerloop.core.rollout import pod_ready
from innerloop.core.routing_plan import FRESH, Routing, SendClaim, SendPause, SendRelease, plan
from innerloop.k8s.gateway import Gateway
from innerloop.k8s.pods import ReadyPods
from innerloop.tunnel.errors import InterceptConflict

if TYPE_CHECKING:  # imported by the first tunnel: a start's first API calls do without
    from innerloop.core.mux_events import StreamOpened
    from innerloop.tunnel.client import TunnelClient
    from innerloop.tunnel.relay import StreamTap

log = logging.getLogger(__name__)

RETRY_FIRST = 0.1
RETRY_MAX = 0.5
"""A port-forward attempt costs ~15 ms: retry often, so a restarted agent is back in use within
half a second of listening again."""
TapFactory: TypeAlias = "Callable[[str, str], StreamTap]"
"""(replica, caller address) → what sees one routed stream's bytes (the editor's request log)."""
DRAIN_SECONDS = 3.0
"""How long connections already on the laptop may take to finish when an intercept ends."""
RACE_GRACE = 10.0
RACE_RETRY = 0.2
"""Two clients claiming the replicas in different orders may each win some: the one whose
client id sorts first keeps retrying the others for up to RACE_GRACE while the other, refused,
gives up and releases what it won (wound-wait), so exactly one wins instead of neither."""


class _Worker:
    """Keeps one tunnel to one pod's agent converged to the set's desired state."""

    def __init__(self, owner: TunnelSet, pod: str, returning: bool) -> None:
        self.owner = owner
        self.pod = pod
        self.returning = returning
        """This pod had a tunnel before (its agent restarted, or it was briefly not Ready)."""
        self.client: TunnelClient | None = None
        self.applied: Routing = FRESH
        self.wake = asyncio.Event()
        self.task = asyncio.create_task(self._run(), name=f"tunnel-{pod}")

    async def _run(self) -> None:
        delay = RETRY_FIRST
        was_up = self.returning
        failing = False
        while True:
            try:
                transport = await self.owner.gateway.port_forward(
                    self.owner.namespace, self.pod, self.owner.tunnel_port
                )
                # The tunnel's protocol (dozens of dataclasses) and websockets: only now.
                from innerloop.tunnel.client import TunnelClient

                client = TunnelClient(transport, self.owner.client_id, name=self.pod,
                                      tap=self._tap())
                await client.start()
            except InnerloopError as exc:
                why = str(exc) if self.pod in str(exc) else f"tunnel to {self.pod} failed: {exc}"
                # A new pod is Ready with its app while its agent may still be starting (the
                # sidecar has no readiness probe): its first refusals are expected.
                starting = not was_up and delay < RETRY_MAX
                if failing or starting:  # the user heard it once; retries go to the log
                    log.info("%s; retrying", why)
                else:
                    self.owner.report(f"{why}; retrying")
                    failing = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            failing = False
            self.client, self.applied = client, FRESH
            self.owner.changed()
            if was_up:
                self.owner.report(f"reconnected to {self.pod}; intercept resumed")
            elif self.owner.opened:
                self.owner.report(f"new replica {self.pod} joined the intercept")
            was_up = True
            delay = RETRY_FIRST
            try:
                reason = await self._serve(client)
            except InterceptConflict as exc:
                self.owner.fail(exc)
                await client.aclose("claim refused")
                return
            self.client = None
            self.owner.report(f"tunnel to {self.pod} lost ({reason}); reconnecting")
            self.owner.changed()

    def _tap(self) -> Callable[[StreamOpened], StreamTap] | None:
        make, pod = self.owner.tap, self.pod
        return None if make is None else lambda opened: make(pod, opened.peer)

    async def _serve(self, client: TunnelClient) -> str:
        """Apply the desired state until the tunnel closes; returns why it closed."""
        closed = asyncio.ensure_future(client.wait_closed())
        waker: asyncio.Future[Literal[True]] | None = None
        try:
            while True:
                want = self.owner.desired
                if want != self.applied:
                    try:
                        await self._apply_racing(client, want)
                    except InterceptConflict:
                        raise
                    except InnerloopError as exc:
                        log.info("%s: %s", self.pod, exc)
                        return await closed
                    self.applied = want
                    self.owner.changed()
                self.wake.clear()
                waker = wake = asyncio.ensure_future(self.wake.wait())
                await asyncio.wait([closed, wake], return_when=asyncio.FIRST_COMPLETED)
                wake.cancel()
                if closed.done():
                    return closed.result()
        finally:
            # Cancelled by close() while waiting: neither wait may outlive this call (a task
            # left pending is destroyed by the garbage collector, which asyncio logs).
            for pending in (closed, waker):
                if pending is not None and not pending.done():
                    pending.cancel()

    async def _apply_racing(self, client: TunnelClient, want: Routing) -> None:
        """`_apply`, retried while a racing client that must yield to us still holds the claim."""
        deadline = asyncio.get_running_loop().time() + RACE_GRACE
        while True:
            try:
                return await self._apply(client, want)
            except InterceptConflict as exc:
                if not self.owner.outranks(exc.holder, self) or \
                        asyncio.get_running_loop().time() > deadline:
                    raise
                log.info("%s: %s holds it too, racing us; it yields", self.pod, exc.holder)
                await asyncio.sleep(RACE_RETRY)

    async def _apply(self, client: TunnelClient, want: Routing) -> None:
        for step in plan(self.applied, want):
            match step:
                case SendRelease(listen_port):
                    await client.release(listen_port)
                    await client.drain(DRAIN_SECONDS)
                case SendPause(paused, while_paused):
                    await client.set_paused(paused, while_paused)
                case SendClaim(route):
                    await client.claim(route.listen_port, route.local_port, route.filter,
                                       route.mode, route.protocol)
                case _:
                    assert_never(step)

    async def close(self) -> None:
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("%s: tunnel worker failed", self.pod)
        if self.client is not None:
            await self.client.aclose()
            self.client = None


class TunnelSet:
    """Tunnels to every Ready replica that runs the agent."""

    def __init__(
        self,
        gateway: Gateway,
        namespace: str,
        selector: str,
        tunnel_port: int,
        client_id: str,
        report: Callable[[str], None],
        tap: TapFactory | None = None,
    ) -> None:
        self.gateway = gateway
        self.tap = tap
        self.namespace = namespace
        self.selector = selector
        self.tunnel_port = tunnel_port
        self.client_id = client_id
        self.report = report
        self.desired: Routing = FRESH
        self.workers: dict[str, _Worker] = {}
        self._failure: InnerloopError | None = None
        self._changed = asyncio.Event()
        self._watch: ReadyPods | None = None
        self._follow: asyncio.Task[None] | None = None
        self._first = asyncio.Event()
        self._seen: set[str] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self.opened = False
        """The first set of tunnels is up: later ones are reconnects or new replicas."""
        self.on_change: Callable[[], None] = lambda: None

    # -- state seen by the intercept ----------------------------------------------------------

    @property
    def replicas(self) -> int:
        return len(self.workers)

    @property
    def connected(self) -> int:
        return sum(1 for w in self.workers.values() if w.client is not None)

    def changed(self) -> None:
        self._changed.set()
        self.on_change()

    def fail(self, exc: InnerloopError) -> None:
        self._failure = exc
        self.changed()

    def outranks(self, holder: str, refused: _Worker) -> bool:
        """A race, not a held intercept (another replica took our claim), and we win it."""
        won_elsewhere = any(w is not refused and w.applied.route is not None
                            for w in self.workers.values())
        return won_elsewhere and self.client_id < holder

    # -- lifecycle --------------------------------------------------------------------------

    def follow(self, known: Sequence[Manifest] = ()) -> None:
        """Start following the pods (tunnels open as replicas turn up); idempotent. `known`:
        pods just read, whose tunnels open at once instead of after the watch's first list."""
        if self._follow is None:
            if ready := {p["metadata"]["name"]: p for p in known if pod_ready(p)}:
                self._sync_workers(ready)
            self._watch = self.gateway.watch_ready_pods(self.namespace, self.selector)
            self._follow = asyncio.create_task(self._follow_pods(self._watch))

    async def open(self, timeout: float = 60.0) -> None:
        """Follow the pods; return when every Ready replica's tunnel is up."""
        self.follow()
        await self._until(lambda: self._first.is_set() and self.replicas > 0
                          and self.connected == self.replicas, timeout,
                          "no Ready replica with the agent answered")
        self.opened = True

    async def _follow_pods(self, pods: ReadyPods) -> None:
        try:
            async for snapshot in pods:
                self._sync_workers(snapshot)
                self._first.set()
        except InnerloopError as exc:
            self.fail(exc)

    def _sync_workers(self, snapshot: dict[str, Manifest]) -> None:
        ready = {name for name, pod in snapshot.items() if pod_has_agent(pod)}
        for gone in set(self.workers) - ready:
            closing = asyncio.create_task(self.workers.pop(gone).close())
            self._closing.add(closing)  # referenced until done, and awaited by close()
            closing.add_done_callback(self._closing.discard)
            log.info("pod %s left; closing its tunnel", gone)
        for new in sorted(ready - set(self.workers)):
            self.workers[new] = _Worker(self, new, returning=new in self._seen)
            self._seen.add(new)
            log.info("pod %s is Ready; opening a tunnel", new)
        self.changed()

    async def apply(self, desired: Routing, timeout: float = 30.0) -> None:
        """Converge every tunnel to `desired`; raises the conflict if a claim was refused."""
        self.desired = desired
        for w in self.workers.values():
            w.wake.set()
        await self._until(
            lambda: all(w.client is None or w.applied == desired for w in self.workers.values()),
            timeout,
            "the agents did not confirm the routing change",
        )

    async def _until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._failure is not None:
                raise self._failure
            if done():
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ClusterError(f"{what} within {timeout:.0f} s")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def close(self) -> None:
        if self._watch is not None:
            await self._watch.aclose()
        if self._follow is not None:
            self._follow.cancel()
            try:
                await self._follow
            except (asyncio.CancelledError, InnerloopError):
                pass
        workers, self.workers = list(self.workers.values()), {}
        await asyncio.gather(*(w.close() for w in workers), *self._closing)
