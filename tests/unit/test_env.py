"""Env resolution tables: the values the kubelet would give the container, computed locally."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from innerloop.core.env import (
    ResolvedEnv,
    Sources,
    expand,
    parse_quantity,
    resolve,
    sources,
)
from innerloop.core.errors import UserError
from k8s_manifests import container, pod

CMS = {
    "app-config": {"LOG_LEVEL": "debug", "FEATURE": "on", "bad=key": "x"},
    "extra": {"FEATURE": "off", "COLOR": "blue"},
}
SECRETS = {"db": {"password": "s3cr=t$(X)", "user": "orders"}}


def app_pod(
    env: list[dict[str, Any]] | None = None,
    env_from: list[dict[str, Any]] | None = None,
    resources: dict[str, Any] | None = None,
) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if env is not None:
        extra["env"] = env
    if env_from is not None:
        extra["envFrom"] = env_from
    if resources is not None:
        extra["resources"] = resources
    return pod(
        "orders-5d8f-a",
        ("ReplicaSet", "orders-5d8f"),
        labels={"app": "orders", "tier": "web"},
        containers=[
            container("app", **extra),
            container("sidecar", ports=(), resources={"limits": {"memory": "64Mi"}}),
        ],
        annotations={"team": "shop"},
    )


def values(
    env: list[dict[str, Any]] | None = None,
    env_from: list[dict[str, Any]] | None = None,
    resources: dict[str, Any] | None = None,
    **kw: Any,
) -> dict[str, str]:
    return resolve(app_pod(env, env_from, resources), "app", CMS, SECRETS, **kw).values


def v(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def ref(var: str, kind: str, **spec: Any) -> dict[str, Any]:
    return {"name": var, "valueFrom": {kind: spec}}


@pytest.mark.parametrize(
    "env, expected",
    [
        ([v("A", "1")], {"A": "1"}),
        ([v("A", "")], {"A": ""}),
        ([{"name": "A"}], {"A": ""}),
        ([v("A", "1"), v("B", "$(A)-2")], {"A": "1", "B": "1-2"}),
        # a later definition overrides, and expansion sees the value at that point
        ([v("A", "1"), v("B", "$(A)"), v("A", "3")], {"A": "3", "B": "1"}),
        # forward references stay as written
        ([v("B", "$(A)"), v("A", "1")], {"A": "1", "B": "$(A)"}),
        ([v("B", "$$(A)"), v("A", "1")], {"A": "1", "B": "$(A)"}),
        (
            [
                ref("LEVEL", "configMapKeyRef", name="app-config", key="LOG_LEVEL"),
                ref("PW", "secretKeyRef", name="db", key="password"),
            ],
            {"LEVEL": "debug", "PW": "s3cr=t$(X)"},  # valueFrom values are never expanded
        ),
        ([ref("N", "configMapKeyRef", name="nope", key="k", optional=True)], {}),
        ([ref("N", "configMapKeyRef", name="app-config", key="nope", optional=True)], {}),
        ([ref("N", "secretKeyRef", name="db", key="nope", optional=True)], {}),
        ([ref("N", "fieldRef", fieldPath="metadata.name")], {"N": "orders-5d8f-a"}),
        ([ref("N", "fieldRef", fieldPath="metadata.namespace")], {"N": "shop"}),
        ([ref("N", "fieldRef", fieldPath="metadata.uid")], {"N": "uid-orders-5d8f-a"}),
        ([ref("N", "fieldRef", fieldPath="metadata.labels['tier']")], {"N": "web"}),
        ([ref("N", "fieldRef", fieldPath="metadata.labels['missing']")], {"N": ""}),
        ([ref("N", "fieldRef", fieldPath="metadata.annotations['team']")], {"N": "shop"}),
        ([ref("N", "fieldRef", fieldPath="spec.nodeName")], {"N": "node1"}),
        ([ref("N", "fieldRef", fieldPath="spec.serviceAccountName")], {"N": "default"}),
        ([ref("N", "fieldRef", fieldPath="status.podIP")], {"N": "198.18.1.7"}),
        ([ref("N", "fieldRef", fieldPath="status.podIPs")], {"N": "198.18.1.7"}),
        ([ref("N", "fieldRef", fieldPath="status.hostIP")], {"N": "198.18.0.1"}),
        ([ref("N", "fieldRef", fieldPath="status.hostIPs")], {"N": "198.18.0.1"}),
    ],
)
def test_env(env: list[dict[str, Any]], expected: dict[str, str]) -> None:
    assert values(env) == expected


@pytest.mark.parametrize(
    "env_from, env, expected",
    [
        ([{"configMapRef": {"name": "app-config"}}], [], {"LOG_LEVEL": "debug", "FEATURE": "on"}),
        # later sources override earlier ones; env overrides both
        (
            [{"configMapRef": {"name": "app-config"}}, {"configMapRef": {"name": "extra"}}],
            [v("COLOR", "red")],
            {"LOG_LEVEL": "debug", "FEATURE": "off", "COLOR": "red"},
        ),
        (
            [{"secretRef": {"name": "db"}, "prefix": "DB_"}],
            [],
            {"DB_password": "s3cr=t$(X)", "DB_user": "orders"},
        ),
        # env expands against envFrom values
        (
            [{"secretRef": {"name": "db"}, "prefix": "DB_"}],
            [v("URL", "pg://$(DB_user)@db")],
            {"DB_password": "s3cr=t$(X)", "DB_user": "orders", "URL": "pg://orders@db"},
        ),
        (
            [
                {"configMapRef": {"name": "nope", "optional": True}},
                {"secretRef": {"name": "nope", "optional": True}},
            ],
            [],
            {},
        ),
    ],
)
def test_env_from(
    env_from: list[dict[str, Any]], env: list[dict[str, Any]], expected: dict[str, str]
) -> None:
    assert values(env, env_from) == expected


def test_env_from_skips_invalid_names_with_a_warning() -> None:
    result = resolve(
        app_pod(env_from=[{"configMapRef": {"name": "app-config"}}]), "app", CMS, SECRETS
    )
    assert "bad=key" not in result.values
    assert result.warnings == (
        (
            "configMap 'app-config' key 'bad=key': not a valid variable "
            "name, skipped (as the kubelet does)"
        ),
    )


@pytest.mark.parametrize(
    "env, env_from, message",
    [
        (
            [ref("N", "configMapKeyRef", name="nope", key="k")],
            [],
            "env N: configMap 'nope' not found (and the reference is not optional)",
        ),
        (
            [ref("N", "secretKeyRef", name="db", key="nope")],
            [],
            "env N: secret 'db' has no key 'nope' (and the reference is not optional)",
        ),
        (
            [],
            [{"secretRef": {"name": "nope"}}],
            "envFrom: secret 'nope' not found (and the reference is not optional)",
        ),
        (
            [ref("N", "fieldRef", fieldPath="metadata.labels")],
            [],
            "fieldRef 'metadata.labels' is not supported",
        ),
        (
            [ref("N", "fileKeyRef", path="x", volumeName="v", key="k")],
            [],
            "env N: unsupported valueFrom ['fileKeyRef']",
        ),
        (
            [ref("N", "resourceFieldRef", resource="limits")],
            [],
            "resourceFieldRef 'limits' is not supported",
        ),
        (
            [ref("N", "resourceFieldRef", resource="requests.cpu", divisor="0")],
            [],
            "resourceFieldRef divisor '0' must be positive",
        ),
        (
            [ref("N", "resourceFieldRef", resource="limits.cpu", containerName="nope")],
            [],
            "pod has no container 'nope'; its containers are app, sidecar",
        ),
    ],
)
def test_env_refuses(
    env: list[dict[str, Any]], env_from: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(UserError) as info:
        values(env, env_from)
    assert str(info.value) == message


RES = {
    "limits": {"cpu": "1500m", "memory": "1Gi"},
    "requests": {"cpu": "250m", "memory": "100M", "ephemeral-storage": "2Gi"},
}


@pytest.mark.parametrize(
    "resource, divisor, expected",
    [
        ("limits.cpu", None, "2"),  # 1.5 cores, rounded up
        ("limits.cpu", "1m", "1500"),
        ("requests.cpu", "1m", "250"),
        ("requests.cpu", "100m", "3"),
        ("limits.memory", None, "1073741824"),
        ("limits.memory", "1Mi", "1024"),
        ("limits.memory", "1M", "1074"),
        ("requests.memory", "1Mi", "96"),
        ("requests.ephemeral-storage", "1Gi", "2"),
        ("requests.hugepages-2Mi", None, "0"),  # unset request: zero
    ],
)
def test_resource_field_ref(resource: str, divisor: str | None, expected: str) -> None:
    spec = {"resource": resource, **({"divisor": divisor} if divisor else {})}
    assert values([ref("N", "resourceFieldRef", **spec)], resources=RES) == {"N": expected}


def test_resource_field_ref_of_another_container_and_node_fallback() -> None:
    other = ref(
        "N", "resourceFieldRef", resource="limits.memory", containerName="sidecar", divisor="1Mi"
    )
    assert values([other]) == {"N": "64"}
    unset = ref("CPUS", "resourceFieldRef", resource="limits.cpu")
    assert values([unset], node_allocatable={"cpu": "2"}) == {"CPUS": "2"}
    result = resolve(app_pod([unset]), "app", CMS, SECRETS)
    assert result == ResolvedEnv(
        values={},
        warnings=("env CPUS: limits.cpu is not set and the node's capacity is unknown; left out",),
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1", Fraction(1)),
        ("100m", Fraction(1, 10)),
        ("1.5Gi", Fraction(3 * 2**29)),
        ("1e3", Fraction(1000)),
        ("1E-3", Fraction(1, 1000)),
        ("2k", Fraction(2000)),
        ("500u", Fraction(1, 2000)),
        ("3n", Fraction(3, 10**9)),
        (".5", Fraction(1, 2)),
        ("+2Ki", Fraction(2048)),
    ],
)
def test_parse_quantity(text: str, expected: Fraction) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "1Xi", "1 Gi", "e3"])
def test_parse_quantity_refuses(text: str) -> None:
    with pytest.raises(UserError, match="is not a Kubernetes quantity"):
        parse_quantity(text)


LOOKUP = {"A": "x", "EMPTY": ""}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("$(A)", "x"),
        ("a$(A)b", "axb"),
        ("$(A)$(A)", "xx"),
        ("$(EMPTY)", ""),
        ("$(B)", "$(B)"),
        ("$()", "$()"),
        ("$$(A)", "$(A)"),
        ("$$$(A)", "$x"),
        ("$$$$(A)", "$$(A)"),
        ("$$", "$"),
        ("$", "$"),
        ("a$", "a$"),
        ("$a", "$a"),
        ("$(A", "$(A"),
        ("$(", "$("),
        ("(A)", "(A)"),
        ("$(A)$", "x$"),
        ("ü$(A)ü", "üxü"),
        ("$$)", "$)"),
        ("$((A))", "$((A))"),
    ],
)
def test_expand_like_kubernetes(text: str, expected: str) -> None:
    assert expand(text, LOOKUP.get) == expected


@given(st.text(alphabet="$()AB x", max_size=30))
def test_expand_without_references_only_unescapes(text: str) -> None:
    # With nothing defined, expansion only turns `$$` into `$`: doubling every `$` and
    # expanding gives the text back.
    assert expand(text.replace("$", "$$"), lambda _: None) == text


def test_sources_lists_what_to_fetch() -> None:
    p = app_pod(
        env=[
            ref("A", "configMapKeyRef", name="cm1", key="k"),
            ref("B", "secretKeyRef", name="s1", key="k"),
            ref("C", "fieldRef", fieldPath="metadata.name"),
            v("D", "1"),
        ],
        env_from=[{"configMapRef": {"name": "cm2"}}, {"secretRef": {"name": "s2"}}],
    )
    assert sources(p, "app") == Sources(
        config_maps=frozenset({"cm1", "cm2"}), secrets=frozenset({"s1", "s2"})
    )
    assert sources(p, "sidecar") == Sources()
    with pytest.raises(UserError, match="pod has no container 'x'"):
        sources(p, "x")
