"""core.volumes as tables: which mounts are copied, what each volume holds, where a path maps."""

from __future__ import annotations

from typing import Any

import pytest
from innerloop.core.volumes import (
    Fetched,
    File,
    Mount,
    Needs,
    TokenSpec,
    local_path,
    mount_table,
    needs,
    plan,
    volume_files,
)

RW, RX = 0o600, 0o700
TOKEN = TokenSpec("", 3607)
API_ACCESS = {"name": "kube-api-access-x", "projected": {"defaultMode": 420, "sources": [
    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
        "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
]}}


def pod(volumes: list[dict[str, Any]], mounts: list[dict[str, Any]],
        resources: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "orders-1", "namespace": "shop", "uid": "u-1",
                     "labels": {"app": "orders", "tier": 'we"b'},
                     "annotations": {"note": "a\\b\nc\td\re"}},
        "spec": {"volumes": volumes, "serviceAccountName": "orders",
                 "containers": [{"name": "app", "volumeMounts": mounts,
                                 "resources": resources or {}}]},
    }


FETCHED = Fetched(
    config_maps={"app-config": {"config.yaml": b"a: 1\n", "run.sh": b"#!/bin/sh\n"},
                 "kube-root-ca.crt": {"ca.crt": b"PEM"}},
    secrets={"db": {"password": b"s3cret", "user": b"app"}},
    tokens={TOKEN: "jwt"},
)


@pytest.mark.parametrize(("mounts", "volumes", "copied", "skipped"), [
    pytest.param(
        [{"name": "config", "mountPath": "/etc/app/"}], [{"name": "config", "configMap": {}}],
        [Mount("/etc/app", "config")], [], id="configmap, path normalised"),
    pytest.param(
        [{"name": "creds", "mountPath": "/etc/app/db.pw", "subPath": "./password"}],
        [{"name": "creds", "secret": {}}],
        [Mount("/etc/app/db.pw", "creds", "password")], [], id="secret subPath"),
    pytest.param(
        [{"name": "data", "mountPath": "/data"}, {"name": "cache", "mountPath": "/cache"},
         {"name": "gone", "mountPath": "/gone"}],
        [{"name": "data", "emptyDir": {}}, {"name": "cache", "persistentVolumeClaim": {}}],
        [], ["data (emptyDir) at /data", "cache (persistentVolumeClaim) at /cache",
             "gone (unknown) at /gone"], id="not copied, listed"),
    pytest.param(
        [{"name": "c", "mountPath": "/x", "subPathExpr": "$(POD)"}], [{"name": "c", "secret": {}}],
        [], ["c (secret, subPathExpr) at /x"], id="subPathExpr"),
    pytest.param(
        [{"name": "c", "mountPath": "/"}, {"name": "c", "mountPath": "rel"},
         {"name": "c", "mountPath": "/y", "subPath": "../up"}],
        [{"name": "c", "downwardAPI": {}}],
        [], ["c (downwardAPI) at '/': not a usable path",
             "c (downwardAPI) at 'rel': not a usable path",
             "c (downwardAPI) at '/y': not a usable path"], id="unusable paths"),
])
def test_plan(mounts: list[dict[str, Any]], volumes: list[dict[str, Any]],
              copied: list[Mount], skipped: list[str]) -> None:
    p = plan(pod(volumes + [{"name": "unused", "secret": {}}], mounts), "app")
    assert list(p.mounts) == copied
    assert list(p.skipped) == skipped
    assert set(p.volumes) == {m.volume for m in copied}
    assert p.empty is (not copied)


def test_needs_collects_every_source_once() -> None:
    volumes = [API_ACCESS, {"name": "cfg", "configMap": {"name": "app-config"}},
               {"name": "db", "secret": {"secretName": "db"}},
               {"name": "proj", "projected": {"sources": [{"secret": {"name": "db"}}, {
                   "serviceAccountToken": {"path": "t", "audience": "vault"}}]}}]
    mounts = [{"name": v["name"], "mountPath": f"/m/{v['name']}"} for v in volumes]
    assert needs(plan(pod(volumes, mounts), "app")) == Needs(
        frozenset({"kube-root-ca.crt", "app-config"}), frozenset({"db"}),
        frozenset({TOKEN, TokenSpec("vault", 3600)}))


def files(volume: dict[str, Any], fetched: Fetched = FETCHED,
          resources: dict[str, Any] | None = None) -> tuple[dict[str, File], list[str]]:
    return volume_files(volume, pod([volume], [], resources), "app", fetched)


