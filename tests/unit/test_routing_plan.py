"""The steps that converge one tunnel to the wanted routing, as a table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from innerloop.core.routing_plan import (
    FRESH,
    Claim,
    ClaimRoute,
    ReleaseRoute,
    Routing,
    SetPaused,
    Step,
    plan,
)

A = Claim(15401, 8080)
B = Claim(15401, 9090)

CASES: list[tuple[str, Routing, Routing, list[Step]]] = [
    ("fresh tunnel, intercept", FRESH, Routing(A), [ClaimRoute(A)]),
    ("nothing changes", Routing(A), Routing(A), []),
    ("fresh tunnel while paused: pause before the claim", FRESH,
     Routing(A, paused=True), [SetPaused(True, "cluster"), ClaimRoute(A)]),
    ("fresh tunnel while paused, hold", FRESH, Routing(A, True, "hold"),
     [SetPaused(True, "hold"), ClaimRoute(A)]),
    ("breakpoint hit", Routing(A), Routing(A, paused=True), [SetPaused(True, "cluster")]),
    ("continued", Routing(A, paused=True), Routing(A), [SetPaused(False, "cluster")]),
    ("policy changes while paused", Routing(A, True, "cluster"), Routing(A, True, "hold"),
     [SetPaused(True, "hold")]),
    ("policy changes while running: nothing to tell", Routing(A), Routing(A, policy="hold"), []),
    ("leave", Routing(A), FRESH, [ReleaseRoute(15401)]),
    ("leave while paused: release first, then resume", Routing(A, paused=True), FRESH,
     [ReleaseRoute(15401), SetPaused(False, "cluster")]),
    ("local port changes", Routing(A), Routing(B), [ReleaseRoute(15401), ClaimRoute(B)]),
    ("released tunnel stays paused until told", Routing(None, paused=True), Routing(A, True),
     [ClaimRoute(A)]),
]


@pytest.mark.parametrize(("have", "want", "steps"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_plan(have: Routing, want: Routing, steps: list[Step]) -> None:
    assert plan(have, want) == steps


def apply(have: Routing, steps: list[Step]) -> Routing:
    """What the agent holds after the steps (its semantics, written out independently)."""
    claim, paused, policy = have.claim, have.paused, have.policy
    for step in steps:
        if isinstance(step, ReleaseRoute):
            assert claim is not None and claim.route_port == step.route_port
            claim = None
        elif isinstance(step, SetPaused):
            paused, policy = step.paused, step.policy
        else:
            assert claim is None, "never two claims at once"
            claim = step.claim
    return Routing(claim, paused, policy)


routings = st.builds(
    Routing,
    st.none() | st.sampled_from([A, B]),
    st.booleans(),
    st.sampled_from(["cluster", "hold"]),
)


@given(routings, routings)
def test_plan_converges(have: Routing, want: Routing) -> None:
    after = apply(have, plan(have, want))
    assert (after.claim, after.paused) == (want.claim, want.paused)
    if want.paused:
        assert after.policy == want.policy
    assert plan(after, want) == [], "converged: nothing more to say"
