"""A client and an agent connection wired back to back, for the unit tests of core.mux*."""

from __future__ import annotations

from dataclasses import dataclass, field

from innerloop.core.mux_agent import AgentConnection
from innerloop.core.mux_client import ClientConnection
from innerloop.core.mux_events import MuxEvent, StreamAccepted

WINDOW = 4096


@dataclass
class Pair:
    """A client and an agent whose bytes are carried by ``pump``."""

    now: float = 0.0
    max_window: int = WINDOW  # what autotuning may grow a stream's window to (WINDOW: never)
    client: ClientConnection = field(init=False)
    agent: AgentConnection = field(init=False)

    def __post_init__(self) -> None:
        self.client = ClientConnection("alice@laptop:1", now=self.now, window=WINDOW,
                                       max_window=self.max_window)
        self.agent = AgentConnection("pod-a", now=self.now, window=WINDOW,
                                     max_window=self.max_window)

    @classmethod
    def connected(cls) -> Pair:
        p = cls()
        p.pump()
        return p

    def pump(self) -> tuple[list[MuxEvent], list[MuxEvent]]:
        """Deliver bytes both ways until both are quiet; (client events, agent events)."""
        client_events: list[MuxEvent] = []
        agent_events: list[MuxEvent] = []
        while True:
            to_agent, to_client = self.client.data_to_send(), self.agent.data_to_send()
            if not to_agent and not to_client:
                return client_events, agent_events
            agent_events += self.agent.receive_data(to_agent, self.now)
            client_events += self.client.receive_data(to_client, self.now)


def open_accepted(p: Pair, preamble: bytes = b"") -> int:
    """An agent-opened stream (a routed caller) that the client accepted."""
    sid = p.agent.open_stream(15401, "10.0.0.9:5555", p.now)
    if preamble:
        p.agent.send_data(sid, preamble)
    p.pump()
    p.client.accept(sid)
    assert p.pump()[1] == [StreamAccepted(sid)]
    return sid
