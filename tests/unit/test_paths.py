"""Runtime files hold Secrets (env files) and who holds an intercept: owner-only, always."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from innerloop.paths import runtime_dir, write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_runtime_dir_prefers_xdg_runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    path = runtime_dir("innerloop-x")
    assert path == tmp_path / "run" / "innerloop-x" and mode(path) == 0o700


def test_runtime_dir_falls_back_to_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert runtime_dir("y") == tmp_path / "cache" / "innerloop" / "y"


def test_write_private_is_0600_even_over_a_leftover(tmp_path: Path) -> None:
    target = tmp_path / "app.env"
    leftover = tmp_path / ".app.env.tmp"
    leftover.write_text("stale")
    leftover.chmod(0o644)
    write_private(target, "SECRET=1\n")
    assert target.read_text() == "SECRET=1\n" and mode(target) == 0o600
    assert not leftover.exists()
