"""Pure rules of the innerloop debug adapter: a proxy in front of debugpy's own adapter.

Everything that decides what happens to a DAP message lives here as values in, values out:
Content-Length framing, sequence renumbering, which requests the proxy overrides, which reverse
requests may reach the client, how an `innerloop` launch/attach becomes a debugpy one, and how
stopped/continued events of several processes add up to "the intercept is paused".
The asyncio shell in `innerloop.dap` only moves the bytes and awaits the intercept controller.
"""

from __future__ import annotations

import enum
import json
import os.path
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from innerloop.core.errors import LocalProtocolError, RemoteProtocolError, UserError
from innerloop.core.request import InterceptRequest, WhilePaused, port_number, request_from_json

Message = dict[str, Any]
"""One decoded DAP message (request, response or event)."""

DEBUG_TYPE = "innerloop"
DEBUGPY_TYPE = "python"

# --------------------------------------------------------------------------------------------
# Wire framing: "Content-Length: N\r\n\r\n" + N bytes of UTF-8 JSON.

MAX_HEADER_BYTES = 8 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024
_HEADER_END = b"\r\n\r\n"


class DapParser:
    """Incremental decoder: feed it bytes as they arrive, get whole messages back."""

    def __init__(self, max_body: int = MAX_BODY_BYTES) -> None:
        self._buf = bytearray()
        self._body_len: int | None = None
        self._max_body = max_body

    def feed(self, data: bytes) -> list[Message]:
        self._buf += data
        out: list[Message] = []
        while True:
            if self._body_len is None:
                end = self._buf.find(_HEADER_END)
                if end < 0:
                    if len(self._buf) > MAX_HEADER_BYTES:
                        raise RemoteProtocolError("DAP header section too long")
                    return out
                self._body_len = _content_length(bytes(self._buf[:end]), self._max_body)
                del self._buf[: end + len(_HEADER_END)]
            if len(self._buf) < self._body_len:
                return out
            body = bytes(self._buf[: self._body_len])
            del self._buf[: self._body_len]
            self._body_len = None
            out.append(decode_body(body))

    def eof(self) -> None:
        """The peer closed the stream: complain if it stopped in the middle of a message."""
        if self._buf or self._body_len is not None:
            raise RemoteProtocolError("DAP stream ended inside a message")


def _content_length(header: bytes, max_body: int) -> int:
    try:
        text = header.decode("ascii")
    except UnicodeDecodeError:
        raise RemoteProtocolError("DAP header is not ASCII") from None
    length: int | None = None
    for line in text.split("\r\n"):
        name, sep, value = line.partition(":")
        if not sep:
            raise RemoteProtocolError(f"malformed DAP header line {line!r}")
        if name.strip().lower() != "content-length":
            continue
        value = value.strip()
        if length is not None:
            raise RemoteProtocolError("duplicate Content-Length header")
        if not value.isdigit():  # the header is ASCII, so only 0-9 pass
            raise RemoteProtocolError(f"bad Content-Length {value!r}")
        length = int(value)
    if length is None:
        raise RemoteProtocolError("DAP header without Content-Length")
    if length > max_body:
        raise RemoteProtocolError(f"DAP message of {length} bytes exceeds {max_body}")
    return length


def decode_body(body: bytes) -> Message:
    try:
        obj = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RemoteProtocolError(f"DAP body is not UTF-8 JSON: {exc}") from None
    return check_message(obj)


_REQUIRED: dict[str, tuple[tuple[str, type], ...]] = {
    "request": (("command", str),),
    "event": (("event", str),),
    "response": (("request_seq", int), ("success", bool), ("command", str)),
}


def check_message(obj: object) -> Message:
    """Validate the fields the proxy relies on; anything else passes through untouched."""
    if not isinstance(obj, dict):
        raise RemoteProtocolError("DAP message is not a JSON object")
    if not _is_int(obj.get("seq")):
        raise RemoteProtocolError("DAP message without an integer seq")
    kind = obj.get("type")
    required = _REQUIRED.get(kind) if isinstance(kind, str) else None
    if required is None:
        raise RemoteProtocolError(f"unknown DAP message type {kind!r}")
    for key, typ in required:
        value = obj.get(key)
        ok = _is_int(value) if typ is int else isinstance(value, typ)
        if not ok:
            raise RemoteProtocolError(f"DAP {kind} without a valid {key!r}")
    return obj


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def encode(msg: Message) -> bytes:
    try:
        body = json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise LocalProtocolError(f"cannot encode DAP message: {exc}") from None
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


