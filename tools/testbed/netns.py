"""The "developer laptop" network namespace: it reaches the API server and nothing else.

The host itself can reach pod and Service IPs, so a tunnel test run on the host could pass with
the tunnel doing nothing. e2e tests run the innerloop client and the local app in here instead:
a veth pair on a link-local /30, one route to the API server's /32, the reply route in the
pods' policy table, and a FORWARD DROP so nothing is routed into or out of it.

    from tools.testbed.netns import dev_netns_popen, dev_netns_run
    dev_netns_run(["kubectl", "get", "nodes"], check=True)
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tools.testbed import network
from tools.testbed.config import (
    DEV_HOST_ADDR,
    DEV_LINK_CIDR,
    DEV_NETNS,
    DEV_NS_ADDR,
    DEV_PREFIX,
    DEV_VETH_HOST,
    DEV_VETH_NS,
    NODE_IP,
)
from tools.testbed.proc import quiet, run

DEV_FENCE_COMMENT = "innerloop-testbed dev netns fence"


def _fence_rules() -> list[list[str]]:
    return [
        [
            "FORWARD",
            flag,
            DEV_VETH_HOST,
            "-m",
            "comment",
            "--comment",
            DEV_FENCE_COMMENT,
            "-j",
            "DROP",
        ]
        for flag in ("-i", "-o")
    ]


def exists() -> bool:
    return Path(f"/run/netns/{DEV_NETNS}").exists()


def _in_ns(*argv: str) -> list[str]:
    return ["ip", "netns", "exec", DEV_NETNS, *argv]


def ensure() -> None:
    """Create the namespace (idempotent: an intact one is kept, a broken one rebuilt)."""
    if exists() and Path(f"/sys/class/net/{DEV_VETH_HOST}").exists():
        return
    remove()
    run(["ip", "netns", "add", DEV_NETNS])
    run(["ip", "link", "add", DEV_VETH_HOST, "type", "veth", "peer", "name", DEV_VETH_NS])
    run(["ip", "link", "set", DEV_VETH_NS, "netns", DEV_NETNS])
    run(["ip", "addr", "add", f"{DEV_HOST_ADDR}/{DEV_PREFIX}", "dev", DEV_VETH_HOST])
    run(["ip", "link", "set", DEV_VETH_HOST, "up"])
    run(_in_ns("ip", "link", "set", "lo", "up"))
    run(_in_ns("ip", "addr", "add", f"{DEV_NS_ADDR}/{DEV_PREFIX}", "dev", DEV_VETH_NS))
    run(_in_ns("ip", "link", "set", DEV_VETH_NS, "up"))
    run(_in_ns("ip", "route", "add", f"{NODE_IP}/32", "via", DEV_HOST_ADDR))
    # The API server answers from the node address, which the pods' policy table routes.
    network.add_policy_route(DEV_LINK_CIDR, DEV_VETH_HOST)
    for rule in _fence_rules():
        run(["iptables", "-t", "mangle", "-I", *rule])


def remove() -> None:
    """Delete the namespace, its veth and fence; tolerant of pieces already gone."""
    for rule in _fence_rules():
        while quiet(["iptables", "-t", "mangle", "-D", *rule]):
            pass
    quiet(["ip", "link", "del", DEV_VETH_HOST])
    if exists():
        quiet(["ip", "netns", "del", DEV_NETNS])


def dev_netns_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` wrapped to run inside the developer netns."""
    return _in_ns(*argv)


def dev_netns_popen(argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """Start ``argv`` inside the developer netns (same arguments as subprocess.Popen)."""
    ensure()
    return subprocess.Popen(dev_netns_argv(argv), **kwargs)


def dev_netns_run(
    argv: Sequence[str], *, check: bool = False, **kwargs: Any
) -> subprocess.CompletedProcess[Any]:
    """Run ``argv`` inside the developer netns (same arguments as subprocess.run)."""
    ensure()
    return subprocess.run(dev_netns_argv(argv), check=check, **kwargs)
