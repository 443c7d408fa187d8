"""Waiting for the cluster to carry out a change: a workload's rollout (replacing pods where no
controller does), and a Service's EndpointSlices following a new targetPort.

The verdicts are `core.rollout`'s; this module polls, deletes the pods it is told to, and turns
"never" into one line. Cancellable: it only awaits short calls and sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from innerloop.core.advice import Fix, advise
from innerloop.core.errors import ClusterError, InnerloopError
from innerloop.core.rollout import is_agent_image_problem, rollout_problem, rollout_status
from innerloop.core.targets import WorkloadRef
from innerloop.k8s.api import Api, api_path
from innerloop.k8s.reads import get_workload, workload_pods

POLL_SECONDS = 0.5
FAST_POLL_SECONDS = 0.1
FAST_POLL_FOR = 10.0
"""A rollout usually ends within seconds and the intercept waits on it: poll every 0.1 s for
the first 10 s (a detection lag of 0.05 s on average instead of 0.25 s), then every 0.5 s."""


async def delete_pod(api: Api, namespace: str, name: str) -> None:
    await api.delete(api_path("v1", namespace, "pods", name), f"delete pod {name!r}")


async def wait_rollout(
    api: Api,
    ref: WorkloadRef,
    timeout: float = 180.0,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Until the workload's pods all run its current template and are Ready.

    Where no controller replaces pods (ReplicaSet, StatefulSet OnDelete) the pods are
    replaced here, one at a time. Fails fast with the reason when new pods cannot start.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + timeout
    last = ""
    while True:
        workload = await get_workload(api, ref)
        pods = await workload_pods(api, workload)
        status = rollout_status(workload, pods)
        if status.done:
            return
        problem = rollout_problem(workload, pods)
        if problem:
            hint = advise(Fix.AGENT_IMAGE) if is_agent_image_problem(problem) else None
            raise ClusterError(f"{ref} rollout cannot finish: {problem}", advice=hint)
        for name in status.replace:
            await delete_pod(api, ref.namespace, name)
        if status.message != last and progress is not None:
            progress(status.message)
        last = status.message
        if loop.time() > deadline:
            raise ClusterError(
                f"{ref} rollout not done after {timeout:.0f} s: {last}; "
                f"see `kubectl -n {ref.namespace} describe {ref}`"
            )
        fast = loop.time() - started < FAST_POLL_FOR
        await asyncio.sleep(FAST_POLL_SECONDS if fast else POLL_SECONDS)


async def wait_service_port(
    api: Api,
    namespace: str,
    service: str,
    port_name: str | None,
    target: int,
    timeout: float = 15.0,
) -> bool:
    """Until the Service's EndpointSlices send port `port_name` to `target`.

    kube-proxy programs its rules from the slices, so this is the last change the API can
    show before traffic follows. False when it did not happen in time, or we may not look.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    selector = f"kubernetes.io/service-name={service}"
    while True:
        try:
            slices = await api.list_items(
                "discovery.k8s.io/v1", "EndpointSlice", "endpointslices", namespace, selector
            )
        except InnerloopError:
            return False
        ports = [
            p
            for es in slices
            if es.get("endpoints")
            for p in es.get("ports") or []
            if (p.get("name") or None) == port_name
        ]
        if ports and all(p.get("port") == target for p in ports):
            return True
        if loop.time() > deadline:
            return False
        await asyncio.sleep(FAST_POLL_SECONDS)
