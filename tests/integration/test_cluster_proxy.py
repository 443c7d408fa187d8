"""The local proxy with real clients (curl, requests, urllib, grpcio, a raw SOCKS5 client),
against loopback servers only: "payments" and "ledger" stand for cluster Services (resolve maps
them to their loopback ports, as to a forwarder), "ghost.shop" is cluster-shaped but no Service,
and `localhost` is no cluster name (a direct connection)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import socket
import struct
import sys
import tracemalloc
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h11
import pytest
import requests
from innerloop.clusternet.dial import Streams
from innerloop.clusternet.proxy import ProxyServer, proxy_env
from innerloop.core.cluster_names import LocalAddress, NotCluster, NotFound, ResolveResult

from tests.helpers.http_app import HttpApp
from tools.net import free_port

pytestmark = pytest.mark.integration
CURL = "/usr/bin/curl"
CHUNK = 64 * 1024
BIG = 32 * 1024 * 1024
CLUSTER_IP = "10.96.0.10"  # payments' ClusterIP, as in $PAYMENTS_SERVICE_HOST


class App(HttpApp):
    """An app (keep-alive) that says who it is and what it was sent.

    ``/echo`` streams the body back as it arrives (after a 100 Continue when asked);
    ``/big/N`` streams N bytes; ``/die`` closes without an answer, ``/close`` answers with
    ``Connection: close``; anything else answers "<who> <method> <target> host=<Host>
    body=<length> proxy-headers=<names>".
    """

    async def serve(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        async def next_event() -> object:
            while (event := conn.next_event()) is h11.NEED_DATA:
                conn.receive_data(await reader.read(CHUNK))
            return event

        async def send(event: h11.Event) -> None:
            writer.write(conn.send(event) or b"")
            await writer.drain()

        try:
            while isinstance(request := await next_event(), h11.Request):
                target = request.target.decode()
                if target == "/die":
                    return
                if target == "/echo":
                    if conn.they_are_waiting_for_100_continue:
                        await send(h11.InformationalResponse(status_code=100, headers=[]))
                    await send(h11.Response(status_code=200, headers=[]))
                    while isinstance(event := await next_event(), h11.Data):
                        await send(h11.Data(data=event.data))
                    await send(h11.EndOfMessage())
                else:
                    size = 0
                    while isinstance(event := await next_event(), h11.Data):
                        size += len(event.data)
                    if target.startswith("/big/"):
                        await self._stream(send, int(target[5:]))
                    else:
                        host = dict(request.headers).get(b"host", b"").decode()
                        proxy = sorted(n.decode() for n, _ in request.headers
                                       if n.startswith(b"proxy-")) or ["none"]
                        text = (f"{self.who} {request.method.decode()} {target} host={host} "
                                f"body={size} proxy-headers={','.join(proxy)}")
                        body = text.encode()
                        close = [("connection", "close")] if target == "/close" else []
                        await send(h11.Response(status_code=200, headers=[
                            ("content-length", str(len(body))), *close]))
                        await send(h11.Data(data=body))
                        await send(h11.EndOfMessage())
                if conn.our_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError):
            pass

    @staticmethod
    async def _stream(send: Callable[[h11.Event], Awaitable[None]], size: int) -> None:
        await send(h11.Response(status_code=200, headers=[("content-length", str(size))]))
        block = bytes(range(256)) * (CHUNK // 256)
        for offset in range(0, size, CHUNK):
            await send(h11.Data(data=block[:size - offset]))
        await send(h11.EndOfMessage())


@dataclass
class Net:
    proxy: ProxyServer
    payments: App
    ledger: App
    direct: App
    table: dict[str, int]
    dialled_direct: list[tuple[str, int]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.proxy.port}"

    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        return {**base, **proxy_env(self.proxy.port)}


@pytest.fixture
async def net() -> AsyncIterator[Net]:
    payments, ledger, direct = App("payments"), App("ledger"), App("direct")
    for app in (payments, ledger, direct):
        await app.start()
    table = {"payments": payments.port, CLUSTER_IP: payments.port, "ledger": ledger.port}
    dialled: list[tuple[str, int]] = []

    async def resolve(host: str, port: int | None) -> ResolveResult:
        if host in table:
            return LocalAddress("127.0.0.1", table[host])
        if host.endswith(".shop"):
            return NotFound(f"no service {host.split('.')[0]!r} in namespace 'shop'")
        return NotCluster()

    async def connect_direct(host: str, port: int) -> Streams:
        dialled.append((host, port))
        return await asyncio.open_connection(host, port)

    async with ProxyServer(resolve, connect_direct=connect_direct) as proxy:
        yield Net(proxy, payments, ledger, direct, table, dialled)
    for app in (payments, ledger, direct):
        app.close()


async def run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def curl(*args: str, env: dict[str, str] | None = None) -> str:
    code, out, err = await run(CURL, "-sS", "--fail-with-body", "--max-time", "30", *args, env=env)
    assert code == 0, (code, out, err)
    return out


# ---- clients through the proxy env -------------------------------------------------------

async def test_curl_sends_absolute_form_through_http_proxy_and_proxy_headers_stop(net: Net) -> None:
    out = await curl("--proxy-user", "u:p", "-H", "Proxy-Foo: 1", "http://payments/charge?id=7",
                     env=net.env())
    assert out == "payments GET /charge?id=7 host=payments body=0 proxy-headers=none"


async def test_a_cluster_ip_reaches_its_service(net: Net) -> None:
    out = await curl("-d", "x=1", f"http://{CLUSTER_IP}:8080/pay", env=net.env())
    assert out == f"payments POST /pay host={CLUSTER_IP}:8080 body=3 proxy-headers=none"


async def test_curl_through_socks5h(net: Net) -> None:
    out = await curl("--proxy", f"socks5h://127.0.0.1:{net.proxy.port}", "http://ledger/entries")
    assert out == "ledger GET /entries host=ledger body=0 proxy-headers=none"


async def test_curl_through_all_proxy_alone(net: Net) -> None:
    env = {k: v for k, v in net.env().items() if k.lower() not in ("http_proxy", "https_proxy")}
    assert await curl("http://ledger/x", env=env) == (
        "ledger GET /x host=ledger body=0 proxy-headers=none")


async def test_curl_tunnels_with_connect(net: Net) -> None:
    out = await curl("-p", "--proxy", net.url, "http://payments/tunnelled")
    assert out == "payments GET /tunnelled host=payments body=0 proxy-headers=none"


async def test_requests_with_proxies(net: Net) -> None:
    proxies = {"http": net.url, "https": net.url}

    def call() -> tuple[str, str]:
        with requests.Session() as session:
            a = session.post("http://payments/charge", data=b"12345", proxies=proxies, timeout=10)
            b = session.get("http://ledger/entries", proxies=proxies, timeout=10)
        return a.text, b.text

    assert await asyncio.to_thread(call) == (
        "payments POST /charge host=payments body=5 proxy-headers=none",
        "ledger GET /entries host=ledger body=0 proxy-headers=none")


async def test_urllib_with_a_proxy_handler(net: Net) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": net.url}))

    def call() -> str:
        with opener.open("http://payments/u", timeout=10) as response:
            return str(response.read().decode())

    assert await asyncio.to_thread(call) == "payments GET /u host=payments body=0 proxy-headers=none"


async def test_grpc_unary_call_through_grpc_proxy(net: Net) -> None:
    grpc = pytest.importorskip("grpc")
    from concurrent.futures import ThreadPoolExecutor

    server = grpc.server(ThreadPoolExecutor(2))
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: b"charged " + request)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "shop.Payments", {"Charge": handler})])
    grpc_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    net.table["payments-grpc"] = grpc_port
    client = ("import grpc; ch = grpc.insecure_channel('payments-grpc:50051'); "
              "print(ch.unary_unary('/shop.Payments/Charge')(b'7 EUR', timeout=10).decode())")
    env = {k: v for k, v in net.env().items() if not k.lower().startswith("http")}
    try:
        code, out, err = await run(sys.executable, "-c", client, env=env)
    finally:
        server.stop(None)
    assert (code, out.strip()) == (0, "charged 7 EUR"), err


GO_CLIENT = """package main

