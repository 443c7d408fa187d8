"""Runtime entries of a killed innerloop (copied Secrets, tokens, control sockets) are removed by
the next run; a live process's, and names innerloop did not make, are left alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from innerloop.paths import owned_name, pid_alive, sweep_dead


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_owned_names_carry_this_process_id() -> None:
    assert owned_name().startswith(f"{os.getpid()}-")
    assert owned_name() != owned_name()


def test_sweep_removes_only_what_dead_processes_left(tmp_path: Path) -> None:
    dead = _dead_pid()
    gone_dir = tmp_path / f"{dead}-abc123"
    (gone_dir / "kube-api-access-x").mkdir(parents=True)
    (gone_dir / "kube-api-access-x" / "token").write_text("t")
    gone_sock = tmp_path / f"{dead}-def456.sock"
    gone_sock.write_text("")
    mine = tmp_path / owned_name()
    mine.mkdir()
    foreign = tmp_path / "notes.txt"
    foreign.write_text("x")
    legacy = tmp_path / "a1b2c3d4e5f6"  # before names carried the pid: whose, nobody knows
    legacy.mkdir()

    assert sorted(sweep_dead(tmp_path)) == sorted([gone_dir, gone_sock])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [mine.name, foreign.name, legacy.name])


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(_dead_pid())
