"""The debuggee sits at a breakpoint for 5 minutes (long): the pods stay Ready and alive (their
probes go to the containers, never to the laptop), the paused request waits as long as the user
does, and the rest of the traffic is served by the cluster app (`whilePaused: cluster`) or held
and then answered by the laptop after continue (`hold`). Drives the real debug adapter
(`innerloop dap`) as tests/e2e/test_dap.py does.

INNERLOOP_FAULT_PAUSE=<seconds> shortens the pause while working on this test; the release run
uses the full 300 s.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import datetime
from typing import Any

import pytest

from tests.e2e.test_dap import DapLaptop, console_line, debuggee_gone, launch, stop_at_breakpoint
from tests.e2e.test_dap import laptop as dap_laptop  # noqa: F401 (a fixture, by this name)
from tools.cluster import Cluster, LoadResult, parse_answer

pytestmark = [pytest.mark.e2e, pytest.mark.long]
PAUSE = float(os.environ.get("INNERLOOP_FAULT_PAUSE", "300"))
PORTS = {"cluster": 18426, "hold": 18428}  # their own: other sessions share the developer netns
LIVENESS = {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 2,
            "failureThreshold": 3}
"""Added to the app container: a probe that would restart it if anything it serves stalled."""
TROUBLE = {"Unhealthy", "BackOff", "Killing", "ProbeWarning"}


def deploy_with_liveness(cluster: Cluster, namespace: str) -> None:
    cluster.deploy_echo(namespace)
    patch = [{"op": "add", "path": "/spec/template/spec/containers/0/livenessProbe",
              "value": LIVENESS}]
    cluster.kubectl("-n", namespace, "patch", "deployment", "echo", "--type=json",
                    "-p", json.dumps(patch))
    cluster.wait_rollout(namespace, "deployment/echo")
    cluster.wait_endpoints(namespace, "echo", 2)


def pod_health(cluster: Cluster, namespace: str) -> dict[str, tuple[bool, int]]:
    """Each echo pod: (Ready, restarts summed over its containers)."""
    pods = cluster.kubectl_json("-n", namespace, "get", "pods", "-l", "app=echo")["items"]
    return {
        p["metadata"]["name"]: (
            any(c["type"] == "Ready" and c["status"] == "True"
                for c in p["status"].get("conditions", [])),
            sum(int(s["restartCount"]) for s in p["status"].get("containerStatuses", [])),
        )
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
    }


async def watch_health(cluster: Cluster, namespace: str, seconds: float) -> list[str]:
    """Poll the pods every 2 s for ``seconds``; returns every moment one was not Ready,
    restarted, or went away."""
    first = await asyncio.to_thread(pod_health, cluster, namespace)
    trouble: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = await asyncio.to_thread(pod_health, cluster, namespace)
        if now != first:
            trouble.append(f"{time.monotonic() - deadline + seconds:.0f} s: {now} (was {first})")
        await asyncio.sleep(2)
    return trouble


def probe_events(cluster: Cluster, namespace: str, since: float) -> list[str]:
    """Probe failures, restarts and kills seen since ``since`` (epoch seconds); a starting
    pod's readiness probe fails until its app listens, which is no news."""
    events = cluster.kubectl_json("-n", namespace, "get", "events")["items"]
    return [f"{e['reason']}: {e['involvedObject']['name']}: {e.get('message', '')}"
            for e in events if e.get("reason") in TROUBLE
            and datetime.fromisoformat(e.get("lastTimestamp") or e["eventTime"]).timestamp()
            >= int(since)]


def one_request_pod(cluster: Cluster, namespace: str, name: str, url: str) -> None:
    """A pod that sends one GET and waits for its answer far longer than the pause."""
    cluster.start_load_pod(namespace, name, url, duration=1, rate=1, timeout=PAUSE + 120)


def phase(cluster: Cluster, namespace: str, pod: str) -> str:
    return str(cluster.kubectl_json("-n", namespace, "get", "pod", pod)["status"]["phase"])


def single(result: LoadResult) -> dict[str, Any]:
    [record] = result.records
    assert record.get("status") == 200, record
    return record


