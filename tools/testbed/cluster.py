"""`up`, `down` and `status`: start the cluster in order, and remove every trace of it."""

from __future__ import annotations

import fcntl
import ssl
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tools.testbed import api, certs, cleanup, daemons, dns, images, netns, network, pids, policy
from tools.testbed.build import build
from tools.testbed.config import KUBECONFIG, STATE_DIR, containerd_socket
from tools.testbed.proc import log, run
from tools.wait import poll_until

START_TIMEOUT = 90.0


@contextmanager
def _locked() -> Iterator[None]:
    """One up/down at a time (the test fixture and scripts/test may race)."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with open(STATE_DIR / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _http_ok(url: str) -> bool:
    """Local health endpoints; the self-signed ones on loopback are not verified."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=2, context=ctx) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _containerd_ready() -> bool:
    return run(["ctr", "-a", containerd_socket(), "version"], check=False).returncode == 0


def _dns_ready() -> bool:
    return "kubernetes.default.svc" in dns.HOSTS.read_text() if dns.HOSTS.exists() else False


def _tail(name: str, lines: int = 25) -> str:
    path = pids.log_path(name)
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def _start(daemon: daemons.Daemon, ready: Callable[[], bool]) -> pids.Record:
    """Spawn one daemon and wait until ``ready``; fail fast, with its log, if it dies."""
    name = daemon.name
    record = pids.spawn(name, daemon.argv(), daemons.daemon_env())
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        if not record.alive():
            raise RuntimeError(f"{name} exited during start; last log lines:\n{_tail(name)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} not ready after {START_TIMEOUT:.0f}s; log:\n{_tail(name)}")
        time.sleep(0.2)
    log(f"{name} ready (pid {record.pid})")
    return record


def containerd_running() -> bool:
    record = pids.load("containerd")
    return record is not None and record.alive()


def daemons_alive() -> bool:
    """Every required daemon is the process we started (whether or not it answers yet). The
    policy engine is not required: `up` adds it to a running testbed (`_ensure_policy`)."""
    recorded = {r.name: r for r in pids.records()}
    wanted = [name for name in daemons.STOP_ORDER if name != daemons.KUBE_ROUTER.name]
    return all(name in recorded and recorded[name].alive() for name in wanted)


def _policy_ready() -> bool:
    return _http_ok(f"http://127.0.0.1:{policy.HEALTH_PORT}/healthz")


def _ensure_policy() -> None:
    """Start the policy engine on a running testbed that lacks it (none of its traffic changes
    until a NetworkPolicy exists)."""
    record = pids.load(daemons.KUBE_ROUTER.name)
    if policy.enabled() and (record is None or not record.alive()):
        policy.build()
        _start(daemons.KUBE_ROUTER, _policy_ready)


def healthy() -> bool:
    """Every daemon is the process we started, the API is ready and the node is Ready."""
    return daemons_alive() and api.probe("readyz") and api.probe("node-ready")


def healthy_within(seconds: float) -> bool:
    """A running testbed on a loaded machine may answer its probes late: wait for it, rather
    than tear down what other test sessions are using."""
    deadline = time.monotonic() + seconds
    while daemons_alive():
        if healthy():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(1.0)
    return False


def leftovers() -> list[str]:
    """Traces of a testbed on this machine (empty after a clean `down`)."""
    found = [f"process {r.name} ({r.pid})" for r in pids.records() if r.alive()]
    found += [f"stale pid record {r.name}" for r in pids.records() if not r.alive()]
    found += [f"shim pid {p}" for p in cleanup.shim_pids()]
    found += [f"cgroup {d}" for d in cleanup.cgroup_dirs()]
    found += [f"mount {m}" for m in cleanup.mounts_under(STATE_DIR)]
    found += [f"netns {n}" for n in cleanup.pod_netns()]
    if netns.exists():
        found.append("developer netns")
    if network.present():
        found.append("bridge/rule/fence")
    found += cleanup.iptables_leftovers("iptables") + cleanup.iptables_leftovers("ip6tables")
    return found


HEALTH_GRACE = 90.0
"""How long `up` waits for the probes of a testbed whose daemons all run before restarting it."""


def up() -> Path:
    """Start the testbed (or confirm it is already healthy); returns the admin kubeconfig."""
    with _locked():
        if healthy_within(HEALTH_GRACE):
            netns.ensure()
            _ensure_policy()
            log("testbed already up")
            return KUBECONFIG
        if leftovers():
            log("clearing state left by an earlier run")
            _down()
        build()
        if policy.enabled():
            policy.build()
        images.build_images()
        started = time.monotonic()
        certs.ensure_pki()
        network.setup()
        _start(daemons.CONTAINERD, _containerd_ready)
        images.import_images()
        _start(daemons.ETCD, lambda: _http_ok(f"{daemons.ETCD_CLIENT}/health"))
        _start(daemons.APISERVER, lambda: api.probe("readyz"))
        _start(daemons.CONTROLLER_MANAGER, lambda: _http_ok("https://127.0.0.1:10257/healthz"))
        _start(daemons.SCHEDULER, lambda: _http_ok("https://127.0.0.1:10259/healthz"))
        _start(daemons.KUBELET, lambda: _http_ok("http://127.0.0.1:10248/healthz"))
        _start(daemons.KUBE_PROXY, lambda: _http_ok("http://127.0.0.1:10256/healthz"))
        _ensure_policy()
        dnsmasq = _start(daemons.DNSMASQ, lambda: True)
        _start(daemons.dns_feeder(dnsmasq.pid), _dns_ready)
        netns.ensure()
        poll_until(lambda: api.probe("node-ready"), "node Ready", START_TIMEOUT, interval=0.25)
        poll_until(lambda: api.probe("default-sa"), "the default ServiceAccount", START_TIMEOUT,
                   interval=0.25)
        log(f"testbed up in {time.monotonic() - started:.1f}s")
    return KUBECONFIG


def down() -> None:
    """Stop everything by PID and remove every trace; works on a half-dead testbed."""
    with _locked():
        _down()


def _down() -> None:
    started = time.monotonic()
    for name in daemons.STOP_ORDER:
        pids.stop(name)
    cleanup.kill_pod_processes()
    cleanup.unmount_state()
    cleanup.remove_pod_netns()
    cleanup.remove_iptables_chains()
    policy.remove_ipsets()
    netns.remove()
    network.teardown()
    cleanup.remove_cgroups()
    network.restore_host()
    for path in (*daemons.VOLATILE_DIRS, pids.RUN_DIR):
        cleanup.wipe(path)
    left = leftovers()
    if left:
        raise RuntimeError("down left these behind: " + "; ".join(left))
    log(f"testbed down in {time.monotonic() - started:.1f}s")


def status() -> tuple[bool, list[str]]:
    """(healthy, human-readable lines)."""
    lines = []
    for record in pids.records():
        lines.append(
            f"{record.name:24} pid {record.pid:<8} {'running' if record.alive() else 'DEAD'}"
        )
    if not lines:
        lines.append("no testbed daemons recorded")
    ok = healthy()
    lines.append(f"API ready: {api.probe('readyz')}; node Ready: {api.probe('node-ready')}")
    lines.append(f"developer netns: {'present' if netns.exists() else 'absent'}")
    lines.append(f"kubeconfig: {KUBECONFIG}")
    return ok, lines
