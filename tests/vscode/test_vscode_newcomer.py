"""Issue 12's newcomer snags in the real VS Code (code-server + Chromium): each test reproduces
one snag as a new user meets it, and fails on a VSIX without the fix (INNERLOOP_TEST_VSIX=an
older build). The cluster is not needed: the server runs with in-memory intercepts
(tests/integration/test_lsp_features.py), except where the real server's own error is the
point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.vscode.codeserver import CodeServer, Runtime, run_scenario
from tests.vscode.test_vscode_smoke import memory_server_python, running
from tools.net import free_port

pytestmark = pytest.mark.vscode

APP = """\
import os


def handler(path):
    greeting = os.environ.get("GREETING", "none")
    return f"{greeting} {path}"


print(handler("/hello"))
"""
BREAKPOINT_LINE = 6

VENV_APP = """\
import only_in_venv


def handler(path):
    where = only_in_venv.WHERE
    return f"{where} {path}"


print(handler("/hello"))
"""
VENV_BREAKPOINT_LINE = 6

ACTIVATION = {"activationTimeoutMs": 90_000}


def workspace(tmp_path: Path, app: str, configurations: list[dict[str, Any]] | None) -> Path:
    folder = tmp_path / "workspace"
    folder.mkdir()
    (folder / "app.py").write_text(app)
    if configurations is not None:
        (folder / ".vscode").mkdir()
        launch = {"version": "0.2.0", "configurations": configurations}
        (folder / ".vscode" / "launch.json").write_text(json.dumps(launch, indent=2))
    return folder


def launch(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "innerloop",
        "request": "launch",
        "name": name,
        "service": "orders",
        "namespace": "shop",
        "program": "${workspaceFolder}/app.py",
        "port": 8080,
        **extra,
    }


def scenario(
    runtime: Runtime, server: CodeServer, vsix: Path, artifacts: Path, name: str,
    params: dict[str, Any], timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    with running(server, vsix, artifacts):
        return run_scenario(runtime, server, name, artifacts, {**ACTIVATION, **params}, timeout)


def test_first_run_status_bar_launch_choices_steps_and_nothing_listening(
    vscode_runtime: Runtime, vsix: Path, artifacts: Path, tmp_path: Path
) -> None:
    """Snags 9 and 4: no launch.json, no command run."""
    server = CodeServer(
        vscode_runtime,
        workspace(tmp_path, APP, None),
        user_settings={"innerloop.python": str(memory_server_python(tmp_path))},
    )
    result = scenario(vscode_runtime, server, vsix, artifacts, "newcomer_first_run",
                      {"freePort": free_port()})
    assert result.returncode == 0, result.stdout


def test_f5_hands_over_a_palette_intercept_and_a_click_does_not_end_the_debuggers(
    vscode_runtime: Runtime, vsix: Path, artifacts: Path, tmp_path: Path
) -> None:
    """Snag 1."""
    server = CodeServer(
        vscode_runtime,
        workspace(tmp_path, APP, [launch("innerloop: orders", python=sys.executable)]),
        user_settings={"innerloop.python": str(memory_server_python(tmp_path))},
    )
    result = scenario(vscode_runtime, server, vsix, artifacts, "newcomer_handover",
                      {"breakpointLine": BREAKPOINT_LINE})
    assert result.returncode == 0, result.stdout


def test_f5_runs_the_workspace_venv_and_names_the_interpreter_when_an_import_fails(
    vscode_runtime: Runtime, vsix: Path, artifacts: Path, tmp_path: Path
) -> None:
    """Snag 2: the program imports a module only the workspace's .venv has."""
    other = "/usr/bin/python3"
    folder = workspace(
        tmp_path, VENV_APP,
        [launch("innerloop: orders"), launch("innerloop: other python", python=other)],
    )
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder / ".venv")],
                   check=True)
    (site,) = (folder / ".venv" / "lib").glob("python3*/site-packages")
    (site / "only_in_venv.py").write_text("import sys\n\nWHERE = sys.prefix\n")
    server = CodeServer(
        vscode_runtime, folder,
        user_settings={"innerloop.python": str(memory_server_python(tmp_path))},
    )
    result = scenario(vscode_runtime, server, vsix, artifacts, "newcomer_interpreter",
                      {"breakpointLine": VENV_BREAKPOINT_LINE, "otherPython": other})
    assert result.returncode == 0, result.stdout


def test_no_package_index_gives_a_notification_that_suggests_innerloop_python(
    vscode_runtime: Runtime, vsix: Path, artifacts: Path, tmp_path: Path
) -> None:
    """Snag 7: the managed environment cannot download innerloop's dependencies."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to("/usr/bin/python3")
    server = CodeServer(
        vscode_runtime,
        workspace(tmp_path, APP, None),
        env={
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
            "PIP_RETRIES": "0",
            "PIP_TIMEOUT": "2",
            "PIP_NO_CACHE_DIR": "1",
            "PIP_CONFIG_FILE": os.devnull,
        },
    )
    result = scenario(vscode_runtime, server, vsix, artifacts, "newcomer_no_index",
                      {"installTimeoutMs": 240_000}, timeout=400)
    assert result.returncode == 0, result.stdout


def test_f5_errors_name_the_setting_not_cli_flags(
    vscode_runtime: Runtime, vsix: Path, artifacts: Path, tmp_path: Path
) -> None:
    """Snags 3 and 6: the real server, a kubeconfig setting that points nowhere."""
    server = CodeServer(
        vscode_runtime,
        workspace(tmp_path, APP, [launch("innerloop: orders", python=sys.executable)]),
        user_settings={
            "innerloop.python": sys.executable,
            "innerloop.kubeconfig": str(tmp_path / "no-such-kubeconfig"),
        },
    )
    result = scenario(vscode_runtime, server, vsix, artifacts, "newcomer_settings_advice", {})
    assert result.returncode == 0, result.stdout
