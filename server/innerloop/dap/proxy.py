"""One debug session: a DAP client on one side, debugpy's adapter on the other.

Pass-through by default. The proxy answers `initialize` itself (no upstream exists before an
authorised launch/attach), overrides `launch`/`attach` (intercept first, then a debugpy
launch/attach), refuses reverse requests outside the allow-list, and turns stopped/continued
events into `InterceptHandle.set_paused` calls. The decisions are in `innerloop.core.dap_rules`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from innerloop.core.dap_rules import (
    PROXY_CAPABILITIES,
    ClientRoute,
    Endpoint,
    Message,
    PauseCounter,
    SeqMap,
    Side,
    StartPlan,
    capabilities_update,
    client_route,
    denied_reverse_request,
    error_response,
    event,
    keep_on_disconnect,
    launch_arguments,
    merge_env,
    output_event,
    parse_env_file,
    plan_start,
    redirect_subprocess,
    response,
    reverse_request_allowed,
    say_active,
    say_intercepting,
    say_left,
    say_paused,
    start_token,
    subprocess_target,
)
from innerloop.core.errors import InnerloopError, ProtocolError, RemoteProtocolError, UserError
from innerloop.core.request import InterceptRequest
from innerloop.dap.controller import ControllerFactory, InterceptHandle, Report
from innerloop.dap.relay import ChildRelay
from innerloop.dap.upstream import connect_with_retry, spawn_adapter, stop_process
from innerloop.dap.wire import DapStream

log = logging.getLogger(__name__)

MAIN = "main"
"""Pause-counter key of the session's own debuggee process."""
ADAPTER_EXIT_GRACE = 3.0


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
    ) -> None:
        self.name = name
        self._client = client
        self._controllers = controllers
        self._tokens = tokens
        self._seq = SeqMap()
        self._initialize: Message | None = None
        self._plan: StartPlan | None = None
        self._start_task: asyncio.Task[None] | None = None
        self._started = False
        self._backlog: list[Message] = []
        self._upstream: DapStream | None = None
        self._adapter: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None
        self._waiters: dict[int, asyncio.Future[Message]] = {}
        self._handle: InterceptHandle | None = None
        self._leaving: asyncio.Task[None] | None = None
        self._pauser: _Pauser | None = None
        self._pause = PauseCounter()
        self._relays: dict[Endpoint, ChildRelay] = {}
        self._disconnect_args: Mapping[str, Any] | None = None
        self._terminated = False
        self._adapter_closed = False
        self._teardown_task: asyncio.Future[None] | None = None

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
            # Shielded: even if this task is cancelled, the intercept stops and debugpy exits.
            self._teardown_task = asyncio.ensure_future(self._teardown())
            await asyncio.shield(self._teardown_task)
            log.info("%s: session ended", self.name)

    def close(self) -> None:
        """End the session as if the client went away."""
        self._client.close()

    # ---------------------------------------------------------------- client -> proxy

    def _from_client(self, msg: Message) -> bool:
        """Handle one client message; False ends the session."""
        route = client_route(msg)
        if route is ClientRoute.INITIALIZE:
            if self._initialize is not None:
                self._refuse(msg, "the session is already initialized")
            else:
                self._initialize = msg
                self._answer(msg, PROXY_CAPABILITIES)
            return True
        if route is ClientRoute.START:
            return self._start_request(msg)
        if self._start_task is not None and not self._started:
            if msg["type"] == "request" and msg["command"] in ("disconnect", "terminate"):
                self._answer(msg)  # ending the session cancels the start
                return False
            self._backlog.append(msg)
            return True
        if self._upstream is not None and not self._adapter_closed:
            self._to_adapter(msg)
            return True
        if msg["type"] == "request":
            if msg["command"] == "disconnect":
                self._answer(msg)
                return False
            self._refuse(msg, f"innerloop: {msg['command']!r} needs a running debugpy session")
        return True

    def _start_request(self, msg: Message) -> bool:
        if self._start_task is not None:
            self._refuse(msg, "the session is already started")
            return True
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
        if self._initialize is None:
            self._refuse(msg, "send initialize before launch or attach")
            return True
        try:
            self._plan = plan_start(msg)
        except UserError as exc:
            self._refuse(msg, exc.user_line())
            return True
        self._start_task = asyncio.create_task(self._start(msg, self._plan))
        return True

    def _to_adapter(self, msg: Message) -> None:
        assert self._upstream is not None
        if msg["type"] == "request":
            out = self._seq.request(Side.ADAPTER, msg, origin_seq=msg["seq"])
            if msg["command"] == "disconnect":
                self._disconnect_args = msg.get("arguments") or {}
            self._pause.to_adapter(MAIN, out)
        elif msg["type"] == "response":
            try:
                mapped, _ = self._seq.response_from(Side.CLIENT, msg)
            except RemoteProtocolError as exc:
                log.warning("%s: dropped client response: %s", self.name, exc)
                return
            out = self._seq.message(Side.ADAPTER, mapped)
        else:
            out = self._seq.message(Side.ADAPTER, msg)
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
            self._started = True
            backlog, self._backlog = self._backlog, []
            for msg in backlog:
                self._to_adapter(msg)
        except asyncio.CancelledError:
            self._refuse(request, "cancelled: the client ended the session while it started")
            await self._abandon()
            raise
        except Exception as exc:
            log.warning("%s: %s failed", self.name, request["command"], exc_info=True)
            self._refuse(request, _user_line(exc))
            await self._abandon()

    async def _open_upstream(self, plan: StartPlan) -> Message:
        """Intercept and reach debugpy; returns the arguments to forward."""
        if plan.connect is None:
            assert plan.intercept is not None
            handle = await self._intercept(plan.intercept)
            env_file = await _read_env_file(plan.env_file) if plan.env_file else {}
            arguments = launch_arguments(plan, merge_env(handle.env, env_file, plan.env))
            self._upstream, self._adapter = await spawn_adapter(f"{self.name}/debugpy")
            return arguments
        self._upstream = await connect_with_retry(
            plan.connect, plan.connect_timeout, f"{self.name}/debugpy"
        )
        if plan.intercept is not None:
            await self._intercept(plan.intercept)
        return plan.arguments

    async def _intercept(self, config: InterceptRequest) -> InterceptHandle:
        controller = self._controllers()
        self.say(say_intercepting(config))
        handle = await controller.start(config, self.say)
        self._handle = handle
        self._pauser = _Pauser(handle, config, self.say, self.name)
        self.say(say_active(config))
        return handle

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
        if msg["type"] == "response":
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
        elif msg["type"] == "event":
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
        elif reverse_request_allowed(msg):
            if subprocess_target(msg) is not None:
                msg = await self._redirect(msg)
            self._client.send(self._seq.request(Side.CLIENT, msg, origin_seq=msg["seq"]))
        else:
            log.warning("%s: denied reverse request %r", self.name, msg["command"])
            assert self._upstream is not None
            self._upstream.send(self._seq.message(Side.ADAPTER, denied_reverse_request(msg)))

    async def _adapter_gone(self) -> None:
        """debugpy's adapter closed: the intercept ends and the client learns the session did."""
        self._adapter_closed = True
        await self._leave_intercept()
        if not self._terminated and self._disconnect_args is None:
            self._terminated = True
            self._to_client(event("terminated"))

    # ---------------------------------------------------------------- pausing and subprocesses

    def _observe(self, process: str, msg: Message, to_adapter: bool) -> None:
        if to_adapter:
            self._pause.to_adapter(process, msg)
            return
        self._flip(self._pause.from_adapter(process, msg))

    def _forget(self, process: str) -> None:
        self._flip(self._pause.forget(process))

    def _flip(self, paused: bool | None) -> None:
        if paused is not None and self._pauser is not None:
            self._pauser.want(paused)

    async def _redirect(self, msg: Message) -> Message:
        """Point a subprocess announcement at this session's relay (root sessions only; the
        relay already redirected what reaches a subprocess session)."""
        target = subprocess_target(msg)
        if target is None or self._plan is None or self._plan.intercept is None:
            return msg
        relay = self._relays.get(target)
        if relay is None:
            relay = ChildRelay(target, self._observe, self._forget, self._redirect, self.name)
            self._relays[target] = relay
        endpoint = await relay.start()
        token = self._tokens.issue() if self._tokens is not None else None
        return redirect_subprocess(msg, endpoint, token)

    # ---------------------------------------------------------------- ending

    async def _leave_intercept(self, keep: bool | None = None) -> None:
        """Stop the intercept once, however many paths end the session at the same time.

        Unless told, kept with keepIntercept or when the client's disconnect asked for a
        restart (the debuggee's exited/terminated events come before its response)."""
        if self._leaving is None:
            if self._handle is None:
                return
            assert self._plan is not None and self._plan.intercept is not None
            if keep is None:
                keep = keep_on_disconnect(self._plan.keep_intercept, self._disconnect_args or {})
            self._leaving = asyncio.create_task(self._leave(self._handle, keep))
        await asyncio.shield(self._leaving)

    async def _leave(self, handle: InterceptHandle, keep: bool) -> None:
        pauser, self._pauser = self._pauser, None  # later stops no longer pause anything
        if pauser is not None:
            # Kept: traffic comes back here. Left while paused: stay paused until the release
            # hands new and held requests to the cluster app; resuming first would send them
            # to a debuggee that is stopped at a breakpoint or already terminated.
            await (pauser.settle() if keep else pauser.idle())
        try:
            await handle.stop(keep)
        except Exception as exc:
            log.exception("%s: stopping the intercept failed", self.name)
            self.say(f"could not leave the intercept: {_user_line(exc)}")
        else:
            self.say(say_left(keep))

    async def _close_upstream(self) -> None:
        for relay in self._relays.values():
            await relay.aclose()
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


