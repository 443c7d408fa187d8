"""Cancellable $/progress around a long operation: cancelling in the editor cancels the task."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled

from innerloop.core.report import Report
from innerloop.lsp.server import InnerloopServer

T = TypeVar("T")


class _Cancel:
    """Cancels the work task, also when asked before the task exists."""

    def __init__(self) -> None:
        self.requested = False
        self.task: asyncio.Future[Any] | None = None

    def __call__(self) -> None:
        self.requested = True
        if self.task is not None:
            self.task.cancel()

    def start(self, task: asyncio.Future[Any]) -> None:
        self.task = task
        if self.requested:
            task.cancel()


async def with_progress(
    server: InnerloopServer, title: str, work: Callable[[Report], Awaitable[T]]
) -> T:
    """Runs `work` as its own task under a cancellable progress (when the client supports one).

    A progress cancel from the editor, or a `$/cancelRequest` of the request, cancels that task,
    which undoes what it did; the request then fails with RequestCancelled, after the undo.
    (pygls cannot answer a request whose own handler task was cancelled, hence the separate task.)
    """
    cancel = _Cancel()
    forget = server.protocol.on_cancel_request(cancel)
    try:
        window = server.client_capabilities.window
        if window is None or not window.work_done_progress:
            task = asyncio.ensure_future(work(lambda _message: None))
            cancel.start(task)
            return await _cancellable(task)
        return await _with_progress(server, title, work, cancel)
    finally:
        forget()


async def _with_progress(
    server: InnerloopServer,
    title: str,
    work: Callable[[Report], Awaitable[T]],
    cancel: _Cancel,
) -> T:
    token = f"innerloop-{uuid.uuid4()}"
    progress = server.work_done_progress
    await progress.create_async(token)
    progress.begin(token, types.WorkDoneProgressBegin(title=title, cancellable=True))

    def report(message: str) -> None:
        progress.report(token, types.WorkDoneProgressReport(message=message))

    task = asyncio.ensure_future(work(report))
    cancel.start(task)
    loop = asyncio.get_running_loop()

    def on_cancel(cancelled: Future[object]) -> None:
        if cancelled.cancelled():
            loop.call_soon_threadsafe(cancel)

    progress.tokens[token].add_done_callback(on_cancel)
    outcome = "failed"
    try:
        result = await _cancellable(task)
        outcome = "done"
        return result
    except JsonRpcRequestCancelled:
        outcome = "cancelled"
        raise
    finally:
        progress.tokens.pop(token, None)
        progress.end(token, types.WorkDoneProgressEnd(message=outcome))


async def _cancellable(task: asyncio.Future[T]) -> T:
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        # Either the task was cancelled (progress or request cancel) or we were: make sure the
        # work has finished undoing itself before answering.
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        raise JsonRpcRequestCancelled("cancelled; what was started has been undone") from None
