"""Pod port-forward over the API server, spoken with `websockets` (a Transport).

Protocol `v4.channel.k8s.io` (binary), one port per connection, i.e. port index 0: channel 0
carries data, channel 1 errors. The first message the server sends on each channel starts with
the port as a little-endian u16; every message is one channel byte plus payload. The server
dials the pod's 127.0.0.1:PORT as the connection opens; when nothing listens, "connection
refused" arrives as text on the error channel and the server closes (1000) — so a successful
handshake does not mean the port is reachable, and recv() raises ClusterError with that text.

Client messages are cut into chunks well below 32 MiB (a larger one silently drops the
connection). There is no half-close in this protocol; our own tunnel carries FIN/RST per stream.

Credentials come from the loaded kubeconfig (`k8s.config.Settings`): CA, client certificate
and key, bearer token (exec plugins refresh it through the `kubernetes` Configuration's hook).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import struct
from collections import deque
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidState, InvalidStatus
from websockets.frames import DATA_OPCODES, Frame, Opcode
from websockets.protocol import Event, State
from websockets.typing import Subprotocol

from innerloop.core.errors import ClusterError
from innerloop.k8s.config import Settings
from innerloop.k8s.errors import from_status, unreachable
from innerloop.tunnel.transport import Receiver

log = logging.getLogger(__name__)
_ws_log = logging.getLogger(__name__ + ".websocket")
# websockets logs every handshake header at DEBUG, the bearer token among them: never below INFO.
_ws_log.setLevel(logging.INFO)

SUBPROTOCOL = Subprotocol("v4.channel.k8s.io")
DATA, ERROR = 0, 1
CHUNK = 256 * 1024
"""Client → pod message size: far below the 32 MiB that drops the connection, large enough
that per-message overhead does not matter."""
MAX_MESSAGE = 1024 * 1024
"""Pod → client messages are ≤ 32 KiB in practice; anything far larger is not this protocol."""


def ssl_context(cfg: Settings) -> ssl.SSLContext:
    """The TLS settings the `kubernetes` client would use, for the WebSocket."""
    ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
    if not cfg.verify_ssl:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif cfg.assert_hostname is False:
        ctx.check_hostname = False
    if cfg.cert_file:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file or None)
    return ctx


def auth_headers(cfg: Settings) -> dict[str, str]:
    """The header credentials the client itself would send (bearer token, refreshed by exec/OIDC
    hooks on the way; basic auth), read from its own auth settings."""
    headers = {}
    for entry in cfg.auth_settings().values():
        setting = cast(dict[str, Any], entry)
        if setting.get("in") == "header" and setting.get("value"):
            headers[str(setting["key"]).title()] = str(setting["value"])
    return headers


def portforward_url(cfg: Settings, namespace: str, pod: str, port: int) -> str:
    host = cfg.host.rstrip("/")
    scheme, sep, rest = host.partition("://")
    ws_scheme = "wss" if scheme == "https" else "ws"
    return (
        f"{ws_scheme}{sep}{rest}/api/v1/namespaces/{quote(namespace)}/pods/{quote(pod)}"
        f"/portforward?ports={port}"
    )


class Inbox:
    """Input from protocol callbacks: to the `Receiver` once one is set, queued for ``get``
    until then."""

    def __init__(self) -> None:
        self._queue: deque[bytes | memoryview] = deque()
        self.ended = False
        self._error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._receiver: Receiver | None = None

    def put(self, data: bytes | memoryview) -> None:
        if self._receiver is not None:
            self._receiver.on_bytes(data)
        elif not self.ended:
            self._queue.append(data)
            self._wake()

    def end(self, error: Exception | None) -> None:
        """No more input (the first end counts)."""
        if not self.ended:
            self.ended, self._error = True, error
            if self._receiver is not None:
                self._receiver.on_end(error)
            self._wake()

    async def get(self) -> bytes:
        """The next input; b"" at a clean end; the error of a failed one."""
        while not self._queue:
            if self.ended:
                if self._error is not None:
                    raise self._error
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return bytes(self._queue.popleft())

    def deliver_to(self, receiver: Receiver) -> None:
        while self._queue:
            receiver.on_bytes(self._queue.popleft())
        self._receiver = receiver
        if self.ended:
            receiver.on_end(self._error)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class PortForwardConnection(ClientConnection):
    """A `websockets` client connection that hands each data message to ``on_message`` from
    the protocol's own callback, in order, instead of queueing it for a ``recv`` task: a
    tunnel's frames then reach its mux in the same event-loop turn as the TLS record that
    carried them. Until ``on_message`` is set (while `PortForward.open` returns), messages
    wait in ``early``; ``on_lost`` is told when the connection is gone."""

    on_message: Callable[[bytes | bytearray, bool], None] | None = None
    on_lost: Callable[[], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.early: list[tuple[bytes | bytearray, bool]] = []
        self.lost = False
        self._fragments: bytearray | None = None
        self._text = False

    def process_event(self, event: Event) -> None:
        if not isinstance(event, Frame) or event.opcode not in DATA_OPCODES:
            super().process_event(event)  # the handshake's response, pongs
            return
        # websockets hands each frame's payload over as a bytearray of its own: no copy here
        data: bytes | bytearray = event.data if isinstance(event.data, (bytes, bytearray)) \
            else bytes(event.data)
        if event.opcode is not Opcode.CONT:
            self._text = event.opcode is Opcode.TEXT
            if not event.fin:
                self._fragments = bytearray(data)
                return
        elif self._fragments is not None:
            self._fragments += data
            if not event.fin:
                return
            data, self._fragments = self._fragments, None
        if self.on_message is not None:
            self.on_message(data, self._text)
        else:
            self.early.append((data, self._text))

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.lost = True
        if self.on_lost is not None:
            self.on_lost()


class PortForward:
    """One forwarded connection to a pod's port: a Transport that also writes at once
    (`DirectWrite`) and pushes what it receives (`PushReceive`)."""

    def __init__(self, ws: PortForwardConnection, label: str, port: int) -> None:
        self._ws = ws
        self._label = label
        self._port = port
        self._headers_seen: set[int] = set()
        self._inbox = Inbox()
        self._error: ClusterError | None = None
        ws.on_message = self._on_message
        ws.on_lost = self._on_lost
        for data, text in ws.early:
            self._on_message(data, text)
        ws.early.clear()
        if ws.lost:
            self._on_lost()

    @classmethod
    async def open(
        cls, cfg: Settings, namespace: str, pod: str, port: int, open_timeout: float = 10.0
    ) -> PortForward:
        """Open the WebSocket; refusals by the API server (RBAC, no such pod) raise here."""
        label = f"pod/{pod}:{port} in {namespace!r}"
        url = portforward_url(cfg, namespace, pod, port)
        headers = await asyncio.to_thread(auth_headers, cfg)
        tls = url.startswith("wss:")
        try:
            ws = await connect(
                url,
                ssl=ssl_context(cfg) if tls else None,
                server_hostname=(cfg.tls_server_name or None) if tls else None,
                subprotocols=[SUBPROTOCOL],
                additional_headers=headers,
                compression=None,
                max_size=MAX_MESSAGE,
                ping_interval=None,  # liveness is our tunnel's keepalive, with its own deadline
                open_timeout=open_timeout,
                proxy=cfg.proxy or None,
                logger=_ws_log,
                create_connection=PortForwardConnection,
            )
        except InvalidStatus as exc:
            raise from_status(
                exc.response.status_code,
                bytes(exc.response.body or b""),
                f"port-forward to {label}",
            ) from exc
        except InvalidHandshake as exc:
            raise ClusterError(
                f"port-forward to {label}: the API server's WebSocket handshake failed: {exc}"
            ) from exc
        except (OSError, asyncio.TimeoutError) as exc:
            raise unreachable(cfg.host, exc or "timed out") from exc
        log.debug("port-forward open: %s", label)
        assert isinstance(ws, PortForwardConnection)
        return cls(ws, label, port)

    async def recv(self) -> bytes:
        """Data from the pod; b"" when the forward ended cleanly; ClusterError on its error text."""
        return await self._inbox.get()

    def start_receiving(self, receiver: Receiver) -> None:
        self._inbox.deliver_to(receiver)

    def _on_message(self, message: bytes | bytearray, text: bool) -> None:
        """Data goes to the inbox; error-channel text (or anything unexpected) ends it."""
        if self._inbox.ended:
            return
        if text or not message:
            self._fail("unexpected message (not v4.channel.k8s.io framing)")
            return
        channel = message[0]
        if channel not in (DATA, ERROR):
            self._fail(f"message on unknown channel {channel}")
            return
        start = 1
        if channel not in self._headers_seen:
            self._headers_seen.add(channel)
            if len(message) < 3 or struct.unpack_from("<H", message, 1)[0] != self._port:
                self._fail(f"bad port header on channel {channel}")
                return
            start = 3
        if len(message) <= start:
            return
        if channel == DATA:  # a view: the tunnel's decoder copies a payload out once
            self._inbox.put(memoryview(message)[start:])
            return
        text_ = message[start:].decode("utf-8", "replace").strip()
        if "connection refused" in text_:
            text_ = f"nothing listens on 127.0.0.1:{self._port} in the pod (connection refused)"
        self._fail(f"failed: {text_}", prefix=" ")

    def _on_lost(self) -> None:
        """The WebSocket is gone: a clean end, or an error naming why."""
        close = self._ws.protocol.close_rcvd
        if close is None:
            self._fail("was cut off (no close from the API server)", prefix=" ")
        elif close.code not in (1000, 1001):
            self._fail(f"closed: {close.code} {close.reason}", prefix=" ")
        else:
            self._inbox.end(None)

    def _fail(self, what: str, prefix: str = ": ") -> None:
        if self._error is None:
            self._error = ClusterError(f"port-forward to {self._label}{prefix}{what}")
        self._inbox.end(self._error)

    async def send(self, data: bytes) -> None:
        """Send to the pod in chunks; ClusterError (with the server's reason when it gave one)
        once the forward is gone."""
        self.write(data)
        await self.drain()

    def write(self, data: bytes) -> bool:
        """Queue ``data`` as messages of at most `CHUNK` (one copy each: the channel byte and
        the chunk); True while the connection is backed up (``drain`` then)."""
        view = memoryview(data)
        try:
            for start in range(0, len(view), CHUNK):
                self._ws.protocol.send_binary(b"".join((b"\x00", view[start : start + CHUNK])))
        except InvalidState:
            return True  # drain() says why
        self._ws.send_data()
        transport = self._ws.transport
        return transport.is_closing() or transport.get_write_buffer_size() > 0

    async def drain(self) -> None:
        if self._ws.protocol.state is not State.OPEN or self._ws.transport.is_closing():
            raise self._closed_error()
        try:
            await self._ws.drain()
        except Exception as exc:  # the connection broke while we waited
            raise self._closed_error() from exc

    def _closed_error(self) -> ClusterError:
        return self._error or ClusterError(f"port-forward to {self._label} is closed")

    async def close(self) -> None:
        await self._ws.close()
