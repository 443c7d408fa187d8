"""Sending the echo Service's traffic and reading a load run: who answered when, what failed,
when routing came back after a fault."""

from __future__ import annotations

from dataclasses import dataclass

from tools.cluster import Cluster, LoadResult, Record, parse_answer
from tools.sample import manifests


def url(cluster: Cluster, namespace: str, service: str = "echo", path: str = "/probe") -> str:
    """A Service's URL by its ClusterIP, for a client pod's requests."""
    return f"http://{cluster.cluster_ip(namespace, service)}{path}"


def answered(result: LoadResult) -> list[Record]:
    """Answered requests in send-time order."""
    return sorted((r for r in result.records if "body" in r), key=lambda r: r["t"])


def served_by(record: Record) -> str:
    """'local' or the pod's name."""
    return parse_answer(record["body"])["pod"]


def sources(result: LoadResult) -> list[str]:
    """Who answered ('local' or the pod's name), per answered request, in send order."""
    ok = sorted((r for r in result.records if "body" in r), key=lambda r: r["seq"])
    return [served_by(r) for r in ok]


@dataclass
class FaultOutcome:
    """A steady load run read around a fault at ``start`` (epoch seconds) that ended at ``end``."""

    failures: int
    failed_at: list[float]
    """Send times of the failed requests, in seconds after the fault began."""
    local_during: int
    """Requests sent while the fault lasted (from 2.5 s after it began) answered by the laptop."""
    cluster_during: int
    resumed_after: float | None
    """Seconds from the fault's end to the first request answered locally after it."""

    def line(self, what: str) -> str:
        resumed = "never" if self.resumed_after is None else f"{self.resumed_after:.2f} s"
        return (f"\n{what}: {self.failures} failed requests "
                f"(at {[round(t, 1) for t in self.failed_at]} s); during the fault "
                f"{self.cluster_during} answered by the cluster, {self.local_during} locally; "
                f"local again {resumed} after it ended")


def outcome(result: LoadResult, start: float, end: float) -> FaultOutcome:
    during = [r for r in answered(result) if start + 2.5 < r["t"] < end]
    after = [r["t"] for r in answered(result) if r["t"] >= end and served_by(r) == "local"]
    return FaultOutcome(
        failures=len(result.failures),
        failed_at=sorted(round(f["t"] - start, 2) for f in result.failures),
        local_during=sum(served_by(r) == "local" for r in during),
        cluster_during=sum(served_by(r) != "local" for r in during),
        resumed_after=after[0] - end if after else None,
    )


def start_retrying_load_pod(cluster: Cluster, namespace: str, name: str, url: str, *,
                            duration: float, rate: float = 50, timeout: float = 5.0,
                            retry_refused: int = 20) -> None:
    """`Cluster.start_load_pod` for callers that retry a refused connection (load.py's
    --retry-refused), as clients behind a Service do during a rollout."""
    args = [url, "--rate", str(rate), "--duration", str(duration), "--timeout", str(timeout),
            "--retry-refused", str(retry_refused)]
    cluster.apply(namespace, [manifests.load_code(), manifests.client_pod(name, args)])
