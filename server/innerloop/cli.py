"""`innerloop …` command line: a thin shell over the intercept manager.

Every failure is one line on stderr and exit status 1 (2 for usage errors); only a bug asks the
user to look at the log (`-v` shows it).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from innerloop.cli_parser import build_parser
from innerloop.core.errors import ClusterError, InnerloopError, UserError
from innerloop.core.filters import AppProtocol, Mode, RequestFilter, parse_header_flag
from innerloop.prechecks import before_intercept, raise_fd_limit

if TYPE_CHECKING:
    from innerloop.clusternet.network import ClusterNetwork
    from innerloop.core.request import InterceptRequest
    from innerloop.dap.controller import InterceptController
    from innerloop.intercepts.manager import InterceptManager, ManagerConfig

log = logging.getLogger("innerloop")


TOOLS = {"cli": "innerloop intercept", "editor": "the editor", "dap": "innerloop dap"}
"""How `status` and `leave` name the program that holds an intercept."""


def say(line: str) -> None:
    print(f"innerloop: {line}", file=sys.stderr, flush=True)


def collect_again(quick: bool = True) -> None:
    """Cyclic garbage collection on again (`__main__` turns it off for the start), with what
    the start made moved out of its way for good (`gc.freeze`): it lives as long as we do. A
    start that was not `quick` (a rollout's seconds of polling) is collected first."""
    if not gc.isenabled():
        if not quick:
            gc.collect()
        gc.freeze()
        gc.enable()


def _manager_config(args: argparse.Namespace) -> ManagerConfig:
    """The cluster flags; the INNERLOOP_* variables are the old, undocumented spellings."""
    from innerloop.intercepts.manager import ManagerConfig

    return ManagerConfig(
        kubeconfig=args.kubeconfig,
        context=args.context or os.environ.get("INNERLOOP_CONTEXT") or None,
        namespace=args.namespace or os.environ.get("INNERLOOP_NAMESPACE") or None,
        agent_image=(getattr(args, "agent_image", None) or os.environ.get("INNERLOOP_AGENT_IMAGE")
                     or None),
        agent_cpu=getattr(args, "agent_cpu", None),
    )


def _manager(args: argparse.Namespace) -> InterceptManager:
    from innerloop.intercepts.manager import InterceptManager

    return InterceptManager(_manager_config(args))


async def cmd_list(args: argparse.Namespace) -> int:
    from innerloop.intercepts.claims import claims_table

    mgr = _manager(args)
    try:
        ns, services = await mgr.list_services(args.namespace)
        claims, problems = await claims_table(await mgr.gateway(), ns, services, mgr.client_id)
    finally:
        await mgr.close()
    if not services:
        print(f"no services in namespace {ns!r}")
        return 0
    print(f"{'SERVICE':24} {'PORTS':28} {'WORKLOAD':28} AGENT  INTERCEPTED")
    for s in services:
        ports = ",".join(p.label() for p in s.ports)
        workload = str(s.workload) if s.workload else "-"
        print(f"{s.name:24} {ports:28} {workload:28} {'yes' if s.agent else 'no':6} "
              f"{','.join(s.taken_over) or '-'}")
    if claims:
        print("\n" + "\n".join(claims))
    for problem in problems:
        say(problem)
    return 0


def intercept_request(args: argparse.Namespace) -> InterceptRequest:
    """What `innerloop intercept`'s flags ask for; bad flags raise one UserError line."""
    from innerloop.core.request import InterceptRequest, PortSpec, WhilePaused

    return InterceptRequest(
        service=args.service,
        namespace=args.namespace,
        port=PortSpec.parse(args.port) if args.port else PortSpec(None, None),
        while_paused=WhilePaused.parse(args.while_paused, "--while-paused"),
        filter=RequestFilter(
            headers=tuple(parse_header_flag(h) for h in args.header), path=args.path,
            path_prefix=args.path_prefix, path_regex=args.path_regex, method=args.method),
        mode=Mode.MIRROR if args.mirror else Mode.ROUTE,
        protocol=AppProtocol.parse(args.protocol, "--protocol") if args.protocol else None,
    )


async def cmd_intercept(args: argparse.Namespace) -> int:
    cmd: list[str] = args.cmd
    request = intercept_request(args)
    check_port = before_intercept(cmd, args.env_file, args.env_json, args.allow_port_in_use, say)
    mgr = _manager(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    t0 = time.monotonic()
    starting = asyncio.ensure_future(mgr.start(request, report=say, check_local_port=check_port))
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait([starting, stopped], return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        say("interrupted; undoing what the start did")
        starting.cancel()
        try:
            await starting
        except asyncio.CancelledError:
            pass
        await mgr.close()
        return 130
    try:
        intercept = starting.result()
    except BaseException:
        await mgr.close()
        raise
    t = intercept.target
    scope = f" [{request.scope()}]" if request.scope() else ""
    say(f"{'mirroring' if args.mirror else 'intercepting'} {t.service}.{t.namespace}:"
        f"{t.service_port.label()}{scope} → 127.0.0.1:{t.local_port} "
        f"({intercept.tunnels.connected if intercept.tunnels else 0} "
        f"replica(s), ready in {time.monotonic() - t0:.2f} s)")
    collect_again(quick=time.monotonic() - t0 < 1.0)  # a start that failed exits instead
    rc = 0
    network: ClusterNetwork | None = None
    ended = asyncio.ensure_future(intercept.ended.wait())
    ended.add_done_callback(lambda _: stop.set())
    try:
        env: dict[str, str] = {}
        if args.env_file or args.env_json or cmd:
            resolved = await mgr.environment(intercept)
            env = resolved.values
            for warning in resolved.warnings:
                say(warning)
        if args.env_file:
            from innerloop.envfile import write_env_file

            write_env_file(args.env_file, t, env)
            say(f"wrote {len(env)} variables to {args.env_file} (0600)")
        if args.env_json:
            from innerloop.paths import write_private

            write_private(args.env_json, json.dumps(env, indent=2, sort_keys=True) + "\n")
            say(f"wrote {len(env)} variables to {args.env_json} (0600)")
        if cmd:
            if args.cluster_network:
                network = await mgr.cluster_network(intercept, report=say)
                env = _with_network(network, env)
            rc = await _run_command(cmd, env, stop)
        else:
            say("press Ctrl-C to leave")
            await stopped
    finally:
        stopped.cancel()
        ended.cancel()
        if network is not None:
            await network.aclose()
        say("leaving; the cluster serves the traffic again")
        await mgr.close()
    if intercept.ended.is_set():  # its agent was removed under it: the last line says so
        raise ClusterError(intercept.message or "the intercept ended")
    return rc


def _with_network(network: ClusterNetwork, env: dict[str, str]) -> dict[str, str]:
    """`env` (over ours, for the command) plus the cluster network's variables."""
    added = network.env({**os.environ, **env})
    # The count is of every Service in view (all namespaces if the user may list them), not
    # only the workload namespace's: saying "the Services of NS (10)" misled a new user.
    say(f"the command reaches {len(network.services)} Services by name (short names as in "
        f"{network.namespace}; proxy 127.0.0.1:{network.proxy.port})")
    if network.volumes is not None and network.volumes.root is not None:
        say(f"the workload's volumes are copied to {network.volumes.root} (read-only for the "
            "command's Python processes at their container paths)")
    return {**env, **added}


async def cmd_run(args: argparse.Namespace) -> int:
    """A command with the cluster network (and a workload's env): no intercept, no change."""
    cmd: list[str] = args.cmd
    if not cmd:
        raise UserError("name the command to run after `--`, e.g. innerloop run -- python app.py")
    mgr = _manager(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    network: ClusterNetwork | None = None
    try:
        ns = await mgr.namespace(args.namespace)
        env: dict[str, str] = {}
        like = None
        if args.like:
            like = await mgr.workload_environment(args.like, ns, args.container)
            env = like.env.values
            for warning in like.env.warnings:
                say(warning)
            say(f"the command gets {len(env)} variables of {args.like}'s env")
        network = await mgr.port_forward_network(ns, like, report=say)
        return await _run_command(cmd, _with_network(network, env), stop, stopped_rc=130)
    finally:
        if network is not None:
            await network.aclose()
        await mgr.close()


async def _run_command(cmd: list[str], env: dict[str, str], stop: asyncio.Event,
                       stopped_rc: int = 0) -> int:
    """Run CMD with the workload's env over ours; a signal to us is passed on to it. Ended by
    us (Ctrl-C, `leave`): `stopped_rc`, not the SIGTERM we sent it (which Python's exit would
    turn into 241). Killed by a signal on its own: 128 + the signal, as a shell says."""
    try:
        proc = await asyncio.create_subprocess_exec(*cmd, env={**os.environ, **env})
    except OSError as exc:
        raise UserError(f"cannot run {cmd[0]!r}: {exc.strerror}") from exc
    waiter = asyncio.ensure_future(proc.wait())
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
    if not waiter.done():
        proc.terminate()
        try:
            await asyncio.wait_for(asyncio.shield(waiter), 10)
        except asyncio.TimeoutError:
            proc.kill()
    stopper.cancel()
    rc = await waiter
    if stop.is_set():
        say(f"stopped {cmd[0]}")
        return stopped_rc
    if rc < 0:
        say(f"{cmd[0]} was killed by signal {-rc}")
        return 128 - rc
    say(f"{cmd[0]} exited with status {rc}")
    return rc


async def cmd_leave(args: argparse.Namespace) -> int:
    from innerloop.intercepts import registry

    mgr = _manager(args)
    try:
        ns = await mgr.namespace(args.namespace)
    finally:
        await mgr.close()
    held = registry.find(ns, args.service)
    if not held:
        raise UserError(f"{args.service}.{ns} is not intercepted from this machine; "
                        "`innerloop status` lists what is")
    for entry in held:  # every terminal of this machine holding it (each with its own filter)
        if entry.tool != "cli":
            raise UserError(f"{args.service}.{ns} is held by {TOOLS.get(entry.tool, entry.tool)} "
                            f"(pid {entry.pid}); stop it there")
    for entry in held:
        if not registry.ask_to_leave(entry):
            raise UserError(f"innerloop (pid {entry.pid}) did not leave within 30 s; "
                            f"stop it with Ctrl-C in its terminal")
        print(f"left {args.service}.{ns}{f' ({entry.scope})' if entry.scope else ''}")
    return 0


def cmd_status() -> int:
    from innerloop.clusternet.status import describe, statuses
    from innerloop.intercepts import registry

    found = registry.entries()
    if not found:
        print("no intercepts held on this machine")
    for e in found:
        print(f"{e.service}.{e.namespace}:{e.service_port} → 127.0.0.1:{e.local_port}  "
              f"{f'only {e.scope}  ' if e.scope else ''}{TOOLS.get(e.tool, e.tool)} pid {e.pid}  "
              f"since {time.strftime('%H:%M:%S', time.localtime(e.started))}")
    for network in statuses():
        print("\n".join(describe(network)))
    return 0


async def cmd_uninstall(args: argparse.Namespace) -> int:
    if bool(args.service) == bool(args.all):
        raise UserError("name a service, or pass --all for every service innerloop touched")
    mgr = _manager(args)
    try:
        done = await mgr.uninstall_all(args.namespace, say, args.force,
                                       None if args.all else [args.service])
    finally:
        await mgr.close()
    print(f"uninstalled from {', '.join(done)}" if done else "nothing to undo: innerloop has not "
          f"changed {'any Service there' if args.all else f'{args.service} or its workload'}")
    return 0


def dap_controller(args: argparse.Namespace) -> InterceptController:
    """`innerloop dap`'s intercepts, imported when a session first intercepts: the adapter
    answers `initialize` without loading the cluster client. Configured by the same flags as
    `innerloop intercept`; a launch configuration's `namespace`, `context` and `agentImage`
    win over them."""
    from innerloop.intercepts.debug_controller import controller_factory

    return controller_factory(_manager_config(args))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    raise_fd_limit()
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after `--` is the user's command, never our options.
    cmd = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[: len(argv) - len(cmd) - (1 if "--" in argv else 0)])
    args.cmd = cmd
    # Libraries' retry chatter (urllib3, websockets) is for -v only; ours warns by default.
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.ERROR,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if not args.verbose:
        logging.getLogger("innerloop").setLevel(logging.WARNING)
    if args.command != "intercept":  # on again once an intercept has started
        collect_again()
    if args.command == "lsp":
        from innerloop.lsp.setup import serve_stdio

        serve_stdio()
        return 0
    if args.command == "dap":
        from innerloop.dap.server import controller_factory_from, run_stdio

        factory = (controller_factory_from(args.controller) if args.controller
                   else functools.partial(dap_controller, args))
        return run_stdio(factory)
    try:
        if args.command == "list":
            return asyncio.run(cmd_list(args))
        if args.command in ("intercept", "run"):  # the commands that carry traffic
            from innerloop.tunnel.loop import run as run_loop  # uvloop where installed

            return run_loop(cmd_intercept(args) if args.command == "intercept" else cmd_run(args))
        if args.command == "leave":
            return asyncio.run(cmd_leave(args))
        if args.command == "status":
            return cmd_status()
        if args.command == "uninstall":
            return asyncio.run(cmd_uninstall(args))
    except InnerloopError as exc:
        log.debug("failed", exc_info=True)
        print(f"innerloop: {exc.user_line()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        log.debug("unexpected failure", exc_info=True)
        print(f"innerloop: unexpected error: {exc!r} (run with -v for the log)", file=sys.stderr)
        return 1
    parser.print_help(sys.stderr)
    return 2
