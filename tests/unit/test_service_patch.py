"""Service takeover tables: one port at a time pointed at the agent, and back.

The promise under test: after restore, the Service deep-equals the original.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from innerloop.core.errors import UserError
from innerloop.core.service_patch import restore_service, service_takeover, take_over_service
from k8s_manifests import service

MULTI = [
    {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"},
    {"name": "metrics", "port": 9090, "protocol": "TCP", "targetPort": 9090},
]


@pytest.mark.parametrize(
    "ports, label, original",
    [
        ([{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}], "80/http", 8080),
        (MULTI, "80/http", "http"),
        (MULTI, "9090/metrics", 9090),
        ([{"port": 80, "protocol": "TCP"}], "80", None),
    ],
)
def test_take_over_and_restore_service(
    ports: list[dict[str, Any]], label: str, original: Any
) -> None:
    svc = service(ports=copy.deepcopy(ports), annotations={"owner": "shop"})
    frozen = copy.deepcopy(svc)
    taken = take_over_service(svc, label, 15401)
    assert svc == frozen
    [entry] = [
        p
        for p in taken["spec"]["ports"]
        if (f"{p['port']}/{p['name']}" if p.get("name") else str(p["port"])) == label
    ]
    assert entry["targetPort"] == 15401
    assert service_takeover(taken) == {label: original}
    # taking over again (a re-claim after reconnect) keeps the original
    again = take_over_service(taken, label, 15402)
    assert service_takeover(again) == {label: original}
    assert restore_service(again) == svc
    assert restore_service(svc) == svc
    assert service_takeover(svc) == {}


def test_restore_one_port_keeps_the_other() -> None:
    svc = service(ports=copy.deepcopy(MULTI))
    both = take_over_service(take_over_service(svc, "80/http", 15401), "9090/metrics", 15402)
    one = restore_service(both, ["80/http"])
    assert service_takeover(one) == {"9090/metrics": 9090}
    assert one["spec"]["ports"][0]["targetPort"] == "http"
    assert one["spec"]["ports"][1]["targetPort"] == 15402
    assert restore_service(one, ["9090/metrics"]) == svc


def test_take_over_unknown_port() -> None:
    with pytest.raises(UserError, match="service 'orders' has no port 81"):
        take_over_service(service(), "81", 15401)


@given(
    st.lists(st.sampled_from(["80/http", "9090/metrics"]), min_size=1, max_size=4),
    st.integers(15400, 15500),
)
def test_service_round_trip_generated(labels: list[str], listen: int) -> None:
    svc = service(ports=copy.deepcopy(MULTI))
    taken = svc
    for label in labels:
        taken = take_over_service(taken, label, listen)
    assert restore_service(taken) == svc
