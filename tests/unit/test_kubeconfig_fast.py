"""The kubeconfig read without the `kubernetes` package gives what its loader gives, and every
kind it does not read is left to that loader."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from innerloop.k8s.config import load_kubeconfig
from innerloop.k8s.kubeconfig import ClientConfig
from kubernetes import config as kube_config
from kubernetes.client import Configuration

CA, CERT, KEY = b"-----CA-----\n", b"-----CERT-----\n", b"-----KEY-----\n"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write(tmp: Path, cluster: dict[str, Any], user: dict[str, Any]) -> Path:
    path = tmp / "config"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "dev",
        "clusters": [{"name": "c", "cluster": cluster}], "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "dev", "context": {"cluster": "c", "user": "u", "namespace": "ns"}}],
    }))
    return path


def contents(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


def seen(cfg: Any) -> tuple[Any, ...]:
    """What the rest of `k8s` reads of a configuration."""
    return (cfg.host, cfg.verify_ssl, cfg.tls_server_name, cfg.proxy, cfg.assert_hostname,
            contents(cfg.ssl_ca_cert), contents(cfg.cert_file), contents(cfg.key_file),
            [(e["in"], e["key"], e["value"]) for e in cfg.auth_settings().values()])


def loaded_by_kubernetes(path: Path) -> Configuration:
    cfg = Configuration()
    kube_config.load_kube_config(config_file=str(path), context="dev", client_configuration=cfg,
                                 persist_config=False)
    return cfg


SIMPLE = {
    "token and CA data": ({"server": "https://api:6443/", "certificate-authority-data": b64(CA)},
                          {"token": "abc.def"}),
    "client certificate data": ({"server": "https://api:6443",
                                 "certificate-authority-data": b64(CA)},
                                {"client-certificate-data": b64(CERT),
                                 "client-key-data": b64(KEY)}),
    "files next to the kubeconfig": ({"server": "https://api", "certificate-authority": "ca.crt"},
                                     {"client-certificate": "tls/c.crt",
                                      "client-key": "tls/c.key"}),
    "insecure, another TLS name": ({"server": "https://10.0.0.1", "insecure-skip-tls-verify": True,
                                    "tls-server-name": "api.example"}, {"token": "t"}),
    "plain http": ({"server": "http://127.0.0.1:8080"}, {}),
}


@pytest.mark.parametrize("case", sorted(SIMPLE))
def test_a_simple_context_reads_as_the_kubernetes_loader_reads_it(tmp_path: Path,
                                                                    case: str) -> None:
    (tmp_path / "tls").mkdir()
    (tmp_path / "ca.crt").write_bytes(CA)
    (tmp_path / "tls" / "c.crt").write_bytes(CERT)
    (tmp_path / "tls" / "c.key").write_bytes(KEY)
    path = write(tmp_path, *SIMPLE[case])
    ours, namespace = load_kubeconfig(str(path), None)
    assert isinstance(ours, ClientConfig) and namespace == "ns"
    assert seen(ours) == seen(loaded_by_kubernetes(path))


@pytest.mark.parametrize("user", [
    {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "true"}},
    {"username": "a", "password": "b"},
    {"tokenFile": "/t"},
    {"auth-provider": {"name": "oidc", "config": {}}},
])
def test_other_users_are_left_to_the_kubernetes_loader(tmp_path: Path,
                                                       user: dict[str, Any]) -> None:
    from innerloop.k8s.kubeconfig import simple_config

    path = write(tmp_path, {"server": "https://api"}, user)
    assert simple_config(json.loads(path.read_text()), "dev", str(path)) is None


def test_a_proxy_or_a_kubeconfig_list_is_left_to_the_kubernetes_loader(tmp_path: Path) -> None:
    path = write(tmp_path, {"server": "http://api", "proxy-url": "http://proxy:3128"}, {})
    cfg, _ = load_kubeconfig(str(path), None)
    assert isinstance(cfg, Configuration) and cfg.proxy == "http://proxy:3128"
    plain = write(tmp_path, {"server": "http://api"}, {})
    cfg, _ = load_kubeconfig(f"{plain}:{tmp_path / 'absent'}", None)
    assert isinstance(cfg, Configuration) and cfg.host == "http://api"


def test_a_missing_certificate_file_is_the_loaders_complaint(tmp_path: Path) -> None:
    from innerloop.core.errors import ConfigError

    path = write(tmp_path, {"server": "https://api", "certificate-authority": "gone.crt"}, {})
    with pytest.raises(ConfigError, match=r"cannot load kubeconfig .* File does not exist: "):
        load_kubeconfig(str(path), None)


def test_a_bad_port_in_the_server_url_is_one_config_error(tmp_path: Path) -> None:
    from innerloop.core.errors import ConfigError

    path = write(tmp_path, {"server": "https://api:64a43"}, {"token": "t"})
    with pytest.raises(ConfigError, match=r"cannot load kubeconfig .*\(context 'dev'\): Port "):
        load_kubeconfig(str(path), None)
