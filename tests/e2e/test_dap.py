"""`innerloop dap` on the testbed: a breakpoint fires on a request a pod sent (issue 4, DAP e2e).

The debug adapter (and so the debuggee it launches) runs in the developer netns, which reaches
only the API server: a request that stops at the breakpoint can only have come through the
tunnel. A test DAP client drives it over stdio, as nvim-dap or Emacs would.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.dap_client import DapClient, Message, echo_launch, end_adapter, marked_line
from tests.helpers.snapshot import WORKLOAD, namespace_snapshot, rollout_with_agent
from tools.cluster import Cluster, LoadResult, parse_answer
from tools.laptop import REPO, Laptop
from tools.sample import ECHO_APP
from tools.sample.manifests import CONFIG_VALUE, PYTHON_IMAGE, SECRET_VALUE
from tools.testbed.netns import dev_netns_argv, ensure
from tools.wait import wait_until

pytestmark = pytest.mark.e2e

LOCAL_PORT = 18081
BREAK_LINE = marked_line(ECHO_APP, "# breakpoint")
START_TIMEOUT = 180.0
"""A cold launch injects the agent: one rollout of the workload."""


class DapLaptop:
    """`innerloop dap` over stdio in the developer netns, and what it launched."""

    def __init__(self, client: DapClient, log: Path) -> None:
        self.client = client
        self.log = log
        self.debuggee: int | None = None

    def adapter_log(self) -> str:
        """The adapter's log without the wire chatter of websockets and urllib3."""
        lines = self.log.read_text(errors="replace").splitlines()
        ours = [line for line in lines if " websockets." not in line and " urllib3." not in line]
        return "\n".join(ours[-60:])


@pytest.fixture
async def laptop(cluster: Cluster, tmp_path: Path) -> AsyncIterator[DapLaptop]:
    ensure()
    log = tmp_path / "innerloop-dap.log"
    with log.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            *dev_netns_argv([sys.executable, "-m", "innerloop", "-v", "dap"]),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            cwd=REPO,
            env={
                **os.environ,
                "KUBECONFIG": str(cluster.kubeconfig),
                "INNERLOOP_AGENT_IMAGE": PYTHON_IMAGE,
                "PYTHONUNBUFFERED": "1",
            },
            start_new_session=True,
        )
    assert proc.stdin is not None and proc.stdout is not None
    client = DapClient(proc.stdout, proc.stdin)
    client.process = proc
    lap = DapLaptop(client, log)
    try:
        yield lap
    finally:
        await end_adapter(proc)
        if lap.debuggee is not None and alive(lap.debuggee):
            os.kill(lap.debuggee, signal.SIGKILL)
        await client.aclose()


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def debuggee_gone(lap: DapLaptop, timeout: float = 15) -> None:
    pid = lap.debuggee
    assert pid is not None
    await wait_until(lambda: not alive(pid), f"the debuggee (pid {pid}) to exit", timeout)


def launch_config(namespace: str, while_paused: str, port: int = LOCAL_PORT,
                  **extra: Any) -> Message:
    return {**extra, **echo_launch(namespace, port), "whilePaused": while_paused,
            "justMyCode": True}


async def launch(lap: DapLaptop, namespace: str, while_paused: str,
                 port: int = LOCAL_PORT, **extra: Any) -> float:
    """initialize → launch → breakpoints → configurationDone; returns when the debuggee listens.

    Returns how long the launch took (intercept, rollout, debugpy start)."""
    client = lap.client
    await client.initialize()
    t0 = time.monotonic()
    launched = client.request_nowait("launch", launch_config(namespace, while_paused, port,
                                                             **extra))
    initialized = asyncio.ensure_future(client.event("initialized", timeout=START_TIMEOUT))
    done, _ = await asyncio.wait(
        {launched, initialized}, return_when=asyncio.FIRST_COMPLETED, timeout=START_TIMEOUT
    )
    if launched in done:
        initialized.cancel()
        raise AssertionError(f"launch ended early: {launched.result()}\n{lap.adapter_log()}")
    assert initialized in done, f"no initialized event\n{lap.adapter_log()}"
    body = await client.ok(
        "setBreakpoints",
        {"source": {"path": str(ECHO_APP)}, "breakpoints": [{"line": BREAK_LINE}]},
    )
    assert [b["verified"] for b in body["breakpoints"]] == [True], body
    await client.ok("configurationDone")
    reply = await asyncio.wait_for(launched, 30)
    assert reply["success"], reply
    process = await client.event("process", timeout=30)
    lap.debuggee = int(process["body"]["systemProcessId"])
    await client.wait_for(lambda: stdout_has(client, "echo listening on"), timeout=30)
    return time.monotonic() - t0


