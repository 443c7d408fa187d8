"""The code lens "▶ Debug live traffic" in a real VS Code against the testbed (issue 12).

A Flask workspace whose settings map it to the echo Service (`innerloop.namespace`,
`innerloop.service`; the local port left to its default, the Service port's target port). The
scenario opens app.py and clicks the lens above `get_order`: a debug session starts with a
breakpoint on the handler's first line and a `pathPrefix` filter for its route; a request from a
pod for that route stops there (call stack, variables, editor line); continue → the pod gets the
Flask answer; stop → the cluster's pods answer again.

The cluster runs the echo app (stdlib: the testbed image has no Flask); the workspace holds the
same Service written with Flask, as a developer's checkout would. The echo Deployment listens on
a free port of this machine, so the default local port (where the app listens in the pod) is
free here too, and the local copy, which gets the workload's env, listens on it through `PORT`.
Scenario: tests/vscode/scenarios/lens_debug.mjs; the host side: cluster_ui.py.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import cluster, namespace  # noqa: F401 - the e2e fixtures
from tests.vscode.cluster_ui import (
    ClusterUi,
    Scenario,
    f5_to_breakpoint_and_back,
    ui,  # noqa: F401 - the fixture
)
from tools.cluster import Cluster, LoadResult
from tools.net import free_port
from tools.sample import manifests

pytestmark = [pytest.mark.vscode, pytest.mark.e2e]

FLASK_APP = """\
import os

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/orders/<int:order_id>")
def get_order(order_id):
    served_by = "flask"
    return jsonify(order=order_id, served_by=served_by, pid=os.getpid(),
                   config=os.environ.get("CONFIG_VALUE", ""))


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
"""
HANDLER = "get_order"
BREAKPOINT_LINE = 10
"""The handler's first statement: where the lens puts the breakpoint."""
ORDER_ID = 42
REQUEST_PATH = f"/orders/{ORDER_ID}"


def deploy_echo_on_port(kube: Cluster, ns: str, port: int) -> None:
    """The echo sample (Secret + ConfigMap env) with its app listening on `port` in the pod."""
    objects: list[dict[str, Any]] = copy.deepcopy(manifests.echo_objects())
    for obj in objects:
        if obj["kind"] == "Deployment":
            [container] = obj["spec"]["template"]["spec"]["containers"]
            container["ports"][0]["containerPort"] = port
            for var in container["env"]:
                if var["name"] == "PORT":
                    var["value"] = str(port)
        elif obj["kind"] == "Service":
            obj["spec"]["ports"][0]["targetPort"] = port
    kube.apply(ns, objects)
    kube.wait_rollout(ns, "deployment/echo")
    kube.wait_endpoints(ns, "echo", 2)
    kube.wait_service_rules(ns, "echo", set(kube.pods(ns, "echo")))


def flask_workspace(root: Path, workspace_settings: dict[str, Any] | None) -> Path:
    folder = root / "workspace"
    folder.mkdir()
    (folder / "app.py").write_text(FLASK_APP)
    if workspace_settings is not None:
        (folder / ".vscode").mkdir()
        (folder / ".vscode" / "settings.json").write_text(json.dumps(workspace_settings))
    return folder


def prepare_cluster(kube: Cluster, ns: str, port: int) -> None:
    """The echo Deployment on `port` and a client pod."""
    deploy_echo_on_port(kube, ns, port)
    kube.start_client(ns)


def scenario_params(local_port: int) -> dict[str, Any]:
    return {
        "localPort": local_port,
        "handler": HANDLER,
        "breakpointLine": BREAKPOINT_LINE,
        "orderId": ORDER_ID,
    }


def lens_walk(
    ui: ClusterUi,  # noqa: F811
    scenario: str,
    params: dict[str, Any],
    *,
    mapped: bool = True,
    user_settings: dict[str, Any] | None = None,
) -> tuple[Path, int, Scenario]:
    """The lens tests' walk: echo on a free port (deployed while the workbench loads), the
    Flask workspace (mapped to echo by its settings if `mapped`), code-server with `scenario`,
    a pod's request paused at the handler, answered by Flask after continue; returns the
    workspace, the local port, the scenario."""
    port = free_port()
    workspace = flask_workspace(
        ui.root, {"innerloop.namespace": ui.namespace, "innerloop.service": "echo"}
        if mapped else None)
    ui.code_server(workspace, user_settings)
    started = ui.start(scenario, {**scenario_params(port), **params},
                       lambda: prepare_cluster(ui.kube, ui.namespace, port))
    url = f"http://{ui.kube.cluster_ip(ui.namespace, 'echo')}{REQUEST_PATH}"
    f5_to_breakpoint_and_back(started, ui.kube, ui.namespace, url, port, flask_answered)
    return workspace, port, started


def flask_answered(result: LoadResult) -> None:
    assert result.failures == [], result.failures
    [record] = result.records
    got = json.loads(record["body"])
    assert (got["served_by"], got["order"]) == ("flask", ORDER_ID), got
    assert got["config"] == manifests.CONFIG_VALUE, got  # the workload's env came along


@pytest.mark.long
def test_code_lens_debugs_a_pods_request_at_the_flask_handler(
    cluster: Cluster,  # noqa: F811
    namespace: str,  # noqa: F811
    ui: ClusterUi,  # noqa: F811
) -> None:
    """`long` (INNERLOOP_LONG=1): the default suite proves the same walk twice over.
    test_vscode_view.py clicks this lens and checks the same stop (call stack at the handler's
    first line, `order_id`, the editor line), the Flask answer and the cluster's after stop;
    test_vscode_walkthrough.py runs this scenario (lens_debug.mjs) from the walkthrough,
    status-bar click included."""
    t0 = time.monotonic()
    lens_walk(ui, "lens_debug", {"walkthrough": False})
    assert ui.channel_errors() == []
    assert ui.screenshots() == [
        "01-code-lens.png",
        "02-paused-on-pod-request.png",
        "03-continued.png",
    ]
    print(f"\ncode lens scenario: {time.monotonic() - t0:.1f} s")
