"""What the user reads in the debug console (innerloop.core.dap_say)."""

from __future__ import annotations

import pytest
from innerloop.core import dap_say as r
from innerloop.core.filters import Mode, filter_from_json
from innerloop.core.request import InterceptRequest, PortSpec, WhilePaused


@pytest.mark.parametrize(
    ("config", "text"),
    [
        (InterceptRequest("orders", "shop", PortSpec(80, 8080)), "orders.shop:80 → localhost:8080"),
        (InterceptRequest("orders", None, PortSpec("http", 8080)), "orders:http → localhost:8080"),
        (InterceptRequest("orders", None, PortSpec(None, 3000)), "orders → localhost:3000"),
    ],
)
def test_describe(config: InterceptRequest, text: str) -> None:
    assert config.describe() == text
    assert r.say_intercepting(config) == f"intercepting {text}"
    assert text in r.say_active(config)


def test_user_messages() -> None:
    cluster = InterceptRequest("s", None, PortSpec(None, 1))
    hold = InterceptRequest("s", None, PortSpec(None, 1), WhilePaused.HOLD)
    assert "cluster" in r.say_paused(cluster, True)
    assert "held" in r.say_paused(hold, True)
    assert "resumed" in r.say_paused(hold, False)
    assert r.say_left(False) == "left intercept"
    assert "kept" in r.say_left(True)


def test_a_pause_says_whose_requests_it_touches() -> None:
    """A personal intercept's pause holds (or hands to the cluster) only the requests its filter
    takes; a mirror's pause drops copies while the cluster answers everyone."""
    mine = filter_from_json({"headers": {"x-dev": "me"}})
    cluster = InterceptRequest("s", None, PortSpec(None, 1), filter=mine)
    hold = InterceptRequest("s", None, PortSpec(None, 1), WhilePaused.HOLD, filter=mine)
    mirror = InterceptRequest("s", None, PortSpec(None, 1), filter=mine, mode=Mode.MIRROR)
    only = f" (only those matching {mine.describe()}; others' are not affected)"
    assert r.say_paused(cluster, True) == (
        f"paused: new requests are served by the cluster until you continue{only}")
    assert r.say_paused(hold, True) == f"paused: new requests are held until you continue{only}"
    assert r.say_paused(mirror, True).startswith("paused: copies of new requests are dropped")
    assert "x-dev" not in r.say_paused(InterceptRequest("s", None, PortSpec(None, 1)), True)
