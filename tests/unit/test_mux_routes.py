"""The agent's route table: who gets a new connection, and who may claim a route."""

from __future__ import annotations

import pytest
from innerloop.agent.routing import Hold, Outcome, RouteTable, ToApp, ToClient
from innerloop.core.frames import Status
from innerloop.core.request import WhilePaused

ALICE, BOB, ALICE_AGAIN = "tunnel-1", "tunnel-2", "tunnel-3"


@pytest.fixture
def table() -> RouteTable[str]:
    return RouteTable({15401: 8080, 15402: 9090})


def test_unclaimed_routes_go_to_the_app(table: RouteTable[str]) -> None:
    assert table.decide(15401) == ToApp(8080)
    assert table.decide(15402) == ToApp(9090)
    assert table.holder(15401) is None


def test_claim_sends_only_that_route_to_the_client(table: RouteTable[str]) -> None:
    assert table.claim(15401, ALICE, "alice@laptop:1") == Outcome()
    assert table.decide(15401) == ToClient(ALICE)
    assert table.decide(15402) == ToApp(9090)
    assert table.holder(15401) == "alice@laptop:1"


def test_second_client_is_refused_naming_the_holder(table: RouteTable[str]) -> None:
    table.claim(15401, ALICE, "alice@laptop:1")
    assert table.claim(15401, BOB, "bob@desk:2") == Outcome(
        Status.CONFLICT, holder="alice@laptop:1",
        reason="port 15401 is intercepted by alice@laptop:1")
    assert table.decide(15401) == ToClient(ALICE)
    assert table.claim(15402, BOB, "bob@desk:2") == Outcome()  # another route is free


def test_claims_are_idempotent_and_a_reconnecting_client_takes_over(
        table: RouteTable[str]) -> None:
    table.claim(15401, ALICE, "alice@laptop:1")
    assert table.claim(15401, ALICE, "alice@laptop:1") == Outcome()
    assert table.claim(15401, ALICE_AGAIN, "alice@laptop:1") == Outcome()
    assert table.decide(15401) == ToClient(ALICE_AGAIN)
    assert table.drop(ALICE) == []  # the old tunnel timing out later changes nothing
    assert table.decide(15401) == ToClient(ALICE_AGAIN)


def test_unknown_route_is_rejected_listing_the_known_ones(table: RouteTable[str]) -> None:
    assert table.claim(80, ALICE, "a") == Outcome(
        Status.REJECTED, reason="this agent has no route 80 (its routes: 15401, 15402)")
    empty: RouteTable[str] = RouteTable({})
    assert empty.claim(80, ALICE, "a").reason.endswith("(its routes: none)")


def test_release_only_frees_the_callers_own_claim(table: RouteTable[str]) -> None:
    table.claim(15401, ALICE, "alice@laptop:1")
    assert table.release(15401, BOB) == Outcome()
    assert table.decide(15401) == ToClient(ALICE)
    assert table.release(15401, ALICE) == Outcome()
    assert table.decide(15401) == ToApp(8080)
    assert table.release(15401, ALICE) == Outcome()


@pytest.mark.parametrize(("policy", "decision"), [(WhilePaused.CLUSTER, ToApp(8080)),
                                                  (WhilePaused.HOLD, Hold())])
def test_pause_policies(table: RouteTable[str], policy: WhilePaused,
                        decision: ToApp | Hold) -> None:
    table.claim(15401, ALICE, "alice@laptop:1")
    table.pause(BOB, WhilePaused.HOLD)  # someone else's pause does not matter
    assert table.pause(ALICE, policy) == Outcome()
    assert table.decide(15401) == decision
    assert table.resume(ALICE) == Outcome()
    assert table.decide(15401) == ToClient(ALICE)


def test_dropping_a_client_frees_its_routes_and_forgets_its_pause(
        table: RouteTable[str]) -> None:
    table.claim(15401, ALICE, "alice@laptop:1")
    table.claim(15402, ALICE, "alice@laptop:1")
    table.pause(ALICE, WhilePaused.HOLD)
    assert table.drop(ALICE) == [15401, 15402]
    assert table.decide(15401) == ToApp(8080)
    table.claim(15401, ALICE, "alice@laptop:1")
    assert table.decide(15401) == ToClient(ALICE)  # not held: the pause went with the tunnel
