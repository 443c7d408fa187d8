"""Personal intercepts and mirror mode on the testbed (issue 9, docs/routing.md).

Three developers intercept one Service at once, each from their own laptop process with their
own local app (tools/sample/devapp.py answers ``pod=<its id>``): developer 1 by
``x-dev=one`` under /api, developer 2 by ``x-dev=two`` under /api, developer 3 by the path
prefix /three. (A header-only filter and a path-only filter may match one request, so the
agent refuses the pair: the header developers scope themselves to /api.) A fourth mirrors
``x-copy=yes``. Client pods send every kind mixed on shared keep-alive connections
(tools/sample/mixload.py). The laptops run in the developer netns, which reaches only the API
server: a developer's id in an answer can only have come through that developer's tunnel.

One deployment serves the whole file (a module fixture); the tests run in file order and the
last one has the developers leave.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.e2e.test_dap import DapLaptop, console_line, launch, stop_at_breakpoint
from tests.e2e.test_dap import laptop as dap_laptop  # noqa: F401  (a fixture)
from tools.cluster import Cluster
from tools.laptop import Laptop, Lines
from tools.sample import ECHO_APP, LOAD_CLIENT, manifests

pytestmark = pytest.mark.e2e

DEVAPP = LOAD_CLIENT.parent / "devapp.py"
MIXLOAD = LOAD_CLIENT.parent / "mixload.py"
MIXED_REQUESTS = 5000

KINDS: list[dict[str, Any]] = [
    {"name": "one", "path": "/api/orders/1", "headers": {"x-dev": "one"}},
    {"name": "two", "path": "/api/orders/2", "headers": {"x-dev": "two"}},
    {"name": "three", "path": "/three/items"},
    {"name": "plain", "path": "/api/orders/3"},
    # developer 1's header outside /api: developer 3's path, so developer 3's
    {"name": "one-on-three", "path": "/three/other", "headers": {"x-dev": "one"}},
]
COPY = {"name": "copy", "path": "/api/copied", "headers": {"x-copy": "yes"}}
PLAIN = {"name": "plain", "path": "/api/plain"}


@dataclass
class Developer:
    laptop: Laptop
    app: subprocess.Popen[str]
    app_lines: Lines
    proc: subprocess.Popen[str]
    lines: Lines
    filter_text: str


@dataclass
class Shop:
    cluster: Cluster
    namespace: str
    ip: str
    devs: dict[str, Developer] = field(default_factory=dict)
    cold_start: float = 0.0

    def exec_client(self, script: str, *args: str, timeout: float = 180) -> dict[str, Any]:
        proc = self.cluster.kubectl("-n", self.namespace, "exec", "client", "--", "python3",
                                    f"/client/{script}", *args, timeout=timeout)
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return result

    def mix(self, kinds: list[dict[str, Any]], count: int, connections: int = 8,
            rate: float | None = None, timeout: float = 10) -> dict[str, Any]:
        args = ["mix", self.ip, "--kinds", json.dumps(kinds), "--count", str(count),
                "--connections", str(connections), "--timeout", str(timeout)]
        return self.exec_client("mixload.py", *args, *(["--rate", str(rate)] if rate else []),
                                timeout=180 + timeout)

    def listed(self) -> list[str]:
        """`innerloop list`'s claim rows for the echo Service."""
        result = next(iter(self.devs.values())).laptop.run("list", "-n", self.namespace)
        assert result.returncode == 0, result.stdout
        return [ln for ln in result.stdout.splitlines() if ln.startswith("echo:80/http ")]


def where(sources: dict[str, int]) -> dict[str, int]:
    """Answer counts by place: a developer's id, or "cluster" for the echo pods."""
    out: dict[str, int] = {}
    for pod, n in sources.items():
        key = "cluster" if pod.startswith("echo-") else pod
        out[key] = out.get(key, 0) + n
    return out


