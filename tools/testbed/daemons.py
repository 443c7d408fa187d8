"""The cluster's daemons: their config files, command lines and start order."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tools.testbed import certs, dns, policy
from tools.testbed.config import (
    BIN_DIR,
    BRIDGE,
    CLUSTER_DOMAIN,
    NODE_IP,
    NODE_NAME,
    PAUSE_IMAGE,
    POD_CIDR,
    POD_RANGE_END,
    POD_RANGE_START,
    SERVICE_CIDR,
    STATE_DIR,
    containerd_socket,
)

ETCD_CLIENT = "http://127.0.0.1:12379"
ETCD_PEER = "http://127.0.0.1:12380"
CONTAINERD_DIR = STATE_DIR / "containerd"
CNI_CONF_DIR = STATE_DIR / "cni" / "net.d"
CNI_IPAM_DIR = STATE_DIR / "cni" / "ipam"
KUBELET_DIR = STATE_DIR / "kubelet"
ETCD_DIR = STATE_DIR / "etcd"
CONF_DIR = STATE_DIR / "conf"
REPO_ROOT = Path(__file__).resolve().parents[2]

VOLATILE_DIRS = (CONTAINERD_DIR, STATE_DIR / "cni", KUBELET_DIR, ETCD_DIR, dns.DNS_DIR)
"""Wiped by `down`: every `up` starts an empty cluster (PKI and kubeconfigs are kept)."""


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _json(path: Path, obj: object) -> Path:
    """Kubernetes config files are YAML, and JSON is YAML."""
    return _write(path, json.dumps(obj, indent=2) + "\n")


def _containerd_config() -> Path:
    socket = containerd_socket()
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return _write(
        CONTAINERD_DIR / "config.toml",
        f"""version = 2
root = "{CONTAINERD_DIR / "root"}"
state = "{CONTAINERD_DIR / "state"}"
[grpc]
  address = "{socket}"
[ttrpc]
  address = "{socket}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{CONTAINERD_DIR / "opt"}"
