"""What the real-VS-Code tests against the testbed share (test_vscode_cluster.py,
test_vscode_network.py, the lens tests): the extension's settings for the testbed, the
workspace, the `ui` fixture (code-server + a scenario, then the channel's errors and the
screenshots) and the scenario's "HOST <step>" handshake.

A scenario (tests/vscode/scenarios/cluster_*.mjs) drives the UI; where it needs the cluster
(a pod's request, a check of what the cluster serves) it logs "HOST <step>" and waits, and the
test does that step and answers through a file (scenarios/host_sync.mjs). The test's workloads
are deployed while code-server and the workbench load (`ClusterUi.start`'s `setup`, the
scenario's first "HOST setup" step): a UI test costs the longer of the two, not their sum.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import pytest

from tests.vscode.codeserver import HERE, CodeServer, Runtime, kill_group
from tools.cluster import Cluster, LoadResult, parse_answer
from tools.net import port_open
from tools.sample import ECHO_APP, manifests
from tools.wait import poll_until

ITEM_TIMEOUT_MS = 180_000
"""A cold start injects the agent: one rollout of the workload."""
REQUEST_PATH = "/from-a-pod"


def settings(kube: Cluster) -> dict[str, str]:
    return {
        "innerloop.python": sys.executable,
        "innerloop.kubeconfig": str(kube.kubeconfig),
        "innerloop.agentImage": manifests.PYTHON_IMAGE,
    }


def make_workspace(root: Path, launch: list[dict[str, Any]], app: Path = ECHO_APP) -> Path:
    """A folder with a copy of `app` as app.py and a launch.json (which activates the
    extension)."""
    folder = root / "workspace"
    (folder / ".vscode").mkdir(parents=True)
    shutil.copy(app, folder / "app.py")
    (folder / ".vscode" / "launch.json").write_text(
        json.dumps({"version": "0.2.0", "configurations": launch}, indent=2)
    )
    return folder


class Scenario:
    """A running scenario whose "HOST <step>" lines this side answers."""

    def __init__(
        self,
        runtime: Runtime,
        server: CodeServer,
        name: str,
        artifacts: Path,
        params: Mapping[str, Any],
    ) -> None:
        self.name = name
        self.artifacts = artifacts
        self.sync = server.run_dir / "sync"
        self.sync.mkdir()
        config = {
            "url": server.url,
            "chromium": runtime.chromium,
            "artifacts": str(artifacts),
            "chromiumHome": str(server.run_dir / "chromium-home"),
            "syncDir": str(self.sync),
            **params,
        }
        self.process = subprocess.Popen(
            [runtime.node, str(HERE / "scenarios" / f"{name}.mjs"), json.dumps(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PLAYWRIGHT_CORE": runtime.playwright_core},
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._eof = False
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert self.process.stdout is not None
        threading.Thread(target=self._pump, args=(self.process.stdout,), daemon=True).start()

    def _pump(self, pipe: IO[str]) -> None:
        for line in pipe:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def log(self) -> str:
        return "\n".join(self.lines)

    def step(self, step: str, timeout: float, action: Callable[[], None]) -> None:
        """Waits for the scenario to ask for `step`, runs `action`, and lets it go on (or, if
        the action failed, tells it why and re-raises)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(
                    f"no HOST {step} after {timeout:.0f}s:\n{self.log()}"
                ) from None
            if line is None:
                self._eof = True
                raise AssertionError(f"scenario ended before HOST {step}:\n{self.log()}")
            self.lines.append(line)
            if line.endswith(f"HOST {step}"):
                break
        try:
            action()
        except BaseException as exc:
            (self.sync / step).write_text(f"{type(exc).__name__}: {exc}"[:500])
            raise
        (self.sync / step).write_text("ok")

    def finish(self, timeout: float = 120) -> int:
        try:
            self.process.wait(timeout)
        finally:
            self.close()
        return self.process.returncode

    def close(self) -> None:
        """Ends the scenario (and Chromium) and saves its log."""
        kill_group(self.process, grace=2)
        while not self._eof:
            try:
                line = self._queue.get(timeout=5)
            except queue.Empty:
                break
            if line is None:
                self._eof = True
            else:
                self.lines.append(line)
        (self.artifacts / f"{self.name}.log").write_text(self.log() + "\n")


