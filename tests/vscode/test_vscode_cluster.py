"""The built VSIX in a real VS Code (code-server) against the testbed (issue 4, VS Code e2e).

code-server, and so the extension host, the language server and the debuggee, run on the host,
which reaches pod and Service IPs directly: unlike tests/e2e, the laptop side is not fenced into
the developer netns here. The local process still only sees a pod's request if the tunnel
brought it (the Service's targetPort points at the agent, which forwards to the laptop), and
every answer says who gave it (pod=local / a pod name).

A scenario (tests/vscode/scenarios/cluster_*.mjs) drives the UI; where it needs the cluster
(a pod's request, a check of what the cluster serves) it logs "HOST <step>" and waits, and this
file does that step and answers through a file (scenarios/host_sync.mjs, cluster_ui.py).
"""

from __future__ import annotations

import stat
import time

import pytest

from tests.e2e.conftest import cluster, namespace  # noqa: F401 - the e2e fixtures
from tests.helpers.dap_client import marked_line
from tests.vscode.cluster_ui import (
    REQUEST_PATH,
    ClusterUi,
    answers,
    f5_to_breakpoint_and_back,
    launch_echo,
    local_echo,
    make_workspace,
    ui,  # noqa: F401 - the fixture
)
from tools.cluster import Cluster, LoadResult
from tools.net import free_port
from tools.sample import ECHO_APP, manifests

pytestmark = [pytest.mark.vscode, pytest.mark.e2e]


def test_intercept_service_from_the_palette_routes_a_pods_request_locally(
    cluster: Cluster,  # noqa: F811
    namespace: str,  # noqa: F811
    ui: ClusterUi,  # noqa: F811
) -> None:
    t0 = time.monotonic()

    def setup() -> None:
        # echo with a second Service port, so that the quick pick asks which one.
        service = manifests.echo_service()
        service["spec"]["ports"].append({"name": "alt", "port": 8081, "targetPort": 8080})
        cluster.apply(namespace, [manifests.load_code(), manifests.client_pod()])
        cluster.deploy_echo(namespace)
        cluster.apply(namespace, [service])
        cluster.start_client(namespace)

    local_port = free_port()
    with local_echo(local_port) as app:
        server = ui.code_server(make_workspace(ui.root, []))
        # The server writes the workload's env for the user's program (XDG_RUNTIME_DIR is
        # code-server's own, see CodeServer).
        env_file = server.run_dir / "xdg-runtime" / "innerloop-env" / f"{namespace}.echo.env"
        scenario = ui.start(
            "cluster_intercept",
            {
                "namespace": namespace,
                "localPort": local_port,
                "envFile": str(env_file),
            },
            setup,
        )
        url = ui.echo_url()

        def routed() -> None:
            got = answers(cluster.load_via_exec(namespace, url, count=10, rate=20))
            assert {(a["pod"], a["pid"], a["path"]) for a in got} == {
                ("local", str(app.pid), REQUEST_PATH)
            }, got
            assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
            assert f"SECRET_VALUE={manifests.SECRET_VALUE}" in env_file.read_text().splitlines()

        def restored() -> None:
            got = answers(cluster.load_via_exec(namespace, url, count=10, rate=20))
            # The agent stays (sticky) and forwards to the app: the cluster's pods answer.
            assert {a["pod"] for a in got} <= set(cluster.pods(namespace, "echo")), got
            assert not env_file.exists(), "the env file (it holds Secrets) outlived the intercept"

        scenario.step("routed", 240, routed)
        scenario.step("restored", 90, restored)
        assert scenario.finish() == 0, scenario.log()
    assert ui.channel_errors() == []
    assert ui.screenshots() == [
        "01-intercepting.png",
        "02-stopped.png",
    ]
    print(f"\npalette intercept scenario: {time.monotonic() - t0:.1f} s")


def test_f5_stops_at_a_breakpoint_on_a_pods_request(
    cluster: Cluster,  # noqa: F811
    namespace: str,  # noqa: F811
    ui: ClusterUi,  # noqa: F811
) -> None:
    t0 = time.monotonic()

    def setup() -> None:
        cluster.apply(namespace, [manifests.load_code(), manifests.client_pod()])
        cluster.deploy_echo(namespace)
        cluster.start_client(namespace)

    local_port = free_port()
    # The workload's env comes along (SECRET_VALUE, CONFIG_VALUE, POD_NAME, ...); these win.
    # Without POD_NAME the app answers pod=local.
    env = {"PORT": str(local_port), "HOST": "127.0.0.1", "POD_NAME": None}
    ui.code_server(make_workspace(ui.root, launch_echo(namespace, local_port, env)))
    scenario = ui.start(
        "cluster_debug",
        {
            "localPort": local_port,
            "breakpointLine": marked_line(ECHO_APP, "# breakpoint"),
            "requestPath": REQUEST_PATH,
            "configValue": manifests.CONFIG_VALUE,
        },
        setup,
    )
    url = ui.echo_url()
    def answered(result: LoadResult) -> None:
        [got] = answers(result)
        assert (got["pod"], got["path"]) == ("local", REQUEST_PATH), got
        assert (got["secret"], got["config"]) == (manifests.SECRET_VALUE, manifests.CONFIG_VALUE)

    f5_to_breakpoint_and_back(scenario, cluster, namespace, url, local_port, answered)
    assert ui.channel_errors() == []
    assert ui.screenshots() == [
        "01-paused-on-pod-request.png",
        "02-continued.png",
    ]
    print(f"\nF5 breakpoint scenario: {time.monotonic() - t0:.1f} s")