def start_developer(cluster: Cluster, namespace: str, dev_id: str, port: int,
                    *intercept_args: str, seen_log: bool = False) -> Developer:
    laptop = Laptop(cluster)  # a developer of their own: own process, client id and registry
    try:
        env = {"PORT": str(port), "HOST": "127.0.0.1", "DEV_ID": dev_id}
        app, app_lines = laptop.popen([sys.executable, str(DEVAPP)],
                                      **env, **({"SEEN_LOG": "1"} if seen_log else {}))
        app_lines.wait_for("listening", 15)
        proc, lines = laptop.innerloop("intercept", "echo", "-n", namespace, "--port",
                                       f"{port}:80", *intercept_args)
        lines.wait_for("mirroring" if "--mirror" in intercept_args else "intercepting", 180)
    except BaseException:
        laptop.close()
        raise
    return Developer(laptop, app, app_lines, proc, lines, " ".join(intercept_args))


@pytest.fixture(scope="module")
def shop(cluster: Cluster) -> Iterator[Shop]:
    namespace = f"e2e-personal-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", namespace)
    cluster.kubectl("wait", "serviceaccount/default", "-n", namespace, "--for=create",
                    "--timeout=30s")
    shop = Shop(cluster, namespace, "")
    try:
        cluster.deploy_echo(namespace)
        cluster.apply(namespace, [
            manifests.configmap("load-code", {"load.py": LOAD_CLIENT.read_text(),
                                              "mixload.py": MIXLOAD.read_text()}),
            manifests.client_pod("client")])
        cluster.kubectl("-n", namespace, "wait", "pod/client", "--for=condition=Ready",
                        "--timeout=90s", timeout=100)
        shop.ip = cluster.cluster_ip(namespace, "echo")
        t0 = time.monotonic()
        shop.devs["one"] = start_developer(cluster, namespace, "dev1", 28181,
                                           "--header", "x-dev=one", "--path-prefix", "/api")
        shop.cold_start = time.monotonic() - t0
        shop.devs["two"] = start_developer(cluster, namespace, "dev2", 28182,
                                           "--header", "x-dev=two", "--path-prefix", "/api")
        shop.devs["three"] = start_developer(cluster, namespace, "dev3", 28183,
                                             "--path-prefix", "/three")
        yield shop
    finally:
        for dev in shop.devs.values():
            dev.laptop.close()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_three_developers_and_the_cluster_share_keep_alive_connections(shop: Shop) -> None:
    result = shop.mix(KINDS, MIXED_REQUESTS, connections=8)
    print(f"\n{MIXED_REQUESTS} mixed requests over 8 keep-alive connections in "
          f"{result['seconds']} s (p50 {result['ms']['p50']} ms, p99 {result['ms']['p99']} ms); "
          f"cold start of the first intercept {shop.cold_start:.1f} s")
    assert result["errors"] == 0, result["first_errors"]
    placed = {kind: where(sources) for kind, sources in result["sources"].items()}
    share = MIXED_REQUESTS // len(KINDS)
    assert placed == {"one": {"dev1": share}, "two": {"dev2": share}, "three": {"dev3": share},
                      "plain": {"cluster": share}, "one-on-three": {"dev3": share}}, placed


def test_list_shows_every_claim_with_its_owner_and_filter(shop: Shop) -> None:
    rows = shop.listed()
    assert len(rows) == 3, rows
    for row, (key, described) in zip(rows, [("one", "x-dev=one path-prefix=/api"),
                                            ("two", "x-dev=two path-prefix=/api"),
                                            ("three", "path-prefix=/three")], strict=True):
        owner = row.split()[1]
        assert owner.endswith(f":{shop.devs[key].proc.pid}"), (key, row)
        assert row.split()[2] == "route", row
        assert row.rstrip().endswith(described), row


