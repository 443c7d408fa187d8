"""Cluster PKI with openssl: a CA, serving and client certificates, the SA key, kubeconfigs.

Kept across down/up in <state>/pki, so the admin kubeconfig path and contents stay valid.
"""

from __future__ import annotations

import base64
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tools.testbed.config import (
    API_URL,
    KUBERNETES_SERVICE_IP,
    NODE_IP,
    NODE_NAME,
    STATE_DIR,
)
from tools.testbed.proc import run

PKI = STATE_DIR / "pki"
_DAYS = "3650"


@dataclass(frozen=True)
class Cert:
    """One key pair signed by the CA."""

    name: str
    cn: str
    org: str | None = None
    sans: tuple[str, ...] = ()
    server: bool = False

    @property
    def crt(self) -> Path:
        return PKI / f"{self.name}.crt"

    @property
    def key(self) -> Path:
        return PKI / f"{self.name}.key"


API_SERVING = Cert(
    "apiserver",
    "kube-apiserver",
    sans=(
        "IP:127.0.0.1",
        f"IP:{NODE_IP}",
        f"IP:{KUBERNETES_SERVICE_IP}",
        "DNS:localhost",
        "DNS:kubernetes",
        "DNS:kubernetes.default",
        "DNS:kubernetes.default.svc",
        "DNS:kubernetes.default.svc.cluster.local",
    ),
    server=True,
)
KUBELET_SERVING = Cert(
    "kubelet", NODE_NAME, sans=(f"IP:{NODE_IP}", f"DNS:{NODE_NAME}"), server=True
)
ADMIN = Cert("admin", "innerloop-admin", "system:masters")
API_TO_KUBELET = Cert("apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters")
CONTROLLER_MANAGER = Cert("controller-manager", "system:kube-controller-manager")
SCHEDULER = Cert("scheduler", "system:kube-scheduler")
PROXY = Cert("kube-proxy", "system:kube-proxy")
KUBELET_CLIENT = Cert("kubelet-client", f"system:node:{NODE_NAME}", "system:nodes")

ALL = (
    API_SERVING,
    KUBELET_SERVING,
    ADMIN,
    API_TO_KUBELET,
    CONTROLLER_MANAGER,
    SCHEDULER,
    PROXY,
    KUBELET_CLIENT,
)
KUBECONFIG_USERS = {
    "admin": ADMIN,
    "controller-manager": CONTROLLER_MANAGER,
    "scheduler": SCHEDULER,
    "kube-proxy": PROXY,
    "kubelet": KUBELET_CLIENT,
}
CA_CRT = PKI / "ca.crt"
CA_KEY = PKI / "ca.key"
SA_KEY = PKI / "sa.key"
SA_PUB = PKI / "sa.pub"


def kubeconfig_path(user: str) -> Path:
    """Where the kubeconfig of one of KUBECONFIG_USERS lives."""
    return STATE_DIR / f"{user}.kubeconfig"


def _ec_key(path: Path) -> None:
    run(
        [
            "openssl",
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            path,
        ]
    )
    path.chmod(0o600)


def _sign(cert: Cert) -> None:
    _ec_key(cert.key)
    subject = f"/CN={cert.cn}" + (f"/O={cert.org}" if cert.org else "")
    usage = "serverAuth" if cert.server else "clientAuth"
    ext = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        f"extendedKeyUsage={usage}",
    ]
    if cert.sans:
        ext.append("subjectAltName=" + ",".join(cert.sans))
    with tempfile.TemporaryDirectory() as tmp:
        csr, extfile = Path(tmp) / "req.csr", Path(tmp) / "ext.cnf"
        extfile.write_text("\n".join(ext) + "\n")
        run(["openssl", "req", "-new", "-key", cert.key, "-subj", subject, "-out", csr])
        run(
            [
                "openssl",
                "x509",
                "-req",
                "-in",
                csr,
                "-CA",
                CA_CRT,
                "-CAkey",
                CA_KEY,
                "-CAcreateserial",
                "-days",
                _DAYS,
                "-extfile",
                extfile,
                "-out",
                cert.crt,
            ]
        )


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _kubeconfig(user: str, cert: Cert) -> str:
    return f"""apiVersion: v1
kind: Config
clusters:
- name: innerloop-testbed
  cluster:
    server: {API_URL}
    certificate-authority-data: {_b64(CA_CRT)}
users:
- name: {user}
  user:
    client-certificate-data: {_b64(cert.crt)}
    client-key-data: {_b64(cert.key)}
contexts:
- name: innerloop-testbed
  context:
    cluster: innerloop-testbed
    user: {user}
current-context: innerloop-testbed
"""


def ensure_pki() -> None:
    """Create whatever part of the PKI and kubeconfigs is missing (a no-op when complete)."""
    PKI.mkdir(parents=True, exist_ok=True)
    PKI.chmod(0o700)
    if not (CA_CRT.exists() and CA_KEY.exists()):
        _ec_key(CA_KEY)
        run(
            [
                "openssl",
                "req",
                "-x509",
                "-new",
                "-key",
                CA_KEY,
                "-subj",
                "/CN=innerloop-testbed-ca",
                "-days",
                _DAYS,
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
                "-out",
                CA_CRT,
            ]
        )
        for stale in ALL:
            stale.crt.unlink(missing_ok=True)
    for cert in ALL:
        if not (cert.crt.exists() and cert.key.exists()):
            _sign(cert)
    if not (SA_KEY.exists() and SA_PUB.exists()):
        _ec_key(SA_KEY)
        run(["openssl", "pkey", "-in", SA_KEY, "-pubout", "-out", SA_PUB])
    for user, cert in KUBECONFIG_USERS.items():
        path = kubeconfig_path(user)
        text = _kubeconfig(user, cert)
        if not path.exists() or path.read_text() != text:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
