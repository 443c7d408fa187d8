"""Rollout judging: whether a patched workload's pods all run its current template and are Ready,
what to replace where no controller does, and why new pods cannot start.

Pure: the gateway polls the workload and its pods and acts on the verdict (`k8s.rollout`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from innerloop.core.agent_patch import AGENT_CONTAINER
from innerloop.core.errors import UserError
from innerloop.core.manifest import Manifest, describe, pod_spec


def pod_ready(pod: Manifest) -> bool:
    """Ready and not on its way out: a pod whose agent can carry a tunnel."""
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in pod.get("status", {}).get("conditions", [])
    )


def _container_signature(spec: Manifest) -> list[tuple[Any, ...]]:
    return [
        (c["name"], c.get("image"), c.get("command"), c.get("args"))
        for key in ("initContainers", "containers")
        for c in spec.get(key, [])
    ]


def pod_matches_template(pod: Manifest, workload: Manifest) -> bool:
    """Whether the pod runs the workload's current containers (a ReplicaSet does not replace its
    pods when its template changes, so the gateway replaces the ones that do not match)."""
    return _container_signature(pod.get("spec", {})) == _container_signature(pod_spec(workload))


@dataclass(frozen=True)
class Rollout:
    """Where a workload's rollout stands; `done` or a line saying what it waits for."""

    done: bool
    message: str
    replace: tuple[str, ...] = ()
    """Pods the gateway must delete to make progress (ReplicaSet, StatefulSet OnDelete)."""


def manual_rollout(workload: Manifest) -> bool:
    """No controller replaces this workload's pods when its template changes: we must."""
    kind: str = workload["kind"]
    strategy = workload["spec"].get("updateStrategy", {}).get("type")
    return kind == "ReplicaSet" or (kind == "StatefulSet" and strategy == "OnDelete")


def rollout_status(workload: Manifest, pods: Sequence[Manifest]) -> Rollout:
    """kubectl's rollout-status rules, plus manual replacement where no controller rolls pods."""
    kind = workload["kind"]
    spec = workload["spec"]
    status = workload.get("status", {})
    want = int(spec.get("replicas", 1))
    if status.get("observedGeneration", 0) < workload["metadata"].get("generation", 0):
        return Rollout(False, f"waiting for the {kind} controller to see the change")
    if kind == "Deployment":
        for cond in status.get("conditions", []):
            if (
                cond.get("type") == "Progressing"
                and cond.get("reason") == "ProgressDeadlineExceeded"
            ):
                raise UserError(
                    f"{describe(workload)} rollout exceeded its progress deadline: "
                    f"{cond.get('message', '')}".rstrip(": ")
                )
        updated = int(status.get("updatedReplicas", 0))
        if updated < want:
            return Rollout(False, f"{updated} of {want} replicas updated")
        if int(status.get("replicas", 0)) > updated:
            old = int(status["replicas"]) - updated
            return Rollout(False, f"{old} old replicas pending termination")
        available = int(status.get("availableReplicas", 0))
        if available < updated:
            return Rollout(False, f"{available} of {updated} updated replicas available")
        return Rollout(True, f"{want} replicas updated and available")
    if kind == "StatefulSet" and not manual_rollout(workload):
        ready = int(status.get("readyReplicas", 0))
        if ready < want:
            return Rollout(False, f"{ready} of {want} replicas ready")
        if status.get("updateRevision") != status.get("currentRevision"):
            updated = int(status.get("updatedReplicas", 0))
            return Rollout(False, f"{updated} of {want} replicas updated")
        return Rollout(True, f"{want} replicas updated and ready")
    return _manual_rollout(workload, pods, want)


def _manual_rollout(workload: Manifest, pods: Sequence[Manifest], want: int) -> Rollout:
    """One pod at a time, only while every other replica is Ready, so capacity never drops by
    more than one."""
    live = [p for p in pods if not p.get("metadata", {}).get("deletionTimestamp")]
    stale = sorted(p["metadata"]["name"] for p in live if not pod_matches_template(p, workload))
    ready = [p for p in live if pod_ready(p) and pod_matches_template(p, workload)]
    if not stale:
        if len(ready) < want:
            return Rollout(False, f"{len(ready)} of {want} replicas ready")
        return Rollout(True, f"{want} replicas updated and ready")
    if len(live) < want or len(live) > want or not all(pod_ready(p) for p in live):
        return Rollout(False, f"{len(stale)} replicas to replace; waiting for pods to be ready")
    return Rollout(False, f"replacing pod {stale[0]} ({len(stale)} to go)", replace=(stale[0],))


FATAL_WAITING = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "CrashLoopBackOff",
    }
)


AGENT_IMAGE_NEEDS = "the agent image must run python3 >= 3.10"


def is_agent_image_problem(problem: str) -> bool:
    """A `rollout_problem` line about the agent's image: the fix is another image."""
    return problem.endswith(f"({AGENT_IMAGE_NEEDS})")


def rollout_problem(workload: Manifest, pods: Sequence[Manifest]) -> str | None:
    """Why the new pods cannot become Ready, as one line, or None while they still may.

    Only pods that run the current template count: an old pod's trouble is not this rollout's.
    The agent must never exit, so any termination of it is a problem too (e.g. an image without
    python3).
    """
    for p in pods:
        if p.get("metadata", {}).get("deletionTimestamp") or not pod_matches_template(p, workload):
            continue
        name = p["metadata"]["name"]
        for cond in p.get("status", {}).get("conditions", []):
            if cond.get("type") == "PodScheduled" and cond.get("reason") == "Unschedulable":
                return f"pod {name} cannot be scheduled: {cond.get('message', '')}".rstrip(": ")
        statuses = p.get("status", {}).get("initContainerStatuses", []) + p.get("status", {}).get(
            "containerStatuses", []
        )
        for cs in statuses:
            waiting = cs.get("state", {}).get("waiting", {})
            ended = cs.get("state", {}).get("terminated") or cs.get("lastState", {}).get(
                "terminated"
            )
            is_agent = cs.get("name") == AGENT_CONTAINER
            if waiting.get("reason") not in FATAL_WAITING and not (is_agent and ended):
                continue
            detail = waiting.get("reason", "")
            if ended:
                detail = (f"{detail}; " if detail else "") + (
                    f"exited {ended.get('exitCode')}: "
                    f"{ended.get('message') or ended.get('reason') or ''}".rstrip(": ")
                )
            elif waiting.get("message"):
                detail += f": {waiting['message']}"
            line = f"pod {name} container {cs.get('name')}: {detail}"
            if is_agent:
                line += f" ({AGENT_IMAGE_NEEDS})"
            return line
    return None
