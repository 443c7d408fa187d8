"""Resolving a Service reads its pods' owners a level at a time, each level's reads at once:
the old and the new ReplicaSet of a Deployment together, then the Deployment — or, when the
ReplicaSets' names and the pods' pod-template-hash suggest it, the Deployment with them, used
only once a ReplicaSet names it (a wrong or failed guess costs the usual read)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from innerloop.core.errors import ClusterError
from innerloop.k8s.reads import owners


def owned_by(kind: str, name: str) -> dict[str, Any]:
    return {"ownerReferences": [{"kind": kind, "name": name, "controller": True}]}


class Api:
    def __init__(self, objects: dict[str, dict[str, Any]], forbidden: tuple[str, ...] = ()
                 ) -> None:
        self.objects = objects
        self.forbidden = forbidden
        self.levels: list[list[str]] = []
        self._pending: list[str] = []

    async def get_or_none(self, path: str, doing: str) -> dict[str, Any] | None:
        self._pending.append(path.rsplit("/", 2)[-2] + "/" + path.rsplit("/", 1)[-1])
        await asyncio.sleep(0)  # reads started together are seen together
        if self._pending:
            self.levels.append(sorted(self._pending))
            self._pending = []
        if path.rsplit("/", 1)[-1] in self.forbidden:
            raise ClusterError("forbidden")
        return self.objects.get(path.rsplit("/", 1)[-1])


def test_both_replicasets_are_read_together_then_their_deployment() -> None:
    api = Api({"orders-new": {"metadata": owned_by("Deployment", "orders")},
               "orders-old": {"metadata": owned_by("Deployment", "orders")},
               "orders": {"metadata": {}}})
    pods = [{"metadata": owned_by("ReplicaSet", "orders-new")},
            {"metadata": owned_by("ReplicaSet", "orders-old")},
            {"metadata": owned_by("ReplicaSet", "orders-gone")}]
    found = asyncio.run(owners(cast(Any, api), "shop", pods))
    assert sorted((o["kind"], o["metadata"].get("ownerReferences", [{}])[0].get("name", ""))
                  for o in found) == [("Deployment", ""), ("ReplicaSet", "orders"),
                                      ("ReplicaSet", "orders")]
    assert api.levels == [["replicasets/orders-gone", "replicasets/orders-new",
                           "replicasets/orders-old"], ["deployments/orders"]]


def pod(replicaset: str, template_hash: str) -> dict[str, Any]:
    return {"metadata": {**owned_by("ReplicaSet", replicaset),
                         "labels": {"pod-template-hash": template_hash}}}


def test_the_deployment_a_replicaset_name_suggests_is_read_with_it() -> None:
    api = Api({"orders-5d8f": {"metadata": owned_by("Deployment", "orders")},
               "orders": {"metadata": {"name": "orders"}}})
    found = asyncio.run(owners(cast(Any, api), "shop", [pod("orders-5d8f", "5d8f")]))
    assert [o["kind"] for o in found] == ["ReplicaSet", "Deployment"]
    assert api.levels == [["deployments/orders", "replicasets/orders-5d8f"]]


@pytest.mark.parametrize("case", ["owned by another", "guess forbidden", "guess missing"])
def test_a_wrong_or_failed_guess_costs_the_usual_read(case: str) -> None:
    owner = "billing" if case == "owned by another" else "orders"
    api = Api({"orders-5d8f": {"metadata": owned_by("Deployment", owner)},
               **({} if case == "guess missing" else {"orders": {"metadata": {"name": "o"}}}),
               "billing": {"metadata": {"name": "billing"}}},
              forbidden=("orders",) if case == "guess forbidden" else ())
    if case == "guess forbidden":  # the real read says it, as without the guess
        with pytest.raises(ClusterError, match="forbidden"):
            asyncio.run(owners(cast(Any, api), "shop", [pod("orders-5d8f", "5d8f")]))
        return
    found = asyncio.run(owners(cast(Any, api), "shop", [pod("orders-5d8f", "5d8f")]))
    assert [o["kind"] for o in found] == ["ReplicaSet"] + (
        [] if case == "guess missing" else ["Deployment"])
    if case == "owned by another":
        assert found[1]["metadata"]["name"] == "billing"
    assert api.levels == [["deployments/orders", "replicasets/orders-5d8f"],
                          [f"deployments/{owner}"]]
