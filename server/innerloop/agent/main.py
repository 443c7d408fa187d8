"""``python3 agent.pyz --tunnel-port N --health-port N --route LISTEN:APP ...``"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys

from innerloop.agent.server import Agent


def _route(text: str) -> tuple[int, int]:
    listen, sep, app = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return _port(listen), _port(app)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LISTEN:APP ports, got {text!r}") from None


def _port(text: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise ValueError
    return port


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="agent.pyz", description="innerloop traffic agent")
    parser.add_argument("--tunnel-port", type=_port, required=True)
    parser.add_argument("--health-port", type=_port, required=True)
    parser.add_argument("--route", type=_route, action="append", required=True,
                        metavar="LISTEN:APP")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pod = os.environ.get("POD_NAME") or socket.gethostname()
    namespace = os.environ.get("POD_NAMESPACE")
    where = f"{namespace}/{pod}" if namespace else pod
    logging.basicConfig(stream=sys.stdout, level=logging.INFO,
                        format=f"%(asctime)s {where.replace('%', '%%')} %(levelname)s "
                               f"%(message)s")
    agent = Agent(dict(args.route), tunnel_port=args.tunnel_port, health_port=args.health_port,
                  name=pod)
    try:
        asyncio.run(_serve(agent))
    except OSError as exc:
        logging.getLogger(__name__).error("cannot listen: %s", exc)
        return 1
    return 0


DRAIN_QUIET = 0.3
DRAIN_LONGEST = 1.5
"""After SIGTERM (the pod is going away) the agent serves on while callers still arrive: at
most this long, as the app's own graceful shutdown would."""


async def _serve(agent: Agent) -> None:
    stop = asyncio.Event()
    terminated = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_term() -> None:
        terminated.set()
        stop.set()

    loop.add_signal_handler(signal.SIGTERM, on_term)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await agent.start()
    await stop.wait()
    if terminated.is_set():
        await agent.drain(DRAIN_QUIET, DRAIN_LONGEST)
    logging.getLogger(__name__).info("stopping")
    await agent.close()
