"""`python -m innerloop.lsp` on the testbed, driven by pytest-lsp (issue 4, LSP e2e).

The language server runs inside the developer netns, which reaches only the API server, as does
the local echo app it routes to: a request from a pod that the local app answers can only have
come through the tunnel. Settings arrive as an editor sends them (initializationOptions).
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities, make_test_lsp_client

from tests.helpers.snapshot import WORKLOAD, namespace_snapshot, rollout_with_agent
from tools.cluster import Cluster, LoadResult, parse_answer
from tools.laptop import REPO, Laptop
from tools.sample import manifests
from tools.testbed.netns import dev_netns_argv, ensure
from tools.wait import wait_until

pytestmark = pytest.mark.e2e

LOCAL_PORT = 18083
"""Not the port of the other e2e files: they may run at the same time in the same netns."""
START_TIMEOUT = 180.0
REQUEST_CANCELLED = -32800
STATUS = "innerloop/status"


@dataclass
class Heard:
    """`innerloop/status` notifications, each with how many `$/progress` messages per token had
    arrived before it (pygls runs notification handlers in arrival order)."""

    client: LanguageClient
    statuses: list[tuple[Any, dict[str, int]]] = field(default_factory=list)

    def on_status(self, params: Any) -> None:
        seen = {str(t): len(r) for t, r in self.client.progress_reports.items()}
        self.statuses.append((params, seen))

    def progress(self, title_part: str) -> tuple[str, list[Any]]:
        """The token and messages of the progress whose title contains `title_part`."""
        for token, reports in self.client.progress_reports.items():
            first = reports[0] if reports else None
            if isinstance(first, types.WorkDoneProgressBegin) and title_part in first.title:
                return str(token), reports
        return "", []


@dataclass
class Lsp:
    client: LanguageClient
    heard: Heard
    runtime_dir: Path
    """The server's XDG_RUNTIME_DIR (where it writes env files)."""

    async def run(self, command: str, argument: dict[str, Any] | None = None) -> Any:
        args = [] if argument is None else [argument]
        return await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=command, arguments=args)
        )


@pytest.fixture
def laptop(cluster: Cluster) -> Iterator[Laptop]:
    lap = Laptop(cluster)
    yield lap
    lap.close()


@pytest.fixture
async def lsp(cluster: Cluster, tmp_path: Path) -> AsyncIterator[Lsp]:
    """The server with the settings an editor would send; shut down the LSP way at the end
    (which leaves every intercept)."""
    argv = [sys.executable, "-m", "innerloop.lsp"]
    if cluster.testbed:
        ensure()
        argv = dev_netns_argv(argv)
    heard: list[Heard] = []

    def make_client() -> LanguageClient:
        client = make_test_lsp_client()
        heard.append(Heard(client))

        @client.feature(STATUS)  # type: ignore[untyped-decorator]
        def on_status(params: Any) -> None:
            heard[0].on_status(params)

        return client

    config = ClientServerConfig(
        server_command=argv,
        client_factory=make_client,
        server_env={
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "XDG_RUNTIME_DIR": str(tmp_path / "runtime"),
        },
    )
    client = cast(LanguageClient, await config.start())
    try:
        await client.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities("visual-studio-code"),
                root_uri=REPO.as_uri(),
                initialization_options={
                    "kubeconfig": str(cluster.kubeconfig),
                    "agentImage": manifests.PYTHON_IMAGE,
                },
            )
        )
        yield Lsp(client, heard[0], tmp_path / "runtime")
        await asyncio.wait_for(client.shutdown_session(), 60)
    finally:
        await client.stop()  # type: ignore[no-untyped-call]


def sources(result: LoadResult) -> list[dict[str, str]]:
    assert result.failures == [], result.failures[:5]
    return [parse_answer(r["body"]) for r in sorted(result.records, key=lambda r: r["seq"])]


async def load(cluster: Cluster, namespace: str, url: str, count: int) -> LoadResult:
    return await asyncio.to_thread(cluster.load_via_exec, namespace, url, count=count, rate=40)


def intercepts(status: Any) -> list[dict[str, Any]]:
    """The intercepts of an `innerloop/status` notification (pygls hands unknown params over
    as named tuples)."""
    return [i._asdict() for i in status.intercepts]


