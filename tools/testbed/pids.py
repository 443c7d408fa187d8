"""Daemons started by the testbed, recorded by PID (plus start time, so a reused PID is never
mistaken for ours) and stopped by PID only: TERM, then KILL after a grace period."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tools.testbed.config import STATE_DIR

RUN_DIR = STATE_DIR / "run"
LOG_DIR = STATE_DIR / "logs"
STOP_GRACE_SECONDS = 15.0


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name, or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw.rsplit(")", 1)[1].split()


def start_time(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def running(pid: int) -> bool:
    """Alive and not a zombie."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


@dataclass(frozen=True)
class Record:
    name: str
    pid: int
    started: int
    argv: list[str]

    def alive(self) -> bool:
        return running(self.pid) and start_time(self.pid) == self.started


def _record_path(name: str) -> Path:
    return RUN_DIR / f"{name}.json"


def log_path(name: str) -> Path:
    return LOG_DIR / f"{name}.log"


def spawn(name: str, argv: Sequence[str | Path], env: Mapping[str, str] | None = None) -> Record:
    """Start a daemon in its own session with output to its log; record its PID."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    args = [str(a) for a in argv]
    with open(log_path(name), "wb") as out:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(env) if env is not None else None,
        )
    started = start_time(proc.pid)
    record = Record(name, proc.pid, started if started is not None else -1, args)
    _record_path(name).write_text(json.dumps(record.__dict__))
    return record


def load(name: str) -> Record | None:
    try:
        return Record(**json.loads(_record_path(name).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def records() -> list[Record]:
    if not RUN_DIR.exists():
        return []
    found = (load(p.stem) for p in sorted(RUN_DIR.glob("*.json")))
    return [r for r in found if r is not None]


def terminate(pids: Sequence[int], grace: float = STOP_GRACE_SECONDS) -> None:
    """TERM every pid, wait up to ``grace`` seconds, then KILL the rest."""
    alive = [p for p in pids if running(p)]
    for pid in alive:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if running(p)]
    for pid in alive:
        _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(running(p) for p in alive) and time.monotonic() < deadline:
        time.sleep(0.05)


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def stop(name: str, grace: float = STOP_GRACE_SECONDS) -> None:
    """Stop the daemon recorded as ``name`` (if it is still the process we started)."""
    record = load(name)
    if record is not None and record.alive():
        terminate([record.pid], grace)
    _record_path(name).unlink(missing_ok=True)
