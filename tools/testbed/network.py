"""Host networking of the testbed: bridge, service route, egress fence, and their removal.

Everything the cluster uses lives in 198.18.0.0/15 and cannot leave the machine: traffic from
pods is routed by a policy table holding only the bridge (plus the developer netns link) and an
`unreachable default`, and a mangle/FORWARD DROP guards each uplink interface.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tools.testbed.config import (
    BRIDGE,
    FENCE_COMMENT,
    NODE_IP,
    POD_CIDR,
    POLICY_PRIORITY,
    POLICY_TABLE,
    SERVICE_CIDR,
    STATE_DIR,
)
from tools.testbed.proc import quiet, run

IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
BRIDGE_NF = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
_BASELINE = STATE_DIR / "host-baseline.json"
_TABLE = str(POLICY_TABLE)


def uplinks() -> list[str]:
    """Interfaces of the machine's default routes: the way out that pods must never take."""
    routes = json.loads(run(["ip", "-j", "route", "show", "default"]).stdout or "[]")
    return sorted({r["dev"] for r in routes if r.get("dev") and r["dev"] != BRIDGE})


def _fence_rule(dev: str) -> list[str]:
    return ["FORWARD", "-o", dev, "-m", "comment", "--comment", FENCE_COMMENT, "-j", "DROP"]


def _nft_tables() -> list[str]:
    """nftables tables as "family name" (iptables-nft keeps its tables there)."""
    if shutil.which("nft") is None:
        return []
    out = run(["nft", "list", "tables"], check=False).stdout
    return [
        line.removeprefix("table ").strip()
        for line in out.splitlines()
        if line.startswith("table ")
    ]


def _save_baseline() -> None:
    """Remember, once per run, what the host looked like before `up` changed it."""
    if _BASELINE.exists():  # a killed run's record is the true "before"
        return
    sysctls = {str(p): p.read_text().strip() for p in (IP_FORWARD, BRIDGE_NF) if p.exists()}
    _BASELINE.write_text(json.dumps({"sysctls": sysctls, "nft_tables": _nft_tables()}))


def _restore_baseline() -> None:
    """Put the sysctls back and drop the (now empty) nftables tables our iptables calls created."""
    if not _BASELINE.exists():
        return
    baseline = json.loads(_BASELINE.read_text())
    for path, value in baseline["sysctls"].items():
        Path(path).write_text(value + "\n")
    for table in set(_nft_tables()) - set(baseline["nft_tables"]):
        listing = json.loads(run(["nft", "-j", "list", "table", *table.split()]).stdout)
        if not any("rule" in item for item in listing.get("nftables", [])):
            quiet(["nft", "delete", "table", *table.split()])
    _BASELINE.unlink()


def setup() -> None:
    """Create the bridge, the service route, the pod policy table and the egress fence."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    _save_baseline()
    run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    run(["ip", "addr", "add", f"{NODE_IP}/16", "dev", BRIDGE])
    run(["ip", "link", "set", BRIDGE, "up"])
    # Not a blackhole: host -> ClusterIP must reach kube-proxy's DNAT, so route it into the bridge.
    run(["ip", "route", "add", SERVICE_CIDR, "dev", BRIDGE, "src", NODE_IP])
    for cidr in (POD_CIDR, SERVICE_CIDR):
        run(["ip", "route", "add", cidr, "dev", BRIDGE, "src", NODE_IP, "table", _TABLE])
    run(["ip", "route", "add", "unreachable", "default", "table", _TABLE])
    run(["ip", "rule", "add", "from", POD_CIDR, "lookup", _TABLE, "priority", str(POLICY_PRIORITY)])
    for dev in uplinks():
        run(["iptables", "-t", "mangle", "-I", *_fence_rule(dev)])
    IP_FORWARD.write_text("1\n")
    if BRIDGE_NF.exists():
        BRIDGE_NF.write_text("1\n")  # kube-proxy's DNAT must see bridged pod-to-pod traffic


def present() -> bool:
    """True if any piece of the testbed network exists (e.g. left by a killed run)."""
    return (
        Path(f"/sys/class/net/{BRIDGE}").exists()
        or bool(run(["ip", "rule", "show", "priority", str(POLICY_PRIORITY)]).stdout.strip())
        or FENCE_COMMENT in run(["iptables", "-t", "mangle", "-S", "FORWARD"]).stdout
    )


def teardown() -> None:
    """Remove every piece `setup` made; tolerant of pieces already gone."""
    while quiet(["ip", "rule", "del", "priority", str(POLICY_PRIORITY)]):
        pass
    quiet(["ip", "route", "flush", "table", _TABLE])
    quiet(["ip", "route", "del", SERVICE_CIDR, "dev", BRIDGE])
    quiet(["ip", "link", "del", BRIDGE])
    for line in run(["iptables", "-t", "mangle", "-S", "FORWARD"]).stdout.splitlines():
        if FENCE_COMMENT in line:
            dev = line.split("-o ", 1)[1].split()[0]
            quiet(["iptables", "-t", "mangle", "-D", *_fence_rule(dev)])


def restore_host() -> None:
    """Last step of `down`, after every iptables rule of ours is gone."""
    _restore_baseline()


def add_policy_route(cidr: str, dev: str) -> None:
    """Let replies from the node address reach another local link (the developer netns)."""
    run(["ip", "route", "replace", cidr, "dev", dev, "table", _TABLE])
