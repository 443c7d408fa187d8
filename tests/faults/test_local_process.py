"""The local process dies while a request is in flight, then the user starts it again.

The policy (docs/reliability.md): the caller of the request in flight gets a clean error at
once (the connection reset, or a 502), never a hang; while nothing listens on the local port the
client declines new connections and the agent hands them to the app in the pod; once the user
restarts the process, requests come back to it. The intercept never drops."""

from __future__ import annotations

import threading
import time

import pytest

from tests.helpers.traffic import sources, url
from tools.cluster import Cluster, LoadResult
from tools.laptop import Laptop

pytestmark = pytest.mark.e2e


def test_local_process_crash_mid_request_clean_error_then_cluster_then_local_again(
    cluster: Cluster, namespace: str, laptop: Laptop
) -> None:
    cluster.deploy_echo(namespace)
    cluster.start_client(namespace)
    app, port = laptop.start_app_on_a_free_port()
    target = url(cluster, namespace)
    proc, lines, _ = laptop.intercept(namespace, "echo", f"{port}:80")
    assert set(sources(cluster.load_via_exec(namespace, target, count=5))) == {"local"}

    in_flight: list[LoadResult] = []
    slow = threading.Thread(target=lambda: in_flight.append(cluster.load_via_exec(
        namespace, f"{target}?sleep=6", count=1, timeout=20)))
    slow.start()
    time.sleep(3)  # kubectl exec + the request reaching the local app, which sleeps 6 s
    app.kill()
    killed = time.time()
    slow.join(60)
    [record] = in_flight[0].records
    print(f"\nthe request in flight when the local app died: {record}")
    assert record.get("status") == 502 or "reset" in record.get("error", "").lower() \
        or "RemoteDisconnected" in record.get("error", ""), record
    assert record["t"] + record["ms"] / 1000 - killed < 2.0, "a clean error at once, no hang"

    meanwhile = cluster.load_via_exec(namespace, target, count=20, rate=20)
    assert meanwhile.failures == [], meanwhile.failures
    assert "local" not in sources(meanwhile), "nothing listens: the app in the pod serves"

    laptop.start_app(port)  # the user restarts it on its port
    again = cluster.load_via_exec(namespace, target, count=10)
    assert again.failures == [] and set(sources(again)) == {"local"}
    assert proc.poll() is None and "lost" not in lines.text(), lines.text()