def test_a_conflicting_filter_is_refused_naming_the_holder(shop: Shop) -> None:
    before = shop.listed()
    other = Laptop(shop.cluster)
    try:
        result = other.run("intercept", "echo", "-n", shop.namespace, "--port", "28189:80",
                           "--header", "x-dev=one")
    finally:
        other.close()
    assert result.returncode == 1, result.stdout
    last = [ln for ln in result.stdout.splitlines() if ln.strip()][-1]
    assert "Traceback" not in result.stdout
    assert last.startswith(f"innerloop: echo.{shop.namespace}:80/http is already intercepted by "), last
    assert f":{shop.devs['one'].proc.pid} for x-dev=one path-prefix=/api" in last, last
    assert len([ln for ln in result.stdout.splitlines() if "already intercepted" in ln]) == 1
    assert shop.listed() == before, "nothing half-applied"
    again = shop.mix(KINDS, 100, connections=2)
    assert again["errors"] == 0 and where(again["sources"]["one"]) == {"dev1": 20}, again


def test_a_websocket_upgrade_echoes_through_the_filtered_local_process(shop: Shop) -> None:
    result = shop.exec_client("mixload.py", "ws", shop.ip, "--path", "/api/ws",
                              "--header", "x-dev:two", "--messages", "3")
    assert result["status"].startswith("HTTP/1.1 101"), result
    assert result["accept_ok"], result
    assert result["echoes"] == ["dev2:hello 0", "dev2:hello 1", "dev2:hello 2"], result
    assert result["close_frame"] == "88", result


def test_a_50_mib_chunked_upload_arrives_intact(shop: Shop) -> None:
    result = shop.exec_client("mixload.py", "upload", shop.ip, "--path", "/api/upload",
                              "--header", "x-dev:one", "--mib", "50", "--timeout", "60")
    print(f"\n50 MiB chunked upload through developer 1's intercept in {result['seconds']} s")
    assert result["status"] == 200, result
    answer = dict(w.split("=", 1) for w in result["body"].split())
    assert answer == {"pod": "dev1", "received": str(50 << 20), "sha256": result["sha256"]}


EXPECT_CLIENT = """
import json, socket, sys
sock = socket.create_connection((sys.argv[1], 80), timeout=20)
buffer, out = b"", []

def read_head():
    global buffer
    while b"\\r\\n\\r\\n" not in buffer:
        buffer += sock.recv(65536)
    head, buffer = buffer.split(b"\\r\\n\\r\\n", 1)
    return head.decode("latin-1").split("\\r\\n")

for dev, path in (("one", "/api/expect"), (None, "/api/expect"), ("one", "/api/again")):
    extra = f"x-dev: {dev}\\r\\n" if dev else ""
    sock.sendall(f"POST {path} HTTP/1.1\\r\\nhost: echo\\r\\ncontent-length: 5\\r\\n"
                 f"expect: 100-continue\\r\\n{extra}\\r\\n".encode())
    interim = read_head()[0]
    sock.sendall(b"hello")
    head = read_head()
    size = int(next(h.split(":")[1] for h in head if h.lower().startswith("content-length")))
    while len(buffer) < size:
        buffer += sock.recv(65536)
    body, buffer = buffer[:size].decode(), buffer[size:]
    out.append({"interim": interim, "status": head[0], "body": body})
print(json.dumps(out))
"""


def test_expect_100_continue_passes_through_on_one_keep_alive_connection(shop: Shop) -> None:
    """``Expect: 100-continue`` from a client pod: each interim answer comes from the side
    that gets the body (developer 1's process, the cluster's app, developer 1 again)."""
    proc = shop.cluster.kubectl("-n", shop.namespace, "exec", "client", "--", "python3", "-c",
                                EXPECT_CLIENT, shop.ip, timeout=60)
    answers = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [a["interim"] for a in answers] == ["HTTP/1.1 100 Continue"] * 3, answers
    assert all(a["status"].startswith("HTTP/1.1 200") for a in answers), answers
    pods = [a["body"].split()[0] for a in answers]
    assert pods[0] == pods[2] == "pod=dev1" and pods[1].startswith("pod=echo-"), answers
    assert all("received=5" in a["body"] for a in answers), answers