async def test_list_start_route_locally_and_stop_restores(
    cluster: Cluster, namespace: str, laptop: Laptop, lsp: Lsp
) -> None:
    await asyncio.to_thread(cluster.deploy_echo, namespace)
    # A second sample Service, whose targetPort is a name; its pods need not be up.
    await asyncio.to_thread(
        cluster.apply, namespace, manifests.echo_statefulset_objects(replicas=1)
    )
    await asyncio.to_thread(cluster.start_client, namespace)
    app = await asyncio.to_thread(laptop.start_app, LOCAL_PORT)
    url = f"http://{await asyncio.to_thread(cluster.cluster_ip, namespace, 'echo')}/via-lsp"

    targets = await lsp.run("innerloop.listTargets", {"namespace": namespace})
    # The admin kubeconfig may list namespaces: all of them are offered (issue 12, snag 5).
    assert targets["namespace"] == namespace
    assert {namespace, "default", "kube-system"} <= set(targets["namespaces"]), targets
    assert targets["namespaces"] == sorted(targets["namespaces"])
    assert sorted(targets["services"], key=lambda s: s["name"]) == [
        {
            "namespace": namespace,
            "name": "echo",
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            "hasAgent": False,
        },
        {
            "namespace": namespace,
            "name": "echo-sts",
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            "hasAgent": False,
        },
    ]

    t0 = time.monotonic()
    info = await asyncio.wait_for(
        lsp.run(
            "innerloop.startIntercept",
            {"service": "echo", "namespace": namespace, "servicePort": 80, "localPort": LOCAL_PORT},
        ),
        START_TIMEOUT,
    )
    started = time.monotonic() - t0
    key = f"{namespace}/echo"
    assert {k: info[k] for k in ("id", "service", "servicePort", "localPort", "state")} == {
        "id": key,
        "service": "echo",
        "servicePort": "80/http",
        "localPort": LOCAL_PORT,
        "state": "active",
    }, info
    assert info["replicas"] == 2, info
    # The workload's env, for the user's own program: a private file, named in the status.
    env_file = Path(info["envFile"])
    assert env_file == lsp.runtime_dir / "innerloop-env" / f"{namespace}.echo.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(env_file.parent.stat().st_mode) == 0o700
    env_lines = env_file.read_text().splitlines()
    assert f"SECRET_VALUE={manifests.SECRET_VALUE}" in env_lines, env_lines
    assert f"CONFIG_VALUE={manifests.CONFIG_VALUE}" in env_lines, env_lines

    # $/progress: begin (cancellable), what is being done, end "done".
    token, reports = lsp.heard.progress("intercepting echo")
    await wait_until(lambda: reports[-1].kind == "end", "the progress end", timeout=30)
    assert reports[0].cancellable is True
    messages = [r.message for r in reports[1:-1]]
    assert any(m.startswith("injecting the agent into deployment/echo") for m in messages), messages
    assert any("tunnels open to 2 replica(s)" in m for m in messages), messages
    assert messages[-1].endswith(f"to {env_file} (0600)"), messages
    assert reports[-1].message == "done"
    # ... and, after the progress had begun and reported, `innerloop/status` said active.
    active = [
        seen
        for status, seen in lsp.heard.statuses
        if any(i["id"] == key and i["state"] == "active" for i in intercepts(status))
    ]
    assert active, [intercepts(s) for s, _ in lsp.heard.statuses]
    assert active[0].get(token, 0) >= 2, "status active before the progress began"
    connecting = [
        s for s, _ in lsp.heard.statuses if [i["state"] for i in intercepts(s)] == ["connecting"]
    ]
    assert connecting, "no connecting state was pushed before active"

    # A pod's request through the ClusterIP reaches the local app, only through the tunnel.
    pods = set(await asyncio.to_thread(cluster.pods, namespace, "echo"))  # rolled with the agent
    routed = sources(await load(cluster, namespace, url, 20))
    assert {(a["pod"], a["pid"]) for a in routed} == {("local", str(app.pid))}, routed
    assert [i["state"] for i in (await lsp.run("innerloop.status"))["intercepts"]] == ["active"]

    last = intercepts(lsp.heard.statuses[-1][0])
    assert [(i["state"], i["envFile"]) for i in last] == [("active", str(env_file))], last
    stopped = len(lsp.heard.statuses)
    assert await lsp.run("innerloop.stopIntercept", {"id": key}) is None
    assert not env_file.exists(), "the env file (it holds Secrets) outlived the intercept"
    await wait_until(
        lambda: any(intercepts(s) == [] for s, _ in lsp.heard.statuses[stopped:]),
        "an innerloop/status without intercepts",
        timeout=30,
    )
    after = sources(await load(cluster, namespace, url, 20))
    assert {a["pod"] for a in after} <= pods, after
    # The agent stays in the workload (the next start needs no rollout).
    targets = await lsp.run("innerloop.listTargets", {"namespace": namespace})
    assert [s["hasAgent"] for s in targets["services"] if s["name"] == "echo"] == [True]
    print(f"\nstartIntercept (cold, one rollout) {started:.2f} s")


