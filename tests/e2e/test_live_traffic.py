"""A Service's live traffic reaches a local process, and the cluster heals itself (issue 3).

The laptop side (innerloop CLI + local echo app) runs in the developer netns, which reaches only
the API server: a local answer can only have come through the tunnel.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.traffic import answered, served_by, sources, url
from tools.cluster import Cluster
from tools.laptop import Laptop
from tools.net import free_port
from tools.wait import poll_until

pytestmark = pytest.mark.e2e


def test_cold_and_warm_intercept_route_everything_locally_with_zero_failures(
    cluster: Cluster, namespace: str, laptop: Laptop
) -> None:
    pods = set(cluster.deploy_echo(namespace))
    cluster.start_client(namespace)
    _, port = laptop.start_app_on_a_free_port()
    target = url(cluster, namespace)
    cluster.start_load_pod(namespace, "steady", target, duration=75, rate=50)
    cluster.wait_load_pod_sending(namespace, "steady")

    proc, lines, cold = laptop.intercept(namespace, "echo", f"{port}:80")
    while_on = cluster.load_via_exec(namespace, target, count=40, rate=40)
    assert while_on.failures == []
    assert set(sources(while_on)) == {"local"}, "every request must reach the laptop"
    assert laptop.stop(proc) == 0
    after = cluster.load_via_exec(namespace, target, count=40, rate=40)
    assert after.failures == []
    assert "local" not in sources(after)

    proc, lines, warm = laptop.intercept(namespace, "echo", f"{port}:80")
    first_local = time.monotonic()
    poll_until(
        lambda: "pod=local" in cluster.load_via_exec(namespace, target, count=1).records[0].get(
            "body", ""),
        "the first request routed to the laptop",
        10,
        interval=0,
    )
    print(
        f"\ncold start {cold:.2f} s; warm start {warm:.2f} s "
        f"(+{time.monotonic() - first_local:.2f} s to the first routed request)"
    )
    assert "injecting the agent" not in lines.text(), "a warm start needs no rollout"
    assert warm < cold
    assert set(sources(cluster.load_via_exec(namespace, target, count=20, rate=40))) == {"local"}
    assert laptop.stop(proc) == 0

    steady = cluster.collect_load_pod(namespace, "steady", timeout=150)
    seen = sources(steady)
    assert steady.failures == [], steady.failures[:5]
    assert "local" in seen and set(seen) - {"local"}, "both the laptop and the cluster served"
    assert {s for s in seen if s != "local"} <= pods | set(cluster.pods(namespace, "echo"))


def test_command_gets_the_workload_env_and_env_file_is_private(
    cluster: Cluster, namespace: str, laptop: Laptop, tmp_path: os.PathLike[str]
) -> None:
    cluster.deploy_echo(namespace)
    env_file = os.path.join(tmp_path, "echo.env")
    env_json = os.path.join(tmp_path, "echo.json")
    script = (
        "import os, json; print('ENV=' + json.dumps({k: os.environ.get(k) for k in "
        "('SECRET_VALUE', 'CONFIG_VALUE', 'PORT')}))"
    )
    result = laptop.run(
        "intercept",
        "echo",
        "-n",
        namespace,
        "--port",
        f"{free_port()}:http",  # free: the developer netns is shared by every test session
        "--env-file",
        env_file,
        "--env-json",
        env_json,
        "--",
        sys.executable,
        "-c",
        script,
    )
    assert result.returncode == 0, result.stdout
    [line] = [ln for ln in result.stdout.splitlines() if ln.startswith("ENV=")]
    env = json.loads(line[4:])
    assert env == {
        "SECRET_VALUE": "s3cr3t-from-secret",
        "CONFIG_VALUE": "from-configmap",
        "PORT": "8080",
    }
    for path in (env_file, env_json):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert "SECRET_VALUE=s3cr3t-from-secret" in Path(env_file).read_text()
    assert json.loads(Path(env_json).read_text())["CONFIG_VALUE"] == "from-configmap"
    assert "leaving" in result.stdout


@pytest.mark.parametrize("how", ["kill", "sigstop"])
def test_vanished_laptop_cluster_serves_again_within_2s(
    cluster: Cluster, namespace: str, laptop: Laptop, how: str
) -> None:
    cluster.deploy_echo(namespace)
    cluster.start_client(namespace)
    _, port = laptop.start_app_on_a_free_port()
    target = url(cluster, namespace)
    proc, lines, _ = laptop.intercept(namespace, "echo", f"{port}:80")
    assert set(sources(cluster.load_via_exec(namespace, target, count=10))) == {"local"}

    cluster.start_load_pod(namespace, "steady", target, duration=12, rate=50, timeout=5)
    cluster.wait_load_pod_sending(namespace, "steady")
    vanished = time.time()
    os.killpg(proc.pid, signal.SIGKILL if how == "kill" else signal.SIGSTOP)
    steady = cluster.collect_load_pod(namespace, "steady", timeout=60)

    late_local = [r for r in answered(steady) if r["t"] > vanished + 2.0 and served_by(r) == "local"]
    assert late_local == [], "the cluster must serve again within 2 s"
    assert any(r["t"] > vanished + 2.0 for r in answered(steady))
    # Only requests already on their way to the vanished laptop may fail.
    assert len(steady.failures) <= 3, steady.failures

    if how == "sigstop":
        os.killpg(proc.pid, signal.SIGCONT)
        line = lines.wait_for("reconnected", 30)
        assert "intercept resumed" in line
        assert set(sources(cluster.load_via_exec(namespace, target, count=10))) == {"local"}


def test_agent_restart_client_reconnects_within_5s(
    cluster: Cluster, namespace: str, laptop: Laptop
) -> None:
    cluster.deploy_echo(namespace, replicas=1)
    cluster.start_client(namespace)
    _, port = laptop.start_app_on_a_free_port()
    target = url(cluster, namespace)
    _proc, lines, _ = laptop.intercept(namespace, "echo", f"{port}:80")
    [pod] = cluster.pods(namespace, "echo")
    # Requests time out after 5 s, as in the vanished-laptop test: on this shared 2-core machine
    # a single request now and then takes over 2 s, restart or not.
    cluster.start_load_pod(namespace, "steady", target, duration=15, rate=50, timeout=5)
    cluster.wait_load_pod_sending(namespace, "steady")
    killed = time.time()
    cluster.kubectl(
        "-n",
        namespace,
        "exec",
        pod,
        "-c",
        "innerloop-agent",
        "--",
        "python3",
        "-c",
        "import os, signal; os.kill(1, signal.SIGTERM)",
    )
    lines.wait_for("reconnected", 30)
    steady = cluster.collect_load_pod(namespace, "steady", timeout=60)
    # Requests already on their way when the agent stopped may still answer locally; the
    # intercept has resumed once local answers come after the last failure of the restart.
    last_failure = max((f["t"] for f in steady.failures), default=killed)
    resumed = [r["t"] for r in answered(steady) if r["t"] > last_failure and served_by(r) == "local"]
    assert resumed, "the intercept must resume"
    print(
        f"\nagent restart: {len(steady.failures)} failed requests; "
        f"intercept resumed {resumed[0] - killed:.2f} s after the kill"
    )
    timeline = [(round(f["t"] - killed, 2), f.get("error")) for f in steady.failures]
    # Only requests sent while the agent is down fail (docs/usage.md: "requests fail only while
    # the pod is not Ready"): 15–52 of them at 50/s in five runs on a quiet machine, 104 under
    # CPU stress, where the container took 3.8 s to restart. So the bound is that window, not a
    # count that assumes how fast this machine restarts a container (issue 11).
    assert all(killed <= f["t"] < killed + 5.0 for f in steady.failures), (
        f"failures (s after the kill): {timeline}")
    assert resumed[0] - killed < 5.0, f"{lines.text()}\nfailures (s after the kill): {timeline}"
