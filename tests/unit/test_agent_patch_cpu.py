"""The agent sidecar's CPU request is the user's choice (`--agent-cpu`, ManagerConfig.agent_cpu):
a new one rolls the workload out once; a start that names none keeps the installed one."""

from __future__ import annotations

import dataclasses

import pytest
from innerloop.cli import _manager_config
from innerloop.cli_parser import build_parser
from innerloop.core.agent_patch import (
    AGENT_CONTAINER,
    DEFAULT_AGENT_CPU,
    AgentStatus,
    agent_cpu_for,
    agent_status,
    install_agent,
    is_cpu_quantity,
)
from innerloop.core.manifest import pod_spec
from k8s_manifests import AGENT_CONFIG, workload


def cpu_of(w: dict[str, object]) -> str:
    [agent] = [c for c in pod_spec(w)["containers"] if c["name"] == AGENT_CONTAINER]
    return str(agent["resources"]["requests"]["cpu"])


def test_the_request_is_the_chosen_one_and_a_new_one_makes_the_agent_outdated() -> None:
    chosen = dataclasses.replace(AGENT_CONFIG, cpu_request="250m")
    installed = install_agent(workload(), chosen, [8080])
    assert cpu_of(installed) == "250m"
    assert agent_status(installed, chosen, [8080]) is AgentStatus.CURRENT
    assert agent_status(installed, AGENT_CONFIG, [8080]) is AgentStatus.OUTDATED


def test_a_start_naming_no_request_keeps_the_installed_one() -> None:
    installed = install_agent(workload(), dataclasses.replace(AGENT_CONFIG, cpu_request="0.5"),
                              [8080])
    assert agent_cpu_for(None) == DEFAULT_AGENT_CPU == "10m"
    assert agent_cpu_for(None, workload()) == DEFAULT_AGENT_CPU
    assert agent_cpu_for(None, installed) == "0.5"
    assert agent_cpu_for("100m", installed) == "100m"
    kept = dataclasses.replace(AGENT_CONFIG, cpu_request=agent_cpu_for(None, installed))
    assert agent_status(installed, kept, [8080]) is AgentStatus.CURRENT


@pytest.mark.parametrize(("text", "ok"), [
    ("10m", True), ("250m", True), ("0.5", True), ("1", True), (".5", True), ("2.", True),
    ("0", False), ("0m", False), ("", False), ("m", False), ("1.5x", False), ("-1", False),
    ("1Gi", False), ("100 m", False),
])
def test_cpu_quantities(text: str, ok: bool) -> None:
    assert is_cpu_quantity(text) is ok


@pytest.mark.parametrize("command", ["intercept", "dap"])
def test_the_flag_reaches_the_manager_config(command: str) -> None:
    argv = [command, *(["orders"] if command == "intercept" else []), "--agent-cpu", "100m"]
    assert _manager_config(build_parser().parse_args(argv)).agent_cpu == "100m"
    without = [command, *(["orders"] if command == "intercept" else [])]
    assert _manager_config(build_parser().parse_args(without)).agent_cpu is None


def test_a_bad_quantity_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["intercept", "orders", "--agent-cpu", "lots"])
    assert exited.value.code == 2
    assert "--agent-cpu: wants a CPU quantity such as 10m, 100m or 0.5, not 'lots'" in \
        capsys.readouterr().err


def test_the_editor_setting_reaches_the_manager_config_and_a_bad_one_says_so() -> None:
    from innerloop.lsp.intercept_service import manager_config
    from innerloop.lsp.settings import parse_settings

    settings, problems = parse_settings({"innerloop": {"agentCpu": " 250m "}})
    assert (settings.agentCpu, problems) == ("250m", [])
    assert manager_config(settings).agent_cpu == "250m"
    assert manager_config(parse_settings({})[0]).agent_cpu is None
    settings, problems = parse_settings({"agentCpu": "a lot"})
    assert settings.agentCpu == ""
    assert problems == [("innerloop.agentCpu must be a CPU quantity such as 10m, 100m or 0.5, "
                         "got 'a lot'; using the default")]