@pytest.mark.parametrize("policy", ["cluster", "hold"])
async def test_paused_5_minutes_pods_stay_ready_and_the_paused_request_completes(
    cluster: Cluster, namespace: str, dap_laptop: DapLaptop, policy: str,  # noqa: F811
) -> None:
    await asyncio.to_thread(deploy_with_liveness, cluster, namespace)
    await asyncio.to_thread(cluster.start_client, namespace)
    ip = await asyncio.to_thread(cluster.cluster_ip, namespace, "echo")
    laptop = dap_laptop
    client = laptop.client
    await launch(laptop, namespace, policy, PORTS[policy])
    pods = set(await asyncio.to_thread(cluster.pods, namespace, "echo"))

    await asyncio.to_thread(one_request_pod, cluster, namespace, "paused", f"http://{ip}/paused")
    thread = await stop_at_breakpoint(laptop, "/paused")
    paused_at = time.time()
    health = asyncio.ensure_future(watch_health(cluster, namespace, PAUSE))
    if policy == "cluster":
        await console_line(client, "paused: new requests are served by the cluster")
        await asyncio.to_thread(cluster.start_load_pod, namespace, "meanwhile",
                                f"http://{ip}/meanwhile", duration=max(5.0, PAUSE - 30), rate=5, timeout=5)
    else:
        await console_line(client, "paused: new requests are held until you continue")
        await asyncio.to_thread(one_request_pod, cluster, namespace, "held", f"http://{ip}/held")
    trouble = await health

    assert trouble == [], trouble
    assert set(await asyncio.to_thread(cluster.pods, namespace, "echo")) == pods
    assert await asyncio.to_thread(probe_events, cluster, namespace, paused_at) == []
    assert await asyncio.to_thread(phase, cluster, namespace, "paused") == "Running", (
        "the paused request waits as long as the user does")
    stops = len(client.events)
    await client.ok("continue", {"threadId": thread})
    continued_at = time.time()
    paused = single(await asyncio.to_thread(cluster.collect_load_pod, namespace, "paused", 60))
    assert parse_answer(paused["body"])["pod"] == "local", paused
    detail = f"paused request answered locally after {paused['ms'] / 1000:.0f} s"

    if policy == "cluster":
        meanwhile = await asyncio.to_thread(cluster.collect_load_pod, namespace, "meanwhile", 60)
        assert meanwhile.failures == [], meanwhile.failures[:5]
        assert meanwhile.pods <= pods, meanwhile.pods
        ms = sorted(float(r["ms"]) for r in meanwhile.records)
        detail += (f"; {len(ms)} requests meanwhile all served by the cluster, "
                   f"p99 {ms[int(0.99 * len(ms))]:.0f} ms, max {ms[-1]:.0f} ms")
    else:
        assert await asyncio.to_thread(phase, cluster, namespace, "held") == "Running", (
            "held, not answered by anyone while paused")
        # Continued: the held request reaches the laptop, and stops at the breakpoint in turn.
        thread = await stop_at_breakpoint(laptop, "/held", after=stops)
        await client.ok("continue", {"threadId": thread})
        held = single(await asyncio.to_thread(cluster.collect_load_pod, namespace, "held", 60))
        assert parse_answer(held["body"])["pod"] == "local", held
        held_for = continued_at - held["t"]
        assert held_for > 0.8 * PAUSE - 30, held
        detail += f"; a request held {held_for:.0f} s answered locally after continue"

    health_after = await asyncio.to_thread(pod_health, cluster, namespace)
    assert all(ready and restarts == 0 for ready, restarts in health_after.values()), health_after
    await client.ok("disconnect", {"terminateDebuggee": True}, timeout=60)
    await console_line(client, "left intercept")
    await debuggee_gone(laptop)
    after = await asyncio.to_thread(cluster.load_via_exec, namespace, f"http://{ip}/after",
                                    count=20, rate=40)
    assert after.failures == [] and after.pods <= pods, after.records
    print(f"\nwhilePaused {policy}, paused {time.time() - paused_at:.0f} s: pods Ready, "
          f"0 restarts, no probe events; {detail}")
