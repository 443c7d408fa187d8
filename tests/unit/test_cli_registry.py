"""`innerloop status` and `leave` read this machine's record of held intercepts (no cluster)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from innerloop.cli import main
from innerloop.intercepts import registry


@pytest.fixture(autouse=True)
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))


def held(tool: str, pid: int | None = None, scope: str = "") -> registry.Entry:
    entry = registry.Entry("shop", "orders", "80/http", 8080, pid or os.getpid(), "me@here:1",
                           time.time(), tool, scope)
    registry.record(entry)
    return entry


def test_status_names_the_holding_program(capsys: pytest.CaptureFixture[str]) -> None:
    held("editor")
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "orders.shop:80/http → 127.0.0.1:8080  the editor pid" in out


def test_leave_refuses_an_intercept_the_editor_holds(capsys: pytest.CaptureFixture[str]) -> None:
    entry = held("editor")
    assert main(["leave", "orders", "-n", "shop"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"innerloop: orders.shop is held by the editor (pid {entry.pid}); stop it there"
    assert registry.find("shop", "orders") == [entry], "the record stays"


def test_a_dead_holder_is_forgotten(capsys: pytest.CaptureFixture[str]) -> None:
    held("cli", pid=2**22 + 12345)  # above pid_max on Linux: never alive
    assert main(["status"]) == 0
    assert "no intercepts held on this machine" in capsys.readouterr().out
    assert registry.entries() == []


def test_two_terminals_holding_one_service_are_both_seen_and_both_left(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two personal intercepts of one Service from one machine (x-dev=me, x-dev=you): `status`
    lists both, `leave` ends both, and neither record hides the other."""
    mine = held("cli", scope="x-dev=me")
    theirs = held("cli", pid=os.getppid(), scope="x-dev=you")
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert f"only x-dev=me  innerloop intercept pid {mine.pid}" in out, out
    assert f"only x-dev=you  innerloop intercept pid {theirs.pid}" in out, out
    asked: list[int] = []

    def leave(entry: registry.Entry, timeout: float = 30.0) -> bool:
        asked.append(entry.pid)
        return True

    monkeypatch.setattr(registry, "ask_to_leave", leave)
    assert main(["leave", "orders", "-n", "shop"]) == 0
    assert sorted(asked) == sorted([mine.pid, theirs.pid])
    assert sorted(capsys.readouterr().out.splitlines()) == [
        "left orders.shop (x-dev=me)", "left orders.shop (x-dev=you)"]
