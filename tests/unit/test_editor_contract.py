"""Issue 12, snags 3 and 10: one name per knob on every surface, and configurations that work.

- The agent image, context and namespace each have one documented setting (`innerloop.X`), CLI
  flag (`--x`, on `innerloop intercept` and `innerloop dap` alike) and launch key (`X`).
- The default agent image is documented, and how a cluster without that registry uses another.
- Every configuration the extension offers (snippets, the initial launch.json) names a
  namespace: without one F5 looks in `default`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from innerloop.cli import _manager_config, build_parser
from innerloop.core.agent_patch import DEFAULT_AGENT_IMAGE
from innerloop.core.dap_launch import plan_start
from innerloop.intercepts.debug_controller import DebugInterceptController
from innerloop.intercepts.manager import InterceptManager, ManagerConfig

REPO = Path(__file__).resolve().parents[2]
MANIFEST = json.loads((REPO / "package.json").read_text())
DEBUGGER = MANIFEST["contributes"]["debuggers"][0]
SETTINGS = MANIFEST["contributes"]["configuration"]["properties"]
EDITORS_MD = (REPO / "docs" / "editors.md").read_text()

KNOBS = [("agentImage", "--agent-image"), ("context", "--context"), ("namespace", "--namespace")]


@pytest.mark.parametrize("key, flag", KNOBS)
def test_each_knob_has_one_setting_flag_and_launch_key(key: str, flag: str) -> None:
    assert f"innerloop.{key}" in SETTINGS
    for request in ("launch", "attach"):
        assert key in DEBUGGER["configurationAttributes"][request]["properties"], request
    for command in ("intercept", "dap"):
        args = build_parser().parse_args([command, *(["svc"] if command == "intercept" else []),
                                          flag, "value"])
        assert getattr(args, key.replace("agentImage", "agent_image")) == "value", command
    for name in (f"`innerloop.{key}`", f"`{flag}`", f'"{key}"'):
        assert name in EDITORS_MD, name


def test_innerloop_dap_flags_configure_its_manager() -> None:
    args = build_parser().parse_args(
        ["dap", "--agent-image", "registry.local/python:3.12", "--context", "kind", "-n", "shop",
         "--kubeconfig", "/k"]
    )
    assert _manager_config(args) == ManagerConfig(
        kubeconfig="/k", context="kind", namespace="shop", agent_image="registry.local/python:3.12"
    )


def test_the_default_agent_image_and_the_way_around_it_are_documented() -> None:
    assert DEFAULT_AGENT_IMAGE == "python:3.12-slim"
    assert DEFAULT_AGENT_IMAGE in SETTINGS["innerloop.agentImage"]["markdownDescription"]
    assert DEFAULT_AGENT_IMAGE in EDITORS_MD
    assert "registry" in EDITORS_MD.split("### The agent image", 1)[1].split("###", 1)[0]


def test_launch_keys_reach_the_intercept_request_not_debugpy() -> None:
    plan = plan_start({
        "command": "launch",
        "arguments": {"service": "orders", "port": 8080, "program": "app.py",
                      "namespace": "shop", "context": "kind", "agentImage": "local/py:3.12"},
    })
    assert plan.intercept is not None
    assert (plan.intercept.namespace, plan.intercept.context, plan.intercept.agent_image) == (
        "shop", "kind", "local/py:3.12")
    assert not {"namespace", "context", "agentImage"} & set(plan.arguments)


def test_a_launch_context_gets_its_own_manager_once() -> None:
    base = InterceptManager(ManagerConfig(context="main"), tool="editor")
    others: dict[str, InterceptManager] = {}
    first = DebugInterceptController(base, others)._manager_for("kind")
    again = DebugInterceptController(base, others)._manager_for("kind")
    assert first is again and first is not base and first.config.context == "kind"
    assert DebugInterceptController(base, others)._manager_for(None) is base
    assert DebugInterceptController(base, others)._manager_for("main") is base


def configurations() -> list[tuple[str, dict[str, Any]]]:
    found = [(s["label"], s["body"]) for s in DEBUGGER["configurationSnippets"]]
    return found + [(c["name"], c) for c in DEBUGGER["initialConfigurations"]]


@pytest.mark.parametrize("label, body", configurations())
def test_every_offered_configuration_names_a_namespace(label: str, body: dict[str, Any]) -> None:
    assert "namespace" in body, label