# --------------------------------------------------------------------------------------------
# Building messages. seq is 0 here: SeqMap stamps every message on its way out.


def response(request: Message, body: Mapping[str, Any] | None = None) -> Message:
    msg: Message = {
        "type": "response",
        "seq": 0,
        "request_seq": request["seq"],
        "command": request["command"],
        "success": True,
    }
    if body is not None:
        msg["body"] = dict(body)
    return msg


def error_response(request: Message, text: str) -> Message:
    """A failed response whose one line the client shows to the user."""
    msg = response(request, {"error": {"id": 1, "format": text, "showUser": True}})
    msg["success"] = False
    msg["message"] = text
    return msg


def event(name: str, body: Mapping[str, Any] | None = None) -> Message:
    msg: Message = {"type": "event", "seq": 0, "event": name}
    if body is not None:
        msg["body"] = dict(body)
    return msg


def output_event(text: str) -> Message:
    """A line in the client's debug console, telling the user what innerloop is doing."""
    return event("output", {"category": "console", "output": f"innerloop: {text}\n"})


# --------------------------------------------------------------------------------------------
# Sequence numbers. Each side sees one gap-free increasing sequence, even though the proxy adds
# messages of its own (output events, refusals) and asks the adapter questions itself.


class Side(enum.Enum):
    CLIENT = "client"
    ADAPTER = "adapter"

    @property
    def other(self) -> Side:
        return Side.ADAPTER if self is Side.CLIENT else Side.CLIENT


@dataclass(frozen=True)
class Pending:
    """A request in flight: who asked (their seq, or None when the proxy asked) and what."""

    origin_seq: int | None
    command: str


class SeqMap:
    def __init__(self) -> None:
        self._last = {Side.CLIENT: 0, Side.ADAPTER: 0}
        self._pending: dict[Side, dict[int, Pending]] = {Side.CLIENT: {}, Side.ADAPTER: {}}

    def _stamp(self, to: Side, msg: Message) -> Message:
        self._last[to] += 1
        return {**msg, "seq": self._last[to]}

    def message(self, to: Side, msg: Message) -> Message:
        """An event, or a response whose request_seq is already in `to`'s numbering."""
        return self._stamp(to, msg)

    def request(self, to: Side, msg: Message, origin_seq: int | None) -> Message:
        """A request for `to`; its response will be mapped back to `origin_seq`."""
        out = self._stamp(to, msg)
        self._pending[to][out["seq"]] = Pending(origin_seq, msg["command"])
        return out

    def response_from(self, side: Side, msg: Message) -> tuple[Message, Pending]:
        """A response arriving from `side`, with request_seq mapped back for whoever asked.

        Stamp it with `message` at the moment it is sent, so that it keeps its place among
        messages the proxy sends meanwhile. When the proxy itself asked (origin_seq None) the
        message comes back unchanged, for the proxy to consume.
        """
        pending = self._pending[side].pop(msg["request_seq"], None)
        if pending is None:
            raise RemoteProtocolError(
                f"{side.value} answered request {msg['request_seq']} that was never sent"
            )
        if pending.origin_seq is None:
            return msg, pending
        return {**msg, "request_seq": pending.origin_seq}, pending


# --------------------------------------------------------------------------------------------
# What the proxy does with each message.


class ClientRoute(enum.Enum):
    INITIALIZE = "initialize"  # answered by the proxy; forwarded once the upstream exists
    START = "start"  # launch/attach: rewritten after the intercept is up
    FORWARD = "forward"


_CLIENT_ROUTES = {
    "initialize": ClientRoute.INITIALIZE,
    "launch": ClientRoute.START,
    "attach": ClientRoute.START,
}

