"""One intercept: runs the effects of the core state machine against the cluster and tunnels.

`core.intercept.step` decides what to do; this class only does it, one effect at a time, and
feeds back the event that says how it went. Cancelling `start()` unwinds what it did (the
machine's LEAVE rules), shielded, so a cancelled start leaves the cluster as it was.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any, assert_never

from innerloop.core import intercept as machine
from innerloop.core.agent_patch import (
    AgentConfig,
    AgentStatus,
    agent_config_map_name,
    agent_cpu_for,
    agent_image_for,
    agent_layout,
    agent_status,
    install_agent,
    remove_agent,
)
from innerloop.core.errors import ClusterError, InnerloopError, UserError
from innerloop.core.filters import AppProtocol, route_protocol
from innerloop.core.intercept import InterceptEvent, Phase
from innerloop.core.report import Report
from innerloop.core.request import InterceptRequest, PortSpec
from innerloop.core.rollout import manual_rollout
from innerloop.core.routing_plan import FRESH, Route, Routing
from innerloop.core.service_patch import restore_service, service_takeover
from innerloop.core.targets import Target, first_line, service_ports, workload_selector
from innerloop.intercepts import kube_proxy
from innerloop.intercepts.snapshot import Snapshot
from innerloop.intercepts.tunnels import TapFactory, TunnelSet
from innerloop.k8s.gateway import Gateway
from innerloop.k8s.rbac import intercept_permissions
from innerloop.k8s.reads import Resolution
from innerloop.tunnel.errors import InterceptConflict

log = logging.getLogger(__name__)

CRASH_BEFORE = "INNERLOOP_TEST_CRASH_BEFORE"
"""Tests only (tests/faults/test_crash.py): an effect's class name; the process dies as if
killed just before running the first effect of that name."""


class ClaimRefused(UserError):
    """Another client holds the traffic: it runs through the agent, which must stay."""


def _unwind_event(exc: BaseException) -> InterceptEvent:
    if isinstance(exc, ClaimRefused):
        return InterceptEvent.CLAIM_REFUSED
    return InterceptEvent.FAILED if isinstance(exc, Exception) else InterceptEvent.LEAVE


class Intercept:
    def __init__(
        self,
        gateway: Gateway,
        request: InterceptRequest,
        agent_image: str | None,
        agent_bundle: bytes,
        client_id: str,
        on_change: Callable[[Intercept], None],
        report: Report,
        agent_cpu: str | None = None,
    ) -> None:
        if request.namespace is None:
            raise ValueError("an Intercept needs its namespace resolved")
        self.gw = gateway
        self.request = request
        self.namespace: str = request.namespace
        self.chosen_image = agent_image  # None: the installed agent's, or the default
        self.agent_image = agent_image_for(agent_image)
        self.chosen_cpu = agent_cpu  # None: the installed agent's request, or the default
        self.agent_cpu = agent_cpu_for(agent_cpu)
        self.agent_bundle = agent_bundle
        self.client_id = client_id
        self.on_change = on_change
        self.report = report
        self.state = machine.InterceptState()
        self.resolution: Resolution | None = None
        self.tunnels: TunnelSet | None = None
        self.tap: TapFactory | None = None
        """What sees the bytes of each stream routed here (the editor's request log)."""
        self.paused = False
        self.protocol = AppProtocol.AUTO
        """How the agent reads the port's requests (the user's, else the Service port's)."""
        self.message: str | None = None
        self.env_file: str | None = None
        self._lock = asyncio.Lock()
        self._agent_check: asyncio.Future[None] | None = None
        self.check_local_port: Callable[[int], None] = lambda _port: None
        """Run once the local port is known, before the cluster is changed (the CLI's)."""
        self.ended = asyncio.Event()
        """Set when the intercept ended by itself (its agent was removed); `message` says why."""

    @property
    def id(self) -> str:
        return self.request.key

    def _phase(self) -> Phase:
        """Read afresh: awaiting `_feed` moves it (a narrowed attribute would be stale)."""
        return self.state.phase

    @property
    def target(self) -> Target:
        assert self.resolution is not None, "not resolved yet"
        return self.resolution.target

    def snapshot(self) -> Snapshot:
        t = self.resolution.target if self.resolution else None
        return Snapshot(
            id=self.id,
            namespace=self.namespace,
            service=self.request.service,
            service_port=t.service_port.label() if t else self.request.port.service_port,
            local_port=t.local_port if t else self.request.port.local_port,
            phase=self.state.phase,
            replicas=self.tunnels.replicas if self.tunnels else 0,
            connected=self.tunnels.connected if self.tunnels else 0,
            message=self.message,
            env_file=self.env_file,
            scope=self.request.scope(),
        )

    # -- driving the machine ----------------------------------------------------------------

    async def _feed(self, event: InterceptEvent) -> None:
        """Apply one event and every effect (and follow-up event) it leads to."""
        pending = [event]
        while pending:
            self.state, effects = machine.step(self.state, pending.pop(0))
            for effect in effects:
                follow = await self._do(effect)
                if follow is not None:
                    pending.append(follow)

    async def _do(self, effect: machine.Effect) -> InterceptEvent | None:
        """Run one effect; the event it returns (if any) is fed to the machine next."""
        if os.environ.get(CRASH_BEFORE) == type(effect).__name__:
            os._exit(1)
        match effect:
            case machine.Resolve():
                return await self._resolve()
            case machine.InstallAgent():
                return await self._install_agent()
            case machine.WaitRollout():
                return await self._wait_rollout()
            case machine.OpenTunnels():
                return await self._open_tunnels()
            case machine.RouteTraffic():
                return await self._route_traffic()
            case machine.TakeOverService():
                return await self._take_over_service()
            case machine.UpdatePause() | machine.ReleaseTraffic():
                await self._apply_routing(effect)
            case machine.CloseTunnels():
                await self._close_tunnels()
            case machine.RestoreService():
                await self._restore_service()
            case machine.RemoveAgent():
                await self._remove_agent()
            case machine.Notify(phase):
                log.info("%s: %s", self.id, phase.value)
                self.on_change(self)
            case _:
                assert_never(effect)
        return None

    async def start(self) -> None:
        """Run until ACTIVE; on failure or cancellation unwind and re-raise."""
        async with self._lock:
            try:
                await self._feed(InterceptEvent.START)
            except BaseException as exc:
                self.message = exc.user_line() if isinstance(exc, InnerloopError) else None
                await asyncio.shield(self._unwind(_unwind_event(exc)))
                raise

    async def _unwind(self, event: InterceptEvent) -> None:
        if self.state.phase in (Phase.IDLE, Phase.ERROR, Phase.LEAVING, Phase.UNINSTALLING):
            return
        if self.state.phase in (Phase.RESOLVING, Phase.ROLLING_OUT):  # tunnels opened early
            await self._close_tunnels()
        try:
            await self._feed(event)
            if event is InterceptEvent.LEAVE and self._phase() is Phase.LEAVING:
                await self._feed(InterceptEvent.LEFT)
        except InnerloopError as exc:
            self.report(f"could not undo everything: {exc.user_line()}; once that is fixed, run "
                        f"`innerloop uninstall {self.request.service} -n {self.namespace}`")
        except Exception:
            log.exception("%s: undoing the start failed", self.id)

    async def leave(self) -> None:
        async with self._lock:
            if self.state.phase in (Phase.IDLE, Phase.ERROR):
                return
            await self._feed(InterceptEvent.LEAVE)
            await self._feed(InterceptEvent.LEFT)

    async def set_paused(self, paused: bool) -> None:
        self.paused = paused
        # Only a flip is an event; the same state again (e.g. after a reconnect) is a no-op.
        if (self.state.phase, paused) in ((Phase.ACTIVE, True), (Phase.PAUSED, False)):
            await self._feed(InterceptEvent.PAUSE if paused else InterceptEvent.RESUME)

    async def uninstall(self, force: bool = False) -> bool:
        """Service first, then the sidecar; leaves the specs as they were before innerloop.
        False (and nothing changed) when innerloop had changed neither. Refuses while another
        client holds an intercept of it, unless `force`."""
        async with self._lock:
            req = self.request
            svc = await self.gw.get_service(self.namespace, req.service)
            ports = service_ports(svc)
            taken = [p for p in ports if p.label() in service_takeover(svc)] or ports
            spec = PortSpec(taken[0].port if taken else None, None)
            self.resolution = res = await self.gw.resolve(self.namespace, req.service, spec)
            if restore_service(res.service) == res.service and \
                    remove_agent(res.workload) == res.workload:
                return False
            from innerloop.intercepts.holders import held_refusal, holders

            held = [] if force else await holders(self.gw, res.workload, req.service,
                                                  self.client_id)
            if held:
                raise held_refusal(req.service, self.namespace, held)
            await self._feed(InterceptEvent.UNINSTALL)
            await self._feed(InterceptEvent.UNINSTALLED)
            return True

    # -- effects ----------------------------------------------------------------------------

    def _agent_config(self, config_map: str) -> AgentConfig:
        return AgentConfig(image=self.agent_image, config_map=config_map,
                           cpu_request=self.agent_cpu)

    async def _resolve(self) -> InterceptEvent:
        # The permissions are listed while the reads run (the list needs only the namespace)
        rules = asyncio.ensure_future(self.gw.rules_review(self.namespace))
        try:
            return await self._resolve_and_check(rules)
        finally:
            if not rules.done():  # a read failed first
                rules.cancel()
            rules.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def _resolve_and_check(self, rules: asyncio.Future[dict[str, Any] | None]
                                 ) -> InterceptEvent:
        req = self.request
        self.resolution = res = await self.gw.resolve(self.namespace, req.service, req.port)
        self.agent_image = agent_image_for(self.chosen_image, res.workload)
        self.agent_cpu = agent_cpu_for(self.chosen_cpu, res.workload)
        port = res.target.service_port
        self.protocol = route_protocol(req.protocol, port.app_protocol, port.name, req.filter,
                                       req.mode, f"{req.service}.{self.namespace}:{port.label()}")
        config = self._agent_config(agent_config_map_name(self.agent_bundle))
        status = agent_status(res.workload, config, [res.target.container_port])
        if status is AgentStatus.CURRENT:  # warm: tunnels open while the checks run
            self._tunnel_set().follow(res.pods)
        await self.gw.check_permissions(
            self.namespace, intercept_permissions(res.target.workload, manual_rollout(res.workload)),
            rules)
        self.report(first_line(res.target, res.service, req.port, self.agent_image))
        self.check_local_port(res.target.local_port)
        if announced := req.announce(self.protocol):
            self.report(announced)
        if status is AgentStatus.CURRENT:
            return InterceptEvent.AGENT_CURRENT
        self.report(f"injecting the agent into {res.target.workload} (one rollout)")
        return InterceptEvent.AGENT_MISSING

    async def _install_agent(self) -> InterceptEvent:
        t = self.target
        name = await self.gw.ensure_agent_config_map(t.namespace, self.agent_bundle)
        config = self._agent_config(name)
        workload = await self.gw.update_workload(
            t.workload, lambda w: install_agent(w, config, [t.container_port])
        )
        self._set_workload(workload)
        return InterceptEvent.AGENT_INSTALLED

    def _set_workload(self, workload: dict[str, object]) -> None:
        assert self.resolution is not None
        self.resolution = Resolution(self.resolution.target, self.resolution.service, workload)

    async def _wait_rollout(self) -> InterceptEvent:
        self._tunnel_set().follow()  # to each new replica once Ready, while old ones go
        await self.gw.wait_rollout(self.target.workload, progress=self.report)
        self._set_workload(await self.gw.get_workload(self.target.workload))
        return InterceptEvent.ROLLED_OUT

    def _layout_ports(self) -> tuple[int, int]:
        assert self.resolution is not None
        layout = agent_layout(self.resolution.workload)
        if layout is None:
            raise ClusterError(
                f"{self.target.workload} lost its innerloop agent meanwhile; start again"
            )
        return layout.tunnel_port, layout.listen_port(self.target.container_port)

    def _tunnel_set(self) -> TunnelSet:
        if self.tunnels is None:
            assert self.resolution is not None
            self.tunnels = TunnelSet(self.gw, self.target.namespace,
                                     workload_selector(self.resolution.workload),
                                     self._layout_ports()[0], self.client_id, self._say_tunnel,
                                     tap=self.tap)
            self.tunnels.on_change = self._tunnels_changed
        return self.tunnels

    def _say_tunnel(self, line: str) -> None:
        """Tunnels opened early say nothing until the checks passed and the rollout ended."""
        (log.info if self._phase() in (Phase.RESOLVING, Phase.ROLLING_OUT) else self.report)(line)

    async def _open_tunnels(self) -> InterceptEvent:
        tunnels = self._tunnel_set()
        await tunnels.open()
        self.report(f"tunnels open to {tunnels.connected} replica(s)")
        return InterceptEvent.TUNNELS_OPEN

    def _tunnels_changed(self) -> None:
        self.on_change(self)
        t = self.tunnels
        if (t is not None and t.opened and t.replicas == 0 and self._agent_check is None
                and self._phase() in (Phase.ACTIVE, Phase.PAUSED)):
            self._agent_check = asyncio.ensure_future(self._check_agent())

    async def _check_agent(self) -> None:
        """No replica runs the agent any more: if it was removed (`uninstall --force`
        elsewhere), the intercept is over; say so once and end (`ended` is set)."""
        ref = self.target.workload
        try:
            workload: dict[str, Any] | None = await self.gw.get_workload(ref)
        except UserError:  # the workload itself is gone
            workload = None
        except InnerloopError as exc:
            log.info("%s: cannot check the agent: %s", self.id, exc)
            return
        finally:
            self._agent_check = None
        if workload is not None and agent_layout(workload) is not None:
            return  # a rollout or a scale to zero: the tunnels follow the pods back
        self.message = (f"the innerloop agent was removed from {ref} (`innerloop uninstall` "
                        "from elsewhere); this intercept has ended")
        async with self._lock:
            if self._phase() in (Phase.ACTIVE, Phase.PAUSED):
                await self._feed(InterceptEvent.FAILED)
        self.ended.set()

    def _desired(self) -> Routing:
        _, listen = self._layout_ports()
        req = self.request
        return Routing(Route(listen, self.target.local_port, req.filter, req.mode, self.protocol),
                       self.paused, req.while_paused)

    async def _route_traffic(self) -> InterceptEvent:
        assert self.tunnels is not None
        try:
            await self.tunnels.apply(self._desired())
        except InterceptConflict as exc:
            t = self.target
            raise ClaimRefused(f"{t.service}.{t.namespace}:{t.service_port.label()} is already "
                               f"{exc.taken_by()}; {exc.advice_text()}") from exc
        return InterceptEvent.CLAIMED

    async def _take_over_service(self) -> InterceptEvent:
        layout = agent_layout(self.resolution.workload) if self.resolution else None
        assert self.tunnels is not None and layout is not None
        await kube_proxy.take_over(self.gw, self.target, layout, self.tunnels, self._desired,
                                   self.report)
        return InterceptEvent.SERVICE_TAKEN_OVER

    async def _apply_routing(self, effect: machine.UpdatePause | machine.ReleaseTraffic) -> None:
        if self.tunnels is None:
            return
        if isinstance(effect, machine.UpdatePause):
            await self.tunnels.apply(self._desired())
        elif self.tunnels.desired != FRESH:
            try:
                await self.tunnels.apply(FRESH, timeout=8.0)
            except InnerloopError as exc:
                # The agents drop a silent client's routes by themselves; closing is enough
                # (and a refused claim's tunnel never confirms: not the user's concern).
                log.info("%s: release not confirmed (%s); closing the tunnels", self.id, exc)

    async def _close_tunnels(self) -> None:
        if self.tunnels is not None:
            tunnels, self.tunnels = self.tunnels, None
            await tunnels.close()

    async def _restore_service(self) -> None:
        t = self.target
        await self.gw.update_service(t.namespace, t.service, restore_service)

    async def _remove_agent(self) -> None:
        t = self.target
        # Never leave the Service pointing at a sidecar that is going away.
        await self.gw.update_service(t.namespace, t.service, restore_service)
        workload = await self.gw.update_workload(t.workload, remove_agent)
        self._set_workload(workload)
        self.report(f"removing the agent from {t.workload}")
        await self.gw.wait_rollout(t.workload, progress=self.report)
        from innerloop.intercepts.cleanup import clean_up_after_agent

        await clean_up_after_agent(self.gw, t.workload, self.report)
