"""The built VSIX in a real VS Code (code-server) driven by Playwright in Debian's Chromium."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import innerloop
from tests.vscode.codeserver import CodeServer, Runtime, run_scenario

pytestmark = pytest.mark.vscode

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
        }
    ],
}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "workspace"
    folder.mkdir()
    (folder / "app.py").write_text('print("hello from the workspace")\n')
    # A launch.json is what activates the extension in a project (workspaceContains).
    (folder / ".vscode").mkdir()
    (folder / ".vscode" / "launch.json").write_text(json.dumps(LAUNCH_JSON, indent=2))
    return folder


@pytest.fixture
def code_server(
    vscode_runtime: Runtime, vsix: Path, workspace: Path, artifacts: Path
) -> Iterator[CodeServer]:
    server = CodeServer(
        vscode_runtime,
        workspace,
        user_settings={"innerloop.python": sys.executable},
    )
    try:
        server.prepare(vsix)
        server.start()
        yield server
    finally:
        server.stop()
        server.collect_logs(artifacts / "logs")
        server.cleanup()


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
    assert sorted(p.name for p in artifacts.glob("*.png")) == ["01-activated.png", "02-show-status.png"]
