"""The language server's view of the real intercept manager (innerloop.lsp.intercept_service), no cluster."""

from __future__ import annotations

import pytest
from innerloop.core.errors import UserError
from innerloop.core.intercept import Phase
from innerloop.core.request import request_from_json
from innerloop.intercepts.manager import InterceptManager, ManagerConfig
from innerloop.intercepts.snapshot import Snapshot
from innerloop.lsp.intercept_service import EditorIntercepts, intercept_info, manager_config
from innerloop.lsp.settings import Settings

pytestmark = pytest.mark.integration


def test_empty_settings_mean_the_kubeconfigs_own_values_and_the_default_image() -> None:
    assert manager_config(Settings()) == ManagerConfig(None, None, None, None)
    assert manager_config(
        Settings(kubeconfig="/k", context="kind", namespace="shop", agentImage="py:3.12")
    ) == ManagerConfig("/k", "kind", "shop", "py:3.12")


@pytest.mark.parametrize(
    ("phase", "state"),
    [
        (Phase.RESOLVING, "connecting"),
        (Phase.INSTALLING, "connecting"),
        (Phase.ROLLING_OUT, "connecting"),
        (Phase.RECONNECTING, "connecting"),
        (Phase.ACTIVE, "active"),
        (Phase.PAUSED, "paused"),
        (Phase.LEAVING, "stopping"),
        (Phase.UNINSTALLING, "stopping"),
        (Phase.ERROR, "error"),
    ],
)
def test_phases_map_to_the_states_the_editor_shows(phase: Phase, state: str) -> None:
    snapshot = Snapshot(
        id="shop/orders",
        namespace="shop",
        service="orders",
        service_port="80/http",
        local_port=8080,
        phase=phase,
        replicas=2,
    )
    assert intercept_info(snapshot) == {
        "id": "shop/orders",
        "namespace": "shop",
        "service": "orders",
        "servicePort": "80/http",
        "localPort": 8080,
        "state": state,
        "replicas": 2,
        "envFile": None,
        "message": None,
        "scope": "",
        "mode": "route",
        "match": {},
    }


async def test_a_fresh_manager_has_no_intercepts_and_takes_settings() -> None:
    manager = InterceptManager()
    service = EditorIntercepts(manager)
    service.configure(Settings(namespace="shop", agentImage="local/python:3.12"))
    assert manager.config == ManagerConfig(None, None, "shop", "local/python:3.12")
    assert await service.status() == {"intercepts": []}
    with pytest.raises(UserError, match="there is no intercept 'shop/orders' held by this"):
        await service.stop("shop/orders")
    await service.aclose()


def test_an_intercepts_scope_mode_and_match_reach_the_editor() -> None:
    request = request_from_json(
        {"service": "orders", "match": {"headers": {"x-dev": "me"}}, "mode": "mirror"},
        "test", "localPort")
    snapshot = Snapshot(id="shop/orders", namespace="shop", service="orders", service_port=80,
                        local_port=8080, phase=Phase.ACTIVE, scope=request.scope())
    info = intercept_info(snapshot, request)
    assert (info["scope"], info["mode"], info["match"]) == (
        "mirror: x-dev=me", "mirror", {"headers": {"x-dev": "me"}})
