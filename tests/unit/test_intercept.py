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


# Every legal transition, written out by hand (not read from TABLE, so a wrong entry there fails):
# (phase, event): (lands in, effects, effects added when this start installed the sidecar).
# A Notify(lands in) follows the effects whenever the phase changes.
UNDO_AGENT = [RemoveAgent()]
EXPECTED: dict[tuple[Phase, InterceptEvent], tuple[Phase, list[Effect], list[Effect]]] = {
    (P.IDLE, E.START): (P.RESOLVING, [Resolve()], []),
    (P.IDLE, E.UNINSTALL): (P.UNINSTALLING, [RestoreService(), RemoveAgent()], []),
    (P.RESOLVING, E.AGENT_MISSING): (P.INSTALLING, [InstallAgent()], []),
    (P.RESOLVING, E.AGENT_CURRENT): (P.CONNECTING, [OpenTunnels()], []),
    (P.RESOLVING, E.LEAVE): (P.LEAVING, [], []),
    (P.RESOLVING, E.FAILED): (P.ERROR, [], []),
    (P.INSTALLING, E.AGENT_INSTALLED): (P.ROLLING_OUT, [WaitRollout()], []),
    (P.INSTALLING, E.LEAVE): (P.LEAVING, [], UNDO_AGENT),
    (P.INSTALLING, E.FAILED): (P.ERROR, [], UNDO_AGENT),
    (P.ROLLING_OUT, E.ROLLED_OUT): (P.CONNECTING, [OpenTunnels()], []),
    (P.ROLLING_OUT, E.LEAVE): (P.LEAVING, [], UNDO_AGENT),
    (P.ROLLING_OUT, E.FAILED): (P.ERROR, [], UNDO_AGENT),
    (P.CONNECTING, E.TUNNELS_OPEN): (P.CLAIMING, [RouteTraffic()], []),
    (P.CONNECTING, E.LEAVE): (P.LEAVING, [CloseTunnels()], UNDO_AGENT),
    (P.CONNECTING, E.FAILED): (P.ERROR, [CloseTunnels()], UNDO_AGENT),
    (P.CLAIMING, E.CLAIMED): (P.TAKING_OVER, [TakeOverService()], []),
    (P.CLAIMING, E.LEAVE): (P.LEAVING, [ReleaseTraffic(), CloseTunnels()], UNDO_AGENT),
    (P.CLAIMING, E.FAILED): (P.ERROR, [ReleaseTraffic(), CloseTunnels()], UNDO_AGENT),
    # a refused claim: the holder's traffic runs through the sidecar (even one this start added)
    (P.CLAIMING, E.CLAIM_REFUSED): (P.ERROR, [ReleaseTraffic(), CloseTunnels()], []),
    (P.TAKING_OVER, E.SERVICE_TAKEN_OVER): (P.ACTIVE, [], []),
    (P.TAKING_OVER, E.LEAVE): (
        P.LEAVING, [ReleaseTraffic(), CloseTunnels()], [RestoreService(), RemoveAgent()]
    ),
    (P.TAKING_OVER, E.FAILED): (
        P.ERROR, [ReleaseTraffic(), CloseTunnels()], [RestoreService(), RemoveAgent()]
    ),
    (P.ACTIVE, E.PAUSE): (P.PAUSED, [UpdatePause(True)], []),
    (P.ACTIVE, E.TUNNEL_LOST): (P.RECONNECTING, [CloseTunnels(), OpenTunnels()], []),
    (P.ACTIVE, E.LEAVE): (P.LEAVING, [ReleaseTraffic(), CloseTunnels()], []),
    (P.ACTIVE, E.FAILED): (P.ERROR, [ReleaseTraffic(), CloseTunnels()], []),
    (P.PAUSED, E.RESUME): (P.ACTIVE, [UpdatePause(False)], []),
    (P.PAUSED, E.TUNNEL_LOST): (P.RECONNECTING, [CloseTunnels(), OpenTunnels()], []),
    (P.PAUSED, E.LEAVE): (P.LEAVING, [ReleaseTraffic(), CloseTunnels()], []),
    (P.PAUSED, E.FAILED): (P.ERROR, [ReleaseTraffic(), CloseTunnels()], []),
    (P.RECONNECTING, E.TUNNELS_OPEN): (P.CLAIMING, [RouteTraffic()], []),
    (P.RECONNECTING, E.TUNNEL_LOST): (P.RECONNECTING, [CloseTunnels(), OpenTunnels()], []),
    (P.RECONNECTING, E.PAUSE): (P.RECONNECTING, [], []),
    (P.RECONNECTING, E.RESUME): (P.RECONNECTING, [], []),
    (P.RECONNECTING, E.LEAVE): (P.LEAVING, [CloseTunnels()], []),
    (P.RECONNECTING, E.FAILED): (P.ERROR, [CloseTunnels()], []),
    (P.LEAVING, E.LEFT): (P.IDLE, [], []),
    (P.LEAVING, E.LEAVE): (P.LEAVING, [], []),
    (P.LEAVING, E.TUNNEL_LOST): (P.LEAVING, [], []),
    (P.LEAVING, E.PAUSE): (P.LEAVING, [], []),
    (P.LEAVING, E.RESUME): (P.LEAVING, [], []),
    (P.LEAVING, E.FAILED): (P.ERROR, [], []),
    (P.UNINSTALLING, E.UNINSTALLED): (P.IDLE, [], []),
    (P.UNINSTALLING, E.FAILED): (P.ERROR, [], []),
    (P.ERROR, E.START): (P.RESOLVING, [Resolve()], []),
    (P.ERROR, E.LEAVE): (P.IDLE, [], []),
    (P.ERROR, E.UNINSTALL): (P.UNINSTALLING, [RestoreService(), RemoveAgent()], []),
}


