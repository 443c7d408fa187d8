"""A laptop of its own whose network the test may cut: a sibling of the testbed's developer
netns (which other tests share), reaching only the API server, with iptables rules only inside.

The host side is a veth and the reply route in the testbed's pod policy table (as for the
developer netns); both go when the test ends. Nothing is written to the host's iptables.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from tools.cluster import Cluster
from tools.laptop import Laptop, Lines
from tools.testbed.config import NODE_IP, POLICY_TABLE

NETNS = "innerloop-faults"
VETH_HOST, VETH_NS = "il-flt-host", "il-flt-ns"
HOST_ADDR, NS_ADDR, LINK = "169.254.219.1", "169.254.219.2", "169.254.219.0/30"
DROP = ["OUTPUT", "-d", f"{NODE_IP}/32", "-j", "DROP"]


def _ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], check=check, capture_output=True)


def _in_ns(*argv: str) -> list[str]:
    return ["ip", "netns", "exec", NETNS, *argv]


def _remove() -> None:
    _ip("route", "del", LINK, "table", str(POLICY_TABLE), check=False)
    _ip("link", "del", VETH_HOST, check=False)
    _ip("netns", "del", NETNS, check=False)


@contextmanager
def fault_netns() -> Iterator[None]:
    _remove()  # what a killed run left
    try:
        _ip("netns", "add", NETNS)
        _ip("link", "add", VETH_HOST, "type", "veth", "peer", "name", VETH_NS)
        _ip("link", "set", VETH_NS, "netns", NETNS)
        _ip("addr", "add", f"{HOST_ADDR}/30", "dev", VETH_HOST)
        _ip("link", "set", VETH_HOST, "up")
        for args in (("link", "set", "lo", "up"), ("addr", "add", f"{NS_ADDR}/30", "dev", VETH_NS),
                     ("link", "set", VETH_NS, "up"),
                     ("route", "add", f"{NODE_IP}/32", "via", HOST_ADDR)):
            subprocess.run(_in_ns("ip", *args), check=True, capture_output=True)
        _ip("route", "replace", LINK, "dev", VETH_HOST, "table", str(POLICY_TABLE))
        yield
    finally:
        _remove()


def cut(on: bool) -> None:
    """Drop (or stop dropping) every packet from the netns to the API server."""
    subprocess.run(_in_ns("iptables", "-I" if on else "-D", *DROP), check=True,
                   capture_output=True)


class CuttableLaptop(Laptop):
    """A Laptop whose processes run in the fault netns (entered from inside the developer
    netns, which `ip netns exec` simply leaves)."""

    def popen(self, argv: Sequence[str], **env: str) -> tuple[subprocess.Popen[str], Lines]:
        return super().popen(_in_ns(*argv), **env)


@contextmanager
def cuttable_laptop(cluster: Cluster) -> Iterator[CuttableLaptop]:
    with fault_netns():
        lap = CuttableLaptop(cluster)
        try:
            yield lap
        finally:
            lap.close()
