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
import contextlib
import logging
import ssl
import struct
from collections import deque
from typing import Any, cast
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from innerloop.core.errors import ClusterError
from innerloop.k8s.config import Settings
from innerloop.k8s.errors import from_status, unreachable

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


class PortForward:
    """One forwarded connection to a pod's port: recv() / send() / close()."""

    def __init__(self, ws: ClientConnection, label: str, port: int) -> None:
        self._ws = ws
        self._label = label
        self._port = port
        self._headers_seen: set[int] = set()
        self._pending: deque[bytes] = deque()
        self._receiving = False
        self._settled = asyncio.Event()
        self._error: ClusterError | None = None
        self._eof = False
        self._send_lock = asyncio.Lock()

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
        return cls(ws, label, port)

    async def recv(self) -> bytes:
        """Data from the pod; b"" when the forward ended cleanly; ClusterError on its error text."""
        while True:
            if self._pending:
                return self._pending.popleft()
            if self._error is not None:
                raise self._error
            if self._eof:
                return b""
            await self._receive_one()

    async def _receive_one(self) -> None:
        """Take one message; `_settled` is set once the forward's end or failure is known."""
        self._receiving = True
        try:
            self._handle(await self._ws.recv())
        except ConnectionClosed as exc:
            self._eof = True
            if exc.rcvd is None:
                self._error = self._error or ClusterError(
                    f"port-forward to {self._label} was cut off (no close from the API server)"
                )
            elif exc.rcvd.code not in (1000, 1001):
                self._error = self._error or ClusterError(
                    f"port-forward to {self._label} closed: {exc.rcvd.code} {exc.rcvd.reason}"
                )
        finally:
            self._receiving = False
            if self._eof or self._error is not None:
                self._settled.set()

    def _handle(self, message: str | bytes) -> None:
        """Data goes to the pending queue; error-channel text becomes the error."""
        if isinstance(message, str) or not message:
            self._error = ClusterError(
                f"port-forward to {self._label}: unexpected message (not v4.channel.k8s.io framing)"
            )
            return
        channel, payload = message[0], message[1:]
        if channel not in (DATA, ERROR):
            self._error = ClusterError(
                f"port-forward to {self._label}: message on unknown channel {channel}"
            )
            return
        if channel not in self._headers_seen:
            payload = self._strip_port_header(channel, payload)
        if not payload:
            return
        if channel == DATA:
            self._pending.append(payload)
            return
        text = payload.decode("utf-8", "replace").strip()
        if "connection refused" in text:
            text = f"nothing listens on 127.0.0.1:{self._port} in the pod (connection refused)"
        self._error = ClusterError(f"port-forward to {self._label} failed: {text}")

    def _strip_port_header(self, channel: int, payload: bytes) -> bytes:
        self._headers_seen.add(channel)
        if len(payload) < 2 or struct.unpack("<H", payload[:2])[0] != self._port:
            self._error = ClusterError(
                f"port-forward to {self._label}: bad port header on channel {channel}"
            )
            return b""
        return payload[2:]

    async def send(self, data: bytes) -> None:
        """Send to the pod in chunks; ClusterError (with the server's reason when it gave one)
        once the forward is gone."""
        view = memoryview(data)
        async with self._send_lock:  # chunks of one send must not interleave with another's
            try:
                for start in range(0, len(view), CHUNK):  # one copy: channel byte + chunk
                    await self._ws.send(b"".join((b"\x00", view[start : start + CHUNK])))
            except ConnectionClosed as exc:
                await self._learn_why_closed()
                raise self._error or ClusterError(
                    f"port-forward to {self._label} is closed"
                ) from exc

    async def _learn_why_closed(self) -> None:
        """The server's reason may still sit in the receive queue. A reader blocked in recv()
        is about to see it; otherwise read it here, keeping any data for recv()."""
        if self._receiving:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._settled.wait(), timeout=2.0)
            return
        while not self._eof and self._error is None:
            await self._receive_one()

    async def close(self) -> None:
        await self._ws.close()