PODS_ROLLING = re.compile(r"\d+ of \d+ (updated )?replicas|old replicas pending")
"""Later rollout reports: the controller is replacing pods (some already run the agent)."""


@pytest.mark.parametrize(
    ("how", "when"),
    [("progress", None), ("request", PODS_ROLLING.pattern)],
    ids=["progress-cancel-as-the-rollout-begins", "request-cancel-while-pods-roll"],
)
async def test_cancelling_a_start_during_the_rollout_leaves_the_cluster_unchanged(
    cluster: Cluster, namespace: str, lsp: Lsp, how: str, when: str | None
) -> None:
    await asyncio.to_thread(cluster.deploy_echo, namespace)
    before = await asyncio.to_thread(namespace_snapshot, cluster, namespace, WORKLOAD)

    request_id = f"start-{how}"
    start = asyncio.ensure_future(
        lsp.client.protocol.send_request_async(  # type: ignore[no-untyped-call]
            types.WORKSPACE_EXECUTE_COMMAND,
            types.ExecuteCommandParams(
                command="innerloop.startIntercept",
                arguments=[{"service": "echo", "namespace": namespace, "localPort": LOCAL_PORT}],
            ),
            msg_id=request_id,
        )
    )
    if when is None:
        # As the rollout begins, waited for as a state of the cluster: whether a progress line
        # says so depends on how fast the controller is (issue 11).
        async def rolling_out() -> None:
            while not await asyncio.to_thread(rollout_with_agent, cluster, namespace):
                await asyncio.sleep(0.1)

        await asyncio.wait_for(rolling_out(), 60)
    else:
        pattern = when
        await wait_until(
            lambda: any(re.search(pattern, r.message or "")
                        for r in lsp.heard.progress("intercepting echo")[1][1:]),
            f"a progress report matching {pattern!r}",
            timeout=60,
        )
    assert not start.done()
    t0 = time.monotonic()
    if how == "progress":
        token, _ = lsp.heard.progress("intercepting echo")
        lsp.client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    else:
        lsp.client.cancel_request(types.CancelParams(id=request_id))

    # The answer comes once the start is undone: the sidecar removed, one more rollout.
    with pytest.raises(JsonRpcException) as failure:
        await asyncio.wait_for(start, 120)
    undone = time.monotonic() - t0
    assert failure.value.code == REQUEST_CANCELLED, failure.value
    assert await asyncio.to_thread(namespace_snapshot, cluster, namespace, WORKLOAD) == before
    assert (await lsp.run("innerloop.status"))["intercepts"] == []
    _, reports = lsp.heard.progress("intercepting echo")
    await wait_until(lambda: reports[-1].kind == "end", "the progress end", timeout=30)
    assert reports[-1].message == "cancelled"
    messages = [r.message or "" for r in reports[1:-1]]
    assert any(m.startswith("injecting the agent") for m in messages), messages
    assert not any("tunnels open" in m for m in messages), (
        f"cancelled after the rollout: {messages}"
    )
    assert any(m.startswith("removing the agent") for m in messages), messages

    # Nothing of innerloop is left in the pods either.
    await asyncio.to_thread(cluster.wait_rollout, namespace, "deployment/echo")
    listing = await asyncio.to_thread(
        cluster.kubectl_json, "-n", namespace, "get", "pods", "-l", "app=echo"
    )
    running = [p for p in listing["items"] if not p["metadata"].get("deletionTimestamp")]
    assert running and all(
        [c["name"] for c in p["spec"]["containers"]] == ["echo"] for p in running
    ), [[c["name"] for c in p["spec"]["containers"]] for p in running]
    print(f"\ncancelled by {how} at {when!r}: undone in {undone:.2f} s")
