"""A personal intercept from the palette in a real VS Code against the testbed (issue 9).

Intercept Service… → namespace → echo → local port → step 4/4 "Only requests with header…",
whose input comes prefilled with `x-innerloop-user=<OS user>` (accepted as is). The status bar
shows the filter, "Innerloop: Copy curl Command" a request that matches it; then a pod's
requests WITH the header are answered by the local app and those WITHOUT by the cluster's
pods. Stop leaves the intercept: everything goes to the cluster again.
Scenario: tests/vscode/scenarios/cluster_filter.mjs; the shared parts: cluster_ui.py.
"""

from __future__ import annotations

import json
import os
import pwd
import time

import pytest

from tests.e2e.conftest import cluster, namespace  # noqa: F401 - the e2e fixtures
from tests.vscode.cluster_ui import (
    REQUEST_PATH,
    ClusterUi,
    local_echo,
    make_workspace,
    ui,  # noqa: F401 - the fixture
)
from tools.cluster import Cluster, parse_answer
from tools.net import free_port

pytestmark = [pytest.mark.vscode, pytest.mark.e2e]

HEADER = "x-innerloop-user"

SEND = """
import json, sys, urllib.request
url, header, count = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
for _ in range(count):
    request = urllib.request.Request(url, headers=header)
    with opener.open(request, timeout=20) as reply:
        print(reply.read().decode().strip(), flush=True)
"""
"""Runs in the client pod: `count` GETs of `url` with the given headers, one answer a line."""


def pod_answers(
    kube: Cluster, ns: str, url: str, headers: dict[str, str], count: int = 6
) -> list[dict[str, str]]:
    proc = kube.kubectl(
        "-n", ns, "exec", "client", "--",
        "python3", "-c", SEND, url, json.dumps(headers), str(count), timeout=90,
    )
    return [parse_answer(line) for line in proc.stdout.splitlines() if line.strip()]


def test_quick_pick_header_step_starts_a_personal_intercept(
    cluster: Cluster,  # noqa: F811
    namespace: str,  # noqa: F811
    ui: ClusterUi,  # noqa: F811
) -> None:
    t0 = time.monotonic()
    user = pwd.getpwuid(os.getuid()).pw_name  # what the extension host's os.userInfo() says

    def setup() -> None:
        cluster.deploy_echo(namespace)
        cluster.start_client(namespace)

    local_port = free_port()
    with local_echo(local_port) as app:
        ui.code_server(make_workspace(ui.root, []))
        scenario = ui.start(
            "cluster_filter",
            {
                "namespace": namespace,
                "localPort": local_port,
                "personalHeader": f"{HEADER}={user}",
                "curl": f"curl -H '{HEADER}: {user}' http://echo.{namespace}:80/",
            },
            setup,
        )
        url = ui.echo_url()

        def echo_pods() -> set[str]:
            """The cluster's app, as it runs now (injecting the agent rolled it out)."""
            return set(cluster.pods(namespace, "echo"))

        def filtered() -> None:
            mine = pod_answers(cluster, namespace, url, {HEADER: user})
            assert {(a["pod"], a["pid"], a["path"]) for a in mine} == {
                ("local", str(app.pid), REQUEST_PATH)
            }, mine
            others = pod_answers(cluster, namespace, url, {})
            assert others and {a["pod"] for a in others} <= echo_pods(), others
            someone_else = pod_answers(cluster, namespace, url, {HEADER: f"not-{user}"})
            assert someone_else and {a["pod"] for a in someone_else} <= echo_pods(), someone_else

        def restored() -> None:
            got = pod_answers(cluster, namespace, url, {HEADER: user})
            assert got and {a["pod"] for a in got} <= echo_pods(), got

        scenario.step("filtered", 300, filtered)
        scenario.step("restored", 90, restored)
        assert scenario.finish() == 0, scenario.log()
    assert ui.channel_errors() == []
    assert ui.screenshots() == [
        "01-which-requests.png",
        "02-filtered-intercept.png",
        "03-curl-command.png",
    ]
    print(f"\npersonal intercept scenario: {time.monotonic() - t0:.1f} s")
