"""`down` leaves nothing behind, also on a half-dead testbed, and `up` recovers from a run that
was killed without its teardown. Each test stops and restarts the testbed, so these run after
every other test (marker `testbed_cycle`) and always leave the testbed up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.cluster import Cluster, run_testbed
from tools.testbed import pids
from tools.testbed.config import BIN_DIR, K8S_COMPONENTS, POLICY_TABLE, STATE_DIR

pytestmark = [pytest.mark.e2e, pytest.mark.testbed_cycle]

DAEMON_EXES = {
    *(str(BIN_DIR / name) for name in K8S_COMPONENTS if name != "kubectl"),  # clients come and go
    "/usr/bin/containerd",
    "/usr/bin/containerd-shim-runc-v2",
    "/usr/bin/etcd",
    "/usr/sbin/dnsmasq",
}


def _sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


def _ours(text: str) -> bool:
    return any(
        mark in text
        for mark in ("198.18.", "198.19.", "169.254.218.", "KUBE-", "CNI-", "innerloop", "cni0")
    )


def host_state() -> dict[str, list[str]]:
    """Everything a testbed can leave on the host, listed with the system's own tools (not the
    testbed's bookkeeping), so a forgotten piece shows up here."""
    processes = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            exe = os.readlink(proc / "exe")
            cgroups = (proc / "cgroup").read_text()
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        dns_feeder = b"tools.testbed" in argv and b"dns-feed" in argv
        if exe in DAEMON_EXES or "kubepods" in cgroups or dns_feeder:
            processes.append(f"{proc.name} {exe} {b' '.join(argv)[:80]!r}")
    links = json.loads(_sh("ip", "-j", "link", "show"))
    routes = json.loads(_sh("ip", "-j", "route", "show", "table", "all"))
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    return {
        "processes": processes,
        "links": [
            link["ifname"]
            for link in links
            if _ours(link["ifname"]) or link["ifname"].startswith(("veth", "il-dev"))
        ],
        "routes": [
            json.dumps(r)
            for r in routes
            if _ours(r.get("dst", "")) or str(r.get("table")) == str(POLICY_TABLE)
        ],
        "rules": [line for line in _sh("ip", "rule").splitlines() if _ours(line)],
        "iptables": [
            line
            for line in (_sh("iptables-save") + _sh("ip6tables-save")).splitlines()
            if _ours(line)
        ],
        "netns": _sh("ip", "netns", "list").split("\n")[:-1],
        "mounts": [m for m in mounts if str(STATE_DIR) in m or "/run/netns/" in m],
        "cgroups": [
            str(d)
            for d in Path("/sys/fs/cgroup").glob("*/*")
            if d.name in ("kubepods", "k8s.io") and d.is_dir()
        ],
    }


def assert_clean() -> None:
    left = {kind: items for kind, items in host_state().items() if items}
    assert left == {}, f"left behind: {json.dumps(left, indent=1)}"


@pytest.fixture
def running_workload(cluster: Cluster, namespace: str) -> Iterator[str]:
    """A testbed with pods, volumes and Service rules in place (the state down must undo)."""
    if not cluster.testbed:
        pytest.skip("cycles the local testbed")
    cluster.deploy_echo(namespace)
    cluster.start_client(namespace)
    yield namespace
    assert run_testbed("status", check=False).returncode == 0, "the testbed must be left up"


def _kill_daemons(names: set[str]) -> list[int]:
    """SIGKILL daemons as a dying CI job would: no teardown runs."""
    killed = []
    for record in pids.records():
        if record.name in names and record.alive():
            os.kill(record.pid, signal.SIGKILL)
            killed.append(record.pid)
    return killed


def test_down_leaves_nothing_behind(running_workload: str) -> None:
    forward_before = json.loads((STATE_DIR / "host-baseline.json").read_text())["sysctls"]
    state = host_state()
    for kind in ("processes", "links", "routes", "rules", "iptables", "netns", "mounts", "cgroups"):
        assert state[kind], f"nothing of kind {kind} while up: the listing would prove nothing"
    run_testbed("down")
    assert_clean()
    for path, value in forward_before.items():
        assert Path(path).read_text().strip() == value
    run_testbed("up")


def test_down_on_a_half_dead_testbed(running_workload: str) -> None:
    assert len(_kill_daemons({"containerd", "kube-apiserver", "kubelet"})) == 3
    run_testbed("down")
    assert_clean()
    run_testbed("up")


def test_up_clears_a_killed_run(cluster: Cluster, running_workload: str) -> None:
    _kill_daemons({r.name for r in pids.records()})
    stale = {p.split()[0] for p in host_state()["processes"]}
    assert any("containerd-shim" in p for p in host_state()["processes"]), (
        "pods outlive their daemons: up must clear them"
    )
    run_testbed("up")
    namespaces = cluster.kubectl("get", "namespaces", "-o", "name").stdout.split()
    assert f"namespace/{running_workload}" not in namespaces, "a fresh cluster, not the old one"
    remaining = [p for p in host_state()["processes"] if p.split()[0] in stale]
    assert remaining == [], "stale processes remain"
    assert run_testbed("status", check=False).returncode == 0