def stdout_has(client: DapClient, needle: str) -> bool:
    return any(
        e["event"] == "output"
        and e["body"].get("category") == "stdout"
        and needle in e["body"]["output"]
        for e in client.events
    )


async def console_line(client: DapClient, prefix: str, timeout: float = 15) -> str:
    def match() -> str | None:
        return next((line for line in client.console() if line.startswith(prefix)), None)

    line: str = await client.wait_for(match, timeout=timeout)
    return line


def one_get(cluster: Cluster, namespace: str, url: str, timeout: float) -> asyncio.Future[Any]:
    """One GET from the client pod, in a thread (`kubectl exec` blocks)."""
    return asyncio.ensure_future(
        asyncio.to_thread(cluster.load_via_exec, namespace, url, count=1, timeout=timeout)
    )


def answer(result: LoadResult) -> tuple[dict[str, str], float]:
    [record] = result.records
    assert record.get("status") == 200, record
    return parse_answer(record["body"]), float(record["ms"])


async def stop_at_breakpoint(lap: DapLaptop, path: str, after: int = 0) -> int:
    """The debuggee stopped at the `# breakpoint` line handling `path`; returns the thread."""
    client = lap.client
    stopped = await client.event("stopped", timeout=30, after=after, reason="breakpoint")
    thread = int(stopped["body"]["threadId"])
    frame = await client.top_frame_locals(thread)
    assert frame["__line__"] == str(BREAK_LINE), frame
    assert frame["path"] == repr(path), frame
    return thread


async def test_breakpoint_on_a_pod_request_while_the_cluster_serves_the_rest(
    cluster: Cluster, namespace: str, laptop: DapLaptop
) -> None:
    await asyncio.to_thread(cluster.deploy_echo, namespace)
    await asyncio.to_thread(cluster.start_client, namespace)
    ip = await asyncio.to_thread(cluster.cluster_ip, namespace, "echo")
    client = laptop.client

    launched = await launch(laptop, namespace, "cluster")
    pods = set(await asyncio.to_thread(cluster.pods, namespace, "echo"))  # rolled with the agent
    t_request = time.monotonic()
    paused_request = one_get(cluster, namespace, f"http://{ip}/paused", timeout=120)
    thread = await stop_at_breakpoint(laptop, "/paused")
    to_breakpoint = time.monotonic() - t_request
    assert not paused_request.done()

    # While paused, new requests are served by the cluster app, at once; for longer than the
    # tunnel's peer timeout, which must not end the paused request either.
    await console_line(client, "paused: new requests are served by the cluster")
    meanwhile = await asyncio.to_thread(
        cluster.load_via_exec, namespace, f"http://{ip}/while-paused", count=6, rate=2, timeout=5
    )
    assert meanwhile.failures == [], meanwhile.failures
    assert meanwhile.pods <= pods, meanwhile.records
    ms = max(float(r["ms"]) for r in meanwhile.records)
    assert ms < 1000, f"the cluster answered after {ms} ms"
    assert not paused_request.done(), "the paused request must wait as long as the user does"

    # continue: the paused request is answered by the local process, with the workload's env.
    await client.ok("continue", {"threadId": thread})
    local, _ = answer(await asyncio.wait_for(paused_request, 30))
    assert local == {
        "pod": "local",
        "pid": str(laptop.debuggee),
        "path": "/paused",
        "secret": SECRET_VALUE,
        "config": CONFIG_VALUE,
    }
    await console_line(client, "resumed: new requests reach this process again")

    # disconnect: the intercept is left, the debuggee stopped, the cluster serves everything.
    assert laptop.debuggee is not None
    await client.ok("disconnect", {"terminateDebuggee": True}, timeout=60)
    await console_line(client, "left intercept")
    await debuggee_gone(laptop)
    after = await asyncio.to_thread(
        cluster.load_via_exec, namespace, f"http://{ip}/after", count=20, rate=40
    )
    assert after.failures == [], after.failures
    assert after.pods <= pods, after.pods
    print(
        f"\nlaunch (cold: agent injected) {launched:.2f} s; "
        f"pod request -> stopped at the breakpoint {to_breakpoint:.2f} s; "
        f"cluster answers while paused within {ms:.0f} ms"
    )