class ClusterUi:
    """The `ui` fixture: code-server in a test's workspace with the extension's testbed
    settings, a scenario in it; once it ended, what the test checks (the channel's errors, the
    screenshots). The servers and scenarios it started are stopped and their logs collected at
    the end of the test."""

    def __init__(self, runtime: Runtime, vsix: Path, kube: Cluster, namespace: str,
                 root: Path, artifacts: Path) -> None:
        self.runtime, self.vsix, self.kube, self.namespace = runtime, vsix, kube, namespace
        self.root, self.artifacts = root, artifacts
        self.started: list[tuple[CodeServer, Scenario | None]] = []
        self.started_at = 0.0
        """When the last `start` began (monotonic): code-server's start counts."""

    def echo_url(self) -> str:
        return f"http://{self.kube.cluster_ip(self.namespace, 'echo')}{REQUEST_PATH}"

    def code_server(self, workspace: Path, user_settings: Mapping[str, Any] | None = None
                    ) -> CodeServer:
        """The server `start` runs (made first where a test needs its run_dir)."""
        server = CodeServer(self.runtime, workspace,
                            user_settings=settings(self.kube) if user_settings is None
                            else user_settings)
        self.started.append((server, None))
        return server

    @property
    def server(self) -> CodeServer:
        return self.started[-1][0]

    def start(self, name: str, params: Mapping[str, Any],
              setup: Callable[[], None] | None = None) -> Scenario:
        """Starts the last code_server and the scenario `name` in it. `setup` (the test's
        workloads) runs meanwhile, while code-server and the workbench load; the scenario waits
        for it (its "HOST setup" step) before its first step, and so does this call."""
        server = self.server
        self.started_at = time.monotonic()
        pool = concurrent.futures.ThreadPoolExecutor(1)
        setting_up = pool.submit(setup) if setup is not None else None
        try:
            server.prepare(self.vsix)
            server.start()
            scenario = Scenario(self.runtime, server, name, self.artifacts, {
                "activationTimeoutMs": 90_000, "interceptTimeoutMs": ITEM_TIMEOUT_MS,
                "hostSetup": setting_up is not None, **params,
            })
            self.started[-1] = (server, scenario)
            if setting_up is not None:
                scenario.step("setup", 300, setting_up.result)
        finally:
            pool.shutdown(wait=True)
        return scenario

    def channel_errors(self) -> list[str]:
        return channel_errors(self.server, self.artifacts)

    def screenshots(self) -> list[str]:
        return sorted(p.name for p in self.artifacts.glob("*.png"))

    def close(self) -> None:
        for server, scenario in self.started:
            if scenario is not None and scenario.process.returncode is None:
                scenario.close()
            server.stop()
            server.collect_logs(self.artifacts / "logs")
            server.cleanup()


@pytest.fixture
def ui(vscode_runtime: Runtime, vsix: Path, cluster: Cluster, namespace: str, tmp_path: Path,
       artifacts: Path) -> Iterator[ClusterUi]:
    """The test module imports `cluster` and `namespace` (tests/e2e/conftest.py) too."""
    started = ClusterUi(vscode_runtime, vsix, cluster, namespace, tmp_path, artifacts)
    yield started
    started.close()


def launch_echo(namespace: str, port: int, env: Mapping[str, str | None]) -> list[dict[str, Any]]:
    """The `innerloop` launch configuration of the workspace's app.py for the echo Service."""
    return [{
        "type": "innerloop",
        "request": "launch",
        "name": "innerloop: echo",
        "service": "echo",
        "namespace": namespace,
        "servicePort": 80,
        "port": port,
        "program": "${workspaceFolder}/app.py",
        "env": dict(env),
    }]


@contextlib.contextmanager
def local_echo(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """The echo app on 127.0.0.1:`port`, as the user's own process (not a debuggee)."""
    app = subprocess.Popen(
        [sys.executable, str(ECHO_APP)],
        env={**os.environ, "PORT": str(port), "HOST": "127.0.0.1"},
        stdout=subprocess.DEVNULL,
    )
    try:
        yield app
    finally:
        app.terminate()
        app.wait(10)


def f5_to_breakpoint_and_back(scenario: Scenario, kube: Cluster, namespace: str, url: str,
                              local_port: int, answered: Callable[[LoadResult], None]) -> None:
    """The walk the F5 scenarios share, host side: a pod's request once the debuggee listens,
    still unanswered while paused at the breakpoint, `answered` checks the answer after
    continue, and after stop the cluster's own pods answer again."""
    pool = concurrent.futures.ThreadPoolExecutor(1)
    pending: list[concurrent.futures.Future[LoadResult]] = []

    def request() -> None:
        # The intercept is active; the debuggee may still be starting.
        poll_until(lambda: port_open(local_port), f"a listener on 127.0.0.1:{local_port}", 60)
        pending.append(pool.submit(kube.load_via_exec, namespace, url, count=1, timeout=120))

    def paused() -> None:
        assert not pending[0].done(), "the paused request was answered"

    def restored() -> None:
        got = answers(kube.load_via_exec(namespace, url, count=10, rate=20))
        assert {a["pod"] for a in got} <= set(kube.pods(namespace, "echo")), got

    try:
        scenario.step("request", 240, request)
        scenario.step("paused", 120, paused)
        scenario.step("answered", 60, lambda: answered(pending[0].result(timeout=30)))
        scenario.step("restored", 90, restored)
        assert scenario.finish() == 0, scenario.log()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def answers(result: LoadResult) -> list[dict[str, str]]:
    assert result.failures == [], result.failures[:5]
    return [parse_answer(r["body"]) for r in result.records]


def channel_errors(server: CodeServer, artifacts: Path) -> list[str]:
    """[error] lines of the extension's "innerloop" output channel (the server's stderr lands
    there as errors too), once code-server has stopped and written its logs."""
    server.stop()
    server.collect_logs(artifacts / "logs")
    lines = [
        line
        for log in (artifacts / "logs").rglob("innerloop.log")
        for line in log.read_text().splitlines()
    ]
    assert any("starting the server" in line for line in lines), "no innerloop channel log"
    return [line for line in lines if "[error]" in line]
