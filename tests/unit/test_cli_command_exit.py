"""The exit status of `innerloop intercept|run -- CMD` (a new user's snag: after `leave` or
Ctrl-C the intercept exited 241, Python's spelling of the -15 it got from our own SIGTERM)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest
from innerloop import cli

SLEEPER = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]


async def _run_then_stop(stopped_rc: int) -> int:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.5, stop.set)  # `leave` / Ctrl-C sets it
    return await cli._run_command(SLEEPER, {}, stop, stopped_rc=stopped_rc)


def test_a_command_we_stop_on_leave_ends_the_intercept_with_status_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert asyncio.run(_run_then_stop(0)) == 0
    err = capsys.readouterr().err
    assert f"innerloop: stopped {sys.executable}" in err, err
    assert "-15" not in err, err


def test_run_stopped_by_ctrl_c_says_130() -> None:
    assert asyncio.run(_run_then_stop(130)) == 130


def test_a_command_killed_by_a_signal_exits_128_plus_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    kill_self = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]
    assert asyncio.run(cli._run_command(kill_self, {}, asyncio.Event())) == 137
    assert "was killed by signal 9" in capsys.readouterr().err


def test_a_command_that_ends_by_itself_keeps_its_status() -> None:
    fails = [sys.executable, "-c", "raise SystemExit(3)"]
    assert asyncio.run(cli._run_command(fails, {}, asyncio.Event())) == 3


def test_the_network_line_counts_services_in_view_not_of_the_namespace(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from types import SimpleNamespace

    network: Any = SimpleNamespace(
        namespace="shop", services=[object()] * 10, proxy=SimpleNamespace(port=4242),
        volumes=None, env=lambda _env: {"HTTP_PROXY": "http://127.0.0.1:4242"})
    assert cli._with_network(network, {"A": "1"}) == {"A": "1",
                                                      "HTTP_PROXY": "http://127.0.0.1:4242"}
    assert capsys.readouterr().err == ("innerloop: the command reaches 10 Services by name "
                                       "(short names as in shop; proxy 127.0.0.1:4242)\n")
