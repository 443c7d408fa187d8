"""One debug session: a DAP client on one side, debugpy's adapter on the other.

Pass-through by default. The proxy answers `initialize` itself (no upstream exists before an
authorised launch/attach), overrides `launch`/`attach` (intercept first, then a debugpy
launch/attach), refuses reverse requests outside the allow-list, and turns stopped/continued
events into `InterceptHandle.set_paused` calls. The session's phase and what each phase does with
a client message are in `innerloop.core.dap_phase`; the other decisions in `innerloop.core.dap_*`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Protocol, assert_never

from innerloop.core.advice import Surface
from innerloop.core.dap_launch import (
    StartPlan,
    keep_on_disconnect,
    launch_arguments,
    merge_env,
    plan_start,
    start_token,
)
from innerloop.core.dap_phase import ClientAction, SessionEvent, SessionPhase, client_action, step
from innerloop.core.dap_routes import (
    PROXY_CAPABILITIES,
    capabilities_update,
    denied_reverse_request,
    reverse_request_allowed,
)
from innerloop.core.dap_say import say_failure
from innerloop.core.dap_seq import SeqMap, Side
from innerloop.core.dap_subprocess import subprocess_target
from innerloop.core.dap_wire import (
    Message,
    error_response,
    event,
    message_kind,
    output_event,
    response,
)
from innerloop.core.errors import InnerloopError, ProtocolError, RemoteProtocolError, is_expected
from innerloop.core.request import InterceptRequest
from innerloop.dap.controller import ControllerFactory
from innerloop.dap.relay import ChildRelays
from innerloop.dap.session_intercept import SessionIntercept
from innerloop.dap.upstream import connect_with_retry, read_env_file, spawn_adapter, stop_process
from innerloop.dap.wire import DapStream

log = logging.getLogger(__name__)

MAIN = "main"
"""Pause-counter key of the session's own debuggee process."""
ADAPTER_EXIT_GRACE = 3.0

_TEARDOWNS: set[asyncio.Future[None]] = set()
"""Teardowns in progress, referenced until done."""


class Tokens(Protocol):
    """One-time tokens that launch/attach must bring (TCP hosting only)."""

    def issue(self) -> str: ...

    def redeem(self, token: str | None) -> bool: ...


