"""Runs a real VS Code (code-server) for UI tests and drives it with a Node/Playwright scenario.

code-server runs in its own session (setsid) with a throwaway HOME/XDG and user-data dir, so a
run never sees the developer's settings and always ends by killing its whole process group.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.net import free_port
from tools.wait import poll_until

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ARTIFACTS = REPO / "test-artifacts" / "vscode"

CLEAN_USER_SETTINGS: dict[str, Any] = {
    "chat.disableAIFeatures": True,
    "workbench.secondarySideBar.defaultVisibility": "hidden",
    "workbench.startupEditor": "none",
    "remote.autoForwardPorts": False,
    "security.workspace.trust.enabled": False,
    "telemetry.telemetryLevel": "off",
    "extensions.autoUpdate": False,
    "extensions.autoCheckUpdates": False,
    "update.mode": "none",
    "workbench.tips.enabled": False,
}


@dataclass(frozen=True)
class Runtime:
    """Where tests/vscode/setup.sh installed Node 24, code-server, playwright-core, Chromium."""

    node: str
    code_server_entry: str
    playwright_core: str
    chromium: str

    @classmethod
    def install(cls) -> Runtime:
        out = subprocess.run(
            ["bash", str(HERE / "setup.sh")], check=True, capture_output=True, text=True
        ).stdout
        env: dict[str, str] = {}
        for line in out.splitlines():
            if line.startswith("export "):
                key, _, value = line.removeprefix("export ").partition("=")
                env[key] = shlex.split(value)[0]
        return cls(env["NODE24"], env["CODE_SERVER_ENTRY"], env["PLAYWRIGHT_CORE"], env["CHROMIUM"])


def build_vsix() -> Path:
    """Builds the extension (tests/vscode/build_vsix.sh) and returns the VSIX path."""
    out = subprocess.run(
        ["bash", str(HERE / "build_vsix.sh")], check=True, capture_output=True, text=True
    ).stdout
    return Path(out.strip().splitlines()[-1])


@dataclass
class CodeServer:
    """One code-server with its own user-data/extensions dirs, HOME and XDG dirs."""

    runtime: Runtime
    workspace: Path
    user_settings: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    """Extra environment for code-server and so for the extension host and its children."""

    run_dir: Path = field(init=False)
    port: int = field(init=False)
    process: subprocess.Popen[bytes] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.run_dir = Path(tempfile.mkdtemp(prefix="innerloop-vscode-"))
        self.port = free_port()

    @property
    def user_data(self) -> Path:
        return self.run_dir / "ud"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?folder={self.workspace}"

    def _env(self) -> dict[str, str]:
        home = self.run_dir / "home"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("VSCODE_", "ELECTRON_")) and k not in ("NODE_OPTIONS",)
        }
        env.update(
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_DATA_HOME=str(home / ".local/share"),
            XDG_CACHE_HOME=str(home / ".cache"),
            XDG_RUNTIME_DIR=str(self.run_dir / "xdg-runtime"),
        )
        env.update(self.env)
        return env

    def _base_args(self) -> list[str]:
        return [
            self.runtime.node,
            self.runtime.code_server_entry,
            "--config",
            str(self.run_dir / "config.yaml"),
            "--user-data-dir",
            str(self.user_data),
            "--extensions-dir",
            str(self.run_dir / "ext"),
        ]

    def prepare(self, vsix: Path) -> None:
        """Writes clean user settings and installs the VSIX (no server running yet)."""
        for d in ("home", "xdg-runtime", "ext", "ud/User", "ud/Machine"):
            (self.run_dir / d).mkdir(parents=True, exist_ok=True)
        (self.run_dir / "xdg-runtime").chmod(0o700)
        (self.run_dir / "config.yaml").write_text("auth: none\ncert: false\n")
        settings = {**CLEAN_USER_SETTINGS, **self.user_settings}
        # code-server is a remote: machine-scoped settings (innerloop.python) are read only from
        # the Machine settings, the rest from User.
        for scope in ("User", "Machine"):
            (self.user_data / scope / "settings.json").write_text(json.dumps(settings, indent=2))
        subprocess.run(
            [*self._base_args(), "--install-extension", str(vsix), "--force"],
            check=True,
            capture_output=True,
            env=self._env(),
            timeout=120,
        )

    def start(self, timeout: float = 90.0) -> None:
        log = (self.run_dir / "code-server.log").open("wb")
        self.process = subprocess.Popen(
            [
                *self._base_args(),
                "--bind-addr",
                f"127.0.0.1:{self.port}",
                "--auth",
                "none",
                "--disable-telemetry",
                "--disable-update-check",
                "--disable-workspace-trust",
                "--disable-getting-started-override",
                "--reconnection-grace-time",
                "5",
                str(self.workspace),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self._env(),
            start_new_session=True,
        )
        process = self.process

        def healthy() -> bool:
            if process.poll() is not None:
                raise RuntimeError(
                    f"code-server exited early; see {self.run_dir / 'code-server.log'}"
                )
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2):
                    return True
            except OSError:
                return False

        poll_until(healthy, "code-server to answer /healthz", timeout, interval=0.25)

    def stop(self) -> None:
        """Ends code-server and everything it started (extension host, language server)."""
        if self.process is None:
            return
        kill_group(self.process)
        self.process = None

    def collect_logs(self, dest: Path) -> None:
        """Copies code-server's and the extension host's logs (incl. the innerloop channel)."""
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.run_dir / "code-server.log", dest / "code-server.log")
        logs = self.user_data / "logs"
        if logs.is_dir():
            shutil.copytree(logs, dest / "vscode-logs", dirs_exist_ok=True)

    def cleanup(self) -> None:
        shutil.rmtree(self.run_dir, ignore_errors=True)


def kill_group(process: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """SIGTERM the process group of `process` (started with start_new_session, so its pgid is
    its pid), then SIGKILL whatever is left after `grace` seconds, children included."""
    pgid = process.pid
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _group_alive(pgid):
            process.poll()  # reap the leader so it stops counting as alive
            time.sleep(0.1)
        if not _group_alive(pgid):
            break
    process.poll()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def run_scenario(
    runtime: Runtime,
    server: CodeServer,
    scenario: str,
    artifacts: Path,
    params: Mapping[str, Any],
    timeout: float = 300.0,
) -> subprocess.CompletedProcess[str]:
    """Runs tests/vscode/scenarios/<scenario>.mjs against `server` in Chromium.

    The script gets its parameters as JSON in argv[2]; it exits 0 when every step passed.
    It runs in its own process group so Chromium cannot outlive it.
    """
    artifacts.mkdir(parents=True, exist_ok=True)
    config = {
        "url": server.url,
        "chromium": runtime.chromium,
        "artifacts": str(artifacts),
        "chromiumHome": str(server.run_dir / "chromium-home"),
        **params,
    }
    env = {**os.environ, "PLAYWRIGHT_CORE": runtime.playwright_core}
    process = subprocess.Popen(
        [runtime.node, str(HERE / "scenarios" / f"{scenario}.mjs"), json.dumps(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process, grace=2)
        out, _ = process.communicate()
        out += f"\nscenario {scenario} timed out after {timeout:.0f} s"
    else:
        kill_group(process, grace=2)  # Chromium, should the script have left it behind
    (artifacts / f"{scenario}.log").write_text(out)
    returncode = process.returncode if process.returncode is not None else -1
    return subprocess.CompletedProcess(process.args, returncode, out, "")
