"""Pause counting across a session's processes.

A process is stopped while any of its threads is; the intercept is paused while any of its
processes is stopped. Resumes come from `continued` events or, when an adapter sends none, from
the successful response to a request that resumes (unless the process stopped again after that
request was sent: then the response is stale).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from innerloop.core.dap_wire import Message

RESUMING_REQUESTS = frozenset(
    {"continue", "next", "stepIn", "stepOut", "stepBack", "reverseContinue", "goto"}
)


@dataclass(frozen=True)
class _Resume:
    thread_id: object
    single_thread: bool
    stops_seen: int


@dataclass
class _Process:
    all_stopped: bool = False
    threads: set[object] = field(default_factory=set)
    stops: int = 0
    resumes: dict[int, _Resume] = field(default_factory=dict)

    @property
    def stopped(self) -> bool:
        return self.all_stopped or bool(self.threads)

    def resume(self, thread_id: object, every_thread: bool) -> None:
        if every_thread:
            self.all_stopped = False
            self.threads.clear()
        else:
            self.threads.discard(thread_id)


class PauseCounter:
    """Feed it each process's DAP traffic (adapter-side numbering); it says when the aggregate
    paused state flips."""

    def __init__(self) -> None:
        self._procs: dict[str, _Process] = {}

    @property
    def paused(self) -> bool:
        return any(p.stopped for p in self._procs.values())

    def to_adapter(self, process: str, msg: Message) -> None:
        """A message on its way to `process`'s adapter: remember requests that resume."""
        if msg["type"] != "request" or msg["command"] not in RESUMING_REQUESTS:
            return
        args = msg.get("arguments") or {}
        proc = self._procs.setdefault(process, _Process())
        proc.resumes[msg["seq"]] = _Resume(
            thread_id=args.get("threadId"),
            single_thread=args.get("singleThread") is True,
            stops_seen=proc.stops,
        )

    def from_adapter(self, process: str, msg: Message) -> bool | None:
        """A message from `process`'s adapter; returns the new paused state if it flipped."""
        before = self.paused
        proc = self._procs.setdefault(process, _Process())
        if msg["type"] == "event":
            _apply_event(proc, msg["event"], msg.get("body") or {})
        elif msg["type"] == "response":
            _apply_response(proc, msg)
        return self._flipped(before)

    def forget(self, process: str) -> bool | None:
        """The process's session ended; returns the new paused state if it flipped."""
        before = self.paused
        self._procs.pop(process, None)
        return self._flipped(before)

    def _flipped(self, before: bool) -> bool | None:
        after = self.paused
        return after if after != before else None


def _apply_event(proc: _Process, name: str, body: Mapping[str, Any]) -> None:
    thread_id = body.get("threadId")
    if name == "stopped":
        proc.stops += 1
        if body.get("allThreadsStopped") is True or thread_id is None:
            proc.all_stopped = True
        else:
            proc.threads.add(thread_id)
    elif name == "continued":
        proc.resume(thread_id, every_thread=body.get("allThreadsContinued") is True)
    elif name == "thread" and body.get("reason") == "exited":
        proc.threads.discard(thread_id)
    elif name in ("exited", "terminated"):
        proc.resume(None, every_thread=True)


def _apply_response(proc: _Process, msg: Message) -> None:
    resume = proc.resumes.pop(msg["request_seq"], None)
    if resume is None or not msg["success"] or resume.stops_seen != proc.stops:
        return
    if msg["command"] == "goto":
        every = False
    elif msg["command"] == "continue":
        said = (msg.get("body") or {}).get("allThreadsContinued")
        every = said if isinstance(said, bool) else not resume.single_thread
    else:
        every = not resume.single_thread
    proc.resume(resume.thread_id, every_thread=every)
