"""Sweeps for what daemons leave behind when killed: pod processes, mounts, pod netns,
KUBE-*/CNI-* iptables chains, kubepods cgroups. Each works whether the cluster is healthy,
half-dead, or already gone."""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

from tools.testbed import pids
from tools.testbed.config import STATE_DIR, containerd_socket
from tools.testbed.proc import quiet, run

CHAIN_PREFIXES = ("KUBE-", "CNI-")
CGROUP_NAMES = ("kubepods", "k8s.io")
IPTABLES_TABLES = ("filter", "nat", "mangle", "raw", "security")
POD_NETNS_PREFIX = "cni-"
"""containerd 1.6's CRI puts pod network namespaces at /run/netns/cni-<uuid>."""


def _ours(chain: str) -> bool:
    return chain.startswith(CHAIN_PREFIXES)


def shim_pids() -> list[int]:
    """containerd shims serving our containerd (identified by its socket on their command line)."""
    socket = str(containerd_socket())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and socket.encode() in argv:
            found.append(int(entry.name))
    return found


def cgroup_dirs() -> list[Path]:
    """Our cgroup directories in every mounted hierarchy, deepest first."""
    roots = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        fstype = fields[fields.index("-") + 1]
        if fstype in ("cgroup", "cgroup2"):
            roots.append(Path(fields[4]))
    found: list[Path] = []
    for root in roots:
        for name in CGROUP_NAMES:
            top = root / name
            if top.is_dir():
                found += [Path(d) for d, _, _ in os.walk(top)]
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def cgroup_pids() -> list[int]:
    """Processes still inside our cgroups (pods' containers)."""
    members: set[int] = set()
    for d in cgroup_dirs():
        try:
            members.update(int(x) for x in (d / "cgroup.procs").read_text().split())
        except OSError:
            continue
    return sorted(members)


def kill_pod_processes() -> None:
    """Kill pods' processes and their shims; containerd can no longer do it once it is gone."""
    for _ in range(3):
        victims = shim_pids() + cgroup_pids()
        if not victims:
            return
        pids.terminate(victims, grace=2.0)


def remove_cgroups() -> None:
    for d in cgroup_dirs():
        try:
            d.rmdir()
        except OSError:
            pass


def _mountpoints() -> list[str]:
    return [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]


def mounts_under(root: Path) -> list[str]:
    prefix = str(root)
    return [m for m in _mountpoints() if m == prefix or m.startswith(prefix + "/")]


def unmount_state() -> None:
    """Unmount everything under the state dir (pod volumes, rootfs overlays, shm), deepest first."""
    for _ in range(3):
        found = mounts_under(STATE_DIR)
        if not found:
            return
        for mount in sorted(set(found), key=len, reverse=True):
            quiet(["umount", mount]) or quiet(["umount", "-l", mount])


def pod_netns() -> list[str]:
    out = run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(POD_NETNS_PREFIX)]


def remove_pod_netns() -> None:
    for name in pod_netns():
        quiet(["ip", "netns", "del", name])
        path = Path("/run/netns") / name
        if path.exists():
            quiet(["umount", "-l", path])
            path.unlink(missing_ok=True)


def iptables_leftovers(tool: str) -> list[str]:
    """Our chains and the rules jumping to them, as `-S` lines of every table."""
    found = []
    for table in IPTABLES_TABLES:
        res = run([tool, "-t", table, "-S"], check=False)
        for line in res.stdout.splitlines():
            words = line.split()
            if (words[:1] == ["-N"] and _ours(words[1])) or (
                words[:1] == ["-A"] and any(_ours(w) for w in words[1:])
            ):
                found.append(f"{table}: {line}")
    return found


def remove_iptables_chains() -> None:
    """Delete jumps into KUBE-*/CNI-* chains from other chains, then flush and delete ours."""
    for tool in ("iptables", "ip6tables"):
        if shutil.which(tool) is None:
            continue
        for table in IPTABLES_TABLES:
            res = run([tool, "-t", table, "-S"], check=False)
            if res.returncode != 0:
                continue
            chains = [w.split()[1] for w in res.stdout.splitlines() if w.startswith("-N ")]
            ours = [c for c in chains if _ours(c)]
            for line in res.stdout.splitlines():
                words = shlex.split(line)
                if words[:1] == ["-A"] and not _ours(words[1]) and any(_ours(w) for w in words[2:]):
                    quiet([tool, "-t", table, "-D", *words[1:]])
            for chain in ours:
                quiet([tool, "-t", table, "-F", chain])
            for chain in ours:
                quiet([tool, "-t", table, "-X", chain])


def wipe(path: Path) -> None:
    """rm -rf that refuses to run while anything is still mounted below ``path``."""
    if not path.exists():
        return
    left = mounts_under(path)
    if left:
        raise RuntimeError(f"refusing to delete {path}: still mounted: {left[:3]}")
    shutil.rmtree(path)
