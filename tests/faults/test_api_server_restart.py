"""The API server restarts during an intercept: every port-forward (so every tunnel) breaks at
once. The agents route to the app in the pod as soon as the client goes silent, the tunnels
reconnect once the API server is back, and the intercept resumes; no request is answered by
nobody. Restarts a shared component: runs after every other test (marker `testbed_cycle`)."""

from __future__ import annotations

import time

import pytest

from tests.helpers.traffic import outcome, sources, url
from tools.cluster import Cluster
from tools.laptop import Laptop
from tools.testbed import api, daemons, pids
from tools.testbed import cluster as testbed
from tools.wait import poll_until

pytestmark = [pytest.mark.e2e, pytest.mark.testbed_cycle, pytest.mark.long]
MAX_FAILURES = 3
RESUME_WITHIN = 10.0


def restart_api_server() -> None:
    """Stop kube-apiserver by its PID and start it again, holding the testbed's lock so that no
    `up` elsewhere takes the moment for a dead testbed."""
    with testbed._locked():
        pids.stop(daemons.APISERVER.name)
        testbed._start(daemons.APISERVER, lambda: api.probe("readyz"))


def test_api_server_restarted_tunnels_reconnect_and_the_intercept_resumes(
    cluster: Cluster, namespace: str, laptop: Laptop
) -> None:
    if not cluster.testbed:
        pytest.skip("restarts the testbed's API server")
    cluster.deploy_echo(namespace)
    cluster.start_client(namespace)
    _, port = laptop.start_app_on_a_free_port()
    target = url(cluster, namespace)
    proc, lines, _ = laptop.intercept(namespace, "echo", f"{port}:80")
    cluster.start_load_pod(namespace, "steady", target, duration=40, rate=50, timeout=5)
    cluster.wait_load_pod_sending(namespace, "steady")
    time.sleep(1)

    start = time.time()
    restart_api_server()
    end = time.time()
    poll_until(lambda: lines.text().count("intercept resumed") >= 2,
               "both tunnels to resume", 60, interval=0.2)
    got = outcome(cluster.collect_load_pod(namespace, "steady", timeout=120), start, end)
    print(got.line(f"API server restarted ({end - start:.1f} s down)"))

    assert proc.poll() is None, "the intercept goes on"
    assert got.failures <= MAX_FAILURES, got
    assert all(t < 2.5 for t in got.failed_at), "only requests on their way when it went"
    # A stopping API server drains its port-forwards first, so the tunnels live on for part of
    # the outage: some requests in it are local, the rest served by the app in the pod.
    assert got.cluster_during > 0, got
    assert got.resumed_after is not None and got.resumed_after < RESUME_WITHIN, lines.text()
    assert set(sources(cluster.load_via_exec(namespace, target, count=10))) == {"local"}
    assert laptop.stop(proc) == 0, lines.text()
