"""Two clients claiming a Service's replicas in different orders: the one whose id sorts first
retries the replica the other won (which yields), so exactly one wins instead of neither; a
refusal with nothing won elsewhere is a held intercept, refused at once."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

from innerloop.core.filters import EVERYTHING, AppProtocol, Mode
from innerloop.core.routing_plan import FRESH, Route, Routing
from innerloop.intercepts import tunnels
from innerloop.intercepts.tunnels import TunnelSet, _Worker
from innerloop.tunnel.errors import InterceptConflict

CLAIMED = Routing(Route(15401, 8080, EVERYTHING, Mode.ROUTE, AppProtocol.TCP))


def tunnel_set(client_id: str, *applied: Routing) -> tuple[TunnelSet, _Worker]:
    """A set whose workers have `applied`, plus one more (fresh) that a claim was refused on."""
    tset = TunnelSet(cast(Any, None), "shop", "app=orders", 15400, client_id, lambda _: None)
    refused = cast(_Worker, SimpleNamespace(applied=FRESH))
    tset.workers = {f"pod-{i}": cast(_Worker, SimpleNamespace(applied=a))
                    for i, a in enumerate(applied)}
    tset.workers["pod-refused"] = refused
    return tset, refused


def test_only_a_partial_winner_with_the_first_id_outranks() -> None:
    a, a_refused = tunnel_set("alice@a:1", CLAIMED)
    b, b_refused = tunnel_set("bob@b:2", CLAIMED)
    assert a.outranks("bob@b:2", a_refused)
    assert not b.outranks("alice@a:1", b_refused)
    held, held_refused = tunnel_set("alice@a:1", FRESH)  # won nothing: someone holds it
    assert not held.outranks("bob@b:2", held_refused)


class Refusing:
    """A tunnel client whose claim is refused `times` times, then taken."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.claims = 0

    async def claim(self, *args: object) -> None:
        self.claims += 1
        if self.claims <= self.times:
            raise InterceptConflict(15401, "bob@b:2")


def test_the_outranking_side_retries_until_the_other_yields(monkeypatch: Any) -> None:
    monkeypatch.setattr(tunnels, "RACE_RETRY", 0.001)
    tset, _ = tunnel_set("alice@a:1", CLAIMED)
    worker = _Worker.__new__(_Worker)
    worker.owner, worker.pod, worker.applied = tset, "pod-refused", FRESH
    tset.workers["pod-refused"] = worker
    client = Refusing(times=3)
    asyncio.run(worker._apply_racing(cast(Any, client), CLAIMED))
    assert client.claims == 4


def test_the_yielding_side_is_refused_at_once() -> None:
    tset, _ = tunnel_set("zed@z:9", CLAIMED)
    worker = _Worker.__new__(_Worker)
    worker.owner, worker.pod, worker.applied = tset, "pod-refused", FRESH
    tset.workers["pod-refused"] = worker
    client = Refusing(times=1)
    try:
        asyncio.run(worker._apply_racing(cast(Any, client), CLAIMED))
    except InterceptConflict as exc:
        assert exc.holder == "bob@b:2"
    else:
        raise AssertionError("the yielding side must be refused")
    assert client.claims == 1
