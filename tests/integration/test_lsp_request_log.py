"""The Innerloop view's wire: `innerloop/requestLog` pushed as requests are routed here,
`innerloop/handlerLocation` from a logged request to its handler, `innerloop/tree` nodes.

Run as a script, this module is the server under test: the real `create_server` with an
in-memory intercept service (test_lsp_features.py) and a `MemoryFlows` whose request log is fed
by the real stream reader (intercepts.http_tap) through a test-only command.
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from innerloop.core.request_log import FlowRecord, RequestLog
from innerloop.intercepts.http_tap import HttpTap
from innerloop.lsp.flows import InterceptNode, NamespaceList, ServiceNode
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

FEED = "test.feed"
PUSHES: list[list[dict[str, Any]]] = []
"""The `innerloop/requestLog` notifications of the running test, in order."""
CALLER = "198.18.1.7"


class MemoryFlows:
    """A request log and a fixed cluster; the caller's pod is known after one look-up."""

    def __init__(self) -> None:
        self.log = RequestLog()
        self.pods: dict[str, str] = {}

    def intercepts(self) -> list[InterceptNode]:
        return [{"id": "shop/orders", "namespace": "shop", "service": "orders",
                 "servicePort": 80, "localPort": 8080, "state": "active",
                 "holder": "alice@laptop:1", "since": 1000.0, "scope": "",
                 "tunnels": [{"pod": "orders-1", "connected": True, "rttMs": 0.4},
                             {"pod": "orders-2", "connected": False, "rttMs": None}]}]

    async def namespaces(self) -> NamespaceList:
        return {"namespaces": ["default", "shop"], "current": "shop"}

    async def services(self, namespace: str) -> list[ServiceNode]:
        return [{"name": "orders", "ports": ["80→8080/http"], "hasAgent": True,
                 "workload": "deployment/orders", "ready": 2, "wanted": 2}]

    def record_json(self, record: FlowRecord) -> dict[str, Any]:
        return {**record.as_json(), "peerPod": self.pods.get(record.peer.split(":")[0])}

    async def name_callers(self, records: list[FlowRecord]) -> bool:
        if CALLER in self.pods:
            return False
        self.pods[CALLER] = "client"
        return True


