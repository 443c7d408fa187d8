"""Issue 12, snag 5: the namespace pick lists the namespaces the kubeconfig may list, and falls
back to the context's namespace when it may not."""

from __future__ import annotations

from typing import Any

import pytest
from innerloop.core.errors import ClusterError
from innerloop.lsp.intercept_service import EditorIntercepts

from tests.e2e.conftest import cluster, namespace  # noqa: F401 - the e2e fixtures
from tools.cluster import Cluster


class FakeManager:
    def __init__(self, listed: list[str] | None | Exception) -> None:
        self.listed = listed

    async def list_services(self, asked: str | None) -> tuple[str, list[Any]]:
        return asked or "team-a", []

    async def list_namespaces(self) -> list[str] | None:
        if isinstance(self.listed, Exception):
            raise self.listed
        return self.listed


@pytest.mark.parametrize(
    "listed, expected",
    [
        (["default", "shop", "team-a"], ["default", "shop", "team-a"]),
        (["default", "shop"], ["default", "shop", "team-a"]),
        (None, ["team-a"]),
        (ClusterError("cannot reach the API server"), ["team-a"]),
    ],
)
async def test_namespace_choices(listed: Any, expected: list[str]) -> None:
    targets = await EditorIntercepts(FakeManager(listed)).list_targets(None)  # type: ignore[arg-type]
    assert targets["namespaces"] == expected
    assert targets["namespace"] == "team-a"


@pytest.mark.e2e
async def test_the_testbed_lists_every_namespace(
    cluster: Cluster,  # noqa: F811
    namespace: str,  # noqa: F811
) -> None:
    from innerloop.intercepts.manager import InterceptManager, ManagerConfig

    manager = InterceptManager(ManagerConfig(kubeconfig=str(cluster.kubeconfig)), tool="editor")
    try:
        targets = await EditorIntercepts(manager).list_targets(None)
    finally:
        await manager.close()
    assert {"default", "kube-system", namespace} <= set(targets["namespaces"]), targets
    assert targets["namespace"] in targets["namespaces"]
