"""10 minutes at 200 requests/s through an intercept (long), nothing killed: every request is
answered within the caller's 2 s timeout, most of them by the laptop. Issue 11 saw 20 requests
time out in one run of six at this rate; to say where a timeout comes from, the test samples how
long each process on the intercepted path (the agents, innerloop, the local app) waited for a CPU
each second, and prints it around every failed request (docs/reliability.md).

INNERLOOP_FAULT_LOAD_SECONDS=<seconds> shortens the run while working on this test; the
release run uses the full 600 s.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers.traffic import sources, url
from tools.cluster import Cluster
from tools.laptop import Laptop
from tools.sample import manifests

pytestmark = [pytest.mark.e2e, pytest.mark.long]
RATE = 200
DURATION = float(os.environ.get("INNERLOOP_FAULT_LOAD_SECONDS", "600"))
TIMEOUT = 2.0
"""The caller's timeout, as in the run that saw timeouts."""
LOCAL_SHARE = 0.5


def cpu_wait_ns(pid: int) -> int:
    """Nanoseconds the process's threads have spent runnable but waiting for a CPU (the
    second field of /proc/<pid>/task/<tid>/schedstat), summed over its threads."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        with contextlib.suppress(OSError):
            total += int(stat.read_text().split()[1])
    return total


def agent_pids(cluster: Cluster, namespace: str) -> dict[str, int]:
    """Host PIDs of the agents in the echo pods (the testbed's pods are host processes)."""
    pods = cluster.kubectl_json("-n", namespace, "get", "pods", "-l", "app=echo")["items"]
    found = {}
    for pod in pods:
        uid = pod["metadata"]["uid"]
        for proc in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError):
                if (f"pod{uid}" in (proc / "cgroup").read_text()
                        and b"agent.pyz" in (proc / "cmdline").read_bytes()):
                    found[f"agent {pod['metadata']['name']}"] = int(proc.name)
    return found


@dataclass
class Starvation:
    """Per second, how long each process on the intercepted path waited for a CPU, and the
    machine's 1-minute load average; sampled on a thread while in use."""

    pids: dict[str, int]
    waits: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    """name -> [(epoch seconds, seconds waited in the second before)]."""
    load: list[float] = field(default_factory=list)

    @contextmanager
    def sampling(self) -> Iterator[None]:
        stop = threading.Event()
        thread = threading.Thread(target=self._sample, args=(stop,), daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _sample(self, stop: threading.Event) -> None:
        last = {name: cpu_wait_ns(pid) for name, pid in self.pids.items()}
        ticks = 0
        while not stop.wait(1):
            now = time.time()
            for name, pid in self.pids.items():
                waited = cpu_wait_ns(pid)
                self.waits.setdefault(name, []).append((now, (waited - last[name]) / 1e9))
                last[name] = waited
            ticks += 1
            if ticks % 10 == 0:
                self.load.append(os.getloadavg()[0])

    def worst(self) -> dict[str, float]:
        """Each process's longest wait for a CPU within one second."""
        return {name: max((w for _, w in series), default=0.0)
                for name, series in self.waits.items()}

    def around(self, t: float) -> dict[str, float]:
        """What each process waited in the 3 s after ``t`` (a failed request's send time)."""
        return {name: round(sum(w for at, w in series if t < at <= t + 3), 2)
                for name, series in self.waits.items()}

    def load_line(self) -> str:
        load = self.load or [os.getloadavg()[0]]
        return f"load average (1 min) mean {sum(load) / len(load):.1f}, max {max(load):.1f}"


def test_200_requests_a_second_for_10_minutes_through_an_intercept_none_fails(
    cluster: Cluster, namespace: str, laptop: Laptop
) -> None:
    cluster.deploy_echo(namespace)
    cluster.start_client(namespace)
    app, port = laptop.start_app_on_a_free_port()
    target = url(cluster, namespace)
    proc, lines, _ = laptop.intercept(namespace, "echo", f"{port}:80")
    assert set(sources(cluster.load_via_exec(namespace, target, count=10))) == {"local"}
    pods = cluster.pods(namespace, "echo")  # rolled out with the agent
    cpu = Starvation({**agent_pids(cluster, namespace), "innerloop (laptop)": proc.pid,
                      "local app": app.pid})

    args = [target, "--rate", str(RATE), "--duration", str(DURATION), "--timeout", str(TIMEOUT),
            "--failures-only"]
    with cpu.sampling():
        cluster.apply(namespace, [manifests.client_pod("steady", args)])
        result = cluster.collect_load_pod(namespace, "steady", timeout=DURATION + 180)
    summary = result.summary
    print(f"\n{summary['sent']} requests in {summary['sending_s']:.0f} s at {RATE}/s: "
          f"{summary['failed']} failed, latency {summary['ms']} ms, answered by "
          f"{summary['answered_by']}; {cpu.load_line()}\n"
          f"longest wait for a CPU within a second: {cpu.worst()}\n"
          f"slowest [seq, t, ms]: {summary['slowest']}\ninnerloop said: "
          f"{[line for line in lines.text().splitlines() if 'tunnel' in line]}")
    for failure in result.failures[:20]:
        print(f"failed {failure}; CPU waits in the 3 s after it: {cpu.around(failure['t'])}")

    assert summary["sending_s"] < DURATION + 5, "the load client kept the rate"
    assert summary["failed"] == 0, result.failures[:20]
    # A stream the laptop does not accept within 0.3 s (ACCEPT_TIMEOUT) is served by the app in
    # its pod, as designed: on a saturated machine up to ~10 % were (docs/reliability.md).
    assert set(summary["answered_by"]) <= {"local", *pods}, summary["answered_by"]
    assert summary["answered_by"].get("local", 0) >= LOCAL_SHARE * summary["sent"], summary
    assert proc.poll() is None and "lost" not in lines.text(), lines.text()
    assert laptop.stop(proc) == 0
