"""Sequence numbers across the proxy.

Each side sees one gap-free increasing sequence, even though the proxy adds messages of its own
(output events, refusals) and asks the adapter questions itself.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from innerloop.core.dap_wire import Message
from innerloop.core.errors import RemoteProtocolError


class Side(enum.Enum):
    CLIENT = "client"
    ADAPTER = "adapter"

    @property
    def other(self) -> Side:
        return Side.ADAPTER if self is Side.CLIENT else Side.CLIENT


@dataclass(frozen=True)
class Pending:
    """A request in flight: who asked (their seq, or None when the proxy asked) and what."""

    origin_seq: int | None
    command: str


class SeqMap:
    def __init__(self) -> None:
        self._last = {Side.CLIENT: 0, Side.ADAPTER: 0}
        self._pending: dict[Side, dict[int, Pending]] = {Side.CLIENT: {}, Side.ADAPTER: {}}

    def _stamp(self, to: Side, msg: Message) -> Message:
        self._last[to] += 1
        return {**msg, "seq": self._last[to]}

    def message(self, to: Side, msg: Message) -> Message:
        """An event, or a response whose request_seq is already in `to`'s numbering."""
        return self._stamp(to, msg)

    def request(self, to: Side, msg: Message, origin_seq: int | None) -> Message:
        """A request for `to`; its response will be mapped back to `origin_seq`."""
        out = self._stamp(to, msg)
        self._pending[to][out["seq"]] = Pending(origin_seq, msg["command"])
        return out

    def response_from(self, side: Side, msg: Message) -> tuple[Message, Pending]:
        """A response arriving from `side`, with request_seq mapped back for whoever asked.

        Stamp it with `message` at the moment it is sent, so that it keeps its place among
        messages the proxy sends meanwhile. When the proxy itself asked (origin_seq None) the
        message comes back unchanged, for the proxy to consume.
        """
        pending = self._pending[side].pop(msg["request_seq"], None)
        if pending is None:
            raise RemoteProtocolError(
                f"{side.value} answered request {msg['request_seq']} that was never sent"
            )
        if pending.origin_seq is None:
            return msg, pending
        return {**msg, "request_seq": pending.origin_seq}, pending