ALLOWED_REVERSE_REQUESTS = frozenset({"runInTerminal", "startDebugging"})
"""Requests the adapter may send to the client; anything else could make the client run code."""


def client_route(msg: Message) -> ClientRoute:
    if msg["type"] != "request":
        return ClientRoute.FORWARD
    return _CLIENT_ROUTES.get(msg["command"], ClientRoute.FORWARD)


def reverse_request_allowed(msg: Message) -> bool:
    return msg["command"] in ALLOWED_REVERSE_REQUESTS


def denied_reverse_request(msg: Message) -> Message:
    return error_response(msg, f"innerloop does not pass {msg['command']!r} to the client")


PROXY_CAPABILITIES: Message = {
    "supportsConfigurationDoneRequest": True,
    "supportsConditionalBreakpoints": True,
    "supportsHitConditionalBreakpoints": True,
    "supportsFunctionBreakpoints": True,
    "supportsLogPoints": True,
    "supportsEvaluateForHovers": True,
    "supportsSetVariable": True,
    "supportsSetExpression": True,
    "supportsExceptionInfoRequest": True,
    "supportsExceptionOptions": True,
    "supportsCompletionsRequest": True,
    "supportsModulesRequest": True,
    "supportsValueFormattingOptions": True,
    "supportsTerminateRequest": True,
    "supportsTerminateDebuggee": True,
    "supportsDelayedStackTraceLoading": True,
    "supportsGotoTargetsRequest": True,
    "supportsStepInTargetsRequest": True,
    "supportsClipboardContext": True,
    "supportsDebuggerProperties": True,
    "exceptionBreakpointFilters": [
        {
            "filter": "raised",
            "label": "Raised Exceptions",
            "default": False,
            "description": "Break whenever any exception is raised.",
        },
        {
            "filter": "uncaught",
            "label": "Uncaught Exceptions",
            "default": True,
            "description": "Break when the process is exiting due to unhandled exception.",
        },
        {
            "filter": "userUnhandled",
            "label": "User Uncaught Exceptions",
            "default": False,
            "description": "Break when exception escapes into library code.",
        },
    ],
}
"""What the proxy answers to `initialize` before any upstream exists.

The upstream is only chosen (and, on TCP, only created at all) by an authorised launch/attach,
so the proxy answers `initialize` itself with what debugpy 1.8 offers (an integration test
checks they agree); if the real adapter differs, `capabilities_update` tells the client.
"""


def capabilities_update(announced: Mapping[str, Any], actual: Mapping[str, Any]) -> Message | None:
    """Body of a `capabilities` event correcting what we announced, or None if nothing differs."""
    changed = {k: v for k, v in actual.items() if announced.get(k) != v}
    for key, value in announced.items():
        if key not in actual and value is True:
            changed[key] = False
    return {"capabilities": changed} if changed else None


# --------------------------------------------------------------------------------------------
# Launch / attach configurations.

INNERLOOP_KEYS = frozenset(
    {
        "service",
        "namespace",
        "servicePort",
        "port",
        "whilePaused",
        "keepIntercept",
        "envFile",
        "connectTimeout",
        "innerloopToken",
    }
)
"""Arguments that mean something to innerloop only; debugpy never sees them."""

DEFAULT_CONNECT_TIMEOUT = 30.0
SUBPROCESS_CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class StartPlan:
    """How to start one debug session, decided from its launch/attach request alone."""

    command: Literal["launch", "attach"]
    intercept: InterceptRequest | None
    """None for a debugpy subprocess session: it joins its parent's intercept."""
    connect: Endpoint | None
    """Where a debugpy adapter already listens; None: spawn our own."""
    connect_timeout: float
    arguments: Message
    """The debugpy launch/attach arguments (launch: before the env is merged in)."""
    env_file: str | None = None
    env: Mapping[str, str | None] = field(default_factory=dict)
    keep_intercept: bool = False
    """`keepIntercept`: the intercept outlives the debug session."""


def start_token(arguments: Mapping[str, Any]) -> str | None:
    token = arguments.get("innerloopToken")
    return token if isinstance(token, str) else None


