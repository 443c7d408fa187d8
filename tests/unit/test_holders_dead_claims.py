"""`uninstall` right after an innerloop process of this machine died: the agent still lists that
process's claim until it drops the silent client (PEER_TIMEOUT). The holder check waits for it
instead of refusing in the dead process's name (a CI run failed on this), and still refuses a
claim that stays (another machine may carry the same host name)."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest
from innerloop.core.agent_patch import AGENT_CONTAINER, AgentConfig, install_agent
from innerloop.core.client_id import make_client_id
from innerloop.core.filters import EVERYTHING, AppProtocol, Mode
from innerloop.core.frames import ClaimEntry
from innerloop.intercepts import holders as holders_module
from k8s_manifests import AGENT_CONFIG, workload

DEAD_PID = 2**22 + 12345  # above the kernel's pid_max default: never a live process


class Pods:
    async def workload_pods(self, workload: Any) -> list[dict[str, Any]]:
        return [{"metadata": {"name": "echo-1"},
                 "spec": {"containers": [{"name": AGENT_CONTAINER}]},
                 "status": {"conditions": [{"type": "Ready", "status": "True"}]}}]


def installed() -> dict[str, Any]:
    config: AgentConfig = AGENT_CONFIG
    return install_agent(workload("Deployment"), config, [8080])


def entry(client: str) -> ClaimEntry:
    return ClaimEntry(15401, client, Mode.ROUTE, EVERYTHING, AppProtocol.AUTO, None)


async def _listing(answers: list[list[str]], monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], int]:
    asked = 0

    async def ask_agent(*_: Any) -> tuple[ClaimEntry, ...]:
        nonlocal asked
        asked += 1
        return tuple(entry(c) for c in answers[min(asked, len(answers)) - 1])

    monkeypatch.setattr(holders_module, "ask_agent", ask_agent)
    monkeypatch.setattr(holders_module, "PING_INTERVAL", 0.01)
    monkeypatch.setattr(holders_module, "DEAD_CLAIM_WAIT", 0.2)
    found = await holders_module.holders(Pods(), installed(), "echo", "me")  # type: ignore[arg-type]
    return found, asked


async def test_a_dead_local_processs_claim_is_waited_out(monkeypatch: pytest.MonkeyPatch) -> None:
    dead = make_client_id("ann", socket.gethostname(), DEAD_PID)
    found, asked = await _listing([[dead], [dead], []], monkeypatch)
    assert (found, asked) == ([], 3)


async def test_a_claim_that_stays_is_a_holder(monkeypatch: pytest.MonkeyPatch) -> None:
    dead = make_client_id("ann", socket.gethostname(), DEAD_PID)
    found, asked = await _listing([[dead]], monkeypatch)
    assert found == [dead] and asked > 2


async def test_a_live_or_remote_holder_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    live = make_client_id("ann", socket.gethostname(), os.getppid())
    remote = make_client_id("bob", "elsewhere", DEAD_PID)
    found, asked = await _listing([[live, remote, "me"]], monkeypatch)
    assert (found, asked) == (sorted([live, remote]), 1)