import ("fmt"; "io"; "net/http"; "os")

func main() {
	resp, err := http.Get(os.Args[1])
	if err != nil { fmt.Fprintln(os.Stderr, err); os.Exit(1) }
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(string(body))
}
"""


async def test_go_net_http_through_http_proxy(net: Net, tmp_path: Path) -> None:
    go = shutil.which("go") or pytest.skip("no Go toolchain")
    (tmp_path / "main.go").write_text(GO_CLIENT)
    code, _, err = await run(go, "build", "-o", str(tmp_path / "client"), str(tmp_path / "main.go"))
    assert code == 0, err
    code, out, err = await run(str(tmp_path / "client"), "http://payments/go", env=net.env())
    assert (code, out) == (0, "payments GET /go host=payments body=0 proxy-headers=none"), err


# ---- names that are not the cluster's, or no Service ----------------------------------------

async def test_a_missing_service_is_a_502_that_names_it(net: Net) -> None:
    _, out, _ = await run(CURL, "-sS", "-w", "%{http_code}", "http://ghost.shop/x",
                             env=net.env())
    assert out.splitlines()[-1] == "502"
    assert out.splitlines()[0].startswith("innerloop proxy: ghost.shop: no such host")
    assert len(out.splitlines()) == 2


async def test_connect_to_a_missing_service_is_a_502(net: Net) -> None:
    code, _, err = await run(CURL, "-sS", "-p", "--proxy", net.url, "http://ghost.shop/")
    assert code != 0 and "502" in err


async def test_a_name_that_is_not_the_clusters_connects_directly(net: Net) -> None:
    out = await curl("--noproxy", "", "--proxy", net.url, f"http://localhost:{net.direct.port}/d")
    assert out.startswith("direct GET /d ")
    assert net.dialled_direct == [("localhost", net.direct.port)]


async def test_the_proxy_env_leaves_localhost_alone(net: Net) -> None:
    out = await curl(f"http://localhost:{net.direct.port}/d", env=net.env())
    assert out.startswith("direct GET /d ")
    assert net.dialled_direct == []


async def test_origin_form_to_the_proxy_is_a_400(net: Net) -> None:
    _, out, _ = await run(CURL, "-sS", "-w", "%{http_code}", f"{net.url}/not-a-proxy-request")
    assert out.splitlines()[-1] == "400" and "absolute http:// URLs" in out


# ---- raw SOCKS5 ------------------------------------------------------------------------------

async def socks(port: int, address: bytes, dport: int) -> tuple[bytes, Streams]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"\x05\x01\x00" + b"\x05\x01\x00" + address + struct.pack("!H", dport))
    assert await reader.readexactly(2) == b"\x05\x00"
    head = await reader.readexactly(4)
    rest = await reader.readexactly({1: 4, 4: 16}.get(head[3], 0) + 2)
    return head + rest, (reader, writer)


async def get(streams: Streams, host: str, path: str) -> bytes:
    reader, writer = streams
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    raw = await asyncio.wait_for(reader.read(-1), 10)
    writer.close()
    return raw.split(b"\r\n\r\n", 1)[1]


@pytest.mark.parametrize(("address", "who"), [
    pytest.param(b"\x01" + bytes([10, 96, 0, 10]), "payments", id="IPv4 (a ClusterIP)"),
    pytest.param(b"\x03\x06ledger", "ledger", id="domain"),
])
async def test_raw_socks5_connect(net: Net, address: bytes, who: str) -> None:
    reply, streams = await socks(net.proxy.port, address, 80)
    assert reply[:4] == b"\x05\x00\x00\x01" and reply[4:8] == bytes([127, 0, 0, 1])
    assert (await get(streams, "x", "/s")).startswith(f"{who} GET /s ".encode())


async def test_socks5_to_a_missing_service_is_host_unreachable(net: Net) -> None:
    reply, (_, writer) = await socks(net.proxy.port, b"\x03\x0aghost.shop", 80)
    writer.close()
    assert reply[1] == 0x04


async def test_socks5_to_localhost_connects_directly(net: Net) -> None:
    reply, streams = await socks(net.proxy.port, b"\x03\x09localhost", net.direct.port)
    assert reply[1] == 0
    assert (await get(streams, "localhost", "/d")).startswith(b"direct GET /d ")
    assert net.dialled_direct == [("localhost", net.direct.port)]


async def test_socks5_refused_port_and_refused_method(net: Net) -> None:
    reply, (_, writer) = await socks(net.proxy.port, b"\x03\x09localhost", free_port())
    writer.close()
    assert reply[1] == 0x05
    reader, writer = await asyncio.open_connection("127.0.0.1", net.proxy.port)
    writer.write(b"\x05\x01\x02")  # username/password only
    assert await reader.read(-1) == b"\x05\xff"
    writer.close()


# ---- keep-alive and streaming -----------------------------------------------------------------

async def test_keep_alive_across_hosts_on_one_proxy_connection(net: Net) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", net.proxy.port)
    conn = h11.Connection(h11.CLIENT)
    answers = []
    for url in ("http://payments/1", "http://payments/2", "http://ledger/3", "http://payments/4"):
        writer.write(conn.send(h11.Request(method="GET", target=url, headers=[("Host", "x")]))
                     + (conn.send(h11.EndOfMessage()) or b""))
        body = b""
        while not isinstance(event := conn.next_event(), h11.EndOfMessage):
            if event is h11.NEED_DATA:
                conn.receive_data(await asyncio.wait_for(reader.read(CHUNK), 10))
            elif isinstance(event, h11.Data):
                body += event.data
        answers.append(body.decode().split(" host=")[0])
        conn.start_next_cycle()
    writer.close()
    assert answers == ["payments GET /1", "payments GET /2", "ledger GET /3", "payments GET /4"]
    assert (net.payments.connections, net.ledger.connections) == (2, 1)


@pytest.fixture
def big_file(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(BIG))
    yield path, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("how", ["HTTP_PROXY", "CONNECT", "socks5h"])
async def test_32_mib_streams_both_ways_in_bounded_memory(
        net: Net, big_file: tuple[Path, str], tmp_path: Path, how: str) -> None:
    source, digest = big_file
    out = tmp_path / "out.bin"
    via = {"HTTP_PROXY": [], "CONNECT": ["-p", "--proxy", net.url],
           "socks5h": ["--proxy", f"socks5h://127.0.0.1:{net.proxy.port}"]}[how]
    tracemalloc.start()
    try:
        await curl(*via, "--data-binary", f"@{source}", "-o", str(out), "http://payments/echo",
                   env=net.env())
        await curl(*via, "-o", str(tmp_path / "down.bin"), f"http://ledger/big/{BIG}",
                   env=net.env())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
    assert (tmp_path / "down.bin").stat().st_size == BIG
    assert peak < 4 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB: something buffers whole bodies"


# ---- failures ------------------------------------------------------------------------------

async def raw(port: int, head: bytes) -> bytes:
    """Send ``head`` to the proxy and nothing more, read until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    writer.write_eof()
    answer = await asyncio.wait_for(reader.read(-1), 10)
    writer.close()
    return answer


