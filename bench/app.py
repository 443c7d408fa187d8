"""Bench-only HTTP app (stdlib; Python >= 3.10): runs in the cluster pods and on the "laptop".

- ``GET /`` answers ``pod=<POD_NAME or "local">``: who served the request.
- ``GET /?bytes=N`` answers N bytes (a large response for throughput).
- ``POST /`` reads the body and answers ``pod=... received=N`` (a large request).
- ``GET /ready`` is the readiness probe: 503 once SIGTERM started the drain.

HTTP/1.1 with keep-alive, and every small answer leaves in one write with TCP_NODELAY, so the
app adds no Nagle/delayed-ACK stalls of its own to what the bench measures. Env: PORT (8080),
HOST (0.0.0.0), POD_NAME, DRAIN_SECONDS (1.5: how long a terminating pod keeps serving while the
Service's endpoints catch up, so a rollout costs no requests).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from urllib.parse import parse_qs, urlsplit

CHUNK = bytes(256 * 1024)
MAX_BYTES = 1 << 30
draining = threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "innerloop-bench/1"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/ready":
            self._reply(503 if draining.is_set() else 200, b"draining\n" if draining.is_set()
                        else b"ready\n")
            return
        size = parse_qs(url.query).get("bytes")
        if size is None:
            self._reply(200, f"pod={self.server.pod}\n".encode())  # type: ignore[attr-defined]
            return
        try:
            count = int(size[0])
        except ValueError:
            count = -1
        if not 0 <= count <= MAX_BYTES:
            self._reply(400, f"bytes must be 0..{MAX_BYTES}\n".encode())
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(count))
        self.end_headers()
        view = memoryview(CHUNK)
        while count > 0:
            self.wfile.write(view[: min(count, len(CHUNK))])
            count -= len(CHUNK)

    def do_POST(self) -> None:
        remaining = int(self.headers.get("Content-Length", "0"))
        received = 0
        while remaining > 0:
            data = self.rfile.read(min(remaining, len(CHUNK)))
            if not data:
                break
            received += len(data)
            remaining -= len(data)
        pod = self.server.pod  # type: ignore[attr-defined]
        self._reply(200, f"pod={pod} received={received}\n".encode())

    def _reply(self, status: int, body: bytes) -> None:
        """Status line, headers and body in one write."""
        head = (f"HTTP/1.1 {status} {self.responses[status][0]}\r\n"
                f"Server: {self.server_version}\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        self.log_request(status)
        self.wfile.write(head.encode() + body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # a log line per request would cost more than the request


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def main() -> int:
    port = int(os.environ.get("PORT", "8080"))
    server = Server((os.environ.get("HOST", "0.0.0.0"), port), Handler)
    server.pod = os.environ.get("POD_NAME", "local")  # type: ignore[attr-defined]
    drain = float(os.environ.get("DRAIN_SECONDS", "1.5"))

    def exit_after_drain() -> None:
        time.sleep(drain)
        os._exit(0)

    def on_term(signum: int, frame: FrameType | None) -> None:
        # PID 1 in a container ignores SIGTERM unless handled: drain, then go.
        draining.set()
        threading.Thread(target=exit_after_drain, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    print(f"bench app listening on port {port}", flush=True)
    server.serve_forever(poll_interval=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
