"""The laptop end of a tunnel connection (sans-I/O); the rules shared with the agent end are in
`innerloop.core.mux`.
"""

from __future__ import annotations

from collections.abc import Callable

from innerloop.core.errors import LocalProtocolError, RemoteProtocolError
from innerloop.core.filters import EVERYTHING, AppProtocol, Mode, RequestFilter
from innerloop.core.frames import (
    MAX_PAYLOAD,
    VERSION,
    Claim,
    ClaimList,
    Dial,
    Frame,
    Hello,
    ListClaims,
    Open,
    Pause,
    Release,
    Reply,
    Resume,
    Welcome,
)
from innerloop.core.mux import (
    DEFAULT_WINDOW,
    MAX_WINDOW,
    PEER_TIMEOUT,
    PING_INTERVAL,
    Connection,
    short_reason,
    valid_window,
)
from innerloop.core.mux_events import (
    ClaimsListed,
    RequestDone,
    StreamOpened,
)
from innerloop.core.request import WhilePaused


class ClientConnection(Connection):
    """The laptop end: says HELLO, claims routes, accepts the streams the agent opens and
    dials out through the agent (even stream ids)."""

    peer_role = "agent"
    own_parity = 0

    def __init__(self, client_id: str, *, now: float, window: int = DEFAULT_WINDOW,
                 ping_interval: float = PING_INTERVAL, peer_timeout: float = PEER_TIMEOUT,
                 max_payload: int = MAX_PAYLOAD, max_window: int = MAX_WINDOW) -> None:
        super().__init__(now=now, window=window, ping_interval=ping_interval,
                         peer_timeout=peer_timeout, max_payload=max_payload,
                         max_window=max_window)
        self._next_request = 0
        self._pending: set[int] = set()
        self._hello_at = now  # WELCOME's arrival gives the first round trip
        self._send(Hello(VERSION, client_id, window))

    def claim(self, route_port: int, local: str, flt: RequestFilter = EVERYTHING,
              mode: Mode = Mode.ROUTE, protocol: AppProtocol = AppProtocol.AUTO) -> int:
        """Ask for the requests on ``route_port`` that ``flt`` matches (all: its connections);
        the RequestDone event carries the id."""
        return self._request(
            lambda rid: Claim(rid, route_port, short_reason(local), mode, protocol, flt))

    def list_claims(self) -> int:
        """Ask for every claim on the agent; the ClaimsListed event carries the id."""
        return self._request(ListClaims)

    def release(self, route_port: int) -> int:
        return self._request(lambda rid: Release(rid, route_port))

    def pause(self, while_paused: WhilePaused) -> int:
        return self._request(lambda rid: Pause(rid, while_paused))

    def resume(self) -> int:
        return self._request(Resume)

    def dial(self, host: str, port: int) -> int:
        """Open a stream to ``host:port``, connected by the agent from its pod; returns its id.

        StreamAccepted follows once the agent connected, or StreamReset with its reason.
        """
        if not 0 < port < 2**16:
            raise LocalProtocolError(f"cannot dial port {port}")
        return self._open_own(port, lambda stream_id: Dial(stream_id, host, port))

    def _request(self, make: Callable[[int], Frame]) -> int:
        self._check_open()
        self._next_request += 1
        self._pending.add(self._next_request)
        self._send(make(self._next_request))
        return self._next_request

    def _handle_handshake(self, frame: Frame, now: float) -> None:
        if not isinstance(frame, Welcome):
            raise self._unexpected(frame)
        if frame.version != VERSION:
            raise RemoteProtocolError(f"the agent answered with protocol version "
                                      f"{frame.version}, not {VERSION}")
        if not valid_window(frame.window):
            raise RemoteProtocolError(f"WELCOME window {frame.window} out of range")
        self.rtt = now - self._hello_at
        self._established(frame.window, frame.agent_name, now)

    def _handle_role_frame(self, frame: Frame, now: float) -> None:
        if isinstance(frame, (Reply, ClaimList)):
            if frame.request_id not in self._pending:
                name = "REPLY" if isinstance(frame, Reply) else "CLAIM_LIST"
                raise RemoteProtocolError(f"{name} to unknown request {frame.request_id}")
            self._pending.discard(frame.request_id)
            self._events.append(
                RequestDone(frame.request_id, frame.status, frame.holder, frame.reason)
                if isinstance(frame, Reply) else ClaimsListed(frame.request_id, frame.entries))
        elif isinstance(frame, Open):
            self._peer_opened(frame, frame.route_port)
            self._events.append(StreamOpened(frame.stream_id, frame.route_port, frame.peer))
        else:
            raise self._unexpected(frame)
