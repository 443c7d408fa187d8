"""Resolving a Service reads its pods' owners a level at a time, each level's reads at once:
the old and the new ReplicaSet of a Deployment together, then the Deployment."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from innerloop.k8s.reads import owners


def owned_by(kind: str, name: str) -> dict[str, Any]:
    return {"ownerReferences": [{"kind": kind, "name": name, "controller": True}]}


class Api:
    def __init__(self, objects: dict[str, dict[str, Any]]) -> None:
        self.objects = objects
        self.levels: list[list[str]] = []
        self._pending: list[str] = []

    async def get_or_none(self, path: str, doing: str) -> dict[str, Any] | None:
        self._pending.append(path.rsplit("/", 2)[-2] + "/" + path.rsplit("/", 1)[-1])
        await asyncio.sleep(0)  # reads started together are seen together
        if self._pending:
            self.levels.append(sorted(self._pending))
            self._pending = []
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
