"""Test-side handle on a real cluster: kubectl, applying the sample apps, waiting on rollouts
and Service endpoints, running load from a client pod. Used by the e2e tests (the ``cluster``
fixture), the benchmarks and the demo; works on the testbed and on any cluster named by
INNERLOOP_TEST_KUBECONFIG.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.sample import manifests
from tools.wait import poll_until

Record = dict[str, Any]
REPO_ROOT = Path(__file__).resolve().parents[1]


def run_testbed(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `python -m tools.testbed ARGS` from the repo (its progress goes to our stderr)."""
    return subprocess.run(
        [sys.executable, "-m", "tools.testbed", *args],
        cwd=REPO_ROOT,
        check=check,
        stdout=subprocess.PIPE,
        text=True,
        timeout=1800,
    )


def parse_answer(body: str) -> dict[str, str]:
    """'pod=a pid=1 path=/x ...' -> {"pod": "a", "pid": "1", "path": "/x", ...}."""
    return dict(part.split("=", 1) for part in body.split() if "=" in part)


@dataclass
class LoadResult:
    """The JSON lines printed by tools/sample/load.py."""

    records: list[Record]
    summary: Record

    @classmethod
    def parse(cls, output: str) -> LoadResult:
        lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        summaries = [r for r in lines if r.get("summary")]
        if len(summaries) != 1:
            raise AssertionError(f"load client output has no summary line:\n{output[-2000:]}")
        return cls([r for r in lines if not r.get("summary")], summaries[0])

    @property
    def failures(self) -> list[Record]:
        return [r for r in self.records if not 200 <= r.get("status", 0) < 300]

    @property
    def pods(self) -> set[str]:
        """Pod names that answered."""
        return {parse_answer(r["body"])["pod"] for r in self.records if r.get("status") == 200}


