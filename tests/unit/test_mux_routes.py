"""The agent's route table: who gets a new connection, and who may claim a route."""

from __future__ import annotations

import pytest
from innerloop.agent.routing import Hold, Outcome, PerRequest, RouteTable, ToApp, ToClient
from innerloop.core.filters import EVERYTHING, AppProtocol, Mode, RequestFilter, filter_from_json
from innerloop.core.frames import ClaimEntry, Status
from innerloop.core.request import WhilePaused

ALICE, BOB, ALICE_AGAIN = "tunnel-1", "tunnel-2", "tunnel-3"


@pytest.fixture
def table() -> RouteTable[str]:
    return RouteTable({15401: 8080, 15402: 9090})


def test_unclaimed_routes_go_to_the_app(table: RouteTable[str]) -> None:
    assert table.decide_connection(15401) == ToApp(8080)
    assert table.decide_connection(15402) == ToApp(9090)
    assert table.holder(15401) is None


def test_claim_sends_only_that_route_to_the_client(table: RouteTable[str]) -> None:
    assert table.claim(15401, ALICE, "alice@laptop:1") == Outcome()
    assert table.decide_connection(15401) == ToClient(ALICE)
    assert table.decide_connection(15402) == ToApp(9090)
    assert table.holder(15401) == "alice@laptop:1"


def test_second_client_is_refused_naming_the_holder(table: RouteTable[str]) -> None:
    table.claim(15401, ALICE, "alice@laptop:1")
    assert table.claim(15401, BOB, "bob@desk:2") == Outcome(
        Status.CONFLICT, holder="alice@laptop:1",
        reason="port 15401 is intercepted by alice@laptop:1 for all requests")
    assert table.decide_connection(15401) == ToClient(ALICE)
    assert table.claim(15402, BOB, "bob@desk:2") == Outcome()  # another route is free


def test_claims_are_idempotent_and_a_reconnecting_client_takes_over(
        table: RouteTable[str]) -> None:
    table.claim(15401, ALICE, "alice@laptop:1")
    assert table.claim(15401, ALICE, "alice@laptop:1") == Outcome()
    assert table.claim(15401, ALICE_AGAIN, "alice@laptop:1") == Outcome()
    assert table.decide_connection(15401) == ToClient(ALICE_AGAIN)
    assert table.drop(ALICE) == []  # the old tunnel timing out later changes nothing
    assert table.decide_connection(15401) == ToClient(ALICE_AGAIN)


def test_unknown_route_is_rejected_listing_the_known_ones(table: RouteTable[str]) -> None:
    assert table.claim(80, ALICE, "a") == Outcome(
        Status.REJECTED, reason="this agent has no route 80 (its routes: 15401, 15402)")
    empty: RouteTable[str] = RouteTable({})
    assert empty.claim(80, ALICE, "a").reason.endswith("(its routes: none)")


def test_release_only_frees_the_callers_own_claim(table: RouteTable[str]) -> None:
    table.claim(15401, ALICE, "alice@laptop:1")
    assert table.release(15401, BOB) == Outcome()
    assert table.decide_connection(15401) == ToClient(ALICE)
    assert table.release(15401, ALICE) == Outcome()
    assert table.decide_connection(15401) == ToApp(8080)
    assert table.release(15401, ALICE) == Outcome()


@pytest.mark.parametrize(("policy", "decision"), [(WhilePaused.CLUSTER, ToApp(8080)),
                                                  (WhilePaused.HOLD, Hold())])
def test_pause_policies(table: RouteTable[str], policy: WhilePaused,
                        decision: ToApp | Hold) -> None:
    table.claim(15401, ALICE, "alice@laptop:1")
    table.pause(BOB, WhilePaused.HOLD)  # someone else's pause does not matter
    assert table.pause(ALICE, policy) == Outcome()
    assert table.decide_connection(15401) == decision
    assert table.resume(ALICE) == Outcome()
    assert table.decide_connection(15401) == ToClient(ALICE)


