"""The Innerloop view in a real VS Code against the testbed (issue 12, "a view of what flows").

The Flask workspace of test_vscode_lens.py, mapped to the echo Service by its settings; the
lens above `get_order` starts the debug session. The scenario (scenarios/view_request_log.mjs)
sees, in the Innerloop activity-bar view: the intercept with its holder and one tunnel per
replica, the Service with its replicas and agent, and a pod's request in the Request Log with
its path, the calling pod and "held at breakpoint" while the program is paused there, then its
status once continued; a click opens the handler at its lens; the table shows the same record.
Screenshots of each step land in test-artifacts/vscode/<test>/.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import cluster, namespace  # noqa: F401 - the e2e fixtures
from tests.vscode.cluster_ui import ClusterUi, ui  # noqa: F401 - the fixture
from tests.vscode.test_vscode_lens import FLASK_APP, lens_walk
from tools.cluster import Cluster

pytestmark = [pytest.mark.vscode, pytest.mark.e2e]

LENS_LINE = 8
"""`@app.get(...)` above get_order in the workspace's app.py: where the lens (and a click on the
request) lands."""


def test_view_shows_the_intercept_and_a_pods_request_held_at_a_breakpoint(
    cluster: Cluster,  # noqa: F811
    namespace: str,  # noqa: F811
    ui: ClusterUi,  # noqa: F811
) -> None:
    t0 = time.monotonic()
    assert FLASK_APP.splitlines()[LENS_LINE - 1].startswith("@app.get")  # the workspace's app.py
    lens_walk(ui, "view_request_log", {
        "namespace": namespace,
        "clientPod": "client",
        "lensLine": LENS_LINE,
    })
    assert ui.channel_errors() == []
    assert ui.screenshots() == [
        "01-intercept-in-view.png",
        "02-held-at-breakpoint.png",
        "03-answered.png",
        "04-request-log-table.png",
    ]
    print(f"\nview scenario: {time.monotonic() - t0:.1f} s")