async def test_an_upstream_that_dies_before_answering_is_a_502(net: Net) -> None:
    answer = await raw(net.proxy.port, b"GET http://payments/die HTTP/1.1\r\nHost: p\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 502 ") and b"innerloop proxy: payments:80: " in answer


async def test_an_upstream_that_closes_is_not_reused(net: Net) -> None:
    head = b"GET http://payments/close HTTP/1.1\r\nHost: p\r\n\r\n"
    answer = await raw(net.proxy.port, head + head.replace(b"GET", b"HEAD") + b"GET ")
    assert answer.count(b"HTTP/1.1 200 ") == 2
    assert answer.count(b"payments GET /close") == 1  # HEAD: the same head, no body
    assert b"HTTP/1.1 400 " in answer  # the third request was cut off: h11 says so
    assert net.payments.connections == 2


@pytest.mark.parametrize(("head", "status", "text"), [
    (b"CONNECT payments HTTP/1.1\r\nHost: payments\r\n\r\n", 400, b"host:port"),
    (b"CONNECT payments:99999 HTTP/1.1\r\nHost: payments\r\n\r\n", 400, b"host:port"),
    (b"GET http://payments:99999/ HTTP/1.1\r\nHost: p\r\n\r\n", 400, b"bad port"),
    (b"GET https://payments/ HTTP/1.1\r\nHost: p\r\n\r\n", 400, b"absolute http://"),
    (b"NONSENSE\r\n\r\n", 400, b"bad request"),
])
async def test_requests_a_proxy_cannot_serve(net: Net, head: bytes, status: int,
                                            text: bytes) -> None:
    answer = await raw(net.proxy.port, head)
    assert answer.startswith(b"HTTP/1.1 %d " % status) and text in answer, answer


