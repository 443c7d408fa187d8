"""The demo's last act: what innerloop is for. `innerloop dap` (the debug adapter an editor
starts) runs in the developer netns; a DAP client drives it as VS Code would: launch the sample
service under debugpy with the echo Service's traffic, a breakpoint in `handle()`, a request from
a pod, the paused frame printed (function, line, locals), continue, the pod gets its answer.

The DAP client is tools/dap_client.py (the tests drive the adapter with it too): it frames
messages itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

from tools.cluster import Cluster, LoadResult, parse_answer
from tools.dap_client import DapClient, echo_launch, end_adapter, marked_line
from tools.laptop import REPO, Laptop
from tools.sample import ECHO_APP
from tools.testbed.netns import dev_netns_argv

START_TIMEOUT = 180.0
"""A cold start injects the agent (one rollout); the demo's first act already did."""
SHOWN_LOCALS = ("path", "pod", "pid", "config", "secret")


def launch_config(namespace: str, port: int) -> dict[str, Any]:
    """What a launch.json entry says (the tests' echo configuration), run by this Python."""
    return {**echo_launch(namespace, port), "python": sys.executable}


class Console:
    """Prints what innerloop tells the Debug Console, as it arrives."""

    def __init__(self, client: DapClient) -> None:
        self.client = client
        self.shown = 0

    def flush(self) -> None:
        lines = self.client.console()
        for line in lines[self.shown:]:
            print(f"    [debug console] innerloop: {line}")
        self.shown = len(lines)


async def debug_a_pods_request(cluster: Cluster, laptop: Laptop, namespace: str, url: str,
                               port: int) -> None:
    line = marked_line(ECHO_APP, "# breakpoint")
    print(f"\n--- the debug adapter: `innerloop dap` launches {ECHO_APP.name} under debugpy "
          f"with echo's traffic, a breakpoint at {ECHO_APP.name}:{line} (handle)")
    log = Path(laptop.runtime_dir) / "innerloop-dap.log"
    with log.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            *dev_netns_argv([sys.executable, "-m", "innerloop", "dap"]),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr,
            cwd=REPO, env=laptop.env(), start_new_session=True)
    assert proc.stdin is not None and proc.stdout is not None
    client = DapClient(proc.stdout, proc.stdin)
    console = Console(client)
    try:
        await client.initialize()
        t0 = time.monotonic()
        reply = await asyncio.wait_for(client.start(
            "launch", launch_config(namespace, port), {ECHO_APP: [line]}), START_TIMEOUT)
        console.flush()
        if not reply.get("success"):
            raise SystemExit(f"the debug session did not start: {reply.get('message')}\n"
                             f"(adapter log: {log})")
        await client.wait_for(lambda: _stdout_has(client, "echo listening on"), 30)
        print(f"    debug session running in {time.monotonic() - t0:.1f} s")

        print(f"    a pod sends GET {url} …")
        request = asyncio.ensure_future(asyncio.to_thread(
            cluster.load_via_exec, namespace, url, count=1, timeout=120))
        stopped = await client.event("stopped", timeout=60, reason="breakpoint")
        with contextlib.suppress(asyncio.TimeoutError):  # the proxy says so right after
            await client.wait_for(
                lambda: any(c.startswith("paused") for c in client.console()), 5)
        console.flush()
        await show_paused_frame(client, int(stopped["body"]["threadId"]))
        print(f"    the pod's request is still waiting: {not request.done()}")

        await client.ok("continue", {"threadId": stopped["body"]["threadId"]})
        print(f"    continue → the pod got: {_answer(await asyncio.wait_for(request, 30))}")
        await client.ok("disconnect", {"terminateDebuggee": True}, timeout=60)
        await asyncio.sleep(0.5)  # the last console lines (left intercept)
        console.flush()
    finally:
        await _close(proc, client)


async def show_paused_frame(client: DapClient, thread: int) -> None:
    frames = (await client.ok("stackTrace", {"threadId": thread, "levels": 1}))["stackFrames"]
    top = frames[0]
    scopes = (await client.ok("scopes", {"frameId": top["id"]}))["scopes"]
    ref = next(s for s in scopes if s["name"] == "Locals")["variablesReference"]
    variables = (await client.ok("variables", {"variablesReference": ref}))["variables"]
    values = {v["name"]: v["value"] for v in variables}
    source = Path(top["source"]["path"]).name
    print(f"    PAUSED in {top['name']}() at {source}:{top['line']} on the pod's request; locals:")
    for name in SHOWN_LOCALS:
        if name in values:
            print(f"        {name} = {values[name]}")


def _stdout_has(client: DapClient, needle: str) -> bool:
    return any(e["event"] == "output" and e["body"].get("category") == "stdout"
               and needle in e["body"]["output"] for e in client.events)


def _answer(result: LoadResult) -> str:
    if result.failures:
        return f"a failure: {result.failures[0]}"
    body = result.records[0]["body"]
    got = parse_answer(body)
    who = "the local process" if got.get("pod") == "local" else "the cluster"
    return f"{body.strip()}  ({who} answered)"


async def _close(proc: asyncio.subprocess.Process, client: DapClient) -> None:
    await end_adapter(proc)
    await client.aclose()
