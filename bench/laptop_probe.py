"""Laptop-side measuring client for the cluster bench: the raw port-forward baselines.

Runs in the developer netns (which reaches only the API server) with the same Python and the
same port-forward client (`innerloop.k8s`) the intercept uses, and speaks the JSON-line command
protocol of ``bench.probe`` (whose pacing it reuses):

    {"op": "latency", "mode": "pf_keepalive" | "pf_new" | "tcp_new" | "tcp_keepalive",
     "pod": P, "port": 8080, "count": 300, "rate": 50, "tcp_port": 18091, "host": "127.0.0.1"}
      → {"ms": [...], "errors": [...], "late": N}
    {"op": "bulk", "pod": P, "port": 8080, "bytes": N, "method": "GET" | "POST",
     "host": H, "tcp_port": N}  (with "host": over TCP to H:tcp_port, not a port-forward)
      → {"seconds": S, "bytes": N}

- ``pf_keepalive``: HTTP/1.1 keep-alive requests over one long-lived port-forward WebSocket.
- ``pf_new``: a new port-forward WebSocket per request (TLS, upgrade, the kubelet's dial to the
  pod), timed until the answer arrived; its close is not timed.
- ``tcp_new``: a new TCP connection per request to host:tcp_port (default 127.0.0.1, where
  the bench runs ``kubectl port-forward``, which opens a stream on its one upgraded connection
  per accept); ``tcp_keepalive``: one such connection for every request.

Launched by `innerloop intercept … -- python -m bench.laptop_probe`, a ``host`` that is a
cluster name goes through the cluster network (the resolver hook, a forwarder, an outbound
DIAL stream on the intercept's tunnel); the proxy variables are dropped so that the raw
port-forwards stay raw.

    python -m bench.laptop_probe --kubeconfig PATH --namespace NS
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from innerloop.k8s.gateway import Gateway
from innerloop.tunnel.transport import TcpTransport, Transport

from bench.probe import Command, paced, serve

BODY_CHUNK = bytes(1 << 20)
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "GRPC_PROXY")


class HttpOver:
    """Just enough HTTP/1.1 client over a Transport: Content-Length bodies, keep-alive."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._buf = bytearray()

    async def _more(self) -> None:
        data = await self.transport.recv()
        if not data:
            raise ConnectionError("the connection ended mid-answer")
        self._buf += data

    async def request(self, method: str, path: str, body_size: int = 0) -> tuple[int, bytes]:
        """Send one request (a body of ``body_size`` zero bytes); returns status and the body
        (only its first 200 bytes are kept: bulk answers are counted, not stored)."""
        head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\n"
        head += f"Content-Length: {body_size}\r\n\r\n" if method == "POST" else "\r\n"
        first = min(body_size, len(BODY_CHUNK))
        await self.transport.send(head.encode() + BODY_CHUNK[:first])
        for at in range(first, body_size, len(BODY_CHUNK)):
            await self.transport.send(BODY_CHUNK[: min(len(BODY_CHUNK), body_size - at)])
        while (end := self._buf.find(b"\r\n\r\n")) < 0:
            await self._more()
        lines = bytes(self._buf[:end]).decode("latin-1").split("\r\n")
        del self._buf[: end + 4]
        status = int(lines[0].split()[1])
        length = next(int(v) for k, _, v in (ln.partition(":") for ln in lines[1:])
                      if k.strip().lower() == "content-length")
        kept = b""
        while length > 0:
            if not self._buf:
                await self._more()
            take = min(length, len(self._buf))
            if len(kept) < 200:
                kept += bytes(self._buf[: min(take, 200 - len(kept))])
            del self._buf[:take]
            length -= take
        return status, kept


class Laptop:
    def __init__(self, gateway: Gateway, namespace: str, loop: asyncio.AbstractEventLoop) -> None:
        self.gateway = gateway
        self.namespace = namespace
        self.loop = loop

    async def forward(self, pod: str, port: int) -> HttpOver:
        return HttpOver(await self.gateway.port_forward(self.namespace, pod, port))

    async def open(self, cmd: Command) -> HttpOver:
        """A TCP connection to the command's host (a cluster name: the cluster network)."""
        return HttpOver(await TcpTransport.connect(cmd.get("host", "127.0.0.1"), cmd["tcp_port"]))

    def latency(self, cmd: Command) -> Command:
        mode: str = cmd["mode"]
        errors: list[str] = []
        kept: list[HttpOver] = []

        keepalive = mode.endswith("_keepalive")

        async def connect() -> HttpOver:
            if kept:
                return kept[0]
            http = await self.open(cmd) if mode.startswith("tcp_") else await self.forward(
                cmd["pod"], cmd["port"])
            if keepalive:
                kept.append(http)
            return http

        async def one() -> float:
            began = time.perf_counter()
            http = await connect()
            status, body = await http.request("GET", "/")
            took = (time.perf_counter() - began) * 1000
            if not keepalive:
                await http.transport.close()
            if status != 200 or not body.startswith(b"pod="):
                raise ConnectionError(f"HTTP {status}: {body[:80]!r}")
            return took

        if keepalive:  # the long-lived connection is opened before the clock starts
            self.loop.run_until_complete(connect())
        results, late = paced(cmd["count"], cmd["rate"], self._guarded(one, errors))
        for http in kept:
            self.loop.run_until_complete(http.transport.close())
        return {"ms": [round(r, 3) for r in results if r is not None], "errors": errors,
                "late": sum(late)}

    def _guarded(self, one: Callable[[], Awaitable[float]],
                 errors: list[str]) -> Callable[[int], float | None]:
        def send(i: int) -> float | None:
            try:
                return self.loop.run_until_complete(one())
            except Exception as exc:  # noqa: BLE001 - a failed request is data for the table
                errors.append(f"{type(exc).__name__}: {exc}")
                return None
        return send

    def bulk(self, cmd: Command) -> Command:
        async def run() -> Command:
            http = await (self.open(cmd) if "host" in cmd else self.forward(cmd["pod"],
                                                                              cmd["port"]))
            size = int(cmd["bytes"])
            try:
                began = time.perf_counter()
                if cmd.get("method", "GET") == "GET":
                    status, _ = await http.request("GET", f"/?bytes={size}")
                    received = size if status == 200 else 0
                else:
                    status, body = await http.request("POST", "/", body_size=size)
                    received = int(body.decode().rsplit("received=", 1)[1])
                seconds = time.perf_counter() - began
            finally:
                await http.transport.close()
            if received != size:
                raise ConnectionError(f"moved {received} of {size} bytes (HTTP {status})")
            return {"seconds": seconds, "bytes": received}
        return self.loop.run_until_complete(run())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--namespace", required=True)
    args = parser.parse_args()
    for name in PROXY_VARIABLES:  # the baselines are raw port-forwards, not via our proxy
        os.environ.pop(name, None)
        os.environ.pop(name.lower(), None)
    loop = asyncio.new_event_loop()
    gateway = loop.run_until_complete(Gateway.connect(args.kubeconfig))
    laptop = Laptop(gateway, args.namespace, loop)
    handlers: dict[str, Callable[[Command], Any]] = {"latency": laptop.latency,
                                                     "bulk": laptop.bulk}
    try:
        serve(handlers)
    finally:
        loop.run_until_complete(gateway.close())
        loop.close()


if __name__ == "__main__":
    main()
