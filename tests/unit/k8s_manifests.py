"""Manifest builders for the target / patch / env tables: API JSON shapes as the server returns
them (camelCase, defaults such as protocol and targetPort filled in)."""

from __future__ import annotations

from typing import Any

from innerloop.core.agent_patch import AgentConfig

Manifest = dict[str, Any]
LABELS = {"app": "orders"}
AGENT_CONFIG = AgentConfig(
    image="localhost/python3:1", config_map="innerloop-agent-0123456789", image_pull_policy="Never"
)


def container(
    name: str = "app", ports: tuple[tuple[int, str | None], ...] = ((8080, "http"),), **extra: Any
) -> Manifest:
    c: Manifest = {
        "name": name,
        "image": f"localhost/{name}:1",
        "imagePullPolicy": "IfNotPresent",
        "terminationMessagePath": "/dev/termination-log",
    }
    if ports:
        c["ports"] = [
            {"containerPort": n, "protocol": "TCP", **({"name": nm} if nm else {})}
            for n, nm in ports
        ]
    c.update(extra)
    return c


def template(
    containers: list[Manifest] | None = None,
    volumes: list[Manifest] | None = None,
    labels: dict[str, str] | None = None,
) -> Manifest:
    spec: Manifest = {
        "containers": containers or [container()],
        "restartPolicy": "Always",
        "dnsPolicy": "ClusterFirst",
        "terminationGracePeriodSeconds": 30,
    }
    if volumes is not None:
        spec["volumes"] = volumes
    return {"metadata": {"labels": dict(labels or LABELS)}, "spec": spec}


def owned_by(kind: str, name: str) -> list[Manifest]:
    """The ownerReferences of an object that the controller ``kind``/``name`` made."""
    return [
        {"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": f"uid-{name}",
         "controller": True}
    ]


def workload(
    kind: str = "Deployment",
    name: str = "orders",
    namespace: str = "shop",
    replicas: int = 2,
    owner: tuple[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    **template_args: Any,
) -> Manifest:
    meta: Manifest = {
        "name": name,
        "namespace": namespace,
        "generation": 1,
        "resourceVersion": "100",
        "uid": f"uid-{name}",
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    if owner:
        meta["ownerReferences"] = owned_by(*owner)
    tpl = template(**template_args)
    spec: Manifest = {
        "replicas": replicas,
        "selector": {"matchLabels": dict(tpl["metadata"]["labels"])},
        "template": tpl,
    }
    if kind == "StatefulSet":
        spec["serviceName"] = name
        spec["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": meta,
        "spec": spec,
        "status": {"observedGeneration": 1},
    }


def pod(
    name: str,
    owner: tuple[str, str] | None,
    labels: dict[str, str] | None = None,
    containers: list[Manifest] | None = None,
    ready: bool = True,
    namespace: str = "shop",
    **extra_meta: Any,
) -> Manifest:
    meta: Manifest = {
        "name": name,
        "namespace": namespace,
        "labels": dict(labels or LABELS),
        "uid": f"uid-{name}",
        **extra_meta,
    }
    if owner:
        meta["ownerReferences"] = owned_by(*owner)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "containers": containers or [container()],
            "nodeName": "node1",
            "serviceAccountName": "default",
        },
        "status": {
            "podIP": "198.18.1.7",
            "podIPs": [{"ip": "198.18.1.7"}],
            "hostIP": "198.18.0.1",
            "hostIPs": [{"ip": "198.18.0.1"}],
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def service(
    name: str = "orders",
    namespace: str = "shop",
    ports: list[Manifest] | None = None,
    selector: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> Manifest:
    meta: Manifest = {"name": name, "namespace": namespace, "resourceVersion": "7"}
    if annotations:
        meta["annotations"] = dict(annotations)
    spec: Manifest = {
        "ports": ports
        if ports is not None
        else [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
        "type": "ClusterIP",
        "clusterIP": "198.19.3.4",
        "sessionAffinity": "None",
    }
    if selector is None:
        spec["selector"] = dict(LABELS)
    elif selector:
        spec["selector"] = dict(selector)
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


def config_map(name: str, labels: dict[str, str] | None = None, namespace: str = "shop") -> Manifest:
    meta: Manifest = {"name": name, "namespace": namespace, "resourceVersion": "9"}
    if labels:
        meta["labels"] = dict(labels)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {}}
