"""Snags a new user met (issue 11), each against a fake gateway (our own narrow surface of the
cluster): checks before the cluster is touched, `uninstall` that has nothing to undo or whose
Service someone holds, `list` of a namespace that does not exist, a holder whose agent is
removed, and no log lines on stderr for a refused claim."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from innerloop.cli import main
from innerloop.core.agent_patch import install_agent
from innerloop.core.errors import UserError
from innerloop.core.intercept import InterceptState, Phase, ReleaseTraffic
from innerloop.core.request import InterceptRequest, PortSpec
from innerloop.core.routing_plan import Route, Routing
from innerloop.core.service_patch import take_over_service
from innerloop.core.targets import resolve_target, summarize_services
from innerloop.intercepts import registry
from innerloop.intercepts.intercept import Intercept
from innerloop.k8s.gateway import Gateway
from innerloop.k8s.reads import Resolution
from innerloop.prechecks import local_port_check
from innerloop.tunnel.errors import InterceptConflict
from k8s_manifests import AGENT_CONFIG, pod, service, workload

from tools.wait import poll_until

Manifest = dict[str, Any]


class FakeApi:
    def __init__(self, namespaces: set[str]) -> None:
        self.namespaces = namespaces

    async def namespace_exists(self, namespace: str) -> bool:
        return namespace in self.namespaces

    async def missing(self, what: str, namespace: str) -> UserError:
        return UserError(f"namespace {namespace!r} not found; pick one with -n")

    async def list_items(self, *_args: object) -> list[Manifest]:
        return []


class FakeGateway:
    """The cluster as innerloop's gateway shows it; every write is recorded."""

    def __init__(self, svc: Manifest, deploy: Manifest) -> None:
        self.service, self.workload = svc, deploy
        self.namespace = "shop"
        self.api = FakeApi({"shop"})
        self.writes: list[str] = []

    async def close(self) -> None:
        pass

    async def get_service(self, namespace: str, name: str) -> Manifest:
        return self.service

    async def get_workload(self, _ref: object) -> Manifest:
        return self.workload

    async def workload_pods(self, _workload: Manifest) -> list[Manifest]:
        return []

    async def resolve(self, namespace: str, name: str, spec: PortSpec) -> Resolution:
        pods = [pod("orders-5d8f-a", ("ReplicaSet", "orders-5d8f"))]
        rs = workload("ReplicaSet", "orders-5d8f", owner=("Deployment", "orders"))
        target = resolve_target(self.service, spec, pods, [self.workload, rs])
        return Resolution(target, self.service, self.workload)

    async def list_services(self, namespace: str) -> list[Any]:
        return summarize_services([self.service] if namespace == "shop" else [], [self.workload])

    async def rules_review(self, _ns: str) -> None:
        return None

    async def check_permissions(self, *_args: object) -> None:
        pass

    async def update_service(self, _ns: str, _name: str, change: Callable[[Manifest], Manifest]
                             ) -> Manifest:
        self.writes.append("service")
        self.service = change(self.service)
        return self.service

    async def update_workload(self, _ref: object, change: Callable[[Manifest], Manifest]
                              ) -> Manifest:
        self.writes.append("workload")
        self.workload = change(self.workload)
        return self.workload

    async def wait_rollout(self, *_args: object, **_kwargs: object) -> None:
        pass

    async def delete_unused_agent_config_maps(self, _ns: str) -> list[str]:
        return []


def with_agent() -> tuple[Manifest, Manifest]:
    deploy = install_agent(workload(), AGENT_CONFIG, [8080])
    return take_over_service(service(), "80/http", 15401), deploy


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeGateway]:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    fake = FakeGateway(service(), workload())

    async def connect(*_args: object) -> FakeGateway:
        return fake

    monkeypatch.setattr(Gateway, "connect", connect)
    yield fake


def one_line(capsys: pytest.CaptureFixture[str], argv: list[str], rc: int = 1) -> str:
    assert main(argv) == rc
    out = capsys.readouterr()
    text = out.err if rc else out.out
    lines = text.splitlines()
    assert len(lines) == 1, text
    return lines[0].removeprefix("innerloop: ")


# -- item 2: nothing to undo --------------------------------------------------------------------