def test_dropping_a_client_frees_its_routes_and_forgets_its_pause(
        table: RouteTable[str]) -> None:
    table.claim(15401, ALICE, "alice@laptop:1")
    table.claim(15402, ALICE, "alice@laptop:1")
    table.pause(ALICE, WhilePaused.HOLD)
    assert table.drop(ALICE) == [15401, 15402]
    assert table.decide_connection(15401) == ToApp(8080)
    table.claim(15401, ALICE, "alice@laptop:1")
    assert table.decide_connection(15401) == ToClient(ALICE)  # not held: the pause went with the tunnel


# --- filters and mirror (docs/routing.md) ----------------------------------------------------

ME = filter_from_json({"headers": {"x-dev": "me"}})
YOU = filter_from_json({"headers": {"x-dev": "you"}})
API = filter_from_json({"pathPrefix": "/api"})
CAROL = "tunnel-4"


def ask(table: RouteTable[str], dev: str = "", path: str = "/",
        method: str = "GET") -> Hold | ToApp | ToClient[str]:
    return table.decide_request(15401, method, path, [("X-Dev", dev)] if dev else [])


def test_filtered_claims_share_a_port_and_the_port_is_decided_per_request(
        table: RouteTable[str]) -> None:
    assert table.claim(15401, ALICE, "alice@laptop:1", ME) == Outcome()
    assert table.claim(15401, BOB, "bob@desk:2", YOU, protocol=AppProtocol.H2) == Outcome()
    assert table.decide_connection(15401) == PerRequest(8080, AppProtocol.H2)
    assert table.decide_connection(15402) == ToApp(9090)
    assert ask(table, "me") == ToClient(ALICE)
    assert ask(table, "you") == ToClient(BOB)
    assert ask(table, "them") == ToApp(8080)
    assert ask(table) == ToApp(8080)
    assert table.decide_request(15401, "GET", "/", [("x-dev", "them"), ("x-dev", "you")]) == (
        ToClient(BOB))


def test_the_first_claim_made_wins_a_request_that_repeats_a_header(
        table: RouteTable[str]) -> None:
    table.claim(15401, ALICE, "alice@laptop:1", ME)
    table.claim(15401, BOB, "bob@desk:2", YOU)
    both = [("x-dev", "you"), ("x-dev", "me")]
    assert table.decide_request(15401, "GET", "/", both) == ToClient(ALICE)
    table.claim(15401, ALICE, "alice@laptop:1", ME)  # claiming again keeps the place
    assert table.decide_request(15401, "GET", "/", both) == ToClient(ALICE)


@pytest.mark.parametrize(("first", "second"), [
    (EVERYTHING, ME), (ME, EVERYTHING), (ME, ME),
    (ME, filter_from_json({"headers": {"x-dev": "~^m"}})),
    (API, filter_from_json({"path": "/api/orders"})),
])
def test_overlapping_route_claims_are_refused_naming_the_holder_and_filter(
        table: RouteTable[str], first: RequestFilter, second: RequestFilter) -> None:
    table.claim(15401, ALICE, "alice@laptop:1", first)
    assert table.claim(15401, BOB, "bob@desk:2", second) == Outcome(
        Status.CONFLICT, holder="alice@laptop:1",
        reason=f"port 15401 is intercepted by alice@laptop:1 for {first.describe()}")
    assert [e.client_id for e in table.listing()] == ["alice@laptop:1"]


def test_disjoint_filters_by_path_and_header_coexist(table: RouteTable[str]) -> None:
    table.claim(15401, ALICE, "alice@laptop:1", API)
    table.claim(15401, BOB, "bob@desk:2", filter_from_json({"pathPrefix": "/web"}))
    assert table.decide_request(15401, "GET", "/api/x?y", []) == ToClient(ALICE)
    assert table.decide_request(15401, "GET", "/web", []) == ToClient(BOB)
    assert table.decide_request(15401, "GET", "/", []) == ToApp(8080)


def test_mirror_claims_never_conflict_with_route_claims(table: RouteTable[str]) -> None:
    table.claim(15401, ALICE, "alice@laptop:1")
    assert table.claim(15401, BOB, "bob@desk:2", mode=Mode.MIRROR) == Outcome()
    assert table.claim(15401, CAROL, "carol@x:3", YOU, Mode.MIRROR) == Outcome(
        Status.CONFLICT, holder="bob@desk:2",
        reason="port 15401 is mirrored by bob@desk:2 for all requests")
    assert table.decide_connection(15401) == PerRequest(8080, AppProtocol.AUTO)
    assert ask(table, "you") == ToClient(ALICE)
    assert table.mirrors(15401, "GET", "/", []) == [BOB]


