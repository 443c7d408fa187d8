"""The developer's laptop on the testbed (e2e tests, benchmarks, the demo): the local app and
the innerloop CLI, run inside the developer network namespace, which reaches only the API server
(so only the tunnel can carry cluster traffic to the local app).
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from tools.cluster import Cluster
from tools.sample import ECHO_APP, manifests
from tools.testbed.netns import dev_netns_popen

REPO = Path(__file__).resolve().parents[1]


class Lines:
    """Collects a pipe's lines on a thread, so a test can wait for one without blocking."""

    def __init__(self, pipe: IO[str]) -> None:
        self.lines: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(pipe,), daemon=True).start()

    def _pump(self, pipe: IO[str]) -> None:
        for line in pipe:
            self._q.put(line.rstrip("\n"))
        self._q.put(None)

    def wait_for(self, needle: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        for line in self.lines:
            if needle in line:
                return line
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"no line with {needle!r} after {timeout:.0f}s:\n" + "\n".join(self.lines[-40:])
                )
            try:
                line = self._q.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(
                    f"output ended without {needle!r}:\n" + "\n".join(self.lines[-40:])
                )
            self.lines.append(line)
            if needle in line:
                return line

    def text(self) -> str:
        while True:
            try:
                line = self._q.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        return "\n".join(self.lines)


class Laptop:
    """Processes started in the developer netns; all stopped by PID at the end."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.procs: list[subprocess.Popen[str]] = []
        # Its own registry of held intercepts: `innerloop status` sees only this laptop's.
        self.runtime_dir = tempfile.mkdtemp(prefix="innerloop-laptop-")

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "KUBECONFIG": str(self.cluster.kubeconfig),
            "INNERLOOP_AGENT_IMAGE": manifests.PYTHON_IMAGE,
            "PYTHONUNBUFFERED": "1",
            "XDG_RUNTIME_DIR": self.runtime_dir,
            **extra,
        }

    def popen(self, argv: Sequence[str], **env: str) -> tuple[subprocess.Popen[str], Lines]:
        proc = dev_netns_popen(
            list(argv),
            env=self.env(**env),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        assert proc.stdout is not None
        return proc, Lines(proc.stdout)

    def start_app(self, port: int) -> subprocess.Popen[str]:
        """The local echo app (answers pod=local) on 127.0.0.1:port inside the netns."""
        proc, lines = self.popen([sys.executable, str(ECHO_APP)], PORT=str(port), HOST="127.0.0.1")
        lines.wait_for("listening", 15)
        return proc

    def start_app_on_a_free_port(self) -> tuple[subprocess.Popen[str], int]:
        """The local echo app on a port the kernel picks; returns it and the port. The netns is
        shared by every test session on the machine: a fixed port may be taken by another."""
        proc, lines = self.popen([sys.executable, str(ECHO_APP)], PORT="0", HOST="127.0.0.1")
        listening = lines.wait_for("listening", 15)  # "echo listening on 127.0.0.1:PORT pid=N"
        return proc, int(listening.split()[3].rsplit(":", 1)[1])

    def innerloop(self, *args: str) -> tuple[subprocess.Popen[str], Lines]:
        return self.popen([sys.executable, "-m", "innerloop", *args])

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`innerloop ARGS` to completion, inside the netns."""
        proc, lines = self.innerloop(*args)
        try:
            proc.wait(timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
        return subprocess.CompletedProcess(proc.args, proc.returncode, lines.text(), "")

    def intercept(
        self, namespace: str, service: str, port: str, *extra: str, timeout: float = 120
    ) -> tuple[subprocess.Popen[str], Lines, float]:
        """Start `innerloop intercept` and wait until it is active; returns its start time."""
        t0 = time.monotonic()
        proc, lines = self.innerloop("intercept", service, "-n", namespace, "--port", port, *extra)
        lines.wait_for("innerloop: intercepting", timeout)
        return proc, lines, time.monotonic() - t0

    def stop(
        self, proc: subprocess.Popen[str], sig: int = signal.SIGINT, timeout: float = 60
    ) -> int:
        proc.send_signal(sig)
        return proc.wait(timeout)

    def close(self) -> None:
        self._stop_all()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)

    def _stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGCONT)
                    proc.send_signal(signal.SIGINT)
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)


def host_get(url: str, timeout: float = 3.0) -> str:
    """One GET from the host (it reaches ClusterIPs; the laptop netns does not)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as resp:
        return str(resp.read().decode())
