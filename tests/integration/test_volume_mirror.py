"""VolumeMirror over a fake gateway: copies, modes, updates, removals, the token, the end.

No cluster: the "API server" is a dict the test edits; the mirror's files are real.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from innerloop.clusternet import volumes
from innerloop.clusternet.volumes import VOLUMES_ENV, VolumeMirror
from innerloop.core.errors import ClusterError
from innerloop.k8s.volumes import domain_from_names

pytestmark = pytest.mark.integration


class FakeReader:
    def __init__(self) -> None:
        self.config_maps: dict[str, dict[str, bytes]] = {"app": {"a.yaml": b"one"}}
        self.secrets: dict[str, dict[str, bytes]] = {"db": {"pw": b"s3cret"}}
        self.token_allowed = True
        self.tokens: list[tuple[str, str, str, int]] = []

    async def config_map_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        return self.config_maps.get(name)

    async def secret_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        return self.secrets.get(name)

    async def service_account_token(self, namespace: str, account: str, audience: str,
                                    expiration: int) -> str:
        if not self.token_allowed:
            raise ClusterError("forbidden: alice may not create serviceaccounts/token")
        self.tokens.append((namespace, account, audience, expiration))
        return f"token-{len(self.tokens)}"


def pod() -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "shop"},
        "spec": {"serviceAccountName": "orders", "volumes": [
            {"name": "cfg", "configMap": {"name": "app", "defaultMode": 0o755}},
            {"name": "creds", "secret": {"secretName": "db"}},
            {"name": "sa", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}]}},
            {"name": "tmp", "emptyDir": {}},
        ], "containers": [{"name": "app", "volumeMounts": [
            {"name": "cfg", "mountPath": "/etc/app"},
            {"name": "creds", "mountPath": "/etc/db/pw", "subPath": "pw"},
            {"name": "sa", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"},
            {"name": "tmp", "mountPath": "/tmp/x"},
        ]}]},
    }


@pytest.fixture(autouse=True)
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setattr(volumes, "POLL_INTERVAL", 0.05)


async def test_copies_follow_the_objects_and_go_at_the_end() -> None:
    reader, said = FakeReader(), []
    mirror = VolumeMirror(reader, pod(), "app", said.append)
    await mirror.start()
    root = mirror.root
    assert root is not None and mirror.env() == {VOLUMES_ENV: str(root)}
    assert root.stat().st_mode & 0o777 == 0o700
    assert (root / "cfg" / "a.yaml").read_bytes() == b"one"
    assert (root / "cfg" / "a.yaml").stat().st_mode & 0o777 == 0o700  # defaultMode 0755
    assert (root / "creds" / "pw").stat().st_mode & 0o777 == 0o600
    assert (root / "sa" / "token").read_text() == "token-1"
    assert reader.tokens == [("shop", "orders", "", 3600)]
    table = json.loads((root / "mounts.json").read_text())["mounts"]
    assert table[0] == ["/var/run/secrets/kubernetes.io/serviceaccount", str(root / "sa")]
    assert ["/etc/db/pw", str(root / "creds" / "pw")] in table
    assert (root / "mounts.json").stat().st_mode & 0o777 == 0o600
    assert said == [("volumes not copied (their data is not in the API server): "
                     "tmp (emptyDir) at /tmp/x")]

    reader.config_maps["app"] = {"b/c.yaml": b"two"}
    for _ in range(100):
        if (root / "cfg" / "b" / "c.yaml").exists() and not (root / "cfg" / "a.yaml").exists():
            break
        await asyncio.sleep(0.02)
    assert (root / "cfg" / "b" / "c.yaml").read_bytes() == b"two"
    assert not (root / "cfg" / "a.yaml").exists()
    assert not [p for p in (root / "cfg").rglob(".*")], "no temp file left"
    reader.config_maps["app"] = {}
    await mirror.refresh()
    assert list((root / "cfg").iterdir()) == [], "an emptied directory goes too"
    assert len(reader.tokens) == 1, "the token is renewed only after 80 % of its life"

    await mirror.aclose()
    assert not root.exists() and mirror.env() == {}


async def test_no_token_permission_is_one_line_and_the_rest_is_copied() -> None:
    reader, said = FakeReader(), []
    reader.token_allowed = False
    mirror = VolumeMirror(reader, pod(), "app", said.append)
    await mirror.start()
    assert mirror.root is not None
    await mirror.refresh()
    await mirror.refresh()
    assert [s for s in said if "token" in s] == [
        ("no service-account token in the copies: forbidden: alice may not create "
         "serviceaccounts/token")]
    assert not (mirror.root / "sa" / "token").exists()
    assert (mirror.root / "creds" / "pw").read_bytes() == b"s3cret"
    await mirror.aclose()


async def test_a_container_without_copied_volumes_gets_nothing() -> None:
    p = pod()
    p["spec"]["containers"][0]["volumeMounts"] = []
    mirror = VolumeMirror(FakeReader(), p, "app", [].append)
    await mirror.start()
    assert mirror.root is None and mirror.env() == {} and mirror.mounts == []
    await mirror.aclose()
    assert not os.path.exists(os.environ["XDG_RUNTIME_DIR"] + "/innerloop-vol"), "no dir made"


@pytest.mark.parametrize(("names", "domain"), [
    (["kubernetes", "kubernetes.default.svc", "kubernetes.default.svc.corp.example"],
     "corp.example"),
    (["Kubernetes.Default.Svc.Cluster.Local."], "cluster.local"),
    (["localhost", "kubernetes.default.svc"], None),
    ([], None),
])
def test_the_cluster_domain_from_certificate_names(names: list[str], domain: str | None) -> None:
    assert domain_from_names(names) == domain
