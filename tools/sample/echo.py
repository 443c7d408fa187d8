"""The echo app, in the cluster and on the "laptop", for tests, benchmarks and the demo.

Stdlib only, so the stock ``python3`` image runs it from a ConfigMap (Python >= 3.10).

- ``GET /path`` answers 200 with one text line::

      pod=<POD_NAME or "local"> pid=<pid> path=<path> secret=<SECRET_VALUE> config=<CONFIG_VALUE>

- ``GET /?bytes=N`` answers N bytes (a large response, for throughput).
- ``GET /?sleep=S`` answers after S seconds (at most 30): a request in flight, for drain tests.
- ``POST /`` reads the body and answers ``pod=<pod> received=<N>`` (a large request).
- ``GET /ready`` is the readiness endpoint: 200 while serving, 503 once draining.
- SIGTERM drains: readiness fails at once, requests are still served for DRAIN_SECONDS (while
  the endpoints update), then the listener closes and the process exits once the requests in
  flight are answered (an idle keep-alive connection does not hold it).

HTTP/1.1 with keep-alive, and every small answer leaves in one write with TCP_NODELAY, so the
app adds no Nagle/delayed-ACK stalls of its own to what the benchmarks measure.

Env: PORT (8080), HOST (0.0.0.0), POD_NAME (downward API), SECRET_VALUE (from a Secret),
CONFIG_VALUE (from a ConfigMap via envFrom), DRAIN_SECONDS (2), ECHO_ACCESS_LOG (set: log requests).

The answer is built by ``handle()`` on the line marked ``# breakpoint``, which the
debugger tests target.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from urllib.parse import parse_qs, urlsplit

READY_PATH = "/ready"
MAX_SLEEP = 30.0
MAX_BYTES = 1 << 30
CHUNK = bytes(256 * 1024)

draining = threading.Event()


class InFlight:
    """Counts requests being answered, so a draining app can wait for exactly those."""

    def __init__(self) -> None:
        self._count = 0
        self._changed = threading.Condition()

    def __enter__(self) -> None:
        with self._changed:
            self._count += 1

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        with self._changed:
            self._count -= 1
            self._changed.notify_all()

    def wait_idle(self) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._count == 0)


in_flight = InFlight()


def pod_name() -> str:
    return os.environ.get("POD_NAME", "local")


def handle(path: str) -> str:
    """The answer to one request."""
    pod = pod_name()
    secret = os.environ.get("SECRET_VALUE", "")
    config = os.environ.get("CONFIG_VALUE", "")
    pid = os.getpid()
    body = f"pod={pod} pid={pid} path={path} secret={secret} config={config}\n"  # breakpoint
    return body


def _number(query: dict[str, list[str]], name: str, default: float, top: float) -> float | None:
    """The query parameter as a number in 0..top, or None when it is not one."""
    try:
        value = float(query.get(name, [default])[0])
    except ValueError:
        return None
    return value if 0 <= value <= top else None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "innerloop-echo/2"

    def do_GET(self) -> None:
        with in_flight:
            url = urlsplit(self.path)
            if url.path == READY_PATH:
                ready = not draining.is_set()
                self._reply(200 if ready else 503, "ready\n" if ready else "draining\n")
                return
            query = parse_qs(url.query)
            sleep = _number(query, "sleep", 0, MAX_SLEEP)
            size = _number(query, "bytes", 0, MAX_BYTES) if "bytes" in query else -1
            if sleep is None or size is None:
                self._reply(400, f"sleep must be 0..{MAX_SLEEP:.0f}, bytes 0..{MAX_BYTES}\n")
                return
            time.sleep(sleep)
            if size >= 0:
                self._send_bytes(int(size))
            else:
                self._reply(200, handle(url.path))

    def do_POST(self) -> None:
        with in_flight:
            remaining = int(self.headers.get("Content-Length", "0"))
            received = 0
            while remaining > 0:
                data = self.rfile.read(min(remaining, len(CHUNK)))
                if not data:
                    break
                received += len(data)
                remaining -= len(data)
            self._reply(200, f"pod={pod_name()} received={received}\n")

    def _version(self) -> str:
        """An HTTP/1.0 request gets an HTTP/1.0 answer (and the connection closes after it), as
        from a plain http.server; HTTP/1.1 gets keep-alive."""
        return "HTTP/1.0" if self.request_version == "HTTP/1.0" else "HTTP/1.1"

    def _send_bytes(self, count: int) -> None:
        self.log_request(200)
        self.wfile.write(self._head(200, "application/octet-stream", count))
        view = memoryview(CHUNK)
        while count > 0:
            self.wfile.write(view[: min(count, len(CHUNK))])
            count -= len(CHUNK)

    def _reply(self, status: int, text: str) -> None:
        """Status line, headers and body in one write."""
        body = text.encode()
        self.log_request(status)
        self.wfile.write(self._head(status, "text/plain; charset=utf-8", len(body)) + body)

    def _head(self, status: int, content_type: str, length: int) -> bytes:
        return (f"{self._version()} {status} {self.responses[status][0]}\r\n"
                f"Server: {self.server_version}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {length}\r\n\r\n").encode()

    def log_message(self, format: str, *args: object) -> None:
        if os.environ.get("ECHO_ACCESS_LOG"):  # a line per request costs more than the request
            super().log_message(format, *args)


class Server(ThreadingHTTPServer):
    # Daemon handler threads: an idle keep-alive connection must not keep a drained app alive;
    # `in_flight` is what the exit waits for.
    daemon_threads = True
    request_queue_size = 128


def main() -> int:
    host = os.environ.get("HOST", "0.0.0.0")
    port = int(os.environ.get("PORT", "8080"))
    drain_seconds = float(os.environ.get("DRAIN_SECONDS", "2"))
    server = Server((host, port), Handler)

    def stop_after_drain() -> None:
        time.sleep(drain_seconds)
        server.shutdown()

    def on_term(signum: int, frame: FrameType | None) -> None:
        # PID 1 in a container ignores SIGTERM unless handled. shutdown() blocks until
        # serve_forever returns, so it must not run on the main thread.
        draining.set()
        threading.Thread(target=stop_after_drain, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    # PORT=0: the kernel picks a free port; the line says which.
    print(f"echo listening on {host}:{server.server_address[1]} pid={os.getpid()}", flush=True)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    in_flight.wait_idle()
    print("echo drained, exiting", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
