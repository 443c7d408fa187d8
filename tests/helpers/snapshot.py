"""What a user wrote in a namespace, to compare before an intercept and after `uninstall`."""

from __future__ import annotations

from typing import Any

from tools.cluster import Cluster

KINDS = "configmaps,secrets,services,deployments,statefulsets,serviceaccounts"
WORKLOAD = "deployments,statefulsets,services"
"""What an undone start must put back exactly (the agent's ConfigMap may stay until `uninstall`)."""
WRITABLE = f"{WORKLOAD},configmaps"
"""What an intercept may write: a refused one must leave all of it as it was."""
CONTROLLER_ANNOTATIONS = ("deployment.kubernetes.io/revision",)
"""Written by the Deployment controller on every rollout, not by innerloop."""


def namespace_snapshot(cluster: Cluster, namespace: str,
                       kinds: str = KINDS) -> dict[tuple[str, str], Any]:
    """(kind, name) → what a user wrote: spec or data, labels and annotations."""
    listing = cluster.kubectl_json("-n", namespace, "get", kinds)
    return {
        (o["kind"], o["metadata"]["name"]): {
            "spec": o.get("spec"),
            "data": (o.get("data"), o.get("binaryData"), o.get("type")),
            "labels": o["metadata"].get("labels"),
            "annotations": {
                k: v
                for k, v in (o["metadata"].get("annotations") or {}).items()
                if k not in CONTROLLER_ANNOTATIONS
            },
        }
        for o in listing["items"]
    }


def assert_same(before: dict[tuple[str, str], Any], after: dict[tuple[str, str], Any]) -> None:
    """Every object as it was, and none added or removed."""
    assert sorted(after) == sorted(before), "no object innerloop created remains"
    for key, was in before.items():
        assert after[key] == was, key


def rollout_with_agent(cluster: Cluster, namespace: str) -> bool:
    """The Deployment's template has the agent sidecar and its controller has seen it."""
    deployment = cluster.kubectl_json("-n", namespace, "get", "deployment", "echo")
    containers = deployment["spec"]["template"]["spec"]["containers"]
    seen = (deployment.get("status", {}).get("observedGeneration", 0)
            >= deployment["metadata"]["generation"])
    return seen and any(c["name"] == "innerloop-agent" for c in containers)
