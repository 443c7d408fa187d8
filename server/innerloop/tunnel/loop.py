"""The laptop's event loop: uvloop where it is installed (``pip install 'innerloop[fast]'``).

On loopback it cuts the laptop end's CPU per tunnelled round trip by about a quarter and the
round trip itself from ~0.20 to ~0.15 ms (docs/benchmarks.md, "Where the time goes"). It is
optional: the stock loop is used without it, with ``INNERLOOP_UVLOOP=0``, and always in the
agent, which stays pure Python.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def uvloop_policy() -> asyncio.AbstractEventLoopPolicy | None:
    """uvloop's policy when it is installed and not switched off, else None."""
    if os.environ.get("INNERLOOP_UVLOOP", "1") == "0":
        return None
    try:
        module = importlib.import_module("uvloop")
    except ImportError:
        return None
    policy: asyncio.AbstractEventLoopPolicy = module.EventLoopPolicy()
    return policy


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, on uvloop when `uvloop_policy` offers it."""
    policy = uvloop_policy()
    if policy is not None:
        asyncio.set_event_loop_policy(policy)
    return asyncio.run(main)