def plan_start(request: Message) -> StartPlan:
    """Validate an `innerloop` launch/attach; raises UserError with one line to fix it."""
    command = request["command"]
    args = request.get("arguments")
    if not isinstance(args, dict):
        raise UserError(f"{command} request without arguments")
    if command == "launch":
        return _plan_launch(args)
    if "subProcessId" in args:
        return _plan_subprocess(args)
    return _plan_attach(args)


def _debugpy_arguments(args: Mapping[str, Any]) -> Message:
    out = {k: v for k, v in args.items() if k not in INNERLOOP_KEYS}
    out["type"] = DEBUGPY_TYPE
    return out


def _plan_launch(args: Mapping[str, Any]) -> StartPlan:
    targets = [k for k in ("program", "module") if k in args]
    if len(targets) != 1:
        raise UserError('launch configuration needs exactly one of "program" or "module"')
    if not isinstance(args[targets[0]], str) or not args[targets[0]]:
        raise UserError(f'"{targets[0]}" must be a non-empty string')
    cwd = _optional_str(args, "cwd")
    env_file = _optional_str(args, "envFile")
    if env_file is not None and cwd is not None and not os.path.isabs(env_file):
        env_file = os.path.join(cwd, env_file)
    arguments = _debugpy_arguments(args)
    arguments.setdefault("console", "internalConsole")
    arguments.pop("env", None)
    return StartPlan(
        command="launch",
        intercept=_intercept(args, "launch"),
        keep_intercept=_keep_intercept(args),
        connect=None,
        connect_timeout=0.0,
        arguments=arguments,
        env_file=env_file,
        env=_env(args),
    )


def _plan_attach(args: Mapping[str, Any]) -> StartPlan:
    return StartPlan(
        command="attach",
        intercept=_intercept(args, "attach"),
        keep_intercept=_keep_intercept(args),
        connect=_connect(args, 'attach configuration needs "connect": {"host", "port"} of debugpy'),
        connect_timeout=_timeout(args, DEFAULT_CONNECT_TIMEOUT),
        arguments=_debugpy_arguments(args),
    )


def _plan_subprocess(args: Mapping[str, Any]) -> StartPlan:
    if not _is_int(args["subProcessId"]):
        raise UserError('"subProcessId" must be an integer')
    return StartPlan(
        command="attach",
        intercept=None,
        connect=_connect(args, 'subprocess attach without "connect"'),
        connect_timeout=_timeout(args, SUBPROCESS_CONNECT_TIMEOUT),
        arguments=_debugpy_arguments(args),
    )


def _intercept(args: Mapping[str, Any], command: str) -> InterceptRequest:
    return request_from_json(args, f"{command} configuration", "port", local_port_required=True)


def _keep_intercept(args: Mapping[str, Any]) -> bool:
    keep = args.get("keepIntercept", False)
    if not isinstance(keep, bool):
        raise UserError('"keepIntercept" must be true or false')
    return keep


def _optional_str(args: Mapping[str, Any], key: str) -> str | None:
    value = args.get(key)
    if value is not None and not isinstance(value, str):
        raise UserError(f'"{key}" must be a string')
    return value


def _connect(args: Mapping[str, Any], missing: str) -> Endpoint:
    if "connect" not in args:
        raise UserError(missing)
    return _endpoint(args["connect"])


def _endpoint(connect: object) -> Endpoint:
    if not isinstance(connect, dict):
        raise UserError('"connect" must be {"host": ..., "port": ...}')
    host = connect.get("host", "127.0.0.1")
    if not isinstance(host, str) or not host:
        raise UserError('"connect.host" must be a host name or address')
    return Endpoint(host, port_number(connect.get("port"), '"connect.port"'))


def _timeout(args: Mapping[str, Any], default: float) -> float:
    value = args.get("connectTimeout", default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise UserError('"connectTimeout" must be a positive number of seconds')
    return float(value)


def _env(args: Mapping[str, Any]) -> dict[str, str | None]:
    env = args.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) or v is None for v in env.values()):
        raise UserError('"env" must map names to strings (or null to unset)')
    return dict(env)


