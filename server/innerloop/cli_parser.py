"""`innerloop …`'s flags: one parser for every command (`innerloop.cli` runs them)."""

from __future__ import annotations

import argparse
from pathlib import Path

from innerloop import __version__
from innerloop.core.filters import AppProtocol
from innerloop.prechecks import add_port_flag

AGENT_IMAGE_HELP = ("image of the agent sidecar: any image with python3 >= 3.10 (default: "
                    "python:3.12-slim; a cluster that cannot pull it needs a copy in its registry)")
AGENT_CPU_HELP = ("CPU request of the agent sidecar, e.g. 100m or 0.5 (default: the installed "
                  "agent's, else 10m); a new value rolls the workload out once")


def cpu_quantity(text: str) -> str:
    """`--agent-cpu`'s value, checked while parsing (a usage error, before the cluster)."""
    from innerloop.core.agent_patch import is_cpu_quantity

    if not is_cpu_quantity(text):
        raise argparse.ArgumentTypeError(f"wants a CPU quantity such as 10m, 100m or 0.5, "
                                         f"not {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="innerloop",
        description="Reroute a Kubernetes Service's live traffic to a local process under debugpy.",
    )
    parser.add_argument("--version", action="version", version=f"innerloop {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    cluster = argparse.ArgumentParser(add_help=False)
    cluster.add_argument("--kubeconfig", help="kubeconfig path (default: $KUBECONFIG, ~/.kube/config)")
    cluster.add_argument("--context", help="kubeconfig context (default: the current one)")
    cluster.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sub.add_parser("list", parents=[cluster], help="services, their ports, agent / intercept state")
    icp = sub.add_parser("intercept", parents=[cluster],
                         help="route a Service's traffic to a local port until Ctrl-C")
    icp.add_argument("service")
    icp.add_argument("--port", "-p", default=None, metavar="LOCAL[:SERVICEPORT]",
                     help="local port, and which service port (number or name) to take over")
    icp.add_argument("--env-file", type=Path, help="write the workload's env as a dotenv file (0600)")
    icp.add_argument("--env-json", type=Path, help="write the workload's env as JSON (0600)")
    icp.add_argument("--while-paused", choices=["cluster", "hold"], default="cluster",
                     help="where new requests go while the debuggee is paused")
    icp.add_argument("--agent-image", help=AGENT_IMAGE_HELP)
    icp.add_argument("--agent-cpu", type=cpu_quantity, metavar="CPU", help=AGENT_CPU_HELP)
    icp.add_argument("--no-cluster-network", dest="cluster_network", action="store_false",
                     help="do not give the command the cluster's Services by name")
    add_port_flag(icp)
    only = icp.add_argument_group("personal intercepts", "only requests meeting every "
                                  "condition; others go to the cluster (docs/routing.md)")
    only.add_argument("--header", action="append", default=[], metavar="NAME=VALUE",
                      help="a header value (NAME=~REGEX: a regex); repeatable")
    only.add_argument("--path", help="the request path (without the query) is exactly this")
    only.add_argument("--path-prefix", help="the request path starts with this")
    only.add_argument("--path-regex", metavar="REGEX", help="the regex finds the request path")
    only.add_argument("--method", help="the request method (GET, POST, ...)")
    only.add_argument("--mirror", action="store_true", help="get a copy of each request; the "
                      "cluster keeps answering, your answers are dropped")
    only.add_argument("--protocol", choices=[p.value for p in AppProtocol],
                      help="how requests are read (default: the Service port's appProtocol/name)")
    icp.epilog = ("After `--`, a command to run with the workload's env and the cluster network "
                  "(its connections leave from the workload's pods); leaving when it exits.")
    run = sub.add_parser("run", parents=[cluster],
                         help="run a command with the cluster network; changes nothing in it")
    run.add_argument("--like", metavar="deploy/NAME",
                     help="also give the command this workload's env and volumes "
                          "(deploy/NAME, sts/NAME)")
    run.add_argument("--container",
                     help="with --like: which container's env and volumes (default: first)")
    run.epilog = ("After `--`, the command. Its connections to Services go through port-forwards "
                  "to the Services' Ready pods.")
    leave = sub.add_parser("leave", parents=[cluster], help="end an intercept held by innerloop")
    leave.add_argument("service")
    sub.add_parser("status", help="intercepts and cluster networks of innerloop processes here")
    uni = sub.add_parser("uninstall", parents=[cluster],
                         help="restore the Service and remove the agent sidecar")
    uni.add_argument("service", nargs="?")
    uni.add_argument("--all", action="store_true", help="every Service innerloop touched in -n")
    uni.add_argument("--force", action="store_true", help="even while someone intercepts it")

    sub.add_parser("lsp", help="run the language server over stdio (for any LSP client)")
    dap = sub.add_parser("dap", parents=[cluster],
                         help="run the debug adapter over stdio (for any DAP client)")
    dap.add_argument("--agent-image", help=AGENT_IMAGE_HELP)
    dap.add_argument("--agent-cpu", type=cpu_quantity, metavar="CPU", help=AGENT_CPU_HELP)
    dap.add_argument("--controller", metavar="MODULE:ATTR", help=argparse.SUPPRESS)
    return parser
