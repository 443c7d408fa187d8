"""Two innerloop clients (two machines: two registries, two client ids) ask for the same
Service at the same moment, before it has an agent: exactly one wins, the other exits with one
line naming the holder, and nothing is half-applied (the winner's intercept works; after it
leaves, `uninstall` gives back the namespace exactly as it was)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.helpers.snapshot import assert_same, namespace_snapshot
from tests.helpers.traffic import sources, url
from tools.cluster import Cluster
from tools.laptop import Laptop, Lines

pytestmark = pytest.mark.e2e


@pytest.fixture
def other_laptop(cluster: Cluster) -> Iterator[Laptop]:
    lap = Laptop(cluster)
    yield lap
    lap.close()


def test_two_clients_racing_for_one_service_exactly_one_wins(
    cluster: Cluster, namespace: str, laptop: Laptop, other_laptop: Laptop
) -> None:
    cluster.deploy_echo(namespace)
    cluster.start_client(namespace)
    before = namespace_snapshot(cluster, namespace)
    ports = [lap.start_app_on_a_free_port()[1] for lap in (laptop, other_laptop)]
    racers: list[tuple[subprocess.Popen[str], Lines]] = [
        lap.innerloop("intercept", "echo", "-n", namespace, "--port", f"{port}:80")
        for lap, port in zip((laptop, other_laptop), ports)
    ]
    # The loser exits (within 90 s); the winner keeps running: it says it is intercepting, and
    # it is still running when the checks below are done and it is stopped.
    deadline = time.monotonic() + 90
    while all(proc.poll() is None for proc, _ in racers) and time.monotonic() < deadline:
        time.sleep(0.2)
    losers = [(proc, lines) for proc, lines in racers if proc.poll() is not None]
    assert len(losers) == 1, "\n=====\n".join(lines.text() for _, lines in racers)
    [(loser, loser_lines)] = losers
    [(winner, winner_lines)] = [r for r in racers if r[0] is not loser]
    winner_lines.wait_for("innerloop: intercepting", 60)
    said = loser_lines.text()
    print(f"\nthe loser said:\n{said}")
    assert loser.returncode == 1
    errors = [ln for ln in said.splitlines() if "already intercepted by" in ln]
    assert len(errors) == 1, said
    assert "Traceback" not in said and "WARNING" not in said, said

    assert set(sources(cluster.load_via_exec(namespace, url(cluster, namespace), count=20))) \
        == {"local"}, "the winner's intercept works: the loser undid nothing of it"
    assert "lost" not in winner_lines.text(), winner_lines.text()
    assert winner.poll() is None, winner_lines.text()

    assert laptop.stop(winner) == 0
    result = laptop.run("uninstall", "echo", "-n", namespace, timeout=240)
    assert result.returncode == 0, result.stdout
    assert_same(before, namespace_snapshot(cluster, namespace))
