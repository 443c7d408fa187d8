"""What the user reads in the debug console (innerloop.core.dap_say)."""

from __future__ import annotations

import pytest
from innerloop.core import dap_say as r
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