pytestmark = pytest.mark.integration


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, str(Path(__file__))]))
async def client(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    PUSHES.clear()

    @lsp_client.feature("innerloop/requestLog")
    def pushed(params: Any) -> None:
        PUSHES.append(list(plain(params)["records"]))

    await lsp_client.initialize_session(
        types.InitializeParams(capabilities=client_capabilities("visual-studio-code")))
    yield
    await lsp_client.shutdown_session()


async def request(client: LanguageClient, method: str, params: dict[str, Any]) -> Any:
    return await asyncio.wait_for(client.protocol.send_request_async(method, params), 10)


def plain(value: Any) -> Any:
    """pygls hands a custom request's result back as attribute objects."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


async def feed(client: LanguageClient, *chunks: tuple[str, bytes]) -> None:
    await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command=FEED, arguments=[[side, data.decode("latin-1")] for side, data in chunks]))


async def pushes(count: int) -> list[list[dict[str, Any]]]:
    """The first `count` pushes, once they came."""
    for _ in range(500):
        if len(PUSHES) >= count:
            return PUSHES[:count]
        await asyncio.sleep(0.02)
    raise AssertionError(f"{len(PUSHES)} innerloop/requestLog pushes, not {count}: {PUSHES}")


async def test_a_routed_request_is_pushed_then_named(client: LanguageClient) -> None:
    await feed(client,
               ("in", b"GET /orders/7?x=1 HTTP/1.1\r\nHost: orders\r\n\r\n"),
               ("out", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
               ("end", b""))
    [record], [named] = await pushes(2)
    assert {k: record[k] for k in ("method", "path", "status", "responseBytes", "outcome",
                                   "held", "replica", "peerPod", "kind")} == {
        "method": "GET", "path": "/orders/7?x=1", "status": 200, "responseBytes": 2,
        "outcome": "done", "held": False, "replica": "orders-1", "peerPod": None, "kind": "http"}
    # The caller's pod name comes in a second push of the same record.
    assert (named["id"], named["peerPod"]) == (record["id"], "client")

    everything = plain(await request(client, "innerloop/requestLog", {}))
    assert [r["path"] for r in everything["records"]] == ["/orders/7?x=1"]
    cleared = plain(await request(client, "innerloop/requestLog", {"clear": True}))
    assert cleared["records"] == []


async def test_a_burst_of_requests_is_one_push(client: LanguageClient) -> None:
    raw = b"".join(b"GET /r/%d HTTP/1.1\r\nHost: o\r\n\r\n" % i for i in range(20))
    answers = b"HTTP/1.1 204 No Content\r\n\r\n" * 20
    await feed(client, ("in", raw), ("out", answers))
    [records, _named] = await pushes(2)
    assert [r["path"] for r in records] == [f"/r/{i}" for i in range(20)]
    assert {r["status"] for r in records} == {204}


async def test_a_logged_request_leads_to_its_handler(client: LanguageClient,
                                                     tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent('''\
        from flask import Flask
        app = Flask(__name__)

        @app.get("/orders/<int:order_id>")
        def order(order_id):
            """One order."""
            return str(order_id)

        @app.route("/")
        def index():
            return "hi"
    '''))
    client.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(
        types.WorkspaceFoldersChangeEvent(
            added=[types.WorkspaceFolder(tmp_path.as_uri(), "app")], removed=[])))
    found = plain(await request(client, "innerloop/handlerLocation",
                                {"method": "GET", "path": "/orders/7?x=1"}))
    assert found == {"file": str(tmp_path / "app.py"), "line": 4, "bodyLine": 7,
                     "handler": "order", "route": "/orders/<int:order_id>"}
    assert await request(client, "innerloop/handlerLocation",
                         {"method": "POST", "path": "/orders/7"}) is None


async def test_tree_nodes(client: LanguageClient) -> None:
    intercepts = plain(await request(client, "innerloop/tree", {"node": "intercepts"}))
    [node] = intercepts["intercepts"]
    assert (node["holder"], [t["connected"] for t in node["tunnels"]]) == (
        "alice@laptop:1", [True, False])
    services = plain(await request(client, "innerloop/tree",
                                   {"node": "services", "namespace": "shop"}))
    assert services["services"][0]["ready"] == 2
    namespaces = plain(await request(client, "innerloop/tree", {"node": "namespaces"}))
    assert namespaces == {"namespaces": ["default", "shop"], "current": "shop"}
    with pytest.raises(JsonRpcException, match="unknown node 'pods'"):
        await request(client, "innerloop/tree", {"node": "pods"})


if __name__ == "__main__":
    from innerloop.lsp.dap_host import HostedDebugAdapter
    from innerloop.lsp.deps import Deps
    from innerloop.lsp.setup import create_server
    from test_lsp_features import MemoryController, MemoryIntercepts  # type: ignore[import-not-found]

    memory, flows = MemoryIntercepts(), MemoryFlows()
    server = create_server(Deps(intercepts=memory, flows=flows,
                                debug_adapter=HostedDebugAdapter(lambda: MemoryController(memory))))

    @server.command(FEED)
    async def feed_log(*args: Any) -> None:
        """Chunks `[side, latin-1 text]` of one stream: "in" (caller), "out" (program), "end"."""
        chunks = args[0] if len(args) == 1 and isinstance(args[0], list) else list(args)
        tap = HttpTap(flows.log, "shop/orders", "orders-1", f"{CALLER}:40000", time.time)
        for side, text in chunks:
            data = text.encode("latin-1")
            if side == "in":
                tap.from_tunnel(data)
            elif side == "out":
                tap.to_tunnel(data)
            else:
                tap.ended(reset=False)

    server.start_io()