class _Pauser:
    """Applies the latest wanted paused state to the intercept, one controller call at a time,
    skipping states that were already superseded."""

    def __init__(self, handle: InterceptHandle, config: InterceptRequest, say: Report, name: str):
        self._handle = handle
        self._config = config
        self._say = say
        self._name = name
        self._wanted = False
        self._applied = False
        self._task: asyncio.Task[None] | None = None

    def want(self, paused: bool) -> None:
        self._wanted = paused
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._converge())

    async def settle(self) -> None:
        """Resume routing before the intercept is kept."""
        self.want(False)
        await self.idle()

    async def idle(self) -> None:
        """Wait for the controller call in flight, so that none overlaps `stop`."""
        if self._task is not None:
            await self._task

    async def _converge(self) -> None:
        while self._applied != self._wanted:
            target = self._wanted
            try:
                await self._handle.set_paused(target)
            except Exception as exc:
                log.exception("%s: set_paused(%s) failed", self._name, target)
                self._say(f"could not switch routing: {_user_line(exc)}")
                return
            self._applied = target
            self._say(say_paused(self._config, target))


def _user_line(exc: Exception) -> str:
    """Ours say what to do; anything else is a bug, for the log."""
    if isinstance(exc, InnerloopError):
        return exc.user_line()
    return f"innerloop failed: {type(exc).__name__}: {exc} (see the log)"


async def _read_env_file(path: str) -> dict[str, str]:
    try:
        text = await asyncio.to_thread(Path(path).read_text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read envFile {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"envFile {path} is not UTF-8 text") from None
    return parse_env_file(text, f"envFile {path}")
