"""What taking the agent out leaves beyond the specs, removed or waited out so that uninstall
and a failed start's rollback end with the workload as it was: the agent's pods (terminating
ones too), the Deployment's ReplicaSets of agent templates, and the agent's ConfigMap."""

from __future__ import annotations

import asyncio

from innerloop.core.agent_patch import pod_has_agent
from innerloop.core.errors import ClusterError, InnerloopError
from innerloop.core.report import Report
from innerloop.core.targets import WorkloadRef, workload_selector
from innerloop.k8s.api import api_path
from innerloop.k8s.gateway import Gateway

POLL_SECONDS = 0.5
PODS_GONE_TIMEOUT = 120.0
"""A pod's grace period (30 s by default) and the kubelet's cleanup, with room to spare."""


async def clean_up_after_agent(gw: Gateway, ref: WorkloadRef, report: Report) -> None:
    """After the rollout that removed the agent: until no pod runs it, then the leftovers."""
    await _until_agent_pods_gone(gw, ref, report)
    if ref.kind == "Deployment":
        await _delete_agent_replica_sets(gw, ref, report)
    try:
        deleted = await gw.delete_unused_agent_config_maps(ref.namespace)
    except ClusterError as exc:  # e.g. no RBAC to list/delete ConfigMaps: the specs are back
        report(f"left the agent ConfigMap behind: {exc.user_line()}")
        return
    for name in deleted:
        report(f"deleted configmap/{name}")


async def _until_agent_pods_gone(gw: Gateway, ref: WorkloadRef, report: Report) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PODS_GONE_TIMEOUT
    said = False
    while True:
        workload = await gw.get_workload(ref)
        left = sorted(p["metadata"]["name"] for p in await gw.workload_pods(workload)
                      if pod_has_agent(p))
        if not left:
            return
        if not said:
            report(f"waiting for {len(left)} pod(s) with the agent to end ({', '.join(left)})")
            said = True
        if loop.time() > deadline:
            raise ClusterError(f"pods with the agent still there after {PODS_GONE_TIMEOUT:.0f} s "
                               f"({', '.join(left)}); see `kubectl -n {ref.namespace} get pods`")
        await asyncio.sleep(POLL_SECONDS)


async def _delete_agent_replica_sets(gw: Gateway, ref: WorkloadRef, report: Report) -> None:
    """The scaled-down ReplicaSets whose template runs the agent: innerloop's, not history the
    owner made (`kubectl rollout undo` must never bring the agent back)."""
    deployment = await gw.get_workload(ref)
    uid = deployment["metadata"].get("uid")
    replica_sets = await gw.api.list_items("apps/v1", "ReplicaSet", "replicasets", ref.namespace,
                                           workload_selector(deployment))
    for rs in replica_sets:
        owners = [o.get("uid") for o in rs["metadata"].get("ownerReferences", [])
                  if o.get("controller")]
        if owners != [uid] or int(rs["spec"].get("replicas") or 0) != 0 \
                or not pod_has_agent(rs["spec"].get("template", {})):
            continue
        name = rs["metadata"]["name"]
        try:
            await gw.api.delete(api_path("apps/v1", ref.namespace, "replicasets", name),
                                f"delete replicaset {name!r} in namespace {ref.namespace!r}")
        except InnerloopError as exc:
            report(f"left replicaset/{name} (0 replicas, with the agent) in the history: "
                   f"{exc.user_line()}")
            continue
        report(f"deleted replicaset/{name} (the agent's, 0 replicas)")
