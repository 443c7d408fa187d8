"""Replicas come and go under an intercept: an agent pod deleted, the workload scaled 2 → 4 → 1,
`kubectl rollout restart`. New replicas join the intercept, gone ones leave, and callers that
retry a refused connection see no failure."""

from __future__ import annotations

import time

import pytest

from tests.helpers.traffic import answered, served_by, sources, start_retrying_load_pod, url
from tools.cluster import Cluster
from tools.laptop import Laptop
from tools.wait import poll_until

pytestmark = pytest.mark.e2e
JOIN_WITHIN = 10.0
"""Pod deleted → its replacement scheduled, Ready, its tunnel up and the route claimed."""


def test_agent_pod_deleted_its_replacement_joins_the_intercept(
    cluster: Cluster, namespace: str, laptop: Laptop
) -> None:
    cluster.deploy_echo(namespace)
    cluster.start_client(namespace)
    _, port = laptop.start_app_on_a_free_port()
    target = url(cluster, namespace)
    proc, lines, _ = laptop.intercept(namespace, "echo", f"{port}:80")
    pods = cluster.pods(namespace, "echo")  # with the agent
    cluster.start_load_pod(namespace, "steady", target, duration=20, rate=50, timeout=5)
    cluster.wait_load_pod_sending(namespace, "steady")

    deleted = time.time()
    cluster.kubectl("-n", namespace, "delete", "pod", pods[0], "--wait=false")
    joined = lines.wait_for("joined the intercept", 60)
    joined_after = time.time() - deleted
    [new] = set(cluster.pods(namespace, "echo")) - set(pods)
    assert new in joined
    steady = cluster.collect_load_pod(namespace, "steady", timeout=90)
    by_cluster = [r["t"] - deleted for r in answered(steady) if served_by(r) != "local"]
    print(f"\nagent pod deleted: {len(steady.failures)} failed requests; new replica joined "
          f"{joined_after:.2f} s after the delete; {len(by_cluster)} requests answered by the "
          f"cluster app, the last {max(by_cluster, default=0):.2f} s after the delete")
    # The deleted pod's agent stops listening at once on SIGTERM while kube-proxy still sends it
    # connections for a moment: 0-2 refused in a few runs (docs/reliability.md, open points).
    assert len(steady.failures) <= 3, steady.failures
    assert all("refused" in f.get("error", "") and abs(f["t"] - deleted) < 2.0
               for f in steady.failures), steady.failures
    assert joined_after < JOIN_WITHIN
    assert all(t < JOIN_WITHIN for t in by_cluster), "requests route locally again"
    assert set(sources(cluster.load_via_exec(namespace, target, count=20))) == {"local"}
    assert proc.poll() is None


@pytest.mark.long  # ~80 s: three rollouts
def test_scaled_and_restarted_under_intercept_zero_failures_for_retrying_callers(
    cluster: Cluster, namespace: str, laptop: Laptop
) -> None:
    cluster.deploy_echo(namespace)
    cluster.start_client(namespace)
    _, port = laptop.start_app_on_a_free_port()
    target = url(cluster, namespace)
    proc, lines, _ = laptop.intercept(namespace, "echo", f"{port}:80")
    start_retrying_load_pod(cluster, namespace, "steady", target, duration=60, rate=50)
    cluster.wait_load_pod_sending(namespace, "steady")
    began = time.time()

    def scale(replicas: int) -> None:
        cluster.kubectl("-n", namespace, "scale", "deployment/echo", f"--replicas={replicas}")
        cluster.wait_rollout(namespace, "deployment/echo")
        # Every Ready replica has its tunnel up: the CLI's status counts them.
        poll_until(lambda: len(cluster.pods(namespace, "echo")) == replicas,
                   f"{replicas} running replicas", 60)

    scale(4)
    poll_until(lambda: lines.text().count("joined the intercept") >= 2, "2 replicas joined", 30)
    scale(1)
    cluster.kubectl("-n", namespace, "rollout", "restart", "deployment/echo")
    cluster.wait_rollout(namespace, "deployment/echo")
    poll_until(lambda: lines.text().count("joined the intercept") >= 3, "the new one joined", 30)
    settled = time.time()
    steady = cluster.collect_load_pod(namespace, "steady", timeout=120)

    retried = [r for r in steady.records if r.get("retries")]
    late = [r for r in answered(steady) if r["t"] > settled + 1 and served_by(r) != "local"]
    print(f"\nscale 2→4→1 + rollout restart over {settled - began:.1f} s: "
          f"{len(steady.failures)} failed requests, {len(retried)} needed a retry "
          f"(at most {max((r['retries'] for r in retried), default=0)}), "
          f"{sum(served_by(r) != 'local' for r in answered(steady))} answered by the cluster app")
    assert steady.failures == [], steady.failures[:5]
    assert late == [], "after the changes every request routes to the laptop"
    assert len(cluster.pods(namespace, "echo")) == 1
    assert set(sources(cluster.load_via_exec(namespace, target, count=20))) == {"local"}
    assert proc.poll() is None, lines.text()