async def one_replica_and_a_client(cluster: Cluster, namespace: str) -> str:
    """The echo sample with one replica and a client pod; returns the Service's ClusterIP."""
    await asyncio.to_thread(cluster.deploy_echo, namespace, 1)
    await asyncio.to_thread(cluster.start_client, namespace)
    return await asyncio.to_thread(cluster.cluster_ip, namespace, "echo")


async def test_hold_keeps_new_requests_until_continue_then_the_laptop_answers(
    cluster: Cluster, namespace: str, laptop: DapLaptop
) -> None:
    ip = await one_replica_and_a_client(cluster, namespace)
    client = laptop.client

    await launch(laptop, namespace, "hold")
    pods = set(await asyncio.to_thread(cluster.pods, namespace, "echo"))
    first = one_get(cluster, namespace, f"http://{ip}/first", timeout=120)
    thread = await stop_at_breakpoint(laptop, "/first")
    await console_line(client, "paused: new requests are held until you continue")

    held = await asyncio.to_thread(start_raw_get, cluster, namespace, ip, "/held")
    try:
        assert held.stdout is not None
        sent = await asyncio.wait_for(asyncio.to_thread(held.stdout.readline), 30)
        assert sent.strip() == "sent", sent
        # Held, not answered by the cluster: nothing comes back while the debuggee is paused.
        waiting = asyncio.ensure_future(asyncio.to_thread(held.stdout.read))
        done, _ = await asyncio.wait({waiting}, timeout=2.0)
        assert not done, f"answered while paused: {waiting.result()!r}"

        stops = len(client.events)
        await client.ok("continue", {"threadId": thread})
        local, _ = answer(await asyncio.wait_for(first, 30))
        assert local["pod"] == "local" and local["path"] == "/first", local
        # On continue the held request reaches the laptop, and stops at the breakpoint again.
        thread = await stop_at_breakpoint(laptop, "/held", after=stops)
        await client.ok("continue", {"threadId": thread})
        reply = await asyncio.wait_for(waiting, 30)
        assert reply.startswith("HTTP/1.0 200"), reply
        assert f"pod=local pid={laptop.debuggee} path=/held" in reply, reply
    finally:
        if held.poll() is None:
            held.kill()
        held.wait(10)

    await client.ok("disconnect", {"terminateDebuggee": True}, timeout=60)
    await console_line(client, "left intercept")
    after = await asyncio.to_thread(
        cluster.load_via_exec, namespace, f"http://{ip}/after", count=10, rate=40
    )
    assert after.failures == [] and after.pods <= pods, after.records


@pytest.mark.parametrize("how", ["disconnect", "vanish"])
async def test_ending_the_session_while_paused_hands_held_requests_to_the_cluster(
    cluster: Cluster, namespace: str, laptop: DapLaptop, how: str
) -> None:
    ip = await one_replica_and_a_client(cluster, namespace)
    client = laptop.client

    await launch(laptop, namespace, "hold")
    [pod] = await asyncio.to_thread(cluster.pods, namespace, "echo")
    first = one_get(cluster, namespace, f"http://{ip}/first", timeout=120)
    await stop_at_breakpoint(laptop, "/first")
    await console_line(client, "paused: new requests are held until you continue")
    held = await asyncio.to_thread(start_raw_get, cluster, namespace, ip, "/held")
    try:
        assert held.stdout is not None
        sent = await asyncio.wait_for(asyncio.to_thread(held.stdout.readline), 30)
        assert sent.strip() == "sent", sent

        # The user stops debugging without continuing, or the editor goes away: the held
        # request is served by the cluster app, never handed to the paused or dying debuggee.
        t0 = time.monotonic()
        if how == "disconnect":
            await client.ok("disconnect", {"terminateDebuggee": True}, timeout=60)
        else:
            assert client.process is not None and client.process.stdin is not None
            client.process.stdin.close()
        reply = await asyncio.wait_for(asyncio.to_thread(held.stdout.read), 30)
        handed_over = time.monotonic() - t0
        assert reply.startswith("HTTP/1.0 200"), reply
        assert f"pod={pod} pid=1 path=/held" in reply, reply
    finally:
        if held.poll() is None:
            held.kill()
        held.wait(10)
    # The paused request was already on the laptop: it ends with the debuggee, unanswered.
    [record] = (await asyncio.wait_for(first, 30)).records
    assert record.get("error", "").startswith(("RemoteDisconnected", "ConnectionResetError")), (
        record
    )
    await debuggee_gone(laptop)
    print(f"\n{how} while paused: held request answered by the cluster {handed_over:.2f} s later")


