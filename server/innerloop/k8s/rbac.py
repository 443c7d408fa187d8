"""Permissions: what an intercept needs, asked of the API server before anything is changed, so
a user missing one learns every missing one at once instead of after a half-done start."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from innerloop.core.errors import ClusterError
from innerloop.core.targets import WorkloadRef
from innerloop.k8s.api import WORKLOADS, Api

Permission = tuple[str, str, str]
"""(verb, resource[/subresource], API group), as a SelfSubjectAccessReview asks it."""

ENV_PERMISSIONS: tuple[Permission, ...] = (("get", "configmaps", ""), ("get", "secrets", ""))
"""What reading the workload's environment (`-- CMD`, `--env-file`) needs."""


def intercept_permissions(workload: WorkloadRef, manual_rollout: bool) -> tuple[Permission, ...]:
    """What an intercept of this workload needs, checked before anything is changed.

    `manual_rollout`: no controller replaces the pods (ReplicaSet, StatefulSet OnDelete), so
    the gateway deletes them one by one.
    """
    plural = WORKLOADS[workload.kind]
    return (
        ("get", "services", ""),
        ("update", "services", ""),
        ("list", "pods", ""),
        ("watch", "pods", ""),
        # The WebSocket port-forward is authorized as `get`; newer clusters also want `create`.
        ("get", "pods/portforward", ""),
        ("create", "pods/portforward", ""),
        ("get", "configmaps", ""),
        ("create", "configmaps", ""),
        ("get", plural, "apps"),
        ("update", plural, "apps"),
        *((("delete", "pods", ""),) if manual_rollout else ()),
    )


async def can_i(api: Api, namespace: str, verb: str, resource: str, group: str = "") -> bool:
    """A SelfSubjectAccessReview; `resource` may name a subresource (`pods/portforward`)."""
    plural, _, sub = resource.partition("/")
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {
                "namespace": namespace,
                "verb": verb,
                "resource": plural,
                "subresource": sub,
                "group": group,
            }
        },
    }
    result = await api.call(
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        "check permissions",
        body=review,
    )
    return bool(result.get("status", {}).get("allowed"))


async def check_permissions(api: Api, namespace: str, needs: Iterable[Permission]) -> None:
    """Raise ClusterError naming every missing permission, before anything is changed."""
    needs = list(needs)
    allowed = await asyncio.gather(*(can_i(api, namespace, v, r, g) for v, r, g in needs))
    missing = [
        f"{v} {r}{'.' + g if g else ''}" for (v, r, g), ok in zip(needs, allowed) if not ok
    ]
    if missing:
        raise ClusterError(
            f"forbidden: your kubeconfig user may not {', '.join(missing)} in namespace "
            f"{namespace!r} (RBAC); ask your cluster admin for those permissions "
            "(docs/usage.md lists what innerloop needs)"
        )
