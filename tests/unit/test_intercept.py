"""The intercept state machine: every transition in the table, every illegal one, and the
unwinding promise (a failed or cancelled start leaves the cluster as it was)."""

from __future__ import annotations

import itertools

import pytest
from innerloop.core.errors import LocalProtocolError
from innerloop.core.intercept import (
    TABLE,
    CloseTunnels,
    Effect,
    InstallAgent,
    InterceptEvent,
    InterceptState,
    Notify,
    OpenTunnels,
    Phase,
    ReleaseTraffic,
    RemoveAgent,
    Resolve,
    RestoreService,
    RouteTraffic,
    TakeOverService,
    UpdatePause,
    WaitRollout,
    step,
)

P, E = Phase, InterceptEvent


def run(events: list[InterceptEvent], state: InterceptState | None = None) -> tuple[InterceptState, list[Effect]]:
    state = state or InterceptState()
    effects: list[Effect] = []
    for event in events:
        state, more = step(state, event)
        effects += more
    return state, effects


COLD = [
    E.START,
    E.AGENT_MISSING,
    E.AGENT_INSTALLED,
    E.ROLLED_OUT,
    E.TUNNELS_OPEN,
    E.CLAIMED,
    E.SERVICE_TAKEN_OVER,
]
WARM = [E.START, E.AGENT_CURRENT, E.TUNNELS_OPEN, E.CLAIMED, E.SERVICE_TAKEN_OVER]


def test_cold_start() -> None:
    state, effects = run(COLD)
    assert state == InterceptState(P.ACTIVE, installed_agent=False)
    assert effects == [
        Resolve(),
        Notify(P.RESOLVING),
        InstallAgent(),
        Notify(P.INSTALLING),
        WaitRollout(),
        Notify(P.ROLLING_OUT),
        OpenTunnels(),
        Notify(P.CONNECTING),
        RouteTraffic(),
        Notify(P.CLAIMING),
        TakeOverService(),
        Notify(P.TAKING_OVER),
        Notify(P.ACTIVE),
    ]


def test_warm_start_has_no_rollout() -> None:
    state, effects = run(WARM)
    assert state.phase is P.ACTIVE
    assert not any(isinstance(e, (InstallAgent, WaitRollout)) for e in effects)


def test_pause_resume_leave() -> None:
    state, _ = run(WARM)
    state, effects = step(state, E.PAUSE)
    assert (state.phase, effects) == (P.PAUSED, [UpdatePause(True), Notify(P.PAUSED)])
    state, effects = step(state, E.RESUME)
    assert (state.phase, effects) == (P.ACTIVE, [UpdatePause(False), Notify(P.ACTIVE)])
    state, effects = step(state, E.LEAVE)
    assert effects == [ReleaseTraffic(), CloseTunnels(), Notify(P.LEAVING)]
    assert step(state, E.LEAVE) == (state, []), "a second Ctrl-C changes nothing"
    state, effects = step(state, E.LEFT)
    assert (state, effects) == (InterceptState(), [Notify(P.IDLE)])


def test_reconnect_retakes_the_route() -> None:
    state, _ = run(COLD + [E.PAUSE])
    state, effects = step(state, E.TUNNEL_LOST)
    assert effects == [CloseTunnels(), OpenTunnels(), Notify(P.RECONNECTING)]
    state, effects = step(state, E.PAUSE)
    assert (state.phase, effects) == (P.RECONNECTING, [])
    state, effects = run(
        [E.TUNNEL_LOST, E.RESUME, E.TUNNELS_OPEN, E.CLAIMED, E.SERVICE_TAKEN_OVER], state
    )
    assert state == InterceptState(P.ACTIVE)
    assert [e for e in effects if not isinstance(e, Notify)] == [
        CloseTunnels(),
        OpenTunnels(),
        RouteTraffic(),
        TakeOverService(),
    ]


def test_a_failed_reconnect_keeps_the_sticky_sidecar() -> None:
    # The sidecar was added by this (cold) start, but once ACTIVE it stays: the Service may
    # already point at it, so removing it would cut the cluster's own traffic.
    state, _ = run(COLD + [E.TUNNEL_LOST, E.TUNNELS_OPEN])
    state, effects = step(state, E.FAILED)
    assert state == InterceptState(P.ERROR)
    assert effects == [ReleaseTraffic(), CloseTunnels(), Notify(P.ERROR)]