def test_uninstall_of_a_never_intercepted_service_says_nothing_to_undo(
    cluster: FakeGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    line = one_line(capsys, ["uninstall", "orders", "-n", "shop"], rc=0)
    assert line == "nothing to undo: innerloop has not changed orders or its workload"
    line = one_line(capsys, ["uninstall", "--all", "-n", "shop"], rc=0)
    assert line == "nothing to undo: innerloop has not changed any Service there"
    assert cluster.writes == []


# -- item 1: uninstall refuses while someone holds the Service ----------------------------------

def test_uninstall_refuses_while_another_process_holds_it_unless_forced(
    cluster: FakeGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster.service, cluster.workload = with_agent()
    other = os.getppid()  # alive, and not this process
    registry.record(registry.Entry("shop", "orders", "80/http", 18080, other, "bob@box:7",
                                   time.time(), "editor"))
    line = one_line(capsys, ["uninstall", "orders", "-n", "shop"])
    assert line == (f"orders.shop is intercepted by bob@box:7 (editor pid {other} on this "
                    "machine): uninstalling would end their intercept; ask them to leave, or "
                    "pass --force")
    assert cluster.writes == []
    assert main(["uninstall", "orders", "-n", "shop", "--force"]) == 0
    assert "uninstalled from orders" in capsys.readouterr().out
    assert cluster.writes[:2] == ["service", "service"] and "workload" in cluster.writes


def test_a_holder_whose_agent_was_removed_says_so_and_ends() -> None:
    async def scenario() -> None:
        svc, deploy = with_agent()
        gw = FakeGateway(svc, deploy)
        lines: list[str] = []
        intercept = Intercept(gw, InterceptRequest("orders", "shop"), "img",  # type: ignore[arg-type]
                              b"agent", "me@here:1", lambda _i: None, lines.append)
        intercept.resolution = await gw.resolve("shop", "orders", PortSpec(None, 8080))
        intercept.state = InterceptState(Phase.ACTIVE)

        class Tunnels:
            opened, replicas, desired = True, 0, Routing(Route(15401, 8080))

            async def apply(self, *_args: object, **_kwargs: object) -> None:
                pass

            async def close(self) -> None:
                pass

        intercept.tunnels = Tunnels()  # type: ignore[assignment]
        gw.workload = workload()  # `uninstall --force` elsewhere took the agent out
        intercept._tunnels_changed()
        await asyncio.wait_for(intercept.ended.wait(), 5)
        assert intercept.state.phase is Phase.ERROR
        assert intercept.message == ("the innerloop agent was removed from deployment/orders "
                                     "(`innerloop uninstall` from elsewhere); this intercept "
                                     "has ended")

    asyncio.run(scenario())


# -- item 5: list -n <typo> -------------------------------------------------------------------

def test_list_of_a_namespace_that_does_not_exist_says_so_like_intercept(
    cluster: FakeGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    assert one_line(capsys, ["list", "-n", "shpo"]) == \
        "namespace 'shpo' not found; pick one with -n"


# -- item 6: no log line on stderr before a refused claim's one line ---------------------------

def test_an_unconfirmed_release_after_a_refused_claim_is_not_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        svc, deploy = with_agent()
        gw = FakeGateway(svc, deploy)
        intercept = Intercept(gw, InterceptRequest("orders", "shop"), "img",  # type: ignore[arg-type]
                              b"agent", "me@here:1", lambda _i: None, lambda _line: None)

        class Refused:
            desired = Routing(Route(15401, 8080))

            async def apply(self, *_args: object, **_kwargs: object) -> None:
                raise InterceptConflict(15401, "bob@box:7")

        intercept.tunnels = Refused()  # type: ignore[assignment]
        await intercept._apply_routing(ReleaseTraffic())

    with caplog.at_level(logging.INFO):
        asyncio.run(scenario())
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


# -- item 4: checks before the cluster is touched -----------------------------------------------

DEAD = ["--kubeconfig", "/nonexistent/kubeconfig"]
"""If a check ran after the cluster was asked, the error would be about this kubeconfig."""


def test_a_command_that_does_not_exist_is_refused_first(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["intercept", "orders", "-n", "shop", "--port", "18080", *DEAD, "--"]
    assert one_line(capsys, [*argv, "no-such-program-xyz"]) == (
        "cannot run 'no-such-program-xyz': no such command on PATH; fix the command after --")
    script = tmp_path / "app.sh"
    script.write_text("#!/bin/sh\n")
    assert one_line(capsys, [*argv, str(script)]) == (
        f"cannot run {str(script)!r}: {script} is not an executable file; fix the command "
        f"after -- (or chmod +x {script})")


def test_an_env_file_in_a_missing_directory_is_refused_first(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "nope" / ".env"
    line = one_line(capsys, ["intercept", "orders", "-n", "shop", "--port", "18080", *DEAD,
                             "--env-file", str(target)])
    assert line == f"--env-file {target}: directory {target.parent} does not exist; create it first"


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


def test_a_port_another_process_listens_on_is_refused_naming_it_before_any_change(
    cluster: FakeGateway, capsys: pytest.CaptureFixture[str], listener: int
) -> None:
    argv = ["intercept", "orders", "-n", "shop", "--port", str(listener), "--", sys.executable,
            "-c", "pass"]
    assert main(argv) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith(f"innerloop: 127.0.0.1:{listener} is already in use by "), err
    assert f"(pid {os.getpid()})" in err[-1], "names this test's process"
    assert err[-1].endswith("pass --allow-port-in-use if that process is the one to get the "
                            "traffic")
    assert len(err) == 2 and "agent image" in err[0], "the first progress line, then the refusal"
    assert cluster.writes == []


def test_without_a_command_the_listener_is_named_not_refused(listener: int) -> None:
    said: list[str] = []
    local_port_check(False, False, said.append)(listener)
    local_port_check(True, True, said.append)(listener)
    poll_until(lambda: len(said) >= 2, "both listeners named (off the start's path, in a "
               "thread)", 10, interval=0.01)
    assert len(said) == 2 and all(f"(pid {os.getpid()})" in s for s in said), said
