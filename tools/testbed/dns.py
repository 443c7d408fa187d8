"""Cluster DNS without CoreDNS: dnsmasq serves A records for Services from a hosts file that a
small feeder process keeps in sync with the Service list (watch, rewrite, SIGHUP dnsmasq).

Serves `<svc>.<ns>.svc.cluster.local` only (no SRV, headless or pod records).
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from tools.testbed import api
from tools.testbed.config import CLUSTER_DOMAIN, NODE_IP, STATE_DIR

DNS_DIR = STATE_DIR / "dns"
HOSTS = DNS_DIR / "hosts"


def dnsmasq_argv() -> list[str]:
    """dnsmasq on the node address only, answering cluster.local from HOSTS and nothing else."""
    return [
        "dnsmasq",
        "--keep-in-foreground",
        "--no-resolv",
        "--no-hosts",
        f"--listen-address={NODE_IP}",
        "--bind-interfaces",
        "--port=53",
        f"--local=/{CLUSTER_DOMAIN}/",
        f"--addn-hosts={HOSTS}",
        f"--pid-file={DNS_DIR / 'dnsmasq.pid'}",
        "--user=root",
        "--log-facility=-",
    ]


def prepare() -> None:
    DNS_DIR.mkdir(parents=True, exist_ok=True)
    HOSTS.write_text("")


def render_hosts(services: dict[str, str]) -> str:
    """hosts-file lines from {"name.namespace": clusterIP}."""
    return "".join(f"{ip} {key}.svc.{CLUSTER_DOMAIN}\n" for key, ip in sorted(services.items()))


def _entry(svc: dict[str, Any]) -> tuple[str, str | None]:
    meta = svc["metadata"]
    ip = svc.get("spec", {}).get("clusterIP")
    return f"{meta['name']}.{meta['namespace']}", (ip if ip and ip != "None" else None)


def _publish(services: dict[str, str], dnsmasq_pid: int) -> None:
    tmp = HOSTS.with_suffix(".tmp")
    tmp.write_text(render_hosts(services))
    os.replace(tmp, HOSTS)
    os.kill(dnsmasq_pid, signal.SIGHUP)


def feed(dnsmasq_pid: int) -> None:
    """Run forever: list Services, publish, then follow the watch; relist when it ends."""
    while True:
        try:
            listing = api.get_json("/api/v1/services")
            services: dict[str, str] = {}
            for item in listing["items"]:
                key, ip = _entry(item)
                if ip:
                    services[key] = ip
            _publish(services, dnsmasq_pid)
            version = listing["metadata"]["resourceVersion"]
            for event in api.watch("/api/v1/services", version):
                if event["type"] == "BOOKMARK":
                    continue
                if event["type"] == "ERROR":
                    break
                key, ip = _entry(event["object"])
                before = dict(services)
                if event["type"] == "DELETED" or ip is None:
                    services.pop(key, None)
                else:
                    services[key] = ip
                if services != before:
                    _publish(services, dnsmasq_pid)
        except (OSError, ValueError, RuntimeError) as exc:
            print(f"dns feeder: {exc}; retrying", flush=True)
            time.sleep(1)
