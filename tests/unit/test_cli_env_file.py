"""`innerloop intercept --env-file` writes the workload's env as the editor does (no cluster:
the intercept manager is replaced by one that resolves at once)."""

from __future__ import annotations

import argparse
import asyncio
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from innerloop import cli
from innerloop.core.env import ResolvedEnv
from innerloop.core.request import InterceptRequest
from innerloop.core.targets import ServicePort, Target, WorkloadRef
from innerloop.envfile import write_runtime_env_file

TARGET = Target(
    namespace="shop",
    service="orders",
    service_port=ServicePort("http", 80, "TCP", 8080),
    workload=WorkloadRef("Deployment", "orders", "shop"),
    container="app",
    container_port=8080,
    local_port=8080,
)
ENV = {"GREETING": "hello world", "TOKEN": "s3cret"}


class Intercepted:
    target = TARGET
    tunnels = None
    message = None

    def __init__(self) -> None:
        self.ended = asyncio.Event()


class InstantManager:
    """What `cmd_intercept` uses of the intercept manager."""

    def __init__(self) -> None:
        self.closed = False

    async def start(self, request: InterceptRequest, report: Callable[[str], None],
                    check_local_port: Callable[[int], None] | None = None) -> Intercepted:
        assert request.service == "orders"
        return Intercepted()

    async def environment(self, intercept: Intercepted) -> ResolvedEnv:
        return ResolvedEnv(values=dict(ENV))

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def manager(monkeypatch: pytest.MonkeyPatch) -> InstantManager:
    fake = InstantManager()

    def make(_args: argparse.Namespace) -> InstantManager:
        return fake

    monkeypatch.setattr(cli, "_manager", make)
    return fake


def test_env_file_has_one_header_line(manager: InstantManager, tmp_path: Path) -> None:
    env_file = tmp_path / "orders.env"
    argv = ["intercept", "orders", "-n", "shop", "--env-file", str(env_file),
            "--no-cluster-network", "--", sys.executable, "-c", "pass"]
    assert cli.main(argv) == 0
    assert manager.closed
    lines = env_file.read_text().splitlines()
    assert lines[0] == "# env of deployment/orders container app (innerloop)"
    assert lines[1:] == ["GREETING='hello world'", "TOKEN=s3cret"]
    assert stat.S_IMODE(os.stat(env_file).st_mode) == 0o600


def test_cli_and_editor_write_the_same_file(
    manager: InstantManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    env_file = tmp_path / "orders.env"
    argv = ["intercept", "orders", "--env-file", str(env_file), "--no-cluster-network",
            "--", sys.executable, "-c", "pass"]
    assert cli.main(argv) == 0
    editors = write_runtime_env_file(TARGET, ENV)
    assert editors == tmp_path / "run" / "innerloop-env" / "shop.orders.env"
    assert editors.read_text() == env_file.read_text()
