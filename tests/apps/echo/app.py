"""Echo service used by innerloop's tests and demo (stdlib only; runs on Python >= 3.10).

Every GET (other than the readiness path) answers 200 with one text line::

    pod=<POD_NAME or "local"> pid=<pid> path=<path> secret=<SECRET_VALUE> config=<CONFIG_VALUE>

Env: PORT (default 8080), HOST (default 0.0.0.0), POD_NAME (downward API), SECRET_VALUE (from a
Secret), CONFIG_VALUE (from a ConfigMap via envFrom), DRAIN_SECONDS (default 2).

- ``GET /ready`` is the readiness endpoint: 200 while serving, 503 once draining.
- ``?sleep=S`` delays the answer by S seconds (at most 30): an in-flight request for drain tests.
- SIGTERM drains: readiness fails at once, requests are still served for DRAIN_SECONDS (while
  the endpoints update), then the listener closes and the process exits when in-flight requests
  have finished.

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
from types import FrameType
from urllib.parse import parse_qs, urlsplit

READY_PATH = "/ready"
MAX_SLEEP = 30.0

draining = threading.Event()


def handle(path: str) -> str:
    """The answer to one request."""
    pod = os.environ.get("POD_NAME", "local")
    secret = os.environ.get("SECRET_VALUE", "")
    config = os.environ.get("CONFIG_VALUE", "")
    pid = os.getpid()
    body = f"pod={pod} pid={pid} path={path} secret={secret} config={config}\n"  # breakpoint
    return body


class Handler(BaseHTTPRequestHandler):
    server_version = "innerloop-echo/1"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == READY_PATH:
            if draining.is_set():
                self._reply(503, "draining\n")
            else:
                self._reply(200, "ready\n")
            return
        sleep = parse_qs(url.query).get("sleep", ["0"])[0]
        try:
            time.sleep(min(max(float(sleep), 0.0), MAX_SLEEP))
        except ValueError:
            self._reply(400, f"bad sleep value {sleep!r}\n")
            return
        self._reply(200, handle(url.path))

    def _reply(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        if os.environ.get("ECHO_ACCESS_LOG"):
            super().log_message(format, *args)


class Server(ThreadingHTTPServer):
    # Non-daemon handler threads: server_close() then waits for requests in flight.
    daemon_threads = False
    block_on_close = True


def main() -> int:
    host = os.environ.get("HOST", "0.0.0.0")
    port = int(os.environ.get("PORT", "8080"))
    drain_seconds = float(os.environ.get("DRAIN_SECONDS", "2"))
    server = Server((host, port), Handler)

    def stop_after_drain() -> None:
        time.sleep(drain_seconds)
        server.shutdown()

    def on_term(signum: int, frame: FrameType | None) -> None:
        draining.set()
        # shutdown() blocks until serve_forever returns, so it must not run on the main thread.
        threading.Thread(target=stop_after_drain, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    print(f"echo listening on {host}:{port} pid={os.getpid()}", flush=True)
    server.serve_forever(poll_interval=0.2)
    server.server_close()  # waits for in-flight requests
    print("echo drained, exiting", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
