"""An optional NetworkPolicy engine for the testbed: kube-router's network-policy controller
alone (`--run-firewall`; no routing, no service proxy: the CNI `bridge` and kube-proxy stay).

The CNI `bridge` enforces no NetworkPolicy, so without it the e2e test that a policy denying
the workload's egress also denies the local process could not run. `up` builds kube-router from
the Go module proxy (cached like the Kubernetes binaries) and runs it after kube-proxy; it programs iptables (filter: KUBE-ROUTER-*,
KUBE-POD-FW-*, KUBE-NWPLCY-*) and ipsets in the host namespace, and pod-to-pod traffic on
`cni0` passes through them because br_netfilter is on. Checked on this machine: the kernel has
ip_set and the set/physdev/conntrack/addrtype/mark/NFLOG/limit matches; v2.1.0 syncs with the
v1.36 API server and programs a chain per local pod. `down` removes its chains (KUBE-*) and
ipsets. On by default (a cluster without a policy engine is not what users have);
INNERLOOP_TESTBED_NETWORK_POLICY=none opts out. A running testbed without it gets it added
by `up` without a restart: with no NetworkPolicy objects it allows everything, so nobody's
traffic changes.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tools.testbed.build import _go
from tools.testbed.config import CACHE_ROOT, KUBECONFIG, NODE_NAME, SERVICE_CIDR
from tools.testbed.proc import log, quiet, run

MODULE = "github.com/cloudnativelabs/kube-router/v2"
VERSION = "v2.1.0"
BIN = CACHE_ROOT / f"kube-router-{VERSION}" / "kube-router"
HEALTH_PORT = 20244
ENGINE_ENV = "INNERLOOP_TESTBED_NETWORK_POLICY"
IPSET_PREFIXES = ("KUBE-", "inet6:KUBE-")


def enabled() -> bool:
    """The testbed runs a policy engine unless whoever starts it opted out."""
    return os.environ.get(ENGINE_ENV, "kube-router") not in ("none", "off", "")


def build() -> Path:
    """kube-router from the Go module proxy, in a module of its own (cached by version)."""
    if BIN.exists():
        return BIN
    go = _go()
    src = BIN.parent / "src"
    src.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=mod", GOTOOLCHAIN="local")
    if not (src / "go.mod").exists():
        run([go, "mod", "init", "innerloop.local/kube-router-build"], env=env, cwd=src)
    run([go, "get", f"{MODULE}@{VERSION}"], env=env, cwd=src)
    t0 = time.monotonic()
    log(f"go build kube-router {VERSION} ...")
    run([go, "build", "-p", "2", "-trimpath", "-ldflags", "-s -w", "-o", str(BIN),
         f"{MODULE}/cmd/kube-router"], env=env, cwd=src)
    (BIN.parent / "build.json").write_text(json.dumps(
        {"version": VERSION, "seconds": round(time.monotonic() - t0)}) + "\n")
    return BIN


def argv() -> list[str]:
    """The network-policy controller only, for our one node."""
    return [str(BIN), f"--kubeconfig={KUBECONFIG}", "--run-firewall=true", "--run-router=false",
            "--run-service-proxy=false", f"--hostname-override={NODE_NAME}",
            f"--service-cluster-ip-range={SERVICE_CIDR}", f"--health-port={HEALTH_PORT}",
            "--metrics-port=0"]


def remove_ipsets() -> None:
    """Destroy kube-router's ipsets (after its iptables rules, which reference them, are gone).
    `kube-router --cleanup-config` is not used: it also cleans IPVS, which this kernel lacks,
    and crashes there."""
    res = run(["ipset", "list", "-n"], check=False) if _has_ipset() else None
    for name in (res.stdout.split() if res is not None and res.returncode == 0 else []):
        if name.startswith(IPSET_PREFIXES):
            quiet(["ipset", "destroy", name])


def _has_ipset() -> bool:
    return any(Path(d, "ipset").exists() for d in ("/usr/sbin", "/sbin", "/usr/bin"))
