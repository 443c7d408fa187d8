"""The parsed kubeconfig kept between starts (`k8s.config_cache`): an unchanged kubeconfig
loads without PyYAML to the same settings, any change to the file is seen, what JSON cannot
hold exactly is never kept, and the cache is private (a copy others could read or write is not
used)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from innerloop.k8s import config_cache
from innerloop.k8s.config import kube_contexts, load_kubeconfig

YAML = """\
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: c
  cluster: {server: "https://api.example:6443/", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: abc}
contexts:
- name: dev
  context: {cluster: c, user: u, namespace: shop}
- name: other
  context: {cluster: c, user: u}
"""


@pytest.fixture(autouse=True)
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    return tmp_path / "run" / config_cache.CACHE_DIR / config_cache.NAME


def loaded(path: Path) -> tuple[str, str | None, str]:
    cfg, namespace = load_kubeconfig(str(path), None)
    return cfg.host, cfg.token, namespace


def test_an_unchanged_kubeconfig_loads_from_the_cache_without_yaml(tmp_path: Path,
                                                                   runtime: Path) -> None:
    path = tmp_path / "config"
    path.write_text(YAML)
    first = loaded(path)
    assert first == ("https://api.example:6443", "Bearer abc", "shop")
    assert oct(runtime.stat().st_mode & 0o777) == "0o600"
    assert oct(runtime.parent.stat().st_mode & 0o777) == "0o700"
    probe = ("import sys\nfrom innerloop.k8s.config import load_kubeconfig, kube_contexts\n"
             f"cfg, ns = load_kubeconfig({str(path)!r}, 'other')\n"
             f"names = [c.name for c in kube_contexts({str(path)!r})[0]]\n"
             "print(cfg.host, ns, names, 'yaml' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60, env=dict(os.environ)).stdout.strip()
    assert out == "https://api.example:6443 default ['dev', 'other'] False"


def test_a_change_to_the_file_is_seen_even_at_the_same_size(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(YAML)
    assert loaded(path)[1] == "Bearer abc"
    path.write_text(YAML.replace("token: abc", "token: xyz"))
    assert loaded(path)[1] == "Bearer xyz"
    replaced = tmp_path / "new"
    replaced.write_text(YAML.replace("token: abc", "token: new"))
    replaced.replace(path)
    assert loaded(path)[1] == "Bearer new"
    link = tmp_path / "link"
    link.symlink_to(path)
    assert loaded(link)[1] == "Bearer new"


def test_what_json_cannot_hold_exactly_is_not_kept(tmp_path: Path, runtime: Path) -> None:
    path = tmp_path / "config"
    path.write_text(YAML + "preferences: {1: x}\n")
    loaded(path)
    assert not runtime.exists() or str(path) not in runtime.read_text()
    path.write_text(YAML + "preferences: {when: 2024-01-01}\n")
    loaded(path)
    assert not runtime.exists() or str(path) not in runtime.read_text()


def test_a_cache_others_may_read_is_not_used(tmp_path: Path, runtime: Path) -> None:
    path = tmp_path / "config"
    path.write_text(YAML)
    loaded(path)
    entries = json.loads(runtime.read_text())
    entries[os.path.realpath(path)]["config"]["users"][0]["user"]["token"] = "planted"
    runtime.write_text(json.dumps(entries))
    os.chmod(runtime, 0o644)
    assert loaded(path)[1] == "Bearer abc"
    os.chmod(runtime, 0o600)
    runtime.write_text("{not json")
    assert loaded(path)[1] == "Bearer abc"


def test_only_the_last_few_kubeconfigs_are_kept(tmp_path: Path, runtime: Path) -> None:
    paths = []
    for n in range(config_cache.KEPT + 2):
        paths.append(tmp_path / f"config{n}")
        paths[-1].write_text(YAML)
        assert kube_contexts(str(paths[-1]))[1] == "dev"
    kept = json.loads(runtime.read_text())
    assert sorted(kept) == sorted(os.path.realpath(p) for p in paths[-config_cache.KEPT:])