def test_the_table_lists_exactly_the_expected_transitions() -> None:
    assert set(TABLE) == set(EXPECTED)


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
            if (state.phase, event) in EXPECTED:
                frontier.append(step(state, event)[0])
    return seen


def test_every_phase_is_reachable() -> None:
    assert set(_reachable()) == set(Phase)


@pytest.mark.parametrize("phase, event", list(EXPECTED))
@pytest.mark.parametrize("installed", [False, True], ids=["warm", "cold"])
def test_every_legal_transition_lands_and_acts_as_written(
    phase: Phase, event: InterceptEvent, installed: bool
) -> None:
    lands, effects, if_installed = EXPECTED[(phase, event)]
    state, got = step(InterceptState(phase, installed), event)
    assert state.phase is lands
    notify = [Notify(lands)] if lands is not phase else []
    assert got == effects + (if_installed if installed else []) + notify


ILLEGAL = [(p, e) for p, e in itertools.product(Phase, InterceptEvent) if (p, e) not in EXPECTED]


@pytest.mark.parametrize("phase, event", ILLEGAL)
def test_every_other_transition_is_illegal(phase: Phase, event: InterceptEvent) -> None:
    with pytest.raises(
        LocalProtocolError, match=f"intercept: '{event.value}' is not allowed while {phase.value}"
    ):
        step(InterceptState(phase), event)


def test_no_phase_is_a_dead_end() -> None:
    for phase in Phase:
        assert any((phase, e) in EXPECTED for e in InterceptEvent), phase


def test_a_refused_cold_start_keeps_the_agent_the_holder_runs_on() -> None:
    """Two cold starts raced: both added the sidecar; the one whose claim is refused must not
    remove it from under the winner (tests/faults/test_race.py on the testbed)."""
    state, _ = run(COLD[:5])
    assert state.phase is P.CLAIMING and state.installed_agent
    state, effects = step(state, E.CLAIM_REFUSED)
    assert state.phase is P.ERROR
    assert RemoveAgent() not in effects
    assert effects == [ReleaseTraffic(), CloseTunnels(), Notify(P.ERROR)]