@dataclass
class Cluster:
    """A real cluster reached through ``kubeconfig``."""

    kubeconfig: Path
    started: bool
    """This test session started the testbed (and so stops it at the end)."""
    testbed: bool
    """It is the local testbed: the host reaches ClusterIPs and the developer netns exists."""
    kubectl_bin: str = field(default_factory=lambda: shutil.which("kubectl") or "kubectl")

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [self.kubectl_bin, *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}"
            )
        return proc

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def apply(self, namespace: str, objects: Iterable[manifests.Manifest]) -> None:
        self.kubectl(
            "-n", namespace, "apply", "-f", "-", input=json.dumps(manifests.as_list(list(objects)))
        )

    def wait_rollout(self, namespace: str, workload: str, timeout: float = 120) -> None:
        """``workload`` like "deployment/echo" or "statefulset/echo-sts"."""
        self.kubectl(
            "-n",
            namespace,
            "rollout",
            "status",
            workload,
            f"--timeout={timeout:.0f}s",
            timeout=timeout + 10,
        )

    def ready_endpoints(self, namespace: str, service: str) -> list[str]:
        """IPs of the Service's ready endpoints (from its EndpointSlices)."""
        slices = self.kubectl_json(
            "-n", namespace, "get", "endpointslices", "-l", f"kubernetes.io/service-name={service}"
        )
        return sorted(
            ip
            for s in slices["items"]
            for ep in s.get("endpoints") or []
            if (ep.get("conditions") or {}).get("ready")
            for ip in ep["addresses"]
        )

    def wait_endpoints(
        self, namespace: str, service: str, count: int, timeout: float = 60
    ) -> list[str]:
        """Poll until the Service has exactly ``count`` ready endpoints."""
        ips: list[str] = []

        def counted() -> bool:
            nonlocal ips
            ips = self.ready_endpoints(namespace, service)
            return len(ips) == count

        poll_until(counted, f"service {namespace}/{service} to have {count} ready endpoints",
                   timeout, interval=0.2)
        return ips

    def cluster_ip(self, namespace: str, service: str) -> str:
        service_obj = self.kubectl_json("-n", namespace, "get", "service", service)
        return str(service_obj["spec"]["clusterIP"])

    def pods(self, namespace: str, app: str) -> list[str]:
        """Names of the Running, not-terminating pods labelled app=<app>."""
        listing = self.kubectl_json("-n", namespace, "get", "pods", "-l", f"app={app}")
        return sorted(
            p["metadata"]["name"]
            for p in listing["items"]
            if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
        )

    def wait_service_rules(
        self, namespace: str, service: str, pods: set[str], timeout: float = 30
    ) -> None:
        """On the testbed, poll the ClusterIP from the host until every pod has answered once:
        kube-proxy writes its rules a moment after the endpoints turn ready."""
        if not self.testbed:
            return
        url = f"http://{self.cluster_ip(namespace, service)}/wait-for-rules"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        seen: set[str] = set()

        def every_pod_answered() -> bool:
            try:
                with opener.open(url, timeout=1) as resp:
                    seen.add(parse_answer(resp.read().decode())["pod"])
            except OSError:
                pass
            return seen == pods

        poll_until(every_pod_answered, f"{url} to answer from each of {sorted(pods)}", timeout,
                   interval=0.02)

    def deploy_echo(
        self, namespace: str, replicas: int = 2, statefulset: bool = False
    ) -> list[str]:
        """Apply the echo sample, wait for its rollout and its Service; returns its pod names."""
        if statefulset:
            name, objects = "echo-sts", manifests.echo_statefulset_objects(replicas=replicas)
            workload = f"statefulset/{name}"
        else:
            name, objects = "echo", manifests.echo_objects(replicas=replicas)
            workload = f"deployment/{name}"
        self.apply(namespace, objects)
        self.wait_rollout(namespace, workload)
        self.wait_endpoints(namespace, name, replicas)
        pods = self.pods(namespace, name)
        assert len(pods) == replicas, pods
        self.wait_service_rules(namespace, name, set(pods))
        return pods

    def start_client(self, namespace: str, name: str = "client") -> str:
        """An idle client pod with load.py at /client/load.py; returns its name once Ready."""
        self.apply(namespace, [manifests.load_code(), manifests.client_pod(name)])
        self.kubectl(
            "-n",
            namespace,
            "wait",
            f"pod/{name}",
            "--for=condition=Ready",
            "--timeout=90s",
            timeout=100,
        )
        return name

    def load_via_exec(
        self,
        namespace: str,
        url: str,
        *,
        count: int | None = None,
        duration: float | None = None,
        rate: float = 50,
        client: str = "client",
        timeout: float = 2.0,
    ) -> LoadResult:
        """Run load.py inside the client pod with `kubectl exec` and parse its lines."""
        args = [url, "--rate", str(rate), "--timeout", str(timeout)]
        args += ["--count", str(count)] if count is not None else []
        args += ["--duration", str(duration)] if duration is not None else []
        proc = self.kubectl(
            "-n",
            namespace,
            "exec",
            client,
            "--",
            "python3",
            "/client/load.py",
            *args,
            check=False,
            timeout=(duration or 0) + (count or 0) / rate + 60,
        )
        if proc.returncode not in (0, 1):  # 1 = some requests failed: that is data
            raise AssertionError(f"load client failed ({proc.returncode}): {proc.stderr}")
        return LoadResult.parse(proc.stdout)

    def start_load_pod(
        self,
        namespace: str,
        name: str,
        url: str,
        *,
        duration: float,
        rate: float = 50,
        timeout: float = 2.0,
    ) -> None:
        """Start a one-shot client pod sending steady load for ``duration`` seconds."""
        args = [url, "--rate", str(rate), "--duration", str(duration), "--timeout", str(timeout)]
        self.apply(namespace, [manifests.load_code(), manifests.client_pod(name, args)])

    def collect_load_pod(self, namespace: str, name: str, timeout: float = 120) -> LoadResult:
        """Wait for a load pod to finish and parse its output (`kubectl logs`)."""
        poll_until(lambda: self._pod_phase(namespace, name) in ("Succeeded", "Failed"),
                   f"load pod {name} to finish", timeout, interval=0.5)
        return LoadResult.parse(self.kubectl("-n", namespace, "logs", name).stdout)

    def wait_load_pod_sending(self, namespace: str, name: str, answered: int = 1,
                              timeout: float = 90) -> None:
        """Wait until a load pod has printed ``answered`` request records: it is sending."""

        def records() -> int:
            logs = self.kubectl("-n", namespace, "logs", name, check=False)
            return sum('"seq"' in line for line in logs.stdout.splitlines())

        poll_until(lambda: records() >= answered, f"load pod {name} to send", timeout,
                   interval=0.2)

    def _pod_phase(self, namespace: str, name: str) -> str | None:
        phase: str | None = self.kubectl_json("-n", namespace, "get", "pod", name)["status"].get(
            "phase")
        return phase

    def api_client(self) -> Any:
        """A `kubernetes` ApiClient for this cluster (imported lazily: only e2e tests need it)."""
        from kubernetes import config

        path = str(self.kubeconfig)
        return config.new_client_from_config(config_file=path)  # type: ignore[no-untyped-call]
