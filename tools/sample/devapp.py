"""A developer's local app for the personal-intercept tests (stdlib only, Python >= 3.10).

Answers with its own id (DEV_ID), so a test can tell which developer's process served a request:

- ``GET /path`` → 200 ``pod=<DEV_ID> path=<path>``.
- ``POST`` with a chunked or Content-Length body → 200 ``pod=<DEV_ID> received=<N>
  sha256=<hex>``: the body is hashed as it streams, never held whole.
- ``GET`` with ``Upgrade: websocket`` → 101, then every text frame is echoed back as
  ``<DEV_ID>:<text>`` until a close frame.

With SEEN_LOG set it prints ``seen <METHOD> <path>`` per request (a mirror counts its copies).
Env: PORT, HOST (127.0.0.1), DEV_ID (local).
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from urllib.parse import urlsplit

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
DEV_ID = os.environ.get("DEV_ID", "local")
SEEN_LOG = bool(os.environ.get("SEEN_LOG"))


def read_frame(rfile: BufferedIOBase) -> tuple[int, bytes] | None:
    """One WebSocket frame (opcode, unmasked payload); None at EOF."""
    head = rfile.read(2)
    if len(head) < 2:
        return None
    opcode, length = head[0] & 0x0F, head[1] & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", rfile.read(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", rfile.read(8))
    mask = rfile.read(4) if head[1] & 0x80 else b""
    data = rfile.read(length)
    if mask:
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return opcode, data


def frame(opcode: int, data: bytes) -> bytes:
    """A server (unmasked) frame."""
    if len(data) < 126:
        return bytes([0x80 | opcode, len(data)]) + data
    if len(data) < 1 << 16:
        return bytes([0x80 | opcode, 126]) + struct.pack("!H", len(data)) + data
    return bytes([0x80 | opcode, 127]) + struct.pack("!Q", len(data)) + data


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def _seen(self) -> None:
        if SEEN_LOG:
            print(f"seen {self.command} {self.path}", flush=True)

    def do_GET(self) -> None:
        self._seen()
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self._websocket()
            return
        self._reply(f"pod={DEV_ID} path={urlsplit(self.path).path}\n")

    def do_POST(self) -> None:
        self._seen()
        digest, received = hashlib.sha256(), 0
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                remaining = size
                while remaining:
                    data = self.rfile.read(min(remaining, 1 << 16))
                    if not data:
                        raise ConnectionError("body cut off")
                    digest.update(data)
                    remaining -= len(data)
                received += size
                self.rfile.readline()  # the CRLF after the chunk
        else:
            remaining = int(self.headers.get("Content-Length", "0"))
            while remaining:
                data = self.rfile.read(min(remaining, 1 << 16))
                if not data:
                    raise ConnectionError("body cut off")
                digest.update(data)
                received += len(data)
                remaining -= len(data)
        self._reply(f"pod={DEV_ID} received={received} sha256={digest.hexdigest()}\n")

    def _websocket(self) -> None:
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.wfile.write((
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
        self.wfile.flush()
        while (got := read_frame(self.rfile)) is not None:
            opcode, data = got
            if opcode == 0x8:
                self.wfile.write(frame(0x8, data[:2]))
                break
            if opcode == 0x1:
                self.wfile.write(frame(0x1, f"{DEV_ID}:".encode() + data))
            self.wfile.flush()
        self.close_connection = True

    def _reply(self, text: str) -> None:
        body = text.encode()
        self.wfile.write((f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n").encode() + body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def main() -> int:
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8080"))
    server = Server((host, port), Handler)
    print(f"devapp {DEV_ID} listening on {host}:{port}", flush=True)
    server.serve_forever(poll_interval=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
