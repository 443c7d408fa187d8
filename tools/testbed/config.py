"""Pinned versions, paths and addresses: the one place the testbed's constants live."""

from __future__ import annotations

import os
from pathlib import Path

K8S_VERSION = "v1.36.3"
"""Kubernetes release built from the Go module proxy (staging modules: v0.<minor>.<patch>)."""

K8S_COMPONENTS = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "kubectl",
)

DEBIAN_PACKAGES = (
    "containerd",
    "runc",
    "containernetworking-plugins",
    "iptables",
    "conntrack",
    "etcd-server",
    "busybox-static",
    "debootstrap",
    "socat",
    "dnsmasq-base",
    "openssl",
    "ipset",
    "iproute2",
    "gcc",
    "libc6-dev",
)

CACHE_ROOT = Path(os.environ.get("INNERLOOP_CACHE", str(Path.home() / ".cache" / "innerloop")))
BUILD_DIR = CACHE_ROOT / f"k8s-{K8S_VERSION}"
BIN_DIR = BUILD_DIR / "bin"
IMAGES_DIR = CACHE_ROOT / "images"
STATE_DIR = Path(os.environ.get("INNERLOOP_TESTBED_STATE", "/var/lib/innerloop-testbed"))

KUBECONFIG = STATE_DIR / "admin.kubeconfig"
"""The admin kubeconfig that `up` prints; tests and the demo use it."""

NODE_NAME = "innerloop-node"
BRIDGE = "cni0"
NODE_IP = "198.18.0.1"
POD_CIDR = "198.18.0.0/16"
POD_RANGE_START = "198.18.1.1"
POD_RANGE_END = "198.18.255.254"
SERVICE_CIDR = "198.19.0.0/16"
KUBERNETES_SERVICE_IP = "198.19.0.1"
API_PORT = 6443
API_URL = f"https://{NODE_IP}:{API_PORT}"
CLUSTER_DOMAIN = "cluster.local"

POLICY_TABLE = 1818
"""Routing table for traffic from pods: bridge routes plus `unreachable default`."""
POLICY_PRIORITY = 1818
FENCE_COMMENT = "innerloop-testbed egress fence"

DEV_NETNS = "innerloop-dev"
DEV_VETH_HOST = "il-dev-host"
DEV_VETH_NS = "il-dev-ns"
DEV_HOST_ADDR = "169.254.218.1"
DEV_NS_ADDR = "169.254.218.2"
DEV_PREFIX = 30
DEV_LINK_CIDR = "169.254.218.0/30"

IMAGE_TAG = "1"
PAUSE_IMAGE = f"localhost/pause:{IMAGE_TAG}"
BUSYBOX_IMAGE = f"localhost/busybox:{IMAGE_TAG}"
PYTHON_IMAGE = f"localhost/python3:{IMAGE_TAG}"
DEBIAN_SUITE = "bookworm"


def containerd_socket() -> Path:
    """Our containerd's socket (never the system's)."""
    return STATE_DIR / "containerd" / "containerd.sock"