@pytest.mark.parametrize(("volume", "expected", "warnings"), [
    pytest.param({"name": "v", "configMap": {"name": "app-config", "defaultMode": 0o755}},
                 {"config.yaml": File(b"a: 1\n", RX), "run.sh": File(b"#!/bin/sh\n", RX)}, [],
                 id="configmap, every key, executable"),
    pytest.param({"name": "v", "configMap": {"name": "app-config", "items": [
        {"key": "run.sh", "path": "bin/run", "mode": 0o500},
        {"key": "config.yaml", "path": "conf/./app.yaml"}]}},
                 {"bin/run": File(b"#!/bin/sh\n", RX), "conf/app.yaml": File(b"a: 1\n", RW)}, [],
                 id="configmap items, mode per item"),
    pytest.param({"name": "v", "secret": {"secretName": "db", "items": [
        {"key": "password", "path": "pw"}, {"key": "nope", "path": "x"}]}},
                 {"pw": File(b"s3cret", RW)}, ["volume v: secret 'db' has no key 'nope'"],
                 id="secret, missing key"),
    pytest.param({"name": "v", "secret": {"secretName": "db", "optional": True, "items": [
        {"key": "nope", "path": "x"}]}}, {}, [], id="optional key"),
    pytest.param({"name": "v", "secret": {"secretName": "none"}}, {},
                 ["volume v: secret 'none' not found"], id="missing secret"),
    pytest.param({"name": "v", "configMap": {"name": "none", "optional": True}}, {}, [],
                 id="optional configmap"),
    pytest.param({"name": "v", "configMap": {"name": "app-config", "items": [
        {"key": "run.sh", "path": "/abs"}, {"key": "run.sh", "path": "../out"}]}}, {},
                 ["volume v: '/abs' is not a relative path inside it; skipped",
                  "volume v: '../out' is not a relative path inside it; skipped"],
                 id="unsafe paths"),
    pytest.param(API_ACCESS, {"token": File(b"jwt", RW), "ca.crt": File(b"PEM", RW),
                              "namespace": File(b"shop", RW)}, [], id="service-account access"),
    pytest.param({"name": "v", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "notes", "fieldRef": {"fieldPath": "metadata.annotations"}},
        {"path": "app", "fieldRef": {"fieldPath": "metadata.labels['app']"}},
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 0o777},
        {"path": "cpu", "resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}},
        {"path": "mem", "resourceFieldRef": {"resource": "limits.memory"}},
        {"path": "bad", "fieldRef": {"fieldPath": "spec.nothing"}},
    ]}}, {"labels": File(b'app="orders"\ntier="we\\"b"', RW),
          "notes": File(b'note="a\\\\b\\nc\\td\\re"', RW), "app": File(b"orders", RW),
          "name": File(b"orders-1", RX), "cpu": File(b"250", RW)},
        [("volume v: mem: the limit is the node's capacity, which innerloop cannot read; "
          "left out"), "volume v: bad: fieldRef 'spec.nothing' is not supported"],
        id="downward API"),
    pytest.param({"name": "v", "projected": {"sources": [
        {"clusterTrustBundle": {"path": "b"}}, {"serviceAccountToken": {"path": "t"}}]}},
                 {}, ["volume v: clusterTrustBundle sources are not copied"],
                 id="projected: unsupported source, no token allowed"),
])
def test_volume_files(volume: dict[str, Any], expected: dict[str, File],
                      warnings: list[str]) -> None:
    got, said = files(volume, resources={"requests": {"cpu": "250m"}})
    assert got == expected
    assert said == warnings


def test_mount_table_puts_the_most_specific_first_and_maps_paths() -> None:
    volumes = [{"name": "cfg", "configMap": {}}, {"name": "db", "secret": {}}, API_ACCESS]
    mounts = [{"name": "cfg", "mountPath": "/etc/app"},
              {"name": "db", "mountPath": "/etc/app/db/password", "subPath": "password"},
              {"name": "kube-api-access-x",
               "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]
    table = mount_table(plan(pod(volumes, mounts), "app"), "/r")
    assert table == [
        ("/var/run/secrets/kubernetes.io/serviceaccount", "/r/kube-api-access-x"),
        ("/etc/app/db/password", "/r/db/password"),
        ("/etc/app", "/r/cfg"),
    ]
    assert [local_path(table, p) for p in TABLE_PATHS] == TABLE_EXPECTED


TABLE_PATHS = ["/etc/app", "/etc/app/", "/etc/app/config.yaml", "/etc/app//x/../y",
               "/etc/app/db/password", "/etc/apple", "/etc", "etc/app/config.yaml",
               "/var/run/secrets/kubernetes.io/serviceaccount/token", "/etc/app/db/password/x"]
TABLE_EXPECTED = ["/r/cfg", "/r/cfg", "/r/cfg/config.yaml", "/r/cfg/y", "/r/db/password",
                  None, None, None, "/r/kube-api-access-x/token", "/r/db/password/x"]
"""Shared with tests/integration/test_volume_hook.py: the hook's twin must agree."""
