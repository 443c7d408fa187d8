"""The real system on the testbed: latency, throughput and intercept start/leave, in one run.

    .venv/bin/python -m bench.cluster_bench [--requests 300] [--rate 50] [--json out.json]

The machine is shared and noisy, so every number is meant to be read against another number of
the SAME run: each table row is measured interleaved with its baseline (request by request for
two pod-side targets; block by block between pod-side and laptop-side clients).

Setup (its own namespace, deleted at the end): the echo app (tools/sample/echo.py) as a 1-replica
Deployment behind two Services that select the same pod — ``bench`` (the one innerloop
intercepts) and ``bench-direct`` (targetPort 8080: always straight to the app) — plus a client
pod running bench/probe.py. The laptop side (the `innerloop` CLI, a local copy of the bench
app, and bench/laptop_probe.py for the raw port-forward baselines) runs in the developer netns,
which reaches only the API server.

Rows:
  a  pod → ClusterIP → app                               (bench-direct; baseline of every phase)
  b  pod → ClusterIP → agent → app                       (agent injected, not intercepted)
  c  pod → ClusterIP → agent → tunnel → laptop app       (intercepted)
  d  laptop → one long-lived port-forward → app pod      (HTTP keep-alive on one connection)
  e  laptop → a new port-forward WebSocket per request   (TLS + upgrade + kubelet dial)
  f  laptop → `kubectl port-forward`, new TCP connection per request
  g  laptop → cluster network (hook, forwarder) → tunnel DIAL → agent → ClusterIP → app pod
     (the outbound path of issue 8: the probe is the command of an intercept; d4/e4 are its
     raw port-forward baselines, from the same process, interleaved block by block)
"new" rows open a TCP connection per request (as most Service callers do), "keep-alive" rows
reuse one HTTP/1.1 connection.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import queue
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from tools.cluster import Cluster
from tools.laptop import Laptop, Lines
from tools.sample import ECHO_APP, manifests
from tools.testbed.config import BIN_DIR, KUBECONFIG
from tools.testbed.netns import dev_netns_popen
from tools.wait import poll_until

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
APP_PORT = 8080
LOCAL_PORTS = (20000, 29999)
"""The local app and kubectl's port-forward listen on two random ports of this range in the
shared developer netns, so two benches (or a bench and a test) never collide."""
Json = dict[str, Any]


# --- statistics ------------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class Row:
    key: str
    path: str
    samples: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    late: int = 0

    def add(self, samples: list[float], errors: list[str], late: int = 0) -> None:
        self.samples += samples
        self.errors += errors
        self.late += late

    def p(self, q: float) -> float:
        return percentile(self.samples, q) if self.samples else float("nan")

    def summary(self) -> Json:
        return {"key": self.key, "path": self.path, "n": len(self.samples),
                "p50": self.p(50), "p90": self.p(90), "p99": self.p(99),
                "errors": len(self.errors), "first_errors": self.errors[:3], "late": self.late}


@dataclass
class Results:
    meta: Json = field(default_factory=dict)
    latency: list[Json] = field(default_factory=list)
    ratios: list[Json] = field(default_factory=list)
    bulk: list[Json] = field(default_factory=list)
    lifecycle: list[Json] = field(default_factory=list)
    loopback: list[str] = field(default_factory=list)
    samples: dict[str, list[float]] = field(default_factory=dict)
    """Every latency sample (ms) of each row, for the plots."""
    agent: Json = field(default_factory=dict)
    """Agent memory (RSS from /proc in its container) and the 1,000-connection run."""
    tunnel: Json = field(default_factory=dict)
    """bench/tunnel_bench.py's loopback measures of the same run (head-of-line, 1,000
    connections), where it offers them."""


# --- processes that answer JSON lines -------------------------------------------------------


class JsonPipe:
    """A probe process (bench/probe.py protocol): one JSON command in, one JSON line out."""

    def __init__(self, proc: subprocess.Popen[str], name: str) -> None:
        self.proc, self.name = proc, name
        self._answers: queue.Queue[Json | None] = queue.Queue()
        self._noise: list[str] = []
        assert proc.stdout is not None
        threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True).start()
        self.answer(timeout=60)  # {"ready": true}

    def _pump(self, pipe: IO[str]) -> None:
        for line in pipe:
            if line.startswith("{"):
                self._answers.put(json.loads(line))
            else:
                self._noise.append(line.rstrip())
        self._answers.put(None)

    def send(self, command: Json) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def answer(self, timeout: float) -> Json:
        try:
            reply = self._answers.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"{self.name}: no answer in {timeout:.0f} s") from None
        if reply is None:
            raise RuntimeError(f"{self.name} exited:\n" + "\n".join(self._noise[-20:]))
        if "failed" in reply:
            raise RuntimeError(f"{self.name}: {reply['failed']}")
        return reply

    def ask(self, command: Json, timeout: float = 300) -> Json:
        self.send(command)
        return self.answer(timeout)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


# --- the cluster side ------------------------------------------------------------------------


def bench_objects() -> list[manifests.Manifest]:
    code = manifests.configmap("bench-code", {
        "app.py": ECHO_APP.read_text(), "probe.py": (BENCH / "probe.py").read_text()})
    mount = [{"name": "code", "mountPath": "/bench", "readOnly": True}]
    volumes = [{"name": "code", "configMap": {"name": "bench-code"}}]
    app = {
        "name": "app", "image": manifests.PYTHON_IMAGE, "imagePullPolicy": "Never",
        "command": ["python3", "-u", "/bench/app.py"],
        "ports": [{"name": "http", "containerPort": APP_PORT}],
        "env": [{"name": "PORT", "value": str(APP_PORT)},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"},
                           "periodSeconds": 1, "failureThreshold": 1},
        "volumeMounts": mount,
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "bench", "labels": {"app": "bench"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "bench"}},
                 "template": {"metadata": {"labels": {"app": "bench"}},
                              "spec": {"terminationGracePeriodSeconds": 5,
                                       "containers": [app], "volumes": volumes}}},
    }
    idle = ("import signal, sys; signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); "
            "signal.pause()")
    probe = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe"},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
            "name": "probe", "image": manifests.PYTHON_IMAGE, "imagePullPolicy": "Never",
            "command": ["python3", "-c", idle], "volumeMounts": mount}], "volumes": volumes},
    }
    return [code, deployment, probe,
            manifests.echo_service("bench", APP_PORT, app="bench"),
            manifests.echo_service("bench-direct", APP_PORT, app="bench")]


def testbed_up(cluster: Cluster) -> bool:
    """The API answers and a node is Ready."""
    if cluster.kubectl("get", "--raw", "/readyz", check=False, timeout=10).returncode != 0:
        return False
    nodes = cluster.kubectl("get", "nodes", "-o", "json", check=False, timeout=10)
    return nodes.returncode == 0 and any(
        c["type"] == "Ready" and c["status"] == "True"
        for n in json.loads(nodes.stdout)["items"]
        for c in n["status"].get("conditions", [])
    )


def wait_for_testbed(cluster: Cluster, timeout: float = 900) -> None:
    """Someone may be cycling the shared testbed: wait until the API answers and the node is
    Ready (never start or stop it from here)."""

    def up() -> bool:
        if testbed_up(cluster):
            return True
        print("waiting for the testbed to be up ...", file=sys.stderr)
        return False

    try:
        poll_until(up, "the testbed", timeout, interval=10)
    except AssertionError:
        raise SystemExit("the testbed is not up (python -m tools.testbed status)") from None


# --- the run ---------------------------------------------------------------------------------


class TreeLaptop(Laptop):
    """The laptop, optionally running innerloop from another source tree (``--tree``)."""

    def __init__(self, cluster: Cluster, tree: Path | None) -> None:
        super().__init__(cluster)
        self.tree = tree

    def env(self, **extra: str) -> dict[str, str]:
        if self.tree is not None:
            extra = {"PYTHONPATH": str(self.tree), **extra}
        env = super().env(**extra)
        # As an installed innerloop starts: from bytecode (kept out of the source tree), even
        # where the shell says not to write it (compiling every module costs ~0.2 s a start).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.setdefault("PYTHONPYCACHEPREFIX", str(Path.home() / ".cache/innerloop/bench-pyc"))
        return env


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cluster = Cluster(KUBECONFIG, started=False, testbed=True,
                               kubectl_bin=str(BIN_DIR / "kubectl"))
        self.laptop = TreeLaptop(self.cluster, args.tree)
        self.ns = f"bench-{uuid.uuid4().hex[:6]}"
        self.local_port, self.kubectl_port = random.sample(range(*LOCAL_PORTS), 2)
        self.results = Results()
        self.rows: dict[str, Row] = {}
        self.pipes: list[JsonPipe] = []
        self.intercept: tuple[subprocess.Popen[str], Lines] | None = None
        self._ips: dict[str, str] = {}

    def log(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    def row(self, key: str, path: str) -> Row:
        return self.rows.setdefault(key, Row(key, path))

    def url(self, service: str) -> str:
        """By ClusterIP: a DNS lookup per new connection would be measured too."""
        if service not in self._ips:
            self._ips[service] = self.cluster.cluster_ip(self.ns, service)
        return f"http://{self._ips[service]}/"

    def pod(self) -> str:
        [pod] = self.cluster.pods(self.ns, "bench")
        return pod

    # -- setup and teardown --

    def setup(self) -> None:
        wait_for_testbed(self.cluster)
        # Bytecode in place before the first timed start, as after an install.
        warm_up = "import innerloop.cli, innerloop.intercepts.manager, innerloop.clusternet.network"
        for tree in self.args.trees or [self.args.tree]:
            self.laptop.tree = tree
            subprocess.run([sys.executable, "-c", warm_up], env=self.laptop.env(), check=True)
        self.cluster.kubectl("create", "namespace", self.ns)
        self.cluster.kubectl("wait", "serviceaccount/default", "-n", self.ns, "--for=create",
                             "--timeout=30s")
        self.cluster.apply(self.ns, bench_objects())
        self.cluster.wait_rollout(self.ns, "deployment/bench")
        self.cluster.wait_endpoints(self.ns, "bench", 1)
        self.cluster.wait_endpoints(self.ns, "bench-direct", 1)
        self.cluster.kubectl("-n", self.ns, "wait", "pod/probe", "--for=condition=Ready",
                             "--timeout=90s", timeout=100)
        local_app = self.laptop.popen([sys.executable, str(ECHO_APP)],
                                      PORT=str(self.local_port), HOST="127.0.0.1")
        local_app[1].wait_for("listening", 15)
        self.pod_probe = self._pipe("pod probe", subprocess.Popen(
            [self.cluster.kubectl_bin, "-n", self.ns, "exec", "-i", "probe", "--",
             "python3", "-u", "/bench/probe.py"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=self.cluster.env()))
        if not self.args.startup:  # the raw port-forward rows only
            self.laptop_probe = self._pipe("laptop probe", dev_netns_popen(
                [sys.executable, "-m", "bench.laptop_probe", "--kubeconfig",
                 str(self.cluster.kubeconfig), "--namespace", self.ns],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
                env=self.laptop.env()))
        # kube-proxy's rules are in place once both Services answer.
        for service in ("bench", "bench-direct"):
            self.pod_probe.ask({"op": "until", "url": self.url(service), "contains": "pod=",
                                "timeout": 30})

    def _pipe(self, name: str, proc: subprocess.Popen[str]) -> JsonPipe:
        pipe = JsonPipe(proc, name)
        self.pipes.append(pipe)
        return pipe

    def teardown(self) -> None:
        if self.intercept is not None:
            self.laptop.stop(self.intercept[0])
        for pipe in self.pipes:
            pipe.close()
        self.laptop.close()
        self.cluster.kubectl("delete", "namespace", self.ns, "--wait=false", check=False)

    # -- measurements --

    def pod_latency(self, keys: tuple[str, str], keepalive: bool, count: int) -> None:
        """Two pod-side rows, request by request interleaved: the first through bench-direct,
        the second through bench."""
        urls = [self.url("bench-direct"), self.url("bench")]
        reply = self.pod_probe.ask({"op": "latency", "targets": urls, "count": count,
                                    "rate": self.args.rate, "keepalive": keepalive})
        for key, url in zip(keys, urls):
            self.rows[key].add(reply["ms"][url], reply["errors"][url], reply["late"][url])

    def laptop_latency(self, key: str, mode: str, count: int, rate: float | None = None) -> None:
        reply = self.laptop_probe.ask({
            "op": "latency", "mode": mode, "pod": self.pod(), "port": APP_PORT, "count": count,
            "rate": rate or self.args.rate, "tcp_port": self.kubectl_port})
        self.rows[key].add(reply["ms"], reply["errors"], reply["late"])

    def blocks(self, steps: list[Callable[[int], None]]) -> None:
        """Run every step once per block: slow drift of the machine spreads over all rows."""
        per_block = math.ceil(self.args.requests / self.args.blocks)
        for block in range(self.args.blocks):
            self.log(f"  block {block + 1}/{self.args.blocks}")
            for step in steps:
                step(per_block)

    def bulk(self, label: str, direction: str, run: Any) -> None:
        rates = []
        for _ in range(self.args.bulk_reps):
            reply = run()
            rates.append(reply["bytes"] / reply["seconds"] / 1e6)
        self.results.bulk.append({"path": label, "direction": direction,
                                  "MB/s": statistics.median(rates), "runs": rates})
        self.log(f"  {label}: {statistics.median(rates):.1f} MB/s")

    def pod_bulk(self, service: str, method: str) -> Json:
        return self.pod_probe.ask({"op": "bulk", "url": self.url(service),
                                   "bytes": self.args.bulk_bytes, "method": method})

    def laptop_bulk(self, method: str) -> Json:
        return self.laptop_probe.ask({"op": "bulk", "pod": self.pod(), "port": APP_PORT,
                                      "bytes": self.args.bulk_bytes, "method": method})

    def start_intercept(self, kind: str) -> None:
        """Command → active line, and → the first request the client pod saw answered by the
        laptop (it polls every 20 ms from the moment the command starts)."""
        t0 = time.time()
        proc, lines = self.laptop.innerloop("intercept", "bench", "-n", self.ns,
                                            "--port", f"{self.local_port}:80")
        self.intercept = (proc, lines)
        self.pod_probe.send({"op": "until", "url": self.url("bench"), "contains": "pod=local",
                             "timeout": 180})
        line = lines.wait_for("innerloop: intercepting", 180)
        active = time.time() - t0
        cpu = _cpu_seconds(proc.pid)
        routed = self.pod_probe.answer(200)
        ready = re.search(r"ready in ([0-9.]+) s", line)
        self.results.lifecycle.append({
            "what": f"{kind} intercept start", "to_active_s": active,
            "cli_ready_s": float(ready.group(1)) if ready else None,
            "to_first_routed_s": routed["t"] - t0, "failed_polls": routed["errors"],
            "polls": routed["tries"], "rollout": "injecting the agent" in lines.text(),
            "cli_cpu_s": cpu, "load": os.getloadavg()[0]})
        self.log(f"  {kind} start: active {active:.2f} s, first routed {routed['t'] - t0:.2f} s,"
                 f" {routed['errors']} failed polls")

    def leave(self, kind: str) -> None:
        """Ctrl-C → the CLI exits, and → the first request the cluster answers again."""
        assert self.intercept is not None
        proc, lines = self.intercept
        self.pod_probe.send({"op": "until", "url": self.url("bench"), "contains": "pod=local",
                             "present": False, "timeout": 60})
        time.sleep(0.2)  # the probe is polling (and seeing the laptop) before we leave
        t0 = time.time()
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(60)
        exited = time.time() - t0
        back = self.pod_probe.answer(60)
        self.intercept = None
        if rc != 0:
            raise RuntimeError(f"innerloop intercept exited {rc}:\n{lines.text()[-3000:]}")
        self.results.lifecycle.append({
            "what": f"leave ({kind})", "cli_exit_s": exited, "to_cluster_s": back["t"] - t0,
            "failed_polls": back["errors"], "polls": back["tries"]})
        self.log(f"  leave: CLI exit {exited:.2f} s, cluster serves again "
                 f"{back['t'] - t0:.2f} s, {back['errors']} failed polls")

    def settle(self) -> None:
        """Before a timed rollout or cold start: no replica left terminating, and kube-proxy
        past its minSyncPeriod (1 s) since the last endpoint change, so every one starts from
        the same state (right after another rollout a terminating pod still answered the
        first poll, and kube-proxy's next sync was up to 1 s away)."""
        poll_until(lambda: len(self.cluster.kubectl_json(
            "-n", self.ns, "get", "pods", "-l", "app=bench")["items"]) == 1,
            "the old replicas gone", 120, interval=0.2)
        time.sleep(1.2)

    def bare_rollout(self) -> None:
        """The same workload rolled without innerloop (`kubectl rollout restart`): command →
        the first request a new pod answers through the Service. A cold intercept is compared
        with it."""
        self.settle()
        old = self.pod()
        self.pod_probe.send({"op": "until", "url": self.url("bench-direct"),
                             "contains": f"pod={old} ", "present": False, "timeout": 180})
        t0 = time.time()
        self.cluster.kubectl("-n", self.ns, "rollout", "restart", "deployment/bench")
        first = self.pod_probe.answer(200)
        self.cluster.wait_rollout(self.ns, "deployment/bench")
        poll_until(lambda: len(self.cluster.pods(self.ns, "bench")) == 1, "one bench pod", 60,
                   interval=0.2)
        self.results.lifecycle.append({
            "what": "bare rollout (kubectl rollout restart)", "to_first_new_pod_s": first["t"] - t0,
            "failed_polls": first["errors"], "polls": first["tries"]})
        self.log(f"  bare rollout: a new pod answers after {first['t'] - t0:.2f} s")

    def agent_rss_mib(self) -> float:
        """The agent's resident memory, read from /proc in its container."""
        code = ("import os\nfor p in os.listdir('/proc'):\n"
                "  if not p.isdigit() or int(p) == os.getpid():\n    continue\n  try:\n"
                "    argv = open(f'/proc/{p}/cmdline', 'rb').read().split(b'\\0')\n"
                "  except OSError:\n    continue\n"
                "  if any(a.endswith(b'/agent.pyz') for a in argv):\n"
                "    print([l for l in open(f'/proc/{p}/status') if l.startswith('VmRSS')][0])")
        out = self.cluster.kubectl("-n", self.ns, "exec", self.pod(), "-c", "innerloop-agent",
                                   "--", "python3", "-c", code, timeout=30).stdout
        return int(out.split()[1]) / 1024

    def concurrency(self) -> None:
        """1,000 caller connections at once through the intercept (client pod → Service →
        agent → tunnel → laptop app), then 10,000 requests over them; agent RSS meanwhile."""
        conns, requests = self.args.conns, self.args.conn_requests
        opened = self.pod_probe.ask({"op": "hold_open", "url": self.url("bench"),
                                     "conns": conns}, timeout=600)
        rss = [self.agent_rss_mib()]
        done = self.pod_probe.ask({"op": "hold_requests", "requests": requests}, timeout=900)
        rss.append(self.agent_rss_mib())
        self.pod_probe.ask({"op": "hold_close"})
        self.results.agent.update({
            "conns": conns, "requests": requests, "opened": opened["opened"],
            "open_errors": opened["errors"], "request_errors": done["errors"],
            "first_errors": opened["first_errors"] + done["first_errors"],
            "answered_by": done["answered_by"], "open_s": opened["seconds"],
            "requests_s": done["seconds"], "rss_1k_mib": max(rss), "rss_1k_samples": rss})
        self.log(f"  {conns} connections: {opened['errors']} + {done['errors']} errors, "
                 f"{requests} requests in {done['seconds']:.1f} s, agent RSS {max(rss):.1f} MiB")

    def kill_laptop(self) -> None:
        """SIGKILL to the CLI (a crashed laptop) → the first request the cluster answers."""
        assert self.intercept is not None
        proc, _ = self.intercept
        self.pod_probe.send({"op": "until", "url": self.url("bench"), "contains": "pod=local",
                             "present": False, "timeout": 60})
        time.sleep(0.2)
        t0 = time.time()
        proc.kill()
        proc.wait(30)
        back = self.pod_probe.answer(60)
        self.intercept = None
        self.results.lifecycle.append({
            "what": "laptop killed (SIGKILL)", "to_cluster_s": back["t"] - t0,
            "failed_polls": back["errors"], "polls": back["tries"]})
        self.log(f"  killed: cluster serves again {back['t'] - t0:.2f} s, {back['errors']} "
                 "failed polls")

    def outbound(self) -> None:
        """Phase 4: the laptop probe launched by `innerloop intercept … -- probe`, so its
        connections to `bench-direct` leave through the tunnel's DIAL path from the bench pod;
        its raw port-forwards to the same pod are the baselines, interleaved."""
        log_path = Path(self.laptop.runtime_dir) / "outbound-intercept.log"
        with log_path.open("w") as log, _saying(log_path):
            probe = self._pipe("outbound probe", dev_netns_popen(
                [sys.executable, "-m", "innerloop", "intercept", "bench", "-n", self.ns,
                 "--port", f"{self.local_port}:80", "--allow-port-in-use", "--", sys.executable, "-m", "bench.laptop_probe",
                 "--kubeconfig", str(self.cluster.kubeconfig), "--namespace", self.ns],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, cwd=REPO,
                env=self.laptop.env()))
        dial = {"host": "bench-direct", "tcp_port": 80}

        def latency(key: str, mode: str, n: int, rate: float | None = None) -> None:
            reply = probe.ask({"op": "latency", "mode": mode, "pod": self.pod(),
                               "port": APP_PORT, "count": n, "rate": rate or self.args.rate,
                               **dial})
            self.rows[key].add(reply["ms"], reply["errors"], reply["late"])

        self.blocks([
            lambda n: latency("g", "tcp_new", n),
            lambda n: latency("g/ka", "tcp_keepalive", n),
            lambda n: latency("d4", "pf_keepalive", n),
            lambda n: latency("e4", "pf_new", n, self.args.rate / 2),
        ])
        for method, direction, what in [("GET", "cluster → laptop", "response from the pod"),
                                        ("POST", "laptop → cluster", "request body to the pod")]:
            for label, extra in [(f"outbound DIAL: {what}", dial),
                                 (f"phase 4 raw port-forward: {what}", {})]:
                command = {"op": "bulk", "pod": self.pod(), "port": APP_PORT, "method": method,
                           "bytes": self.args.bulk_bytes, **extra}
                self.bulk(label, direction, lambda c=command: probe.ask(c))
        probe.close()  # the probe ends, so the intercept leaves

    def kubectl_port_forward(self) -> subprocess.Popen[str]:
        proc, lines = self.laptop.popen([self.cluster.kubectl_bin, "port-forward", "-n", self.ns,
                                         f"pod/{self.pod()}", f"{self.kubectl_port}:{APP_PORT}"])
        lines.wait_for("Forwarding from", 30)
        return proc

    def loopback(self) -> None:
        env = {**os.environ, **({"PYTHONPATH": str(self.args.tree)} if self.args.tree else {})}
        out = subprocess.run([sys.executable, "-m", "bench.tunnel_bench", "--requests",
                              str(self.args.loopback_requests)], cwd=REPO, check=True,
                             capture_output=True, text=True, timeout=300, env=env).stdout
        self.results.loopback = out.splitlines()
        for name, call in [("hol_ratio", "measure_hol()"),
                           ("concurrency_errors", "measure_concurrency(1000, 10000)")]:
            done = subprocess.run(
                [sys.executable, "-c", f"import bench.tunnel_bench as t; print(t.{call})"], env=env,
                cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
            lines = done.stdout.split()
            self.results.tunnel[name] = float(lines[-1]) if done.returncode == 0 and lines \
                else None
            if self.results.tunnel[name] is None:
                self.results.tunnel[f"{name}_why"] = (done.stderr.strip().splitlines()
                                                      or ["no output"])[-1]
            self.log(f"  loopback {name}: {self.results.tunnel[name]}")

    def uninstall(self) -> None:
        """Back to no agent (a cold start's precondition), with the tree measured last."""
        done = self.laptop.run("uninstall", "bench", "-n", self.ns, "--force", timeout=180)
        if done.returncode != 0:
            raise RuntimeError(f"innerloop uninstall exited {done.returncode}:\n{done.stdout}")
        poll_until(lambda: len(self.cluster.pods(self.ns, "bench")) == 1, "one bench pod", 60,
                   interval=0.2)

    def run_startup(self) -> Results:
        """`--startup`: only the start-up phases, `--rounds` times, each round once per tree of
        `--trees` (interleaved A/B in one namespace): the agent removed, a bare rollout, a cold
        intercept and its leave, the warm starts, one more killed."""
        started, trees = time.time(), self.args.trees or [self.args.tree]
        self.setup()
        self.log(f"namespace {self.ns} ready in {time.time() - started:.1f} s")
        for round_ in range(1, self.args.rounds + 1):
            for tree in trees:
                self.laptop.tree = tree
                first = len(self.results.lifecycle)
                self.log(f"round {round_}, tree {tree or 'installed'}")
                if round_ > 1 or tree is not trees[0]:
                    self.uninstall()
                for _ in range(self.args.bare_rollouts):
                    self.bare_rollout()
                self.settle()
                self.start_intercept("cold")
                self.leave("after cold start")
                for again in range(1, self.args.warm_starts + 1):
                    self.start_intercept(f"warm #{again}")
                    self.leave(f"after warm start #{again}")
                self.start_intercept("warm, then killed")
                self.kill_laptop()
                for event in self.results.lifecycle[first:]:
                    event.update(tree=str(tree or "installed"), round=round_)
        self.results.meta = {
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "seconds": time.time() - started,
            "load": _loadavg(), "trees": [str(t or "installed") for t in trees],
            "commit": _commit(self.args.tree), "startup": True, "rounds": self.args.rounds}
        return self.results

    def run(self) -> Results:
        if self.args.startup:
            return self.run_startup()
        rows = [
            ("a1", "phase 1 (no agent): pod → ClusterIP → app, new connection"),
            ("a'", "phase 1: pod → 2nd ClusterIP → app, new connection (A/A check)"),
            ("a2", "phase 2 (intercepted): pod → ClusterIP → app, new connection"),
            ("c", "phase 2: pod → ClusterIP → agent → tunnel → laptop, new connection"),
            ("a2/ka", "phase 2: pod → ClusterIP → app, keep-alive"),
            ("c/ka", "phase 2: pod → ClusterIP → agent → tunnel → laptop, keep-alive"),
            ("d", "phase 2: laptop → one port-forward → app, keep-alive"),
            ("e", "phase 2: laptop → new port-forward WebSocket per request → app"),
            ("f", "phase 2: laptop → kubectl port-forward, new TCP connection per request"),
            ("a3", "phase 3 (agent, no intercept): pod → ClusterIP → app, new connection"),
            ("b", "phase 3: pod → ClusterIP → agent → app, new connection"),
            ("a3/ka", "phase 3: pod → ClusterIP → app, keep-alive"),
            ("b/ka", "phase 3: pod → ClusterIP → agent → app, keep-alive"),
            ("g", "phase 4 (outbound): laptop → DIAL → agent → ClusterIP → app, new connection"),
            ("g/ka", "phase 4: laptop → tunnel DIAL → agent → ClusterIP → app, keep-alive"),
            ("d4", "phase 4: laptop → one port-forward → app, keep-alive"),
            ("e4", "phase 4: laptop → new port-forward WebSocket per request → app"),
        ]
        for key, path in rows:
            self.row(key, path)
        started, commit = time.time(), _commit(self.args.tree)
        self.setup()
        self.log(f"namespace {self.ns} ready in {time.time() - started:.1f} s; pod {self.pod()}")
        # Phase 1, no agent: two Services in front of the same app should measure the same.
        self.log("phase 1: no agent (A/A)")
        self.pod_latency(("a1", "a'"), False, self.args.requests)
        self.log("bare rollout (no innerloop)")
        for _ in range(self.args.bare_rollouts):  # one rollout is one noisy sample
            self.bare_rollout()
        self.log("cold intercept")
        self.settle()
        self.start_intercept("cold")
        self.results.agent["rss_idle_mib"] = self.agent_rss_mib()
        self.log(f"phase 2: intercepted; pod {self.pod()}")
        kubectl_pf = self.kubectl_port_forward()
        self.blocks([
            lambda n: self.pod_latency(("a2", "c"), False, n),
            lambda n: self.pod_latency(("a2/ka", "c/ka"), True, n),
            lambda n: self.laptop_latency("d", "pf_keepalive", n),
            # A new WebSocket per request often takes longer than 1/rate: half the rate.
            lambda n: self.laptop_latency("e", "pf_new", n, self.args.rate / 2),
            lambda n: self.laptop_latency("f", "tcp_new", n),
        ])
        self.laptop.stop(kubectl_pf)
        self.log("bulk")
        self.bulk("pod → app (in cluster)", "pod ← app", lambda: self.pod_bulk("bench-direct",
                                                                               "GET"))
        self.bulk("intercepted: response from the laptop", "laptop → cluster",
                  lambda: self.pod_bulk("bench", "GET"))
        self.bulk("raw port-forward: request body to the pod", "laptop → cluster",
                  lambda: self.laptop_bulk("POST"))
        self.bulk("intercepted: request body to the laptop", "cluster → laptop",
                  lambda: self.pod_bulk("bench", "POST"))
        self.bulk("raw port-forward: response from the pod", "cluster → laptop",
                  lambda: self.laptop_bulk("GET"))
        if self.args.conns:
            self.log(f"{self.args.conns} connections through the intercept")
            try:
                self.concurrency()
            except (RuntimeError, TimeoutError, subprocess.SubprocessError) as exc:
                # The rest of the run still counts; the JSON says what went wrong here.
                self.results.agent["failed"] = str(exc)[:2000]
                self.log(f"  failed: {exc}")
                with contextlib.suppress(RuntimeError, TimeoutError):
                    self.pod_probe.ask({"op": "hold_close"}, timeout=60)
        self.leave("after cold start")
        self.log("phase 3: agent present, not intercepted")
        self.blocks([
            lambda n: self.pod_latency(("a3", "b"), False, n),
            lambda n: self.pod_latency(("a3/ka", "b/ka"), True, n),
        ])
        self.bulk("pod → agent → app", "pod ← app", lambda: self.pod_bulk("bench", "GET"))
        self.log("warm intercept")
        self.start_intercept("warm")
        self.leave("after warm start")
        for again in range(2, self.args.warm_starts + 1):  # one start is one noisy sample
            self.start_intercept(f"warm #{again}")
            self.leave(f"after warm start #{again}")
        self.start_intercept("warm, then killed")
        self.kill_laptop()
        self.log("phase 4: outbound connections through the tunnel (DIAL)")
        self.outbound()
        self.log("loopback tunnel bench")
        self.loopback()
        self.results.latency = [r.summary() for r in self.rows.values()]
        self.results.samples = {k: r.samples for k, r in self.rows.items() if r.samples}
        self.results.ratios = ratios(self.rows, self.results.bulk)
        self.results.meta = {
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "seconds": time.time() - started,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
            "python": platform.python_version(), "requests": self.args.requests,
            "rate": self.args.rate, "blocks": self.args.blocks,
            "bulk_bytes": self.args.bulk_bytes, "bulk_reps": self.args.bulk_reps,
            "load": _loadavg(), "commit": commit, "tree": str(self.args.tree) if self.args.tree else None}
        return self.results


@contextlib.contextmanager
def _saying(log: Path) -> Iterator[None]:
    """A failure here ends with the CLI's own lines, which say why."""
    try:
        yield
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}\n{log.read_text()[-3000:]}") from exc


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU a process used so far (Linux /proc): the CLI's own work, which the
    machine's load does not stretch as it stretches wall time."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _commit(tree: Path | None = None) -> str:
    """The commit measured, marked when server/ has uncommitted changes; with ``--tree``, what
    the COMMIT file beside that tree says (`bench.run --commit` writes it)."""
    if tree is not None and (tree.parent / "COMMIT").exists():
        return (tree.parent / "COMMIT").read_text().strip()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                          capture_output=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "server"], cwd=REPO,
                           check=False).returncode
    return head + (" + uncommitted changes in server/" if dirty else "")


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def ratios(rows: dict[str, Row], bulk: list[Json]) -> list[Json]:
    """The comparisons the run is for: each a ratio of two rows measured together."""
    pairs = [
        ("b", "a3", "agent hop (not intercepted) vs straight to the app"),
        ("b/ka", "a3/ka", "agent hop, keep-alive"),
        ("c", "a2", "intercepted vs straight to the app"),
        ("c/ka", "a2/ka", "intercepted vs straight to the app, keep-alive"),
        ("c/ka", "d", "intercepted keep-alive vs raw port-forward keep-alive"),
        ("c", "d", "intercepted new connection vs a request on a warm port-forward"),
        ("c", "f", "intercepted new connection vs kubectl port-forward, new connection"),
        ("e", "d", "new port-forward per request vs a warm one"),
        ("a'", "a1", "A/A: two Services, same app (noise floor)"),
        ("g/ka", "d4", "outbound keep-alive: tunnel DIAL vs raw port-forward"),
        ("g", "e4", "outbound new connection: tunnel DIAL vs a new port-forward"),
        ("g", "d4", "outbound new connection vs a request on a warm port-forward"),
    ]
    out = []
    for top, bottom, meaning in pairs:
        t, b = rows[top], rows[bottom]
        if t.samples and b.samples:
            out.append({"ratio": f"{top} / {b.key}", "meaning": meaning,
                        "p50": t.p(50) / b.p(50), "p90": t.p(90) / b.p(90),
                        "p99": t.p(99) / b.p(99)})
    by_path = {b["path"]: b["MB/s"] for b in bulk}
    for top, bottom, meaning in [
        ("intercepted: response from the laptop", "raw port-forward: request body to the pod",
         "bulk laptop → cluster: intercepted vs raw port-forward"),
        ("intercepted: request body to the laptop", "raw port-forward: response from the pod",
         "bulk cluster → laptop: intercepted vs raw port-forward"),
        ("outbound DIAL: response from the pod", "phase 4 raw port-forward: response from the pod",
         "outbound bulk cluster → laptop: tunnel DIAL vs raw port-forward"),
        ("outbound DIAL: request body to the pod",
         "phase 4 raw port-forward: request body to the pod",
         "outbound bulk laptop → cluster: tunnel DIAL vs raw port-forward"),
    ]:
        if top in by_path and bottom in by_path:
            out.append({"ratio": "MB/s", "meaning": meaning,
                        "throughput": by_path[top] / by_path[bottom]})
    return out