class DebugSessionProxy:
    def __init__(
        self,
        client: DapStream,
        controllers: ControllerFactory,
        tokens: Tokens | None,
        name: str,
        surface: Surface = Surface.CLI,
    ) -> None:
        self.name = name
        self._surface = surface
        """How errors advise: the editor's settings when hosted by the language server."""
        self._client = client
        self._controllers = controllers
        self._tokens = tokens
        self._phase = SessionPhase.NEW
        self._seq = SeqMap()
        self._initialize: Message | None = None
        """The client's initialize, asked again of debugpy once it exists."""
        self._backlog: list[Message] = []
        self._disconnect_args: Mapping[str, Any] | None = None
        """The arguments of the client's disconnect, once it was forwarded to debugpy."""
        self._terminated = False
        """The client got a `terminated` event."""
        self._plan: StartPlan | None = None
        self._start_task: asyncio.Task[None] | None = None
        self._intercept: SessionIntercept | None = None
        self._upstream: DapStream | None = None
        self._adapter: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None
        self._waiters: dict[int, asyncio.Future[Message]] = {}
        self._children = ChildRelays(
            self._observe, self._forget, tokens.issue if tokens is not None else lambda: None, name
        )

    def _step(self, event: SessionEvent) -> None:
        before, self._phase = self._phase, step(self._phase, event)
        if self._phase is not before:
            log.debug("%s: %s -> %s", self.name, before.value, self._phase.value)

    async def run(self) -> None:
        """Serve the client until it goes away, then clean up everything the session started."""
        log.info("%s: session started", self.name)
        try:
            while (msg := await self._client.receive()) is not None:
                if not self._from_client(msg):
                    break
        except ProtocolError as exc:
            log.warning("%s: client broke the protocol: %s", self.name, exc)
        finally:
            self._step(SessionEvent.END)
            # Shielded: even if this task is cancelled, the intercept stops and debugpy exits.
            teardown = asyncio.ensure_future(self._teardown())
            _TEARDOWNS.add(teardown)  # the loop holds tasks weakly; outlive a cancelled run
            teardown.add_done_callback(_TEARDOWNS.discard)
            await asyncio.shield(teardown)
            log.info("%s: session ended", self.name)

    def close(self) -> None:
        """End the session as if the client went away."""
        self._client.close()

    # ---------------------------------------------------------------- client -> proxy

    def _from_client(self, msg: Message) -> bool:
        """Handle one client message as the phase says; False ends the session."""
        action = client_action(self._phase, msg)
        match action:
            case ClientAction.INITIALIZE:
                self._on_initialize(msg)
            case ClientAction.REFUSE_INITIALIZE:
                self._refuse(msg, "the session is already initialized")
            case ClientAction.START | ClientAction.START_TOO_EARLY:
                return self._on_launch_or_attach(msg, action is ClientAction.START)
            case ClientAction.REFUSE_START:
                self._refuse(msg, "the session is already started")
            case ClientAction.FORWARD:
                self._to_adapter(msg)
            case ClientAction.BACKLOG:
                self._backlog.append(msg)
            case ClientAction.DROP:
                log.debug("%s: dropped %s after the failed start", self.name, msg)
            case ClientAction.END:
                self._answer(msg)
                return False
            case ClientAction.REFUSE:
                self._refuse(msg, f"innerloop: {msg['command']!r} needs a running debugpy session")
            case ClientAction.IGNORE:
                pass
            case _:
                assert_never(action)
        return True

    def _on_initialize(self, msg: Message) -> None:
        self._initialize = msg
        self._step(SessionEvent.INITIALIZE)
        self._answer(msg, PROXY_CAPABILITIES)

    def _on_launch_or_attach(self, msg: Message, initialized: bool) -> bool:
        arguments = msg.get("arguments")
        token = start_token(arguments) if isinstance(arguments, dict) else None
        if self._tokens is not None and not self._tokens.redeem(token):
            log.warning("%s: %s without a valid token refused", self.name, msg["command"])
            self._refuse(
                msg,
                "innerloop refused this debug session: it has no valid innerloopToken "
                "(start it from an innerloop debug configuration, or run `innerloop dap`)",
            )
            return False
        if not initialized:
            self._refuse(msg, "send initialize before launch or attach")
            return True
        try:
            self._plan = plan_start(msg)
        except InnerloopError as exc:  # plan_start: a UserError naming the key to fix
            self._refuse(msg, exc.user_line(self._surface))
            return True
        self._step(SessionEvent.START)
        self._start_task = asyncio.create_task(self._start(msg, self._plan))
        return True

    def _to_adapter(self, msg: Message) -> None:
        assert self._upstream is not None
        kind = message_kind(msg)
        match kind:
            case "request":
                out = self._seq.request(Side.ADAPTER, msg, origin_seq=msg["seq"])
                if msg["command"] == "disconnect":
                    self._disconnect_args = msg.get("arguments") or {}
                self._observe(MAIN, out, to_adapter=True)
            case "response":
                try:
                    mapped, _ = self._seq.response_from(Side.CLIENT, msg)
                except RemoteProtocolError as exc:
                    log.warning("%s: dropped client response: %s", self.name, exc)
                    return
                out = self._seq.message(Side.ADAPTER, mapped)
            case "event":
                out = self._seq.message(Side.ADAPTER, msg)
            case _:
                assert_never(kind)
        self._upstream.send(out)

    # ---------------------------------------------------------------- proxy -> client

    def say(self, text: str) -> None:
        """One line in the user's debug console."""
        log.info("%s: %s", self.name, text)
        self._to_client(output_event(text))

    def _to_client(self, msg: Message) -> None:
        self._client.send(self._seq.message(Side.CLIENT, msg))

    def _answer(self, request: Message, body: Mapping[str, Any] | None = None) -> None:
        self._to_client(response(request, body))

    def _refuse(self, request: Message, text: str) -> None:
        self._to_client(error_response(request, text))

    # ---------------------------------------------------------------- start

    async def _start(self, request: Message, plan: StartPlan) -> None:
        try:
            arguments = await self._open_upstream(plan)
            assert self._upstream is not None and self._initialize is not None
            self._pump = asyncio.create_task(self._pump_adapter(self._upstream))
            init = await self._ask_adapter(self._initialize)
            if not init["success"]:
                raise InnerloopError(f"debugpy refused to initialize: {init.get('message')}")
            update = capabilities_update(PROXY_CAPABILITIES, init.get("body") or {})
            if update is not None:
                self._to_client(event("capabilities", update))
            self._to_adapter({**request, "arguments": arguments})
            backlog, self._backlog = self._backlog, []
            for msg in backlog:
                self._to_adapter(msg)
            self._step(SessionEvent.STARTED)
        except asyncio.CancelledError:
            self._step(SessionEvent.START_FAILED)
            self._refuse(request, "cancelled: the client ended the session while it started")
            await self._abandon()
            raise
        except Exception as exc:
            line = say_failure(exc, self._surface)
            # A user's mistake is one line in the log; only a bug brings its traceback.
            log.warning("%s: %s failed: %s", self.name, request["command"], line,
                        exc_info=not is_expected(exc))
            self._step(SessionEvent.START_FAILED)
            self._refuse(request, line)
            await self._abandon()

    async def _open_upstream(self, plan: StartPlan) -> Message:
        """Intercept and reach debugpy; returns the arguments to forward."""
        if plan.connect is None:
            assert plan.intercept is not None
            intercept = await self._start_intercept(plan.intercept)
            env_file = await read_env_file(plan.env_file) if plan.env_file else {}
            env = merge_env(intercept.env, env_file, plan.env)
            env = await intercept.launch_env(env, plan.cluster_network)
            arguments = launch_arguments(plan, env)
            self._upstream, self._adapter = await spawn_adapter(f"{self.name}/debugpy")
            return arguments
        self._upstream = await connect_with_retry(
            plan.connect, plan.connect_timeout, f"{self.name}/debugpy"
        )
        if plan.intercept is not None:
            await self._start_intercept(plan.intercept)
        return plan.arguments

    async def _start_intercept(self, request: InterceptRequest) -> SessionIntercept:
        controller = self._controllers()
        self._intercept = await SessionIntercept.start(
            controller, request, self.say, self.name, self._surface
        )
        return self._intercept

    async def _abandon(self) -> None:
        """Undo a start that failed half-way."""
        await self._leave_intercept(keep=False)
        await self._close_upstream()

    async def _ask_adapter(self, request: Message) -> Message:
        """Send the adapter a request of the proxy's own and wait for its response."""
        assert self._upstream is not None
        out = self._seq.request(Side.ADAPTER, request, origin_seq=None)
        waiter: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiters[out["seq"]] = waiter
        self._upstream.send(out)
        return await waiter

    # ---------------------------------------------------------------- adapter -> proxy

    async def _pump_adapter(self, upstream: DapStream) -> None:
        try:
            while (msg := await upstream.receive()) is not None:
                await self._from_adapter(msg)
        except ProtocolError as exc:
            log.warning("%s: debugpy broke the protocol: %s", self.name, exc)
        finally:
            for waiter in self._waiters.values():
                if not waiter.done():
                    waiter.set_exception(InnerloopError("debugpy's adapter went away"))
            self._waiters.clear()
            await self._adapter_gone()

    async def _from_adapter(self, msg: Message) -> None:
        kind = message_kind(msg)
        match kind:
            case "response":
                await self._on_adapter_response(msg)
            case "event":
                await self._on_adapter_event(msg)
            case "request":
                await self._on_reverse_request(msg)
            case _:
                assert_never(kind)

    async def _on_adapter_response(self, msg: Message) -> None:
        try:
            out, pending = self._seq.response_from(Side.ADAPTER, msg)
        except RemoteProtocolError as exc:
            log.warning("%s: dropped adapter response: %s", self.name, exc)
            return
        if pending.origin_seq is None:
            waiter = self._waiters.pop(msg["request_seq"])
            if not waiter.done():
                waiter.set_result(msg)
            return
        if pending.command == "disconnect":
            await self._leave_intercept()
        self._observe(MAIN, msg, to_adapter=False)
        self._to_client(out)

    async def _on_adapter_event(self, msg: Message) -> None:
        if msg["event"] in ("exited", "terminated"):
            # The debuggee is gone: leave before the pause counter would resume routing
            # to it, so that new and held requests go to the cluster app.
            await self._leave_intercept()
        self._observe(MAIN, msg, to_adapter=False)
        if msg["event"] == "terminated":
            self._terminated = True
        elif subprocess_target(msg) is not None:
            msg = await self._redirect(msg)
        self._to_client(msg)

    async def _on_reverse_request(self, msg: Message) -> None:
        if not reverse_request_allowed(msg):
            log.warning("%s: denied reverse request %r", self.name, msg["command"])
            assert self._upstream is not None
            self._upstream.send(self._seq.message(Side.ADAPTER, denied_reverse_request(msg)))
            return
        if subprocess_target(msg) is not None:
            msg = await self._redirect(msg)
        self._client.send(self._seq.request(Side.CLIENT, msg, origin_seq=msg["seq"]))

    async def _adapter_gone(self) -> None:
        """debugpy's adapter closed: the intercept ends and the client learns the session did."""
        self._step(SessionEvent.ADAPTER_GONE)
        await self._leave_intercept()
        if not self._terminated and self._disconnect_args is None:
            self._terminated = True
            self._to_client(event("terminated"))

    # ---------------------------------------------------------------- pausing and subprocesses

    def _observe(self, process: str, msg: Message, to_adapter: bool) -> None:
        if self._intercept is not None:
            self._intercept.observe(process, msg, to_adapter)

    def _forget(self, process: str) -> None:
        if self._intercept is not None:
            self._intercept.forget(process)

    async def _redirect(self, msg: Message) -> Message:
        """Point a subprocess announcement at this session's relay (root sessions only; the
        relay already redirected what reaches a subprocess session)."""
        if self._plan is None or self._plan.intercept is None:
            return msg
        return await self._children.redirect(msg)

    # ---------------------------------------------------------------- ending

    async def _leave_intercept(self, keep: bool | None = None) -> None:
        """Unless told, kept with keepIntercept or when the client's disconnect asked for a
        restart (the debuggee's exited/terminated events come before its response)."""
        if self._intercept is None:
            return
        assert self._plan is not None
        if keep is None:
            keep = keep_on_disconnect(self._plan.keep_intercept, self._disconnect_args or {})
        await self._intercept.leave(keep)

    async def _close_upstream(self) -> None:
        await self._children.aclose()
        if self._upstream is not None:
            await self._upstream.aclose()
        if self._adapter is not None:
            await stop_process(self._adapter, ADAPTER_EXIT_GRACE, f"{self.name}/debugpy")
        if self._pump is not None:
            await asyncio.gather(self._pump, return_exceptions=True)

    async def _teardown(self) -> None:
        if self._start_task is not None:
            self._start_task.cancel()
            await asyncio.gather(self._start_task, return_exceptions=True)
        await self._leave_intercept()
        await self._close_upstream()
        await self._client.aclose()