async def test_disconnect_with_restart_keeps_the_intercept_for_the_next_run(
    cluster: Cluster, namespace: str, laptop: DapLaptop
) -> None:
    ip = await one_replica_and_a_client(cluster, namespace)
    client = laptop.client
    await launch(laptop, namespace, "cluster")
    [pod] = await asyncio.to_thread(cluster.pods, namespace, "echo")

    # An editor's restart: disconnect asking for a restart, then a new run of the program.
    await client.ok("disconnect", {"restart": True, "terminateDebuggee": True}, timeout=60)
    await console_line(client, "intercept kept")
    await debuggee_gone(laptop)
    local = Laptop(cluster)
    try:
        app = await asyncio.to_thread(local.start_app, LOCAL_PORT)
        again, _ = answer(await one_get(cluster, namespace, f"http://{ip}/next-run", timeout=5))
        assert again["pod"] == "local" and again["pid"] == str(app.pid), again
    finally:
        await asyncio.to_thread(local.close)

    # The intercept lives as long as `innerloop dap` does.
    proc = client.process
    assert proc is not None and proc.stdin is not None
    proc.stdin.close()
    assert await asyncio.wait_for(proc.wait(), 30) == 0, laptop.adapter_log()
    after = await asyncio.to_thread(
        cluster.load_via_exec, namespace, f"http://{ip}/after", count=10, rate=40
    )
    assert after.failures == [] and after.pods == {pod}, after.records


RAW_GET = """
import socket, sys
s = socket.create_connection((sys.argv[1], 80), timeout=120)
s.sendall(b"GET " + sys.argv[2].encode() + b" HTTP/1.0\\r\\nHost: echo\\r\\n\\r\\n")
print("sent", flush=True)
data = b""
while chunk := s.recv(65536):
    data += chunk
sys.stdout.write(data.decode())
"""


def start_raw_get(cluster: Cluster, namespace: str, ip: str, path: str) -> subprocess.Popen[str]:
    """A GET from the client pod that says `sent` once its request is on the wire."""
    return subprocess.Popen(
        [
            cluster.kubectl_bin,
            "-n",
            namespace,
            "exec",
            "client",
            "--",
            "python3",
            "-c",
            RAW_GET,
            ip,
            path,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=cluster.env(),
    )


async def test_disconnect_during_the_rollout_leaves_the_cluster_as_it_was(
    cluster: Cluster, namespace: str, laptop: DapLaptop
) -> None:
    await asyncio.to_thread(cluster.deploy_echo, namespace)
    before = await asyncio.to_thread(namespace_snapshot, cluster, namespace, WORKLOAD)
    client = laptop.client
    await client.initialize()
    launched = client.request_nowait("launch", launch_config(namespace, "cluster"))
    # The sidecar is in the workload; the rollout has begun. Waited for as a state of the
    # cluster: which progress line says so depends on how fast the controller is (issue 11).
    async def rolling_out() -> None:
        while not await asyncio.to_thread(rollout_with_agent, cluster, namespace):
            await asyncio.sleep(0.1)

    await asyncio.wait_for(rolling_out(), 60)
    await client.ok("disconnect", {"terminateDebuggee": True})
    reply = await asyncio.wait_for(launched, 30)
    assert not reply["success"] and reply["message"].startswith("cancelled"), reply

    # The adapter exits once the start is undone (the sidecar removed: one more rollout).
    proc = client.process
    assert proc is not None and proc.stdin is not None
    proc.stdin.close()
    assert await asyncio.wait_for(proc.wait(), 120) == 0, laptop.adapter_log()
    assert await asyncio.to_thread(namespace_snapshot, cluster, namespace, WORKLOAD) == before
    await asyncio.to_thread(cluster.wait_rollout, namespace, "deployment/echo")
    ip = await asyncio.to_thread(cluster.cluster_ip, namespace, "echo")
    await asyncio.to_thread(cluster.start_client, namespace)
    served = await asyncio.to_thread(
        cluster.load_via_exec, namespace, f"http://{ip}/after", count=10, rate=40
    )
    assert served.failures == [], served.failures
    assert served.pods <= set(await asyncio.to_thread(cluster.pods, namespace, "echo"))
