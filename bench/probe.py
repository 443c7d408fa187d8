"""Measuring client for the cluster bench (stdlib; Python >= 3.10). Runs in the client pod.

It stays up for the whole run and takes one JSON command per stdin line, answering each with
one JSON line, so the bench can interleave pod-side and laptop-side measurements without
paying for a `kubectl exec` each time:

    {"op": "latency", "targets": [URL, ...], "count": 300, "rate": 50, "keepalive": false}
      → {"ms": {URL: [...]}, "errors": {URL: [...]}, "late": {URL: N}}
    {"op": "until", "url": URL, "contains": "pod=local", "present": true, "timeout": 120}
      → {"t": <time.time() of the first matching answer>, "tries": N, "errors": N}
    {"op": "bulk", "url": URL, "bytes": N, "method": "GET" | "POST"}
      → {"seconds": S, "bytes": N}
    {"op": "hold_open", "url": URL, "conns": 1000}       (one keep-alive request on each)
      → {"opened": N, "errors": N, "first_errors": [...], "answered_by": {POD: N}, "seconds": S}
    {"op": "hold_requests", "requests": 10000}           (spread over the held connections,
      → the same fields as hold_open                      all of them at once)
    {"op": "hold_close"} → {"closed": N}

Latency requests go out on a fixed schedule (``rate`` per second over all targets, taken in
turn, so the targets are measured interleaved under the same conditions), one at a time:
concurrent Python threads would measure the GIL rather than the network. A request that cannot
start on time (the previous one took longer than the interval) is counted in ``late``.
``keepalive`` reuses one HTTP/1.1 connection per target; otherwise each request opens its own
connection, as most callers of a Service do. The laptop-side client reuses ``paced`` and
``serve``.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import sys
import time
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import urlsplit

Command = dict[str, Any]
CHUNK = 1 << 20


def paced(
    count: int, rate: float, send: Callable[[int], float | None]
) -> tuple[list[float | None], list[bool]]:
    """Call ``send(i)`` for i in 0..count-1 on a fixed schedule; returns what each call returned
    (its duration in ms, None when it failed) and whether it started over an interval late."""
    interval = 1.0 / rate
    start = time.monotonic()
    results: list[float | None] = []
    late: list[bool] = []
    for i in range(count):
        delay = start + i * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        late.append(delay < -interval)
        results.append(send(i))
    return results, late


def serve(handlers: dict[str, Callable[[Command], Command]]) -> None:
    """Answer one JSON line per command line until stdin closes."""
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        try:
            answer = handlers[command["op"]](command)
        except Exception as exc:  # noqa: BLE001 - the bench reports it; the probe stays up
            answer = {"failed": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)


class Target:
    """One URL; with keep-alive it holds its connection across requests."""

    def __init__(self, url: str, keepalive: bool, timeout: float) -> None:
        parts = urlsplit(url)
        self.url = url
        self.host, self.port = parts.hostname or "", parts.port or 80
        self.path = parts.path or "/"
        self.path += f"?{parts.query}" if parts.query else ""
        self.keepalive = keepalive
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def get(self) -> bytes:
        conn = self.conn or http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request("GET", self.path)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise OSError(f"HTTP {resp.status}: {body[:80]!r}")
        except BaseException:
            conn.close()
            self.conn = None
            raise
        if self.keepalive:
            self.conn = conn
        else:
            conn.close()
        return body

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def latency(cmd: Command) -> Command:
    targets = [Target(url, bool(cmd.get("keepalive")), cmd.get("timeout", 5.0))
               for url in cmd["targets"]]
    errors: dict[str, list[str]] = {t.url: [] for t in targets}

    def send(i: int) -> float | None:
        target = targets[i % len(targets)]
        began = time.perf_counter()
        try:
            target.get()
        except (OSError, http.client.HTTPException) as exc:
            errors[target.url].append(f"{type(exc).__name__}: {exc}")
            return None
        return (time.perf_counter() - began) * 1000

    results, late = paced(cmd["count"] * len(targets), cmd["rate"], send)
    for target in targets:
        target.close()
    k = len(targets)
    ms = {t.url: [round(r, 3) for r in results[n::k] if r is not None]
          for n, t in enumerate(targets)}
    return {"ms": ms, "errors": errors, "late": {t.url: sum(late[n::k])
                                                  for n, t in enumerate(targets)}}


def until(cmd: Command) -> Command:
    """Poll (new connection each time) until the answer does / does not contain a string."""
    target = Target(cmd["url"], False, cmd.get("request_timeout", 1.0))
    deadline = time.monotonic() + cmd.get("timeout", 120.0)
    tries = errors = 0
    while time.monotonic() < deadline:
        tries += 1
        try:
            found = cmd["contains"].encode() in target.get()
            if found == cmd.get("present", True):
                return {"t": time.time(), "tries": tries, "errors": errors}
        except (OSError, http.client.HTTPException):
            errors += 1
        time.sleep(cmd.get("interval", 0.02))
    return {"failed": f"no matching answer from {cmd['url']} in {cmd.get('timeout', 120.0)} s",
            "tries": tries, "errors": errors}


def bulk(cmd: Command) -> Command:
    """One large GET response or POST body; seconds from the request to the last byte."""
    parts = urlsplit(cmd["url"])
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=30)
    size = int(cmd["bytes"])
    began = time.perf_counter()
    if cmd.get("method", "GET") == "GET":
        conn.request("GET", f"{parts.path or '/'}?bytes={size}")
        resp = conn.getresponse()
        received = 0
        while data := resp.read(CHUNK):
            received += len(data)
    else:
        chunk = bytes(CHUNK)
        body = (chunk[: min(CHUNK, size - at)] for at in range(0, size, CHUNK))
        conn.request("POST", parts.path or "/", body=body,
                     headers={"Content-Length": str(size)})
        resp = conn.getresponse()
        answer = resp.read().decode()
        received = int(answer.rsplit("received=", 1)[1])
    seconds = time.perf_counter() - began
    conn.close()
    if received != size:
        raise OSError(f"moved {received} of {size} bytes")
    return {"seconds": seconds, "bytes": received}


class Held:
    """Connections held open across commands: one event loop for the probe's whole life."""

    loop = asyncio.new_event_loop()
    conns: ClassVar[list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = []
    host: ClassVar[str] = ""
    port: ClassVar[int] = 80
    path: ClassVar[str] = "/"


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
    """One keep-alive GET; the answer's pod name."""
    writer.write(f"GET {Held.path} HTTP/1.1\r\nHost: {Held.host}\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = head.split(b" ", 2)[1]
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    body = await reader.readexactly(length)
    if status != b"200":
        raise OSError(f"HTTP {status.decode()}")
    return body.split(b"pod=", 1)[1].split(b" ", 1)[0].decode() if b"pod=" in body else "?"


def _tally(results: list[BaseException | str], began: float) -> Command:
    errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    by: dict[str, int] = {}
    for r in results:
        if isinstance(r, str):
            by[r] = by.get(r, 0) + 1
    return {"errors": len(errors), "first_errors": errors[:5], "answered_by": by,
            "seconds": time.perf_counter() - began}


def hold_open(cmd: Command) -> Command:
    parts = urlsplit(cmd["url"])
    Held.host, Held.port, Held.path = parts.hostname or "", parts.port or 80, parts.path or "/"
    gate = asyncio.Semaphore(cmd.get("parallel", 100))

    async def one() -> str:
        async with gate:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(Held.host, Held.port), 30)
            Held.conns.append((reader, writer))
            return await asyncio.wait_for(_get(reader, writer), 30)

    async def run() -> list[BaseException | str]:
        return await asyncio.gather(*(one() for _ in range(cmd["conns"])),
                                    return_exceptions=True)

    began = time.perf_counter()
    results = Held.loop.run_until_complete(run())
    return {"opened": len(Held.conns), **_tally(results, began)}


def hold_requests(cmd: Command) -> Command:
    conns = list(Held.conns)
    share = [cmd["requests"] // len(conns) + (i < cmd["requests"] % len(conns))
             for i in range(len(conns))]

    async def serial(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                     n: int) -> list[BaseException | str]:
        out: list[BaseException | str] = []
        for _ in range(n):
            try:
                out.append(await asyncio.wait_for(_get(*conn), 30))
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError,
                    IndexError, StopIteration) as exc:
                out.append(exc)
        return out

    async def run() -> list[BaseException | str]:
        lists = await asyncio.gather(*(serial(c, n) for c, n in zip(conns, share)))
        return [r for each in lists for r in each]

    began = time.perf_counter()
    results = Held.loop.run_until_complete(run())
    return {"requests": len(results), **_tally(results, began)}


def hold_close(_cmd: Command) -> Command:
    for _, writer in Held.conns:
        writer.close()
    closed, Held.conns = len(Held.conns), []
    Held.loop.run_until_complete(asyncio.sleep(0))
    return {"closed": closed}


def main() -> None:
    serve({"latency": latency, "until": until, "bulk": bulk, "hold_open": hold_open,
           "hold_requests": hold_requests, "hold_close": hold_close})


if __name__ == "__main__":
    main()