[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  [{cri}.containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [{cri}.containerd.runtimes.runc.options]
      SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{CNI_CONF_DIR}"
""",
    )


def _cni_config() -> Path:
    return _json(
        CNI_CONF_DIR / "10-innerloop.conflist",
        {
            "cniVersion": "1.0.0",
            "name": "innerloop",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": str(CNI_IPAM_DIR),
                        "ranges": [
                            [
                                {
                                    "subnet": POD_CIDR,
                                    "gateway": NODE_IP,
                                    "rangeStart": POD_RANGE_START,
                                    "rangeEnd": POD_RANGE_END,
                                }
                            ]
                        ],
                        "routes": [{"dst": "0.0.0.0/0"}],
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        },
    )


def _kubelet_config() -> Path:
    socket = f"unix://{containerd_socket()}"
    resolv = _write(CONF_DIR / "resolv.conf", f"nameserver {NODE_IP}\n")
    return _json(
        CONF_DIR / "kubelet.json",
        {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": NODE_IP,
            "port": 10250,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": 10248,
            "tlsCertFile": str(certs.KUBELET_SERVING.crt),
            "tlsPrivateKeyFile": str(certs.KUBELET_SERVING.key),
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(certs.CA_CRT)},
            },
            "authorization": {"mode": "Webhook"},
            "cgroupDriver": "cgroupfs",
            "failCgroupV1": False,
            "containerRuntimeEndpoint": socket,
            "imageServiceEndpoint": socket,
            "clusterDomain": CLUSTER_DOMAIN,
            "clusterDNS": [NODE_IP],
            "resolvConf": str(resolv),
            "failSwapOn": False,
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
                "nodefs.inodesFree": "1%",
            },
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "serializeImagePulls": False,
        },
    )


def _proxy_config() -> Path:
    return _json(
        CONF_DIR / "kube-proxy.json",
        {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(certs.kubeconfig_path("kube-proxy"))},
            "mode": "iptables",
            "bindAddress": NODE_IP,
            "clusterCIDR": POD_CIDR,
            "hostnameOverride": NODE_NAME,
            "nodePortAddresses": [f"{NODE_IP}/32"],
            "conntrack": {"maxPerCore": 0},
            "healthzBindAddress": "127.0.0.1:10256",
            "metricsBindAddress": "127.0.0.1:10249",
        },
    )


def _bin(name: str) -> str:
    return str(BIN_DIR / name)


def _containerd() -> list[str]:
    _cni_config()
    return ["containerd", "--config", str(_containerd_config())]


def _etcd() -> list[str]:
    return [
        "etcd",
        "--name",
        "innerloop",
        "--data-dir",
        str(ETCD_DIR),
        "--listen-client-urls",
        ETCD_CLIENT,
        "--advertise-client-urls",
        ETCD_CLIENT,
        "--listen-peer-urls",
        ETCD_PEER,
        "--initial-advertise-peer-urls",
        ETCD_PEER,
        "--initial-cluster",
        f"innerloop={ETCD_PEER}",
        "--log-level",
        "warn",
    ]


def _apiserver() -> list[str]:
    p = certs
    return [
        _bin("kube-apiserver"),
        f"--etcd-servers={ETCD_CLIENT}",
        f"--bind-address={NODE_IP}",
        f"--advertise-address={NODE_IP}",
        "--secure-port=6443",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        "--kubelet-preferred-address-types=InternalIP",
        "--allow-privileged=true",
        "--profiling=false",
        f"--client-ca-file={p.CA_CRT}",
        f"--tls-cert-file={p.API_SERVING.crt}",
        f"--tls-private-key-file={p.API_SERVING.key}",
        f"--kubelet-client-certificate={p.API_TO_KUBELET.crt}",
        f"--kubelet-client-key={p.API_TO_KUBELET.key}",
        f"--kubelet-certificate-authority={p.CA_CRT}",
        f"--service-account-issuer=https://kubernetes.default.svc.{CLUSTER_DOMAIN}",
        f"--service-account-key-file={p.SA_PUB}",
        f"--service-account-signing-key-file={p.SA_KEY}",
    ]


def _kubeconfig_flags(user: str) -> list[str]:
    path = certs.kubeconfig_path(user)
    return [
        f"--kubeconfig={path}",
        f"--authentication-kubeconfig={path}",
        f"--authorization-kubeconfig={path}",
    ]


def _controller_manager() -> list[str]:
    return [
        _bin("kube-controller-manager"),
        *_kubeconfig_flags("controller-manager"),
        "--bind-address=127.0.0.1",
        "--leader-elect=false",
        "--use-service-account-credentials=true",
        f"--cluster-signing-cert-file={certs.CA_CRT}",
        f"--cluster-signing-key-file={certs.CA_KEY}",
        f"--root-ca-file={certs.CA_CRT}",
        f"--service-account-private-key-file={certs.SA_KEY}",
        "--allocate-node-cidrs=false",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
    ]


def _scheduler() -> list[str]:
    return [
        _bin("kube-scheduler"),
        *_kubeconfig_flags("scheduler"),
        "--bind-address=127.0.0.1",
        "--leader-elect=false",
    ]


def _kubelet() -> list[str]:
    return [
        _bin("kubelet"),
        f"--config={_kubelet_config()}",
        f"--kubeconfig={certs.kubeconfig_path('kubelet')}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={NODE_IP}",
        f"--root-dir={KUBELET_DIR}",
    ]


def _kube_proxy() -> list[str]:
    return [_bin("kube-proxy"), f"--config={_proxy_config()}"]


def _dnsmasq() -> list[str]:
    dns.prepare()
    return dns.dnsmasq_argv()


@dataclass(frozen=True)
class Daemon:
    name: str
    argv: Callable[[], list[str]]
    """Writes the daemon's config files and returns its command line."""


def daemon_env() -> dict[str, str]:
    """The machine's PATH plus the sbin dirs (iptables, ip); the repo on PYTHONPATH (DNS feeder)."""
    path = os.environ.get("PATH", "") + ":/usr/local/sbin:/usr/sbin:/sbin"
    return {**os.environ, "PATH": path, "PYTHONPATH": str(REPO_ROOT)}


CONTAINERD = Daemon("containerd", _containerd)
ETCD = Daemon("etcd", _etcd)
APISERVER = Daemon("kube-apiserver", _apiserver)
CONTROLLER_MANAGER = Daemon("kube-controller-manager", _controller_manager)
SCHEDULER = Daemon("kube-scheduler", _scheduler)
KUBELET = Daemon("kubelet", _kubelet)
KUBE_PROXY = Daemon("kube-proxy", _kube_proxy)
DNSMASQ = Daemon("dnsmasq", _dnsmasq)
KUBE_ROUTER = Daemon("kube-router", policy.argv)
"""Only with INNERLOOP_TESTBED_NETWORK_POLICY=kube-router (tools/testbed/policy.py)."""
DNS_FEEDER_NAME = "dns-feeder"


def dns_feeder(dnsmasq_pid: int) -> Daemon:
    """The feeder is our own code, run from this checkout; it signals dnsmasq by PID."""
    return Daemon(
        DNS_FEEDER_NAME,
        lambda: [
            sys.executable,
            "-m",
            "tools.testbed",
            "dns-feed",
            "--dnsmasq-pid",
            str(dnsmasq_pid),
        ],
    )


STOP_ORDER = (
    DNS_FEEDER_NAME,
    "dnsmasq",
    "kube-router",
    "kube-proxy",
    "kubelet",
    "kube-scheduler",
    "kube-controller-manager",
    "kube-apiserver",
    "etcd",
    "containerd",
)
