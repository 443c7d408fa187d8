"""Mixed keep-alive HTTP load, a WebSocket echo and a chunked upload, from a client pod (stdlib
only, Python >= 3.10), for the personal-intercept tests (docs/routing.md).

``mix HOST --kinds JSON --count N --connections C [--rate R] [--port 80] [--timeout S]``
    sends N requests over C keep-alive connections (C threads, each its own connection, reused
    for every request; a connection that fails is opened again). ``--kinds`` is a JSON list of
    ``{"name": ..., "method": "GET", "path": "/x", "headers": {"x-dev": "one"}}``: consecutive
    requests on one connection cycle through the kinds, so every connection carries every kind.
    With ``--rate`` the requests leave on a fixed schedule (R per second in all). Prints one
    JSON line: per kind, which ``pod=`` answered how often, latencies (p50/p99/max ms) and
    errors (a non-200 answer or an exception; the first 20 are listed).
``ws HOST --path P [--header N:V]... --messages M``
    a raw HTTP/1.1 WebSocket handshake, M text frames, a close; prints the status line and
    the echoes.
``upload HOST --path P [--header N:V]... --mib M``
    POSTs M MiB of random bytes with ``Transfer-Encoding: chunked`` (64 KiB chunks); prints the
    bytes sent, their sha256 and the answer.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def pod_of(body: str) -> str:
    return next((w[4:] for w in body.split() if w.startswith("pod=")), "?")


def mix(host: str, port: int, kinds: list[dict[str, Any]], count: int, connections: int,
        rate: float | None, timeout: float) -> dict[str, Any]:
    lock = threading.Lock()
    sources: dict[str, Counter[str]] = {k["name"]: Counter() for k in kinds}
    latencies: dict[str, list[float]] = {k["name"]: [] for k in kinds}
    errors: list[dict[str, Any]] = []
    error_count = Counter[str]()
    start = time.monotonic()

    def worker(index: int) -> None:
        conn: http.client.HTTPConnection | None = None
        for n, seq in enumerate(range(index, count, connections)):
            kind = kinds[(n + index) % len(kinds)]
            if rate:
                delay = start + seq / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            began = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(host, port, timeout=timeout)
                conn.request(kind.get("method", "GET"), kind["path"],
                             headers=kind.get("headers", {}))
                resp = conn.getresponse()
                body = resp.read().decode(errors="replace")
                ok, what = resp.status == 200, f"status {resp.status}: {body[:120]}"
            except (OSError, http.client.HTTPException) as exc:
                ok, what, body = False, f"{type(exc).__name__}: {exc}", ""
                if conn is not None:
                    conn.close()
                conn = None
            ms = (time.monotonic() - began) * 1000
            with lock:
                latencies[kind["name"]].append(ms)
                if ok:
                    sources[kind["name"]][pod_of(body)] += 1
                else:
                    error_count[kind["name"]] += 1
                    if len(errors) < 20:
                        errors.append({"seq": seq, "kind": kind["name"], "error": what,
                                       "t": round(time.time(), 3)})
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [ms for values in latencies.values() for ms in values]
    return {
        "sent": count, "errors": sum(error_count.values()), "first_errors": errors,
        "seconds": round(time.monotonic() - start, 2),
        "sources": {k: dict(c) for k, c in sources.items()},
        "errors_by_kind": dict(error_count),
        "ms": {"p50": percentile(every, 0.5), "p99": percentile(every, 0.99),
               "max": round(max(every, default=0.0), 1)},
    }


def _headers(pairs: Sequence[str]) -> dict[str, str]:
    return dict(p.split(":", 1) for p in pairs)


def websocket(host: str, port: int, path: str, headers: dict[str, str], messages: int,
              timeout: float) -> dict[str, Any]:
    key = base64.b64encode(os.urandom(16)).decode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\n{extra}\r\n").encode())
    rfile = sock.makefile("rb")
    status = rfile.readline().decode().strip()
    head = {}
    while (line := rfile.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        head[name.strip().lower()] = value.strip()
    expected = base64.b64encode(hashlib.sha1(
        (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    echoes = []
    for i in range(messages):
        payload = f"hello {i}".encode()
        mask = os.urandom(4)
        sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask
                     + bytes(b ^ mask[j % 4] for j, b in enumerate(payload)))
        first = rfile.read(2)
        length = first[1] & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", rfile.read(2))
        echoes.append(rfile.read(length).decode())
    mask = os.urandom(4)
    sock.sendall(bytes([0x88, 0x82]) + mask + bytes(b ^ mask[j] for j, b in enumerate(b"\x03\xe8")))
    closed = rfile.read(2)
    sock.close()
    return {"status": status, "accept_ok": head.get("sec-websocket-accept") == expected,
            "echoes": echoes, "close_frame": closed[:1].hex()}


def upload(host: str, port: int, path: str, headers: dict[str, str], mib: int,
           timeout: float) -> dict[str, Any]:
    digest, sent = hashlib.sha256(), 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(mib * 16):
            chunk = os.urandom(64 * 1024)
            digest.update(chunk)
            sent += len(chunk)
            yield chunk

    began = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    conn.request("POST", path, body=body(), encode_chunked=True,
                 headers={**headers, "Transfer-Encoding": "chunked"})
    resp = conn.getresponse()
    answer = resp.read().decode(errors="replace").strip()
    conn.close()
    return {"sent": sent, "sha256": digest.hexdigest(), "status": resp.status, "body": answer,
            "seconds": round(time.monotonic() - began, 2)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    for name in ("mix", "ws", "upload"):
        p = sub.add_parser(name)
        p.add_argument("host")
        p.add_argument("--port", type=int, default=80)
        p.add_argument("--timeout", type=float, default=10.0)
        if name == "mix":
            p.add_argument("--kinds", required=True)
            p.add_argument("--count", type=int, default=1000)
            p.add_argument("--connections", type=int, default=8)
            p.add_argument("--rate", type=float)
        else:
            p.add_argument("--path", default="/")
            p.add_argument("--header", action="append", default=[])
            p.add_argument("--messages", type=int, default=3)
            p.add_argument("--mib", type=int, default=50)
    args = parser.parse_args(argv)
    if args.what == "mix":
        result = mix(args.host, args.port, json.loads(args.kinds), args.count, args.connections,
                     args.rate, args.timeout)
    elif args.what == "ws":
        result = websocket(args.host, args.port, args.path, _headers(args.header), args.messages,
                           args.timeout)
    else:
        result = upload(args.host, args.port, args.path, _headers(args.header), args.mib,
                        args.timeout)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