# --------------------------------------------------------------------------------------------
# Environment: the workload's env, overridden by envFile, overridden by the launch's env.

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_DOUBLE_QUOTED_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def parse_env_file(text: str, name: str = "envFile") -> dict[str, str]:
    """A dotenv file: KEY=VALUE lines, `export ` prefix, # comments, '…' and "…" quoting."""
    env: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _ENV_NAME.fullmatch(key):
            raise UserError(f"{name} line {number}: expected NAME=value")
        env[key] = _env_value(value.strip(), f"{name} line {number}")
    return env


def _env_value(value: str, where: str) -> str:
    if value[:1] in ("'", '"'):
        quote = value[0]
        end = value.find(quote, 1) if quote == "'" else _closing_double_quote(value)
        if end < 0:
            raise UserError(f"{where}: unterminated {quote}quoted{quote} value")
        rest = value[end + 1 :].strip()
        if rest and not rest.startswith("#"):
            raise UserError(f"{where}: unexpected text after the quoted value")
        inner = value[1:end]
        if quote == "'":
            return inner
        return re.sub(r"\\(.)", lambda m: _DOUBLE_QUOTED_ESCAPES.get(m[1], m[0]), inner)
    comment = value.find(" #")
    return value if comment < 0 else value[:comment].rstrip()


def _closing_double_quote(value: str) -> int:
    i = 1
    while i < len(value):
        if value[i] == "\\":
            i += 2
            continue
        if value[i] == '"':
            return i
        i += 1
    return -1


def merge_env(
    workload: Mapping[str, str],
    env_file: Mapping[str, str],
    launch: Mapping[str, str | None],
) -> dict[str, str | None]:
    """The debuggee's env changes: later sources win; None unsets an inherited variable."""
    return {**workload, **env_file, **launch}


def launch_arguments(plan: StartPlan, env: Mapping[str, str | None]) -> Message:
    return {**plan.arguments, "env": dict(env)}


def keep_on_disconnect(keep_intercept: bool, disconnect_args: Mapping[str, Any]) -> bool:
    """Keep the intercept if asked to, or when the client restarts the session right away."""
    return keep_intercept or disconnect_args.get("restart") is True


# --------------------------------------------------------------------------------------------
# debugpy subprocesses. The adapter announces each child process with a `startDebugging` reverse
# request (or a `debugpyAttach` event for clients without it) carrying an attach configuration
# whose "connect" is the adapter's own client listener. innerloop points it at a relay of the
# root session instead, so the child's stops count towards the intercept's pause.


def subprocess_configuration(msg: Message) -> Message | None:
    """The attach configuration of a subprocess announcement, or None for other messages."""
    if msg["type"] == "request" and msg["command"] == "startDebugging":
        config = msg.get("arguments", {}).get("configuration")
    elif msg["type"] == "event" and msg["event"] == "debugpyAttach":
        config = msg.get("body")
    else:
        return None
    return config if isinstance(config, dict) else None


def subprocess_target(msg: Message) -> Endpoint | None:
    """Where the announced child can really be reached (the adapter's client listener)."""
    config = subprocess_configuration(msg)
    if config is None:
        return None
    try:
        return _endpoint(config.get("connect"))
    except UserError:
        return None


def redirect_subprocess(msg: Message, relay: Endpoint, token: str | None) -> Message:
    """The same announcement, for an `innerloop` session that connects through `relay`."""
    config = dict(subprocess_configuration(msg) or {})
    config["type"] = DEBUG_TYPE
    config["connect"] = {"host": relay.host, "port": relay.port}
    if token is not None:
        config["innerloopToken"] = token
    if msg["type"] == "event":
        return {**msg, "body": config}
    return {**msg, "arguments": {**msg["arguments"], "configuration": config}}


# --------------------------------------------------------------------------------------------
# Pause counting. A process is stopped while any of its threads is; the intercept is paused while
# any of its processes is stopped. Resumes come from `continued` events or, when an adapter sends
# none, from the successful response to a request that resumes (unless the process stopped again
# after that request was sent: then the response is stale).

