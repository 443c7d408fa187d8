"""The API client's keep-alive connections (`k8s.pool`, through `k8s.api`): calls that follow
each other share one connection, a kept connection the server closed is replaced (also when
that shows only as the request fails), the server URL's path prefix and the token are sent,
a watch's lines arrive as the server writes them and `shutdown` ends a blocked read, TLS is
checked as the kubeconfig says (its CA, tls-server-name), and urllib3 is never imported."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from innerloop.core.errors import ClusterError
from innerloop.k8s import pool
from innerloop.k8s.api import Api, HttpError
from innerloop.k8s.kubeconfig import ClientConfig


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.connections = 0
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        self.close_after_answer = False
        """Close each connection after its answer without saying so (a server's idle close)."""
        self.watch_go = threading.Event()
        self.hang_kept = False
        """Never answer a connection's second request (a connection that died unseen)."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away mid-answer (the watch shut down)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1
        self.answered = 0

    def _hung(self) -> bool:
        self.answered += 1
        if self.answered > 1 and self.server.hang_kept:
            time.sleep(1.5)
            self.close_connection = True
            return True
        return False

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        if self.server.close_after_answer:
            self.close_connection = True

    def do_GET(self) -> None:
        if self._hung():
            return
        self.server.seen.append(("GET", self.path, dict(self.headers), b""))
        if "watch=true" in self.path:
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for n in range(2):
                line = json.dumps({"type": "ADDED", "n": n}).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
                self.server.watch_go.wait(10)
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.path.endswith("/missing"):
            self._answer(404, b'{"kind":"Status","code":404}')
            return
        self._answer(200, json.dumps({"path": self.path}).encode())

    def do_POST(self) -> None:
        if self._hung():
            return
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append(("POST", self.path, dict(self.headers), body))
        self._answer(201, body)


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def api_for(srv: Server, prefix: str = "", token: str | None = None) -> Api:
    return Api(ClientConfig(host=f"http://127.0.0.1:{srv.server_port}{prefix}", token=token))


def test_calls_in_turn_share_one_connection_with_prefix_token_and_body(server: Server) -> None:
    api = api_for(server, "/k8s/clusters/c1", "Bearer abc")
    assert api.call_sync("GET", "/api/v1/namespaces/a b/pods", [("labelSelector", "app=x,t=1")]
                         ) == {"path": "/k8s/clusters/c1/api/v1/namespaces/a%20b/pods"
                               "?labelSelector=app%3Dx%2Ct%3D1"}
    assert api.call_sync("POST", "/apis/x", (), {"spec": {"n": 1}}) == {"spec": {"n": 1}}
    with pytest.raises(HttpError) as missing:
        api.call_sync("GET", "/api/v1/missing")
    assert missing.value.status == 404 and b"404" in missing.value.body
    assert api.call_sync("GET", "/after") == {"path": "/k8s/clusters/c1/after"}
    assert server.connections == 1
    method, _, headers, body = server.seen[1]
    assert (method, json.loads(body)) == ("POST", {"spec": {"n": 1}})
    assert headers["Authorization"] == "Bearer abc"
    assert headers["Content-Type"] == headers["Accept"] == "application/json"


def test_calls_at_once_each_get_a_connection_and_they_are_kept(server: Server) -> None:
    api = api_for(server)
    first, second = api.open_sync("GET", "/one"), api.open_sync("GET", "/two")
    assert json.loads(second.data) == {"path": "/two"} and json.loads(first.data) == {"path": "/one"}
    api.call_sync("GET", "/three")
    api.call_sync("GET", "/four")
    assert server.connections == 2


def test_a_kept_connection_the_server_closed_is_replaced(server: Server,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    api = api_for(server)
    server.close_after_answer = True
    api.call_sync("GET", "/one")
    time.sleep(0.05)
    assert api.call_sync("GET", "/two") == {"path": "/two"}  # seen closed before use
    # Closed in a way the check before use misses: the request itself fails, and is sent again
    monkeypatch.setattr(pool.select, "select", lambda r, w, x, t: ([], [], []))
    time.sleep(0.05)
    assert api.call_sync("POST", "/three", (), {"a": 1}) == {"a": 1}
    assert server.connections == 3
    assert [p for _, p, _, _ in server.seen] == ["/one", "/two", "/three"]


def test_a_kept_connection_that_only_times_out_is_replaced_for_a_get(server: Server) -> None:
    api = api_for(server)
    api.call_sync("GET", "/one")
    server.hang_kept = True
    answer = api.open_sync("GET", "/two", timeout=(5.0, 0.5))
    assert json.loads(answer.data) == {"path": "/two"} and server.connections == 2
    with pytest.raises(ClusterError, match="timed out"):  # a POST is not sent twice
        api.open_sync("POST", "/three", (), {}, timeout=(5.0, 0.5))
    assert [p for _, p, _, _ in server.seen] == ["/one", "/two"]


def test_a_watch_reads_lines_as_they_come_and_shutdown_ends_a_blocked_read(server: Server) -> None:
    api = api_for(server)
    answer = api.open_sync("GET", "/api/v1/pods", [("watch", "true")], timeout=(5.0, 30.0))
    lines = iter(answer)
    assert json.loads(next(lines)) == {"type": "ADDED", "n": 0}  # before the server goes on
    server.watch_go.set()
    assert [json.loads(line)["n"] for line in lines] == [1]
    answer.release_conn()
    api.call_sync("GET", "/after")
    assert server.connections == 1, "a watch read to its end gives its connection back"

    server.watch_go.clear()
    blocked = api.open_sync("GET", "/api/v1/pods", [("watch", "true")], timeout=(5.0, 30.0))
    ended: list[BaseException | None] = []

    def read() -> None:
        try:
            for _ in blocked:
                pass
            ended.append(None)
        except OSError as exc:
            ended.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.2)
    blocked.shutdown()
    reader.join(5)
    assert not reader.is_alive() and len(ended) == 1
    blocked.release_conn()
    server.watch_go.set()


def test_no_server_is_one_cluster_error_line() -> None:
    api = Api(ClientConfig(host="https://127.0.0.1:1"))
    with pytest.raises(ClusterError, match=r"^cannot reach the API server at https://127.0.0.1:1: "
                                           r".*[Cc]onnection refused"):
        api.call_sync("GET", "/api")


def self_signed(directory: Path, name: str, san: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", f"/CN={name}", "-addext",
                    f"subjectAltName={san}"], check=True, capture_output=True)
    return key, cert


@pytest.mark.parametrize("san, server_name, trusted", [
    ("IP:127.0.0.1", None, True),
    ("DNS:api.example", "api.example", True),
    ("DNS:api.example", None, False),
])
def test_tls_is_checked_as_the_kubeconfig_says(tmp_path: Path, san: str,
                                               server_name: str | None, trusted: bool) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl")
    key, cert = self_signed(tmp_path, "api", san)
    srv = Server()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    srv.socket = context.wrap_socket(srv.socket, server_side=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        api = Api(ClientConfig(host=f"https://127.0.0.1:{srv.server_port}",
                               ssl_ca_cert=str(cert), tls_server_name=server_name))
        if trusted:
            assert api.call_sync("GET", "/x") == {"path": "/x"}
            assert api.call_sync("GET", "/y") == {"path": "/y"} and srv.connections == 1
        else:
            with pytest.raises(ClusterError, match="presented a certificate your kubeconfig "
                                                   "does not trust"):
                api.call_sync("GET", "/x")
        insecure = Api(ClientConfig(host=f"https://127.0.0.1:{srv.server_port}",
                                    verify_ssl=False))
        assert insecure.call_sync("GET", "/z") == {"path": "/z"}
    finally:
        srv.shutdown()
        srv.server_close()


def test_the_api_client_never_imports_urllib3() -> None:
    probe = ("import sys\nfrom innerloop.k8s.api import Api\nfrom innerloop.k8s.pods import "
             "ReadyPods\nfrom innerloop.k8s.gateway import Gateway\n"
             "print('urllib3' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60).stdout.strip()
    assert out == "False"


def test_the_kubernetes_clients_answers_read_the_same(server: Server, tmp_path: Path) -> None:
    """A kubeconfig `k8s.kubeconfig` leaves to the `kubernetes` loader (here a token file):
    the same calls, a watch's lines and an error body, through urllib3."""
    from innerloop.k8s.config import load_kubeconfig
    from kubernetes.client import Configuration

    (tmp_path / "token").write_text("from-file")
    (tmp_path / "config").write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "dev",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
        "users": [{"name": "u", "user": {"tokenFile": str(tmp_path / "token")}}],
        "contexts": [{"name": "dev", "context": {"cluster": "c", "user": "u"}}]}))
    cfg, _ = load_kubeconfig(str(tmp_path / "config"), None)
    assert isinstance(cfg, Configuration)
    api = Api(cfg)
    assert api.call_sync("POST", "/apis/x", (), {"a": 1}) == {"a": 1}
    assert {k.lower(): v for k, v in server.seen[0][2].items()}["authorization"] == \
        "Bearer from-file"
    with pytest.raises(HttpError) as missing:
        api.call_sync("GET", "/api/v1/missing")
    assert missing.value.status == 404
    server.watch_go.set()
    answer = api.open_sync("GET", "/api/v1/pods", [("watch", "true")], timeout=(5.0, 30.0))
    assert [json.loads(line)["n"] for line in answer] == [0, 1]
    answer.release_conn()