def mirror_counts(shop: Shop) -> tuple[int, int]:
    [row] = [r for r in shop.listed() if " mirror " in r]
    found = re.search(r"\(copied (\d+), dropped (\d+)\)", row)
    return (int(found.group(1)), int(found.group(2))) if found else (0, 0)


def test_mirror_copies_and_never_stalls_the_cluster_path(shop: Shop) -> None:
    mirror = shop.devs["mirror"] = start_developer(
        shop.cluster, shop.namespace, "mirror", 28184, "--mirror", "--header", "x-copy=yes",
        seen_log=True)
    count, rate, blocks = 600, 100.0, 6
    ratios, base_p50, mirrored_p50 = [], [], []
    for _ in range(blocks):  # A/B blocks: the node's load drifts between them, less within
        baseline = shop.mix([PLAIN], count // blocks, connections=4, rate=rate)
        assert baseline["errors"] == 0, baseline["first_errors"]
        mirrored = shop.mix([COPY], count // blocks, connections=4, rate=rate)
        assert mirrored["errors"] == 0, mirrored["first_errors"]
        assert where(mirrored["sources"]["copy"]) == {"cluster": count // blocks}, \
            "the cluster answers all"
        base_p50.append(baseline["ms"]["p50"])
        mirrored_p50.append(mirrored["ms"]["p50"])
        ratios.append(mirrored["ms"]["p50"] / max(baseline["ms"]["p50"], 0.01))
    deadline = time.monotonic() + 10
    while sum("seen GET /api/copied" in ln for ln in mirror.app_lines.text().splitlines()) \
            < count and time.monotonic() < deadline:
        time.sleep(0.2)
    seen = sum("seen GET /api/copied" in ln for ln in mirror.app_lines.text().splitlines())
    copied, dropped = mirror_counts(shop)
    # every matching request is either copied whole or dropped, once, across the replicas
    assert copied + dropped == count, (seen, copied, dropped)
    assert seen >= 0.9 * count and copied >= seen, (seen, copied, dropped)

    os.kill(mirror.app.pid, signal.SIGSTOP)  # the mirror process stops (a breakpoint)
    try:
        stopped = shop.mix([COPY], count, connections=4, rate=rate)
        copied_stopped, dropped_stopped = mirror_counts(shop)
    finally:
        os.kill(mirror.app.pid, signal.SIGCONT)
    print(f"\nmirror, {count} requests at {rate:.0f}/s over 4 keep-alive connections, "
          f"{blocks} blocks each way: p50 ratio mirrored ÷ no mirror, median of blocks "
          f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}); "
          f"block p50s no mirror {base_p50} ms, mirrored {mirrored_p50} ms; "
          f"mirror process stopped p50 {stopped['ms']['p50']} p99 {stopped['ms']['p99']} "
          f"max {stopped['ms']['max']} ms; copies seen {seen}; counters copied {copied} "
          f"dropped {dropped} → stopped: copied {copied_stopped} dropped {dropped_stopped}")
    assert stopped["errors"] == 0, stopped["first_errors"]
    assert where(stopped["sources"]["copy"]) == {"cluster": count}
    assert stopped["ms"]["max"] < 1000, "the cluster path never waits on a stopped mirror"
    assert stopped["ms"]["p50"] <= 2 * statistics.median(base_p50) + 5, (stopped["ms"], base_p50)
    assert copied_stopped + dropped_stopped == 2 * count, (copied_stopped, dropped_stopped)
    # at most 16 copies wait unanswered per caller connection; the rest are dropped
    assert dropped_stopped - dropped >= count - 4 * 16, (dropped, dropped_stopped)


FOUR = {"name": "four", "path": "/api/orders/4", "headers": {"x-dev": "four"}}
PAUSED = {"name": "paused", "path": "/api/paused", "headers": {"x-dev": "four"}}


OTHERS = {"one": {"dev1": 100}, "two": {"dev2": 100}, "three": {"dev3": 100},
          "plain": {"cluster": 100}, "one-on-three": {"dev3": 100}}


@pytest.mark.parametrize("while_paused", ["cluster", "hold"])
async def test_a_breakpoint_holds_back_only_its_own_developers_requests(
        shop: Shop, dap_laptop: DapLaptop, while_paused: str) -> None:  # noqa: F811 (fixture)
    """Developer 4 debugs (DAP, `match` x-dev=four under /api): stopped at a breakpoint, their
    requests go to the cluster (whilePaused cluster) or wait (hold) while developers 1-3's
    still reach their processes; after continue, the waiting ones reach developer 4's."""
    laptop = dap_laptop
    await launch(laptop, shop.namespace, while_paused, 28185 if while_paused == "cluster"
                 else 28186, match={"headers": {"x-dev": "four"}, "pathPrefix": "/api"})
    client = laptop.client
    paused = asyncio.ensure_future(asyncio.to_thread(shop.mix, [PAUSED], 1, 1, timeout=120))
    thread = await stop_at_breakpoint(laptop, "/api/paused")
    await console_line(client, "paused: new requests are served by the cluster"
                       if while_paused == "cluster" else "paused: new requests are held")
    held = None
    if while_paused == "hold":
        held = asyncio.ensure_future(asyncio.to_thread(shop.mix, [FOUR], 3, 1, timeout=120))
        meanwhile = await asyncio.to_thread(shop.mix, KINDS, 500, 4)
        expected = OTHERS
    else:
        meanwhile = await asyncio.to_thread(shop.mix, [*KINDS, FOUR], 600, 4)
        expected = {**OTHERS, "four": {"cluster": 100}}
    assert meanwhile["errors"] == 0, meanwhile["first_errors"]
    placed = {kind: where(sources) for kind, sources in meanwhile["sources"].items()}
    assert placed == expected, placed
    assert not paused.done(), "the paused request waits as long as its developer does"
    assert held is None or not held.done(), "developer 4's requests wait while they are paused"

    await client.ok("setBreakpoints", {"source": {"path": str(ECHO_APP)}, "breakpoints": []})
    await client.ok("continue", {"threadId": thread})
    answered = await asyncio.wait_for(paused, 60)
    assert answered["errors"] == 0 and where(answered["sources"]["paused"]) == {"local": 1}
    if held is not None:
        released = await asyncio.wait_for(held, 60)
        assert released["errors"] == 0 and where(released["sources"]["four"]) == {"local": 3}
    await console_line(client, "resumed: new requests reach this process again")
    after = await asyncio.to_thread(shop.mix, [*KINDS, FOUR], 120, 2)
    assert after["errors"] == 0 and where(after["sources"]["four"]) == {"local": 20}, after
    print(f"\nwhile developer 4 was paused ({while_paused}): {100 * len(expected)} mixed "
          f"requests, p50 {meanwhile['ms']['p50']} ms p99 {meanwhile['ms']['p99']} ms")
    await client.ok("disconnect", {"terminateDebuggee": True}, timeout=60)
    await console_line(client, "left intercept")


def test_each_developer_leaving_leaves_the_others_routing(shop: Shop) -> None:
    expected = {"one": "dev1", "two": "dev2", "three": "dev3", "plain": "cluster",
                "one-on-three": "dev3"}
    for key in ("one", "two"):
        dev = shop.devs.pop(key)
        assert dev.laptop.stop(dev.proc) == 0, dev.lines.text()
        dev.laptop.close()
        expected[key] = "cluster"
        result = shop.mix(KINDS, 500, connections=4)
        assert result["errors"] == 0, result["first_errors"]
        placed = {kind: set(where(sources)) for kind, sources in result["sources"].items()}
        assert placed == {kind: {place} for kind, place in expected.items()}, (key, placed)
        rows = shop.listed()
        owners = {row.split()[1].rsplit(":", 1)[1] for row in rows}
        assert owners == {str(d.proc.pid) for d in shop.devs.values()}, rows
