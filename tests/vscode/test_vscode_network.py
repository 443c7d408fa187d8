"""The cluster network from F5 in a real VS Code (issue 8): a handler that calls a second
cluster Service by its short name, stopped at a breakpoint after the call, shows the downstream
answer in the Variables view.

The workspace's app calls `http://whoami/<path>` with urllib and no proxy: the host's resolver
does not know `whoami` (checked first), so only innerloop's resolver hook, which the `innerloop`
launch configuration gives the debuggee by default (`clusterNetwork`), makes the call work. The
hook sends the connection through the tunnel to the agent, which dials whoami from the
intercepted workload's pod: whoami answers with its pod name and the peer it saw (an echo pod's
IP). Scenario: tests/vscode/scenarios/cluster_network.mjs; the shared parts: cluster_ui.py.
"""

from __future__ import annotations

import socket
import time

import pytest

from tests.e2e.conftest import cluster, namespace  # noqa: F401 - the e2e fixtures
from tests.helpers.cluster_apps import WHOAMI_APP, deploy, pod_ips, python_app
from tests.helpers.dap_client import marked_line
from tests.vscode.cluster_ui import (
    REQUEST_PATH,
    ClusterUi,
    f5_to_breakpoint_and_back,
    launch_echo,
    make_workspace,
    ui,  # noqa: F401 - the fixture
)
from tools.cluster import Cluster, LoadResult, parse_answer
from tools.net import free_port

pytestmark = [pytest.mark.vscode, pytest.mark.e2e]

POD_NAME = {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}

LOCAL_APP = '''"""The local app: its handler asks the cluster's `whoami` Service, by its short name."""

import os
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# No proxy: the name resolves through innerloop's resolver hook, or not at all.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def handle_request(path):
    with DIRECT.open(f"http://whoami{path}", timeout=30) as reply:
        downstream = reply.read().decode().strip()
    answer = f"pod=local path={path} | {downstream}"  # breakpoint
    return answer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = handle_request(self.path).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer((os.environ["HOST"], int(os.environ["PORT"])), Handler).serve_forever()
'''


def test_f5_breakpoint_after_a_call_to_another_service_shows_its_answer(
    cluster: Cluster,  # noqa: F811
    namespace: str,  # noqa: F811
    ui: ClusterUi,  # noqa: F811
) -> None:
    t0 = time.monotonic()
    with pytest.raises(socket.gaierror):  # else the test would not show the hook at work
        socket.getaddrinfo("whoami", 80)
    cluster.deploy_echo(namespace, replicas=1)
    deploy(cluster, namespace, [python_app("whoami", WHOAMI_APP, env=[POD_NAME])])
    cluster.start_client(namespace)
    [whoami_pod] = cluster.pods(namespace, "whoami")
    url = ui.echo_url()

    app = ui.root / "app.py"
    app.write_text(LOCAL_APP)
    local_port = free_port()
    env = {"PORT": str(local_port), "HOST": "127.0.0.1"}
    ui.code_server(make_workspace(ui.root, launch_echo(namespace, local_port, env), app=app))
    scenario = ui.start(
        "cluster_network",
        {
            "localPort": local_port,
            "breakpointLine": marked_line(app, "# breakpoint"),
            "requestPath": REQUEST_PATH,
            "whoamiPod": whoami_pod,
        },
    )
    def answered(result: LoadResult) -> None:
        assert result.failures == [], result.failures
        [body] = [r["body"] for r in result.records]
        local, _, downstream = body.partition(" | ")
        assert parse_answer(local) == {"pod": "local", "path": REQUEST_PATH}, body
        got = parse_answer(downstream)
        assert (got["pod"], got["path"]) == (whoami_pod, REQUEST_PATH), body
        # The agent dialled whoami from the intercepted workload's pod.
        assert got["peer"] in pod_ips(cluster, namespace, "echo"), body

    f5_to_breakpoint_and_back(scenario, cluster, namespace, url, local_port, answered)
    assert ui.channel_errors() == []
    assert ui.screenshots() == [
        "01-paused-with-downstream-answer.png",
        "02-continued.png",
    ]
    print(f"\nF5 cluster network scenario: {time.monotonic() - t0:.1f} s")
