"""The built VSIX in a real VS Code (code-server) driven by Playwright in Debian's Chromium."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import innerloop
import pytest

from tests.vscode.codeserver import CodeServer, Runtime, run_scenario

pytestmark = pytest.mark.vscode

APP = """\
import os


def handler(path):
    greeting = os.environ.get("GREETING", "none")
    return f"{greeting} {path}"


print(handler("/hello"))
"""
BREAKPOINT_LINE = 6  # the return in handler()

LAUNCH_JSON = {
    "version": "0.2.0",
    "configurations": [
        {
            "type": "innerloop",
            "request": "launch",
            "name": "innerloop: orders",
            "service": "orders",
            "program": "${workspaceFolder}/app.py",
            "port": 8080,
            "python": sys.executable,
        },
        {
            "type": "innerloop",
            "request": "launch",
            "name": "innerloop: broken",
            "service": "orders",
            "port": 8080,
        },
    ],
}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "workspace"
    folder.mkdir()
    (folder / "app.py").write_text(APP)
    # A launch.json is what activates the extension in a project (workspaceContains).
    (folder / ".vscode").mkdir()
    (folder / ".vscode" / "launch.json").write_text(json.dumps(LAUNCH_JSON, indent=2))
    return folder


@contextlib.contextmanager
def running(server: CodeServer, vsix: Path, artifacts: Path) -> Iterator[CodeServer]:
    try:
        server.prepare(vsix)
        server.start()
        yield server
    finally:
        server.stop()
        server.collect_logs(artifacts / "logs")
        server.cleanup()


@pytest.fixture
def code_server(
    vscode_runtime: Runtime, vsix: Path, workspace: Path, artifacts: Path
) -> Iterator[CodeServer]:
    """innerloop.python = this test's interpreter (the repo's venv): no managed environment."""
    server = CodeServer(
        vscode_runtime, workspace, user_settings={"innerloop.python": sys.executable}
    )
    with running(server, vsix, artifacts):
        yield server


def test_status_bar_and_show_status_reach_the_python_server(
    vscode_runtime: Runtime, code_server: CodeServer, artifacts: Path
) -> None:
    result = run_scenario(
        vscode_runtime,
        code_server,
        "smoke",
        artifacts,
        {
            "version": innerloop.__version__,
            "serverPython": sys.executable,
            "activationTimeoutMs": 90_000,
        },
    )
    assert result.returncode == 0, result.stdout
    assert sorted(p.name for p in artifacts.glob("*.png")) == [
        "01-activated.png",
        "02-show-status.png",
    ]


def innerloop_log(server_logs: Path) -> str:
    """The extension's "innerloop" output channel as VS Code wrote it to disk."""
    return "\n".join(p.read_text() for p in server_logs.rglob("*innerloop*.log"))


def test_managed_environment_from_a_clean_python(
    vscode_runtime: Runtime, vsix: Path, workspace: Path, artifacts: Path, tmp_path: Path
) -> None:
    """innerloop.python unset, only Debian's python3 on PATH: the extension makes its own venv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to("/usr/bin/python3")
    pip_cache = Path(os.environ.get("INNERLOOP_CACHE", Path.home() / ".cache/innerloop")) / "pip"
    server = CodeServer(
        vscode_runtime,
        workspace,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "PIP_CACHE_DIR": str(pip_cache)},
    )
    with running(server, vsix, artifacts):
        global_storage = server.user_data / "User" / "globalStorage" / "innerloop.innerloop"
        result = run_scenario(
            vscode_runtime,
            server,
            "managed_env",
            artifacts,
            {
                "globalStorage": str(global_storage),
                "activationTimeoutMs": 90_000,
                "installTimeoutMs": 300_000,
            },
            timeout=600,
        )
        env_python = global_storage / "python-env" / "bin" / "python"
        marker = json.loads((global_storage / "python-env" / "innerloop-env.json").read_text())
    assert result.returncode == 0, result.stdout
    assert marker["wheel"] == f"innerloop-{innerloop.__version__}-py3-none-any.whl"
    assert marker["base"].startswith("/usr/bin/python3")
    channel = innerloop_log(artifacts / "logs")
    # Created once; the restart reused it.
    assert channel.count("creating a Python") == 1, channel
    assert channel.count(f"starting the server: {env_python} -m innerloop.lsp") == 2, channel


def memory_server_python(tmp_path: Path) -> Path:
    """An `innerloop.python` that runs the server with in-memory sessions (no cluster):
    tests/integration/test_lsp_features.py as a script."""
    memory_server = Path(__file__).parents[1] / "integration" / "test_lsp_features.py"
    python = tmp_path / "python-with-memory-sessions"
    python.write_text(
        f'#!/bin/sh\n# called as "<python> -m innerloop.lsp"\nexec {sys.executable} {memory_server}\n'
    )
    python.chmod(0o755)
    return python


def test_intercept_quick_pick_status_bar_and_toggle(
    vscode_runtime: Runtime, vsix: Path, workspace: Path, artifacts: Path, tmp_path: Path
) -> None:
    """The extension's UI flows against the real server with an in-memory session manager
    (tests/integration/test_lsp_features.py): no cluster needed."""
    server = CodeServer(
        vscode_runtime,
        workspace,
        user_settings={
            "innerloop.python": str(memory_server_python(tmp_path)),
            "innerloop.namespace": "shop",
        },
    )
    with running(server, vsix, artifacts):
        result = run_scenario(
            vscode_runtime,
            server,
            "intercept_quickpick",
            artifacts,
            {"activationTimeoutMs": 90_000},
        )
    assert result.returncode == 0, result.stdout


def test_f5_stops_at_a_breakpoint_through_the_innerloop_adapter(
    vscode_runtime: Runtime, vsix: Path, workspace: Path, artifacts: Path, tmp_path: Path
) -> None:
    server = CodeServer(
        vscode_runtime,
        workspace,
        user_settings={"innerloop.python": str(memory_server_python(tmp_path))},
    )
    with running(server, vsix, artifacts):
        result = run_scenario(
            vscode_runtime,
            server,
            "debug_breakpoint",
            artifacts,
            {"activationTimeoutMs": 90_000, "breakpointLine": BREAKPOINT_LINE},
        )
    assert result.returncode == 0, result.stdout
