"""The steps that converge one tunnel to the wanted routing, as a table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from innerloop.core.filters import Mode, filter_from_json
from innerloop.core.request import WhilePaused
from innerloop.core.routing_plan import (
    FRESH,
    Route,
    Routing,
    SendClaim,
    SendPause,
    SendRelease,
    Step,
    plan,
)

CLUSTER, HOLD = WhilePaused.CLUSTER, WhilePaused.HOLD

A = Route(15401, 8080)
B = Route(15401, 9090)
MINE = Route(15401, 8080, filter_from_json({"headers": {"x-dev": "me"}}))
MINE_MIRRORED = Route(MINE.listen_port, MINE.local_port, MINE.filter, Mode.MIRROR)

CASES: list[tuple[str, Routing, Routing, list[Step]]] = [
    ("fresh tunnel, intercept", FRESH, Routing(A), [SendClaim(A)]),
    ("nothing changes", Routing(A), Routing(A), []),
    ("a new filter is a new claim", Routing(A), Routing(MINE), [SendRelease(15401),
                                                                 SendClaim(MINE)]),
    ("mirror instead", Routing(MINE), Routing(MINE_MIRRORED),
     [SendRelease(15401), SendClaim(MINE_MIRRORED)]),
    ("fresh tunnel while paused: pause before the claim", FRESH,
     Routing(A, paused=True), [SendPause(True, CLUSTER), SendClaim(A)]),
    ("fresh tunnel while paused, hold", FRESH, Routing(A, True, HOLD),
     [SendPause(True, HOLD), SendClaim(A)]),
    ("breakpoint hit", Routing(A), Routing(A, paused=True), [SendPause(True, CLUSTER)]),
    ("continued", Routing(A, paused=True), Routing(A), [SendPause(False, CLUSTER)]),
    ("whilePaused changes while paused", Routing(A, True, CLUSTER), Routing(A, True, HOLD),
     [SendPause(True, HOLD)]),
    ("whilePaused changes while running: nothing to tell", Routing(A), Routing(A, while_paused=HOLD), []),
    ("leave", Routing(A), FRESH, [SendRelease(15401)]),
    ("leave while paused: release first, then resume", Routing(A, paused=True), FRESH,
     [SendRelease(15401), SendPause(False, CLUSTER)]),
    ("local port changes", Routing(A), Routing(B), [SendRelease(15401), SendClaim(B)]),
    ("released tunnel stays paused until told", Routing(None, paused=True), Routing(A, True),
     [SendClaim(A)]),
]


@pytest.mark.parametrize(("have", "want", "steps"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_plan(have: Routing, want: Routing, steps: list[Step]) -> None:
    assert plan(have, want) == steps


def apply(have: Routing, steps: list[Step]) -> Routing:
    """What the agent holds after the steps (its semantics, written out independently)."""
    route, paused, while_paused = have.route, have.paused, have.while_paused
    for step in steps:
        if isinstance(step, SendRelease):
            assert route is not None and route.listen_port == step.listen_port
            route = None
        elif isinstance(step, SendPause):
            paused, while_paused = step.paused, step.while_paused
        else:
            assert route is None, "never two routes at once"
            route = step.route
    return Routing(route, paused, while_paused)


routings = st.builds(
    Routing,
    st.none() | st.sampled_from([A, B]),
    st.booleans(),
    st.sampled_from(WhilePaused),
)


@given(routings, routings)
def test_plan_converges(have: Routing, want: Routing) -> None:
    after = apply(have, plan(have, want))
    assert (after.route, after.paused) == (want.route, want.paused)
    if want.paused:
        assert after.while_paused == want.while_paused
    assert plan(after, want) == [], "converged: nothing more to say"
