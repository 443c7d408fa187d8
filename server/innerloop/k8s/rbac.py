"""Permissions: what an intercept needs, asked of the API server before anything is changed, so
a user missing one learns every missing one at once instead of after a half-done start.

One SelfSubjectRulesReview lists what the user may do in the namespace; only what it does not
show as allowed (or everything, when the cluster says its list is incomplete, as with webhook
authorizers) is asked again one SelfSubjectAccessReview each, whose answer is authoritative.
So the common start costs one request, not one per permission, and the verdict is never
stricter than the per-permission reviews'.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any

from innerloop.core.errors import ClusterError, InnerloopError
from innerloop.core.targets import WorkloadRef
from innerloop.k8s.api import WORKLOADS, Api

log = logging.getLogger(__name__)

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


def rule_allows(rule: dict[str, Any], permission: Permission) -> bool:
    """Whether one resource rule of a SelfSubjectRulesReview grants `permission` for every
    object of its kind (RBAC's matching: `*` for any verb, group or resource, `*/sub` for a
    subresource of any resource; a rule limited to resourceNames grants no such thing)."""
    verb, resource, group = permission
    if rule.get("resourceNames"):
        return False
    verbs, groups, resources = (rule.get(k) or [] for k in ("verbs", "apiGroups", "resources"))
    _, _, sub = resource.partition("/")
    return ((verb in verbs or "*" in verbs) and (group in groups or "*" in groups)
            and (resource in resources or "*" in resources
                 or bool(sub) and f"*/{sub}" in resources))


def listed_allowed(review: dict[str, Any], needs: Sequence[Permission]) -> list[bool]:
    """Per permission: whether the rules review shows it allowed. Nothing counts as shown
    when the review says its list is incomplete (then every permission is asked alone)."""
    status = review.get("status") or {}
    if status.get("incomplete"):
        return [False] * len(needs)
    rules = [r for r in status.get("resourceRules") or [] if isinstance(r, dict)]
    return [any(rule_allows(r, need) for r in rules) for need in needs]


async def rules_review(api: Api, namespace: str) -> dict[str, Any] | None:
    """One SelfSubjectRulesReview's answer; None when it cannot be had. It needs nothing but
    the namespace, so a start asks it while it reads what it intercepts."""
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
              "spec": {"namespace": namespace}}
    try:
        result: dict[str, Any] = await api.call(
            "POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            "list your permissions", body=review)
    except InnerloopError as exc:  # e.g. a cluster that forbids it: ask one by one
        log.debug("no rules review (%s); asking per permission", exc)
        return None
    return result


async def check_permissions(api: Api, namespace: str, needs: Iterable[Permission],
                            rules: Awaitable[dict[str, Any] | None] | None = None) -> None:
    """Raise ClusterError naming every missing permission, before anything is changed.
    `rules`: the namespace's `rules_review`, if it was asked already."""
    needs = list(needs)
    review = await (rules if rules is not None else rules_review(api, namespace))
    allowed = listed_allowed(review, needs) if review is not None else [False] * len(needs)
    unsure = [i for i, ok in enumerate(allowed) if not ok]
    answers = await asyncio.gather(*(can_i(api, namespace, *needs[i]) for i in unsure))
    for i, ok in zip(unsure, answers):
        allowed[i] = ok
    missing = [
        f"{v} {r}{'.' + g if g else ''}" for (v, r, g), ok in zip(needs, allowed) if not ok
    ]
    if missing:
        raise ClusterError(
            f"forbidden: your kubeconfig user may not {', '.join(missing)} in namespace "
            f"{namespace!r} (RBAC); ask your cluster admin for those permissions "
            "(docs/usage.md lists what innerloop needs)"
        )
