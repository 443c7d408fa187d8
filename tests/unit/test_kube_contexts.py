"""k8s.config.kube_contexts: the walkthrough's context pick, read from the file only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from innerloop.core.errors import ConfigError
from innerloop.k8s.config import KubeContext, kube_contexts


def test_contexts_with_their_namespaces_as_kubectl_defaults_them(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "prod",
        "clusters": [{"name": "c1", "cluster": {"server": "https://198.51.100.1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [
            {"name": "dev", "context": {"cluster": "c1", "user": "u", "namespace": "shop"}},
            {"name": "prod", "context": {"cluster": "c2", "user": "u"}},
        ],
    }))
    assert kube_contexts(str(path)) == (
        [KubeContext("dev", "shop", "c1"), KubeContext("prod", "default", "c2")], "prod")


def test_no_kubeconfig_is_one_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no kubeconfig at"):
        kube_contexts(str(tmp_path / "missing"))