def test_mirrors_are_the_matching_mirror_owners_paused_or_not(table: RouteTable[str]) -> None:
    table.claim(15401, ALICE, "alice@laptop:1", ME, Mode.MIRROR)
    table.claim(15401, BOB, "bob@desk:2", YOU, Mode.MIRROR)
    table.pause(BOB, WhilePaused.HOLD)
    assert table.mirrors(15401, "GET", "/", [("x-dev", "me")]) == [ALICE]
    assert table.mirrors(15401, "GET", "/", [("x-dev", "you")]) == [BOB]
    assert table.paused(BOB) is WhilePaused.HOLD and table.paused(ALICE) is None
    assert ask(table, "me") == ToApp(8080)  # a mirror never takes the request


def test_a_paused_owner_affects_only_requests_matching_its_filter(
        table: RouteTable[str]) -> None:
    table.claim(15401, ALICE, "alice@laptop:1", ME)
    table.claim(15401, BOB, "bob@desk:2", YOU)
    table.pause(ALICE, WhilePaused.HOLD)
    assert ask(table, "me") == Hold()
    assert ask(table, "you") == ToClient(BOB)
    table.pause(ALICE, WhilePaused.CLUSTER)
    assert ask(table, "me") == ToApp(8080)
    table.resume(ALICE)
    assert ask(table, "me") == ToClient(ALICE)


def test_a_client_has_one_claim_per_port_and_a_reconnect_takes_it_over(
        table: RouteTable[str]) -> None:
    table.claim(15401, ALICE, "alice@laptop:1", ME)
    table.claim(15401, BOB, "bob@desk:2", YOU)
    assert table.claim(15401, ALICE_AGAIN, "alice@laptop:1", ME, Mode.MIRROR) == Outcome()
    assert [(e.client_id, e.mode) for e in table.listing()] == [
        ("alice@laptop:1", Mode.MIRROR), ("bob@desk:2", Mode.ROUTE)]
    assert table.drop(ALICE) == []
    assert table.drop(BOB) == [15401]
    assert table.claim(15401, ALICE_AGAIN, "alice@laptop:1") == Outcome()
    assert table.decide_connection(15401) == ToClient(ALICE_AGAIN)  # whole connections again


def test_releasing_the_last_filtered_claim_goes_back_to_splicing(
        table: RouteTable[str]) -> None:
    table.claim(15401, ALICE, "alice@laptop:1", ME)
    assert table.release(15401, ALICE) == Outcome()
    assert table.decide_connection(15401) == ToApp(8080)
    assert table.holder(15401) is None and table.listing() == []


def test_filters_and_mirror_need_http(table: RouteTable[str]) -> None:
    for flt, mode in ((ME, Mode.ROUTE), (EVERYTHING, Mode.MIRROR)):
        assert table.claim(15401, ALICE, "a", flt, mode, AppProtocol.TCP) == Outcome(
            Status.REJECTED, reason="port 15401 is claimed as tcp: filters and mirror need "
            "HTTP (protocol auto, http1 or h2)")
    assert table.claim(15401, ALICE, "a", protocol=AppProtocol.TCP) == Outcome()
    assert table.decide_connection(15401) == ToClient(ALICE)


def test_listing_reports_every_claim_with_its_pause(table: RouteTable[str]) -> None:
    table.claim(15402, BOB, "bob@desk:2", mode=Mode.MIRROR, protocol=AppProtocol.HTTP1)
    table.claim(15401, ALICE, "alice@laptop:1", ME)
    table.pause(ALICE, WhilePaused.CLUSTER)
    assert table.listing() == [
        ClaimEntry(15401, "alice@laptop:1", Mode.ROUTE, ME, AppProtocol.AUTO,
                   WhilePaused.CLUSTER),
        ClaimEntry(15402, "bob@desk:2", Mode.MIRROR, EVERYTHING, AppProtocol.HTTP1, None)]
