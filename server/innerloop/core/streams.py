"""One tunnel stream: its half-close state and its two credit windows.

Credit works as in HTTP/2 but per stream only, so one stalled stream can never starve another:
a sender may have at most ``send_credit`` unacknowledged bytes in flight, and the receiver hands
credit back (WINDOW) only once its application consumed the bytes. The receiver therefore never
has to buffer more than the window it advertised.

The window grows with the path (autotuning, as TCP's receive buffer does): when the reader
drains half a window faster than two round trips allow at the current size, the window, not the
reader, limits the stream, so the next WINDOW grants the consumed bytes plus as many again, up
to ``max_window``. A slow or stalled reader never triggers it, so what one stream may pin in
memory grows only for streams that are moving.
"""

from __future__ import annotations

from innerloop.core.errors import LocalProtocolError, RemoteProtocolError

MAX_CREDIT = 2**31 - 1
GROWTH_RTTS = 2
"""The window doubles when half of it was consumed in less than this many round trips' worth
of time at the current rate (see ``Stream._grow``)."""


class Stream:
    """One stream's state (a plain class: a dataclass cost the CLI's import ~1 ms)."""

    __slots__ = ("_epoch_bytes", "_epoch_start", "accepted", "max_window", "received_fin",
                 "recv_window", "replay", "route_port", "send_credit", "sent_fin", "stream_id",
                 "unacked", "window")

    def __init__(self, stream_id: int, route_port: int, window: int, send_credit: int,
                 replay: bytearray | None = None, max_window: int = 0) -> None:
        self.stream_id = stream_id
        self.route_port = route_port
        self.window = window  # what we advertised: the most the peer may have in flight to us
        self.send_credit = send_credit  # bytes we may still send before the peer grants more
        self.accepted = False
        self.sent_fin = False
        self.received_fin = False
        self.recv_window = window  # bytes the peer may still send us
        self.unacked = 0  # consumed by our side but not yet granted back
        self.replay = replay  # agent only: what the caller sent before ACCEPT
        self.max_window = max_window  # the most ``window`` may grow to; at or below: never
        self._epoch_start: float | None = None
        self._epoch_bytes = 0  # granted since _epoch_start

    @property
    def finished(self) -> bool:
        return self.sent_fin and self.received_fin

    def on_send(self, size: int) -> None:
        if self.sent_fin:
            raise LocalProtocolError(f"stream {self.stream_id}: data after FIN")
        if size > self.send_credit:
            raise LocalProtocolError(f"stream {self.stream_id}: {size} bytes exceed the credit "
                                     f"of {self.send_credit}")
        self.send_credit -= size

    def on_receive(self, size: int) -> None:
        if self.received_fin:
            raise RemoteProtocolError(f"stream {self.stream_id}: data after FIN")
        if size > self.recv_window:
            raise RemoteProtocolError(f"stream {self.stream_id}: {size} bytes exceed the window "
                                      f"of {self.recv_window}")
        self.recv_window -= size

    def on_credit(self, increment: int) -> None:
        if increment <= 0 or self.send_credit + increment > MAX_CREDIT:
            raise RemoteProtocolError(f"stream {self.stream_id}: bad WINDOW increment {increment}")
        self.send_credit += increment

    def consumed(self, size: int, now: float | None = None, rtt: float | None = None) -> int:
        """Record that our side consumed ``size`` bytes; return the credit to grant now (or 0).

        Credit goes back in batches of a quarter window, so a chatty stream does not send one
        WINDOW per read; the sender still always has at least three quarters of the window.
        With the time and the connection's round trip, the grant may also grow the window.
        """
        buffered = self.window - self.recv_window - self.unacked
        if size < 0 or size > buffered:
            raise LocalProtocolError(f"stream {self.stream_id}: acknowledged {size} bytes but "
                                     f"only {buffered} are unacknowledged")
        self.unacked += size
        if self.unacked < max(1, self.window // 4):
            return 0
        grant, self.unacked = self.unacked, 0
        grant += self._grow(grant, now, rtt)
        self.recv_window += grant
        return grant

    def _grow(self, granting: int, now: float | None, rtt: float | None) -> int:
        """How much to enlarge the window by with this grant of consumed bytes (or 0).

        Epochs of at least half a window: if one passed in less than ``GROWTH_RTTS`` round
        trips per window consumed, a window per round trip is what limits the stream: double it.
        """
        if now is None or not rtt or self.window >= self.max_window:
            return 0
        if self._epoch_start is None:
            self._epoch_start = now
            return 0
        self._epoch_bytes += granting
        if self._epoch_bytes * 2 < self.window:
            return 0
        elapsed, consumed = now - self._epoch_start, self._epoch_bytes
        self._epoch_start, self._epoch_bytes = now, 0
        if elapsed * self.window >= GROWTH_RTTS * rtt * consumed:
            return 0
        growth = min(self.window, self.max_window - self.window)
        self.window += growth
        return growth