@pytest.fixture
async def broken() -> AsyncIterator[ProxyServer]:
    """A proxy whose resolver and direct connections fail in every way they can."""
    async def resolve(host: str, port: int | None) -> ResolveResult:
        if host == "boom":
            raise RuntimeError("the forwarder table is gone")
        return NotCluster()

    async def connect_direct(host: str, port: int) -> Streams:
        if host == "slow":
            await asyncio.Event().wait()
        if host == "unknown":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        raise OSError(113, "No route to host")

    async with ProxyServer(resolve, connect_direct=connect_direct, connect_timeout=0.2) as proxy:
        yield proxy


@pytest.mark.parametrize(("host", "status", "socks_reply", "text"), [
    ("boom", 502, 0x01, b"resolving failed (the forwarder table is gone)"),
    ("slow", 504, 0x04, b"no connection in 0.2 s"),
    ("unknown", 502, 0x04, b"cannot resolve (Name or service not known)"),
    ("elsewhere", 502, 0x01, b"No route to host"),
])
async def test_dial_failures(broken: ProxyServer, host: str, status: int, socks_reply: int,
                            text: bytes) -> None:
    answer = await raw(broken.port, b"GET http://%s/ HTTP/1.1\r\nHost: x\r\n\r\n" % host.encode())
    assert answer.startswith(b"HTTP/1.1 %d " % status) and text in answer, answer
    reply, (_, writer) = await socks(broken.port, b"\x03" + bytes([len(host)]) + host.encode(), 80)
    writer.close()
    assert reply[1] == socks_reply


async def test_closing_the_proxy_ends_live_tunnels(net: Net) -> None:
    _, (reader, writer) = await socks(net.proxy.port, b"\x03\x08payments", 80)
    await net.proxy.close()
    assert await asyncio.wait_for(reader.read(-1), 5) == b""
    writer.close()
    with pytest.raises(RuntimeError):
        _ = net.proxy.port
    await net.proxy.close()  # twice is fine


def test_proxy_env() -> None:
    env = proxy_env(4711)
    assert env["HTTP_PROXY"] == env["https_proxy"] == env["grpc_proxy"] == "http://127.0.0.1:4711"
    assert env["ALL_PROXY"] == env["all_proxy"] == "http://127.0.0.1:4711"  # not SOCKS: httpx
    assert env["NO_PROXY"] == env["no_proxy"] == "localhost,127.0.0.1,::1"
    assert sorted(env) == sorted(["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
                                  "http_proxy", "https_proxy", "all_proxy", "no_proxy",
                                  "grpc_proxy"])