START_PHASES = {
    # phase: (steps of a cold start to get there, effects unwinding it; the same for a warm
    # start, which never added the sidecar)
    P.RESOLVING: (1, [], None),
    P.INSTALLING: (2, [RemoveAgent()], None),
    P.ROLLING_OUT: (3, [RemoveAgent()], None),
    P.CONNECTING: (4, [CloseTunnels(), RemoveAgent()], [CloseTunnels()]),
    P.CLAIMING: (5, [ReleaseTraffic(), CloseTunnels(), RemoveAgent()], [ReleaseTraffic(), CloseTunnels()]),
    P.TAKING_OVER: (
        6,
        [ReleaseTraffic(), CloseTunnels(), RestoreService(), RemoveAgent()],
        [ReleaseTraffic(), CloseTunnels()],
    ),
}


@pytest.mark.parametrize("phase", list(START_PHASES))
@pytest.mark.parametrize("event, lands", [(E.FAILED, P.ERROR), (E.LEAVE, P.LEAVING)])
def test_unwinding_a_start_undoes_what_it_did(phase: Phase, event: InterceptEvent, lands: Phase) -> None:
    steps, cold_undo, warm_undo = START_PHASES[phase]
    state, _ = run(COLD[:steps])
    assert state.phase is phase
    state, effects = step(state, event)
    assert state == InterceptState(lands)
    assert effects == cold_undo + [Notify(lands)]
    if warm_undo is not None:
        state, _ = run(WARM[: steps - 2])
        assert state.phase is phase
        _, effects = step(state, event)
        assert effects == warm_undo + [Notify(lands)]


def test_error_then_retry_or_reset() -> None:
    state, _ = run([E.START, E.FAILED])
    assert state == InterceptState(P.ERROR)
    assert step(state, E.START) == (InterceptState(P.RESOLVING), [Resolve(), Notify(P.RESOLVING)])
    assert step(state, E.LEAVE) == (InterceptState(), [Notify(P.IDLE)])


@pytest.mark.parametrize("start", [[], [E.START, E.FAILED]], ids=["idle", "error"])
def test_uninstall_restores_service_then_removes_sidecar(start: list[InterceptEvent]) -> None:
    state, _ = run(start)
    state, effects = step(state, E.UNINSTALL)
    assert effects == [RestoreService(), RemoveAgent(), Notify(P.UNINSTALLING)]
    assert step(state, E.UNINSTALLED) == (InterceptState(), [Notify(P.IDLE)])
    assert step(state, E.FAILED) == (InterceptState(P.ERROR), [Notify(P.ERROR)])


def test_leaving_tolerates_late_events_and_reports_failure() -> None:
    state, _ = run(WARM + [E.LEAVE])
    for late in (E.TUNNEL_LOST, E.PAUSE, E.RESUME):
        assert step(state, late) == (state, [])
    assert step(state, E.FAILED) == (InterceptState(P.ERROR), [Notify(P.ERROR)])


def _reachable() -> dict[Phase, InterceptState]:
    """One reachable state per phase (with the installed flag as a cold start leaves it)."""
    seen: dict[Phase, InterceptState] = {}
    frontier = [InterceptState()]
    while frontier:
        state = frontier.pop()
        if state.phase in seen:
            continue
        seen[state.phase] = state
        for event in InterceptEvent:
            if (state.phase, event) in TABLE:
                frontier.append(step(state, event)[0])
    return seen


def test_every_phase_is_reachable() -> None:
    assert set(_reachable()) == set(Phase)


@pytest.mark.parametrize("phase, event", sorted(TABLE, key=lambda k: (k[0].value, k[1].value)))
def test_every_listed_transition_lands_where_the_table_says(phase: Phase, event: InterceptEvent) -> None:
    for installed in (False, True):
        state, effects = step(InterceptState(phase, installed), event)
        rule = TABLE[(phase, event)]
        assert state.phase is rule.to
        expected = list(rule.effects) + (list(rule.if_installed) if installed else [])
        if rule.to is not phase:
            expected.append(Notify(rule.to))
        assert effects == expected


ILLEGAL = [(p, e) for p, e in itertools.product(Phase, InterceptEvent) if (p, e) not in TABLE]


@pytest.mark.parametrize("phase, event", ILLEGAL)
def test_every_other_transition_is_illegal(phase: Phase, event: InterceptEvent) -> None:
    with pytest.raises(
        LocalProtocolError, match=f"intercept: '{event.value}' is not allowed while {phase.value}"
    ):
        step(InterceptState(phase), event)


def test_no_phase_is_a_dead_end() -> None:
    for phase in Phase:
        assert any((phase, e) in TABLE for e in InterceptEvent), phase
