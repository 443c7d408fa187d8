"""Keep-alive HTTP/1.1 connections to one API server over `http.client`, for the settings
`k8s.kubeconfig` reads: a CLI start skips importing urllib3 (~20 ms), and its calls share one
TLS connection where they follow each other.

It sends what the `kubernetes` client sends through urllib3 for the same settings: the same
TLS (CA or the system's, client certificate, `insecure-skip-tls-verify`, `tls-server-name`),
token, URL (a server URL's path prefix kept), JSON body, timeouts, and one more try when a
connection kept from an earlier call turns out closed before it answered.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

from innerloop.k8s.kubeconfig import ClientConfig

IDLE_KEPT = 8
"""Idle connections kept for reuse; more are closed when their answer is read."""
STALE = (http.client.RemoteDisconnected, ConnectionResetError, ConnectionAbortedError,
         BrokenPipeError, ssl.SSLEOFError)
"""How a kept connection the server closed meanwhile fails before any answer."""
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
"""What urllib3 sends again after a read timeout (a PUT carries its resourceVersion)."""


class ReadFailed(OSError):
    """An answer's body could not be read to its end (the connection broke, a bad chunk)."""


def tls_context(cfg: ClientConfig) -> ssl.SSLContext:
    """The TLS settings urllib3 gets from the `kubernetes` client for these settings."""
    ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
    if not cfg.verify_ssl:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cfg.cert_file:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file or None)
    return ctx


class _TlsConnection(http.client.HTTPSConnection):
    """HTTPS whose certificate is checked against `server_hostname` (the kubeconfig's
    tls-server-name, else the server's host)."""

    def __init__(self, host: str, port: int | None, timeout: float, tls: ssl.SSLContext,
                 server_hostname: str) -> None:
        super().__init__(host, port, timeout=timeout, context=tls)
        self._tls = tls
        self._server_hostname = server_hostname

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)  # TCP, with TCP_NODELAY
        self.sock = self._tls.wrap_socket(self.sock, server_hostname=self._server_hostname)


class Answer:
    """One answer, unread: `data` reads it whole, iterating reads it line by line (a watch);
    either way its connection goes back to the pool once the body is read."""

    def __init__(self, response: http.client.HTTPResponse, conn: http.client.HTTPConnection,
                 pool: KeepAlivePool) -> None:
        self._response = response
        self._conn: http.client.HTTPConnection | None = conn
        self._pool = pool
        self._data: bytes | None = None
        self.status = response.status

    @property
    def data(self) -> bytes:
        if self._data is None:
            try:
                self._data = self._response.read()
            except (http.client.HTTPException, OSError) as exc:
                self._drop()
                raise ReadFailed(f"the API server's answer broke off: {exc!r}") from exc
            self.release_conn()
        return self._data

    def __iter__(self) -> Iterator[bytes]:
        try:
            while line := self._response.readline():
                yield line
        except (http.client.HTTPException, OSError) as exc:
            self._drop()
            raise ReadFailed(f"the API server's answer broke off: {exc!r}") from exc

    def shutdown(self) -> None:
        """Unblock a read waiting in another thread (the watch's), for good."""
        sock = self._conn.sock if self._conn is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def release_conn(self) -> None:
        """Give the connection back if the answer was read to its end, else close it."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._response.isclosed() and not self._response.will_close:
            self._pool.put(conn)
        else:
            self._response.close()
            conn.close()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class KeepAlivePool:
    """Connections to the API server of `cfg`, each used by one call at a time (the calls run
    in worker threads)."""

    def __init__(self, cfg: ClientConfig) -> None:
        url = urlsplit(cfg.host)
        self.tls = url.scheme == "https"
        self.host = url.hostname or "localhost"
        self.port = url.port
        self.prefix = url.path.rstrip("/")
        self._context = tls_context(cfg) if self.tls else None
        self._server_hostname = cfg.tls_server_name or self.host
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._closed = False

    def _new(self, timeout: float) -> http.client.HTTPConnection:
        if self._context is not None:
            return _TlsConnection(self.host, self.port, timeout, self._context,
                                  self._server_hostname)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _kept(self) -> http.client.HTTPConnection | None:
        """An idle connection the server has not closed (readable now means closed: it has
        nothing to say between answers)."""
        while True:
            with self._lock:
                if not self._idle:
                    return None
                conn = self._idle.pop()
            sock = conn.sock
            if sock is not None and not select.select([sock], [], [], 0)[0]:
                return conn
            conn.close()

    def put(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < IDLE_KEPT:
                self._idle.append(conn)
                return
        conn.close()

    def request(self, method: str, target: str, body: bytes | None, headers: dict[str, str],
                timeout: tuple[float, float]) -> Answer:
        """One request (`target`: path and query); raises OSError or HTTPException when no
        answer came, after one more try on a new connection if a kept one was closed."""
        while True:
            conn = self._kept()
            reused = conn is not None
            if conn is None:
                conn = self._new(timeout[0])
                try:
                    conn.connect()
                except BaseException:
                    conn.close()  # a TCP connection whose TLS handshake failed
                    raise
            try:
                assert conn.sock is not None
                conn.sock.settimeout(timeout[1])
                conn.request(method, self.prefix + target, body, headers)
                return Answer(conn.getresponse(), conn, self)
            except STALE:
                conn.close()
                if not reused:
                    raise
            except TimeoutError:
                # A kept connection that died without a word (the laptop slept, the network
                # moved) only times out: a request that may be sent twice goes on a new one
                conn.close()
                if not reused or method not in IDEMPOTENT:
                    raise
            except BaseException:
                conn.close()
                raise

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