def render(results: Results) -> str:
    """Markdown tables (the run's part of docs/benchmarks.md)."""
    m = results.meta
    lines = [(f"Run {m['date']} ({m['seconds']:.0f} s; {m['machine']}; load {m['load']}); "
             f"{m['requests']} requests per row at {m['rate']:g}/s in {m['blocks']} blocks"),
             "", "| row | path | n | p50 ms | p90 ms | p99 ms | errors | late |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in results.latency:
        if r["n"] or r["errors"]:
            lines.append(f"| {r['key']} | {r['path']} | {r['n']} | {r['p50']:.2f} | "
                         f"{r['p90']:.2f} | {r['p99']:.2f} | {r['errors']} | {r['late']} |")
    lines += ["", "| ratio | meaning | p50 | p90 | p99 |", "|---|---|---:|---:|---:|"]
    for r in results.ratios:
        if "throughput" in r:
            lines.append(f"| {r['ratio']} | {r['meaning']} | {r['throughput']:.2f} | | |")
        else:
            lines.append(f"| {r['ratio']} | {r['meaning']} | {r['p50']:.2f} | {r['p90']:.2f} | "
                         f"{r['p99']:.2f} |")
    mib = m["bulk_bytes"] / 2**20
    lines += ["", f"| bulk ({mib:g} MiB, median of {m['bulk_reps']}) | direction | MB/s |",
              "|---|---|---:|"]
    for b in results.bulk:
        lines.append(f"| {b['path']} | {b['direction']} | {b['MB/s']:.1f} |")
    lines += ["", "| lifecycle | s | detail |", "|---|---:|---|"]
    for e in results.lifecycle:
        if "to_first_new_pod_s" in e:
            lines.append(f"| {e['what']}: command → first request answered by a new pod | "
                         f"{e['to_first_new_pod_s']:.2f} | {e['failed_polls']} of {e['polls']} "
                         "polls failed |")
        elif "to_active_s" in e:
            lines.append(f"| {e['what']}: command → active | {e['to_active_s']:.2f} | "
                         f"CLI says ready in {e['cli_ready_s']} s; rollout: {e['rollout']} |")
            lines.append(f"| {e['what']}: command → first routed request | "
                         f"{e['to_first_routed_s']:.2f} | {e['failed_polls']} of {e['polls']} "
                         "polls failed |")
        elif "cli_exit_s" not in e:
            lines.append(f"| {e['what']} → cluster answers again | {e['to_cluster_s']:.2f} | "
                         f"{e['failed_polls']} of {e['polls']} polls failed |")
        else:
            lines.append(f"| {e['what']}: Ctrl-C → CLI exited | {e['cli_exit_s']:.2f} | |")
            lines.append(f"| {e['what']}: Ctrl-C → cluster answers again | "
                         f"{e['to_cluster_s']:.2f} | {e['failed_polls']} of {e['polls']} "
                         "polls failed |")
    lines += ["", "Loopback tunnel (bench/tunnel_bench.py, same run):", "", "```",
              *results.loopback, "```"]
    return "\n".join(lines)


def spread(runs: list[Json]) -> str:
    """Markdown: each row's p50/p99 and each ratio, per run and as min–max over the runs."""
    def cells(values: list[float], fmt: str) -> str:
        each = " / ".join(format(v, fmt) for v in values)
        return f"{each} | {format(min(values), fmt)}–{format(max(values), fmt)}"

    lines = [f"{len(runs)} runs: " + ", ".join(r["meta"]["date"] for r in runs), "",
             "| row | p50 ms per run | p50 range | p99 ms per run | p99 range |",
             "|---|---|---|---|---|"]
    for i, row in enumerate(runs[0]["latency"]):
        if row["n"]:
            p50 = [r["latency"][i]["p50"] for r in runs]
            p99 = [r["latency"][i]["p99"] for r in runs]
            lines.append(f"| {row['key']} | {cells(p50, '.2f')} | {cells(p99, '.1f')} |")
    lines += ["", "| ratio | meaning | per run | range |", "|---|---|---|---|"]
    for i, ratio in enumerate(runs[0]["ratios"]):
        name = "throughput" if "throughput" in ratio else "p50"
        values = [r["ratios"][i][name] for r in runs]
        lines.append(f"| {ratio['ratio']} ({name}) | {ratio['meaning']} | "
                     f"{cells(values, '.2f')} |")
    lines += ["", "| bulk MB/s | per run | range |", "|---|---|---|"]
    for i, bulk in enumerate(runs[0]["bulk"]):
        lines.append(f"| {bulk['path']} | {cells([r['bulk'][i]['MB/s'] for r in runs], '.0f')} |")
    lines += ["", "| loopback (tunnel_bench.py) | per run | range |", "|---|---|---|"]
    for i, text in enumerate(runs[0]["loopback"]):
        name = text[:36].strip()
        values = [float(m.group(1)) for r in runs
                  if (m := re.search(r"(?:p50|^.{36})\s+([0-9.]+)", r["loopback"][i]))]
        unit = "MB/s" if "MB/s" in text else "ms p50"
        lines.append(f"| {name} ({unit}) | {cells(values, '.3g')} |")
    lines += ["", "| lifecycle (s) | per run | range |", "|---|---|---|"]
    for i, event in enumerate(runs[0]["lifecycle"]):
        for key in ("to_first_new_pod_s", "to_active_s", "to_first_routed_s", "cli_exit_s",
                    "to_cluster_s"):
            if key in event:
                values = [r["lifecycle"][i][key] for r in runs]
                lines.append(f"| {event['what']}: {key[:-2].replace('_', ' ')} | "
                             f"{cells(values, '.2f')} |")
    return "\n".join(lines)


def startup_summary(results: Results) -> str:
    """Per tree (`--startup`): the medians of what issue 10's start-up goals measure, and
    each round's cold start minus that round's bare rollouts."""
    lines = [("| tree | warm → first routed s | warm CLI CPU s | warm ready-in s | "
              "cold − rollout s (per round) | fallback s | load (1 min) |"),
             "|---|---:|---:|---:|---|---:|---|"]
    trees = results.meta.get("trees") or ["installed"]
    for tree in trees:
        mine = [e for e in results.lifecycle if e.get("tree", "installed") == tree]
        warm = [e for e in mine if e["what"].startswith("warm")]

        def median(key: str, events: list[Json] = warm) -> str:
            values = [e[key] for e in events if e.get(key) is not None]
            return f"{statistics.median(values):.3f}" if values else "—"

        colds = []
        for round_ in sorted({e.get("round", 1) for e in mine}):
            these = [e for e in mine if e.get("round", 1) == round_]
            bare = [e["to_first_new_pod_s"] for e in these if "to_first_new_pod_s" in e]
            cold = [e["to_first_routed_s"] for e in these if e["what"] == "cold intercept start"]
            if bare and cold:
                colds.append(cold[0] - statistics.median(bare))
        each = ", ".join(f"{c:.2f}" for c in colds)
        killed = [e for e in mine if e["what"] == "laptop killed (SIGKILL)"]
        lines.append(f"| {tree} | {median('to_first_routed_s')} | {median('cli_cpu_s')} | "
                     f"{median('cli_ready_s')} | {each} (median "
                     f"{statistics.median(colds) if colds else float('nan'):.2f}) | "
                     f"{median('to_cluster_s', killed)} | {_load_range(mine)} |")
    return "\n".join(lines)


def _load_range(events: list[Json]) -> str:
    """The 1-minute load average at the starts (the machine is shared: read numbers with it)."""
    loads = [e["load"] for e in events if e.get("load") is not None]
    return f"{min(loads):.1f}–{max(loads):.1f}" if loads else "—"


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="per latency row (>= 300)")
    parser.add_argument("--rate", type=float, default=50, help="requests per second per client")
    parser.add_argument("--blocks", type=int, default=3, help="interleaving blocks per phase")
    parser.add_argument("--bulk-bytes", type=int, default=32 * 1024 * 1024)
    parser.add_argument("--bulk-reps", type=int, default=3)
    parser.add_argument("--loopback-requests", type=int, default=1000)
    parser.add_argument("--conns", type=int, default=1000,
                        help="caller connections held at once through the intercept (0: skip)")
    parser.add_argument("--conn-requests", type=int, default=10000,
                        help="requests over those connections")
    parser.add_argument("--bare-rollouts", type=int, default=2,
                        help="plain `kubectl rollout restart`s before the cold intercept")
    parser.add_argument("--warm-starts", type=int, default=3,
                        help="warm intercepts started and left (one more is then killed)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--tree", type=Path, metavar="DIR",
                        help="run the laptop's innerloop (and so the agent it ships) from DIR/"
                        "innerloop instead of the installed one: A/B a change before making it")
    parser.add_argument("--startup", action="store_true",
                        help="only the start-up phases (bare rollouts, cold and warm starts, "
                        "a killed laptop), with no latency, bulk or 1,000-connection rows")
    parser.add_argument("--trees", type=Path, nargs="+", metavar="DIR",
                        help="with --startup: A/B, each round runs every tree in turn (each "
                        "DIR holds innerloop/, as --tree)")
    parser.add_argument("--rounds", type=int, default=1, help="with --startup: rounds")
    parser.add_argument("--spread", type=Path, nargs="+", metavar="JSON",
                        help="no run: compare the JSON results of earlier runs")
    return parser


def measure(args: argparse.Namespace) -> Results:
    """One whole run; the namespace is deleted afterwards whatever happens."""
    bench = Bench(args)
    try:
        return bench.run()
    finally:
        bench.teardown()


def main() -> int:
    args = arguments().parse_args()
    if args.spread:
        print(spread([json.loads(path.read_text()) for path in args.spread]))
        return 0
    results = measure(args)
    print(startup_summary(results) if args.startup else render(results))
    if args.json:
        args.json.write_text(json.dumps(asdict(results), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
