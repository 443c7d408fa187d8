"""The debugpy side of a session: a `python -m debugpy.adapter` we spawn, or one already listening."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from pathlib import Path

from innerloop.core.dap_launch import Endpoint
from innerloop.core.dotenv import parse_env_file
from innerloop.core.errors import UserError
from innerloop.dap.wire import DapStream, open_tcp

log = logging.getLogger(__name__)

RETRY_INTERVAL = 0.25


async def spawn_adapter(name: str) -> tuple[DapStream, asyncio.subprocess.Process]:
    """debugpy's adapter speaking DAP over its stdin/stdout, run by this interpreter.

    The debuggee itself runs with the launch's "python"; only the adapter needs debugpy, and
    innerloop ships with it.
    """
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "debugpy.adapter",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdin is not None and proc.stdout is not None
    log.info("%s: started debugpy adapter pid %d", name, proc.pid)
    return DapStream(proc.stdout, proc.stdin, name), proc


async def connect_with_retry(endpoint: Endpoint, timeout: float, name: str) -> DapStream:
    """Connect to a debugpy adapter, retrying while its port is not open yet (the program may
    still be starting)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await asyncio.wait_for(
                open_tcp(endpoint.host, endpoint.port, name),
                max(deadline - loop.time(), RETRY_INTERVAL),
            )
        except (OSError, asyncio.TimeoutError) as exc:
            reason = _why(exc)
        left = deadline - loop.time()
        if left <= 0:
            raise UserError(
                f"no debugpy at {endpoint} after {timeout:g}s ({reason}): start your program "
                f"with `python -m debugpy --listen {endpoint} …` or raise connectTimeout"
            )
        await asyncio.sleep(min(RETRY_INTERVAL, left))


def _why(exc: Exception) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return "timed out"


async def stop_process(proc: asyncio.subprocess.Process, grace: float, name: str) -> None:
    """Give the process `grace` seconds to exit by itself, then terminate it, then kill it."""
    for action in (None, proc.terminate, proc.kill):
        if action is not None:
            with contextlib.suppress(ProcessLookupError):
                action()
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except asyncio.TimeoutError:
            log.warning("%s: pid %d still running after %gs", name, proc.pid, grace)
            continue
        log.info("%s: pid %d exited with %s", name, proc.pid, proc.returncode)
        return


async def read_env_file(path: str) -> dict[str, str]:
    """A launch's envFile, for the debuggee that debugpy starts; read off the event loop."""
    try:
        text = await asyncio.to_thread(Path(path).read_text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read envFile {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"envFile {path} is not UTF-8 text") from None
    return parse_env_file(text, f"envFile {path}")
