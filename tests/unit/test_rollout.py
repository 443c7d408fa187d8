"""Rollout tables: kubectl's rollout-status rules, manual replacement one pod at a time, and why
new pods cannot start."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from innerloop.core.agent_patch import install_agent, pod_has_agent, remove_agent
from innerloop.core.errors import UserError
from innerloop.core.manifest import pod_spec
from innerloop.core.rollout import pod_matches_template, pod_ready, rollout_problem, rollout_status
from k8s_manifests import AGENT_CONFIG, pod, workload


def with_status(w: dict[str, Any], generation: int = 1, **status: Any) -> dict[str, Any]:
    w = copy.deepcopy(w)
    w["metadata"]["generation"] = generation
    w["status"] = {"observedGeneration": 1, **status}
    return w


DEPLOY = workload(replicas=2)


@pytest.mark.parametrize(
    "w, done, message",
    [
        (
            with_status(DEPLOY, generation=2),
            False,
            "waiting for the Deployment controller to see the change",
        ),
        (with_status(DEPLOY, updatedReplicas=1, replicas=2), False, "1 of 2 replicas updated"),
        (
            with_status(DEPLOY, updatedReplicas=2, replicas=3),
            False,
            "1 old replicas pending termination",
        ),
        (
            with_status(DEPLOY, updatedReplicas=2, replicas=2, availableReplicas=1),
            False,
            "1 of 2 updated replicas available",
        ),
        (
            with_status(
                DEPLOY,
                updatedReplicas=2,
                replicas=2,
                availableReplicas=2,
                conditions=[{"type": "Progressing", "reason": "NewReplicaSetAvailable"}],
            ),
            True,
            "2 replicas updated and available",
        ),
    ],
)
def test_deployment_rollout(w: dict[str, Any], done: bool, message: str) -> None:
    status = rollout_status(w, [])
    assert (status.done, status.message, status.replace) == (done, message, ())


def test_deployment_rollout_deadline() -> None:
    w = with_status(
        DEPLOY,
        conditions=[
            {
                "type": "Progressing",
                "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "orders-1" has timed out',
            }
        ],
    )
    with pytest.raises(
        UserError,
        match="deployment/orders rollout exceeded its progress "
        'deadline: ReplicaSet "orders-1" has timed out',
    ):
        rollout_status(w, [])


STS = workload("StatefulSet", "db", replicas=2)


@pytest.mark.parametrize(
    "w, done, message",
    [
        (with_status(STS, readyReplicas=1), False, "1 of 2 replicas ready"),
        (
            with_status(
                STS, readyReplicas=2, updatedReplicas=1, currentRevision="a", updateRevision="b"
            ),
            False,
            "1 of 2 replicas updated",
        ),
        (
            with_status(STS, readyReplicas=2, currentRevision="b", updateRevision="b"),
            True,
            "2 replicas updated and ready",
        ),
    ],
)
def test_statefulset_rollout(w: dict[str, Any], done: bool, message: str) -> None:
    status = rollout_status(w, [])
    assert (status.done, status.message) == (done, message)


def _pods(
    w: dict[str, Any], current: int, stale: int, ready: bool = True, terminating: int = 0
) -> list[dict[str, Any]]:
    new = pod_spec(w)["containers"]
    old = pod_spec(remove_agent(w))["containers"]
    out = [
        pod(f"p-new-{i}", ("ReplicaSet", "legacy"), containers=new, ready=ready)
        for i in range(current)
    ]
    out += [pod(f"p-old-{i}", ("ReplicaSet", "legacy"), containers=old) for i in range(stale)]
    out += [
        pod(
            f"p-gone-{i}",
            ("ReplicaSet", "legacy"),
            containers=old,
            deletionTimestamp="2026-01-01T00:00:00Z",
        )
        for i in range(terminating)
    ]
    return out


RS = with_status(install_agent(workload("ReplicaSet", "legacy", replicas=2), AGENT_CONFIG, [8080]))
ON_DELETE = copy.deepcopy(with_status(install_agent(STS, AGENT_CONFIG, [8080])))
ON_DELETE["spec"]["updateStrategy"] = {"type": "OnDelete"}


@pytest.mark.parametrize("w", [RS, ON_DELETE], ids=["ReplicaSet", "OnDelete"])
@pytest.mark.parametrize(
    "pods, done, message, replace",
    [
        ((0, 2), False, "replacing pod p-old-0 (2 to go)", ("p-old-0",)),
        # one replaced; the other waits until the replacement is Ready
        ((1, 1), False, "replacing pod p-old-0 (1 to go)", ("p-old-0",)),
        ((1, 0, True, 1), False, "1 of 2 replicas ready", ()),
        ((2, 0, False), False, "0 of 2 replicas ready", ()),
        ((2, 0), True, "2 replicas updated and ready", ()),
    ],
)
def test_manual_rollout(
    w: dict[str, Any], pods: tuple[Any, ...], done: bool, message: str, replace: tuple[str, ...]
) -> None:
    status = rollout_status(w, _pods(w, *pods))
    assert (status.done, status.message, status.replace) == (done, message, replace)


def test_manual_rollout_waits_for_capacity_before_replacing() -> None:
    pods = _pods(RS, 1, 1, ready=False)
    status = rollout_status(RS, pods)
    assert (status.done, status.replace) == (False, ())
    assert status.message == "1 replicas to replace; waiting for pods to be ready"
    # a replica short (one is still terminating): wait as well
    assert rollout_status(RS, _pods(RS, 0, 1, terminating=1)).replace == ()


def test_pod_predicates() -> None:
    installed = install_agent(workload(), AGENT_CONFIG, [8080])
    with_agent = pod("a", ("ReplicaSet", "x"), containers=pod_spec(installed)["containers"])
    assert pod_has_agent(with_agent) and not pod_has_agent(pod("b", None))
    assert pod_matches_template(with_agent, installed)
    assert not pod_matches_template(with_agent, workload())
    assert pod_ready(with_agent)
    assert not pod_ready(pod("c", None, ready=False))
    assert not pod_ready(pod("d", None, deletionTimestamp="2026-01-01T00:00:00Z"))


# --- why a rollout cannot finish ----------------------------------------------------------------

INSTALLED = install_agent(workload(), AGENT_CONFIG, [8080])


def _new_pod(
    statuses: list[dict[str, Any]], init: list[dict[str, Any]] | None = None, **status: Any
) -> dict[str, Any]:
    p = pod(
        "orders-new-1",
        ("ReplicaSet", "orders-1"),
        containers=pod_spec(INSTALLED)["containers"],
        ready=False,
    )
    p["status"]["containerStatuses"] = statuses
    if init is not None:
        p["status"]["initContainerStatuses"] = init
    p["status"].update(status)
    return p


AGENT_CRASH = {
    "name": "innerloop-agent",
    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}},
    "lastState": {
        "terminated": {
            "exitCode": 128,
            "reason": "StartError",
            "message": 'exec: "python3": executable file not found',
        }
    },
}


@pytest.mark.parametrize(
    "p, expected",
    [
        (
            _new_pod([AGENT_CRASH]),
            (
                "pod orders-new-1 container innerloop-agent: CrashLoopBackOff; exited 128: exec: "
                '"python3": executable file not found (the agent image must run python3 >= 3.10)'
            ),
        ),
        (
            _new_pod(
                [
                    {
                        "name": "innerloop-agent",
                        "state": {"terminated": {"exitCode": 1, "reason": "Error"}},
                    }
                ]
            ),
            (
                "pod orders-new-1 container innerloop-agent: exited 1: Error (the agent image must run "
                "python3 >= 3.10)"
            ),
        ),
        (
            _new_pod(
                [
                    {
                        "name": "app",
                        "state": {
                            "waiting": {
                                "reason": "ErrImageNeverPull",
                                "message": "image not present",
                            }
                        },
                    }
                ]
            ),
            "pod orders-new-1 container app: ErrImageNeverPull: image not present",
        ),
        (
            _new_pod(
                [],
                init=[
                    {"name": "init", "state": {"waiting": {"reason": "CreateContainerConfigError"}}}
                ],
            ),
            "pod orders-new-1 container init: CreateContainerConfigError",
        ),
        (
            _new_pod(
                [],
                conditions=[
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/1 nodes: Insufficient cpu",
                    }
                ],
            ),
            "pod orders-new-1 cannot be scheduled: 0/1 nodes: Insufficient cpu",
        ),
    ],
)
def test_rollout_problem(p: dict[str, Any], expected: str) -> None:
    assert rollout_problem(INSTALLED, [p]) == expected


def test_rollout_problem_ignores_what_is_not_this_rollouts() -> None:
    starting = _new_pod(
        [
            {"name": "app", "state": {"waiting": {"reason": "ContainerCreating"}}},
            {"name": "innerloop-agent", "state": {"running": {}}},
        ]
    )
    # an app container that exited and restarts is the app's business, not a rollout failure
    restarted = _new_pod(
        [{"name": "app", "state": {"running": {}}, "lastState": {"terminated": {"exitCode": 137}}}]
    )
    old = _new_pod([AGENT_CRASH])
    old["spec"]["containers"] = pod_spec(workload())["containers"]
    leaving = _new_pod([AGENT_CRASH])
    leaving["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert rollout_problem(INSTALLED, [starting, restarted, old, leaving]) is None
