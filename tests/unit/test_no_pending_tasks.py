"""Issue 12, snag 8: `Task was destroyed but it is pending!` in the Output channel after
sessions end. Ending a tunnel worker (every intercept's leave does) left its wake-up task
waiting forever; the garbage collector then destroyed it, and asyncio logged that line."""

from __future__ import annotations

import asyncio
import gc
import logging
from types import SimpleNamespace

import pytest
from innerloop.core.routing_plan import FRESH
from innerloop.intercepts.tunnels import _Worker


class IdleClient:
    """A tunnel that stays up and needs no routing change."""

    def __init__(self) -> None:
        self._closed = asyncio.Event()

    async def wait_closed(self) -> str:
        await self._closed.wait()
        return "closed"


async def test_a_closed_worker_leaves_no_task_behind(caplog: pytest.LogCaptureFixture) -> None:
    worker = object.__new__(_Worker)  # its own task would dial a pod: drive _serve directly
    worker.owner = SimpleNamespace(desired=FRESH, changed=lambda: None)  # type: ignore[assignment]
    worker.pod = "orders-1"
    worker.applied = FRESH
    worker.wake = asyncio.Event()
    before = asyncio.all_tasks()
    serving = asyncio.ensure_future(worker._serve(IdleClient()))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    serving.cancel()  # what _Worker.close does
    await asyncio.gather(serving, return_exceptions=True)
    for _ in range(3):
        await asyncio.sleep(0)
    left = [t for t in asyncio.all_tasks() - before if not t.done()]
    assert left == [], left
    del worker, serving, left
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        gc.collect()
    assert "Task was destroyed but it is pending" not in caplog.text
