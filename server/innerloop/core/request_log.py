"""The request log: what was routed to this machine, one record per request (or connection).

Pure: the laptop end of each tunnel stream feeds what it saw (`intercepts.http_tap` reads the
bytes with h11 and calls `begin`/`answer`/`add_bytes`/`end`), the debug side says when an
intercept's program is paused (`set_paused`), and the editor's view reads the records
(`records`, and `take_changes` for what to push since the last time). Time is a parameter.

A record is "held" when its intercept's program was paused at a breakpoint while the record was
open: the request that stopped at the breakpoint, and any that waited behind it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

CAPACITY = 500
"""Records kept; the oldest go first (the view is a window on recent traffic, not a store)."""


class FlowKind(Enum):
    HTTP = "http"
    """One HTTP/1.1 request and its answer."""
    TCP = "tcp"
    """A connection whose bytes are not HTTP/1.1 (h2, a database protocol, …)."""


class FlowOutcome(Enum):
    OPEN = "open"
    DONE = "done"
    RESET = "reset"
    """The connection ended before the answer did (reset, or closed early)."""


@dataclass(slots=True)
class FlowRecord:
    """Mutable inside the log (bytes are added per chunk); the editor gets `as_json()`."""

    id: int
    intercept: str
    """The intercept's id (`namespace/service`)."""
    replica: str
    """The pod whose agent sent the stream here."""
    peer: str
    """The caller's address as the agent saw it (`ip:port`)."""
    started: float
    kind: FlowKind
    method: str | None = None
    path: str | None = None
    status: int | None = None
    request_bytes: int = 0
    """Body bytes (HTTP) or all bytes (TCP) from the caller to the local program."""
    response_bytes: int = 0
    """Body bytes (HTTP) or all bytes (TCP) from the local program to the caller."""
    ended: float | None = None
    held: bool = False
    outcome: FlowOutcome = FlowOutcome.OPEN
    note: str = ""
    """What else the user should know: `h2`, `upgraded`, `not HTTP/1.1 after this`."""

    @property
    def duration(self) -> float | None:
        return None if self.ended is None else max(0.0, self.ended - self.started)

    def as_json(self) -> dict[str, Any]:
        """The `innerloop/requestLog` record (extension/src/requestLogModel.ts)."""
        return {
            "id": self.id,
            "intercept": self.intercept,
            "replica": self.replica,
            "peer": self.peer,
            "started": self.started,
            "kind": self.kind.value,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "requestBytes": self.request_bytes,
            "responseBytes": self.response_bytes,
            "duration": self.duration,
            "held": self.held,
            "outcome": self.outcome.value,
            "note": self.note,
        }


class RequestLog:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._records: OrderedDict[int, FlowRecord] = OrderedDict()
        self._next_id = 1
        self._paused: set[str] = set()
        self._changed: set[int] = set()
        self.on_change: Callable[[], None] = lambda: None
        """Called when the first change since the last `take_changes` arrives (the shell
        schedules one push then, so a burst of traffic costs one notification)."""

    # -- what the streams feed ------------------------------------------------------------

    def begin(self, intercept: str, replica: str, peer: str, now: float, kind: FlowKind,
              method: str | None = None, path: str | None = None, note: str = "") -> int:
        record = FlowRecord(self._next_id, intercept, replica, peer, now, kind, method, path,
                            held=intercept in self._paused, note=note)
        self._next_id += 1
        self._records[record.id] = record
        while len(self._records) > self.capacity:
            gone, _ = self._records.popitem(last=False)
            self._changed.discard(gone)
        self._touch(record.id)
        return record.id

    def add_bytes(self, record_id: int, request: int = 0, response: int = 0) -> None:
        record = self._records.get(record_id)
        if record is not None:
            record.request_bytes += request
            record.response_bytes += response
            self._touch(record_id)

    def answer(self, record_id: int, status: int) -> None:
        record = self._records.get(record_id)
        if record is not None:
            record.status = status
            self._touch(record_id)

    def note(self, record_id: int, note: str) -> None:
        record = self._records.get(record_id)
        if record is not None:
            record.note = note
            self._touch(record_id)

    def end(self, record_id: int, now: float, outcome: FlowOutcome = FlowOutcome.DONE) -> None:
        record = self._records.get(record_id)
        if record is not None and record.outcome is FlowOutcome.OPEN:
            record.ended = now
            record.outcome = outcome
            self._touch(record_id)

    # -- what the debug side says ---------------------------------------------------------

    def set_paused(self, intercept: str, paused: bool) -> None:
        """While paused, every open record of the intercept is held, and new ones start held."""
        if not paused:
            self._paused.discard(intercept)
            return
        self._paused.add(intercept)
        for record in self._records.values():
            if record.intercept == intercept and record.outcome is FlowOutcome.OPEN \
                    and not record.held:
                record.held = True
                self._touch(record.id)

    # -- what the editor reads ------------------------------------------------------------

    def records(self) -> list[FlowRecord]:
        return list(self._records.values())

    def get(self, record_id: int) -> FlowRecord | None:
        return self._records.get(record_id)

    def take_changes(self) -> list[FlowRecord]:
        """The records changed since the last call, oldest first."""
        changed = [self._records[i] for i in sorted(self._changed) if i in self._records]
        self._changed.clear()
        return changed

    def clear(self) -> None:
        self._records.clear()
        self._changed.clear()

    def _touch(self, record_id: int) -> None:
        first = not self._changed
        self._changed.add(record_id)
        if first:
            self.on_change()