RESUMING_REQUESTS = frozenset(
    {"continue", "next", "stepIn", "stepOut", "stepBack", "reverseContinue", "goto"}
)


@dataclass(frozen=True)
class _Resume:
    thread_id: object
    single_thread: bool
    stops_seen: int


@dataclass
class _Process:
    all_stopped: bool = False
    threads: set[object] = field(default_factory=set)
    stops: int = 0
    resumes: dict[int, _Resume] = field(default_factory=dict)

    @property
    def stopped(self) -> bool:
        return self.all_stopped or bool(self.threads)

    def resume(self, thread_id: object, every_thread: bool) -> None:
        if every_thread:
            self.all_stopped = False
            self.threads.clear()
        else:
            self.threads.discard(thread_id)


class PauseCounter:
    """Feed it each process's DAP traffic (adapter-side numbering); it says when the aggregate
    paused state flips."""

    def __init__(self) -> None:
        self._procs: dict[str, _Process] = {}

    @property
    def paused(self) -> bool:
        return any(p.stopped for p in self._procs.values())

    def to_adapter(self, process: str, msg: Message) -> None:
        """A message on its way to `process`'s adapter: remember requests that resume."""
        if msg["type"] != "request" or msg["command"] not in RESUMING_REQUESTS:
            return
        args = msg.get("arguments") or {}
        proc = self._procs.setdefault(process, _Process())
        proc.resumes[msg["seq"]] = _Resume(
            thread_id=args.get("threadId"),
            single_thread=args.get("singleThread") is True,
            stops_seen=proc.stops,
        )

    def from_adapter(self, process: str, msg: Message) -> bool | None:
        """A message from `process`'s adapter; returns the new paused state if it flipped."""
        before = self.paused
        proc = self._procs.setdefault(process, _Process())
        if msg["type"] == "event":
            _apply_event(proc, msg["event"], msg.get("body") or {})
        elif msg["type"] == "response":
            _apply_response(proc, msg)
        return self._flipped(before)

    def forget(self, process: str) -> bool | None:
        """The process's session ended; returns the new paused state if it flipped."""
        before = self.paused
        self._procs.pop(process, None)
        return self._flipped(before)

    def _flipped(self, before: bool) -> bool | None:
        after = self.paused
        return after if after != before else None


def _apply_event(proc: _Process, name: str, body: Mapping[str, Any]) -> None:
    thread_id = body.get("threadId")
    if name == "stopped":
        proc.stops += 1
        if body.get("allThreadsStopped") is True or thread_id is None:
            proc.all_stopped = True
        else:
            proc.threads.add(thread_id)
    elif name == "continued":
        proc.resume(thread_id, every_thread=body.get("allThreadsContinued") is True)
    elif name == "thread" and body.get("reason") == "exited":
        proc.threads.discard(thread_id)
    elif name in ("exited", "terminated"):
        proc.resume(None, every_thread=True)


def _apply_response(proc: _Process, msg: Message) -> None:
    resume = proc.resumes.pop(msg["request_seq"], None)
    if resume is None or not msg["success"] or resume.stops_seen != proc.stops:
        return
    if msg["command"] == "goto":
        every = False
    elif msg["command"] == "continue":
        said = (msg.get("body") or {}).get("allThreadsContinued")
        every = said if isinstance(said, bool) else not resume.single_thread
    else:
        every = not resume.single_thread
    proc.resume(resume.thread_id, every_thread=every)


# --------------------------------------------------------------------------------------------
# What the user reads in the debug console.


def say_intercepting(request: InterceptRequest) -> str:
    return f"intercepting {request.describe()}"


def say_active(request: InterceptRequest) -> str:
    return f"intercept active: live traffic for {request.describe()}"


def say_paused(request: InterceptRequest, paused: bool) -> str:
    if not paused:
        return "resumed: new requests reach this process again"
    if request.while_paused is WhilePaused.HOLD:
        return "paused: new requests are held until you continue"
    return "paused: new requests are served by the cluster until you continue"


def say_left(keep: bool) -> str:
    return "intercept kept (traffic still comes here)" if keep else "left intercept"
