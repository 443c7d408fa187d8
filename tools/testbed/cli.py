"""`python -m tools.testbed COMMAND`: the testbed's command line."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence

from tools.testbed.config import BIN_DIR, KUBECONFIG
from tools.testbed.proc import ensure_debian_packages


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.testbed", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    build = sub.add_parser("build", help="build the Kubernetes binaries from Go modules (cached)")
    build.add_argument("--force", action="store_true", help="rebuild even if cached")
    images = sub.add_parser(
        "images", help="build the local images (and import them if containerd runs)"
    )
    images.add_argument("--force", action="store_true", help="rebuild even if cached")
    sub.add_parser("up", help="start the cluster (idempotent); prints the kubeconfig path")
    sub.add_parser("down", help="stop the cluster and remove every trace of it")
    sub.add_parser("status", help="what runs; exit 0 only when healthy")
    sub.add_parser("env", help='shell exports: eval "$(python -m tools.testbed env)"')
    run = sub.add_parser("netns", help="run a command in the developer netns (API server only)")
    run.add_argument("argv", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    feed = sub.add_parser("dns-feed")  # internal: the cluster DNS feeder daemon
    feed.add_argument("--dnsmasq-pid", type=int, required=True)
    return parser


def tool_env() -> dict[str, str]:
    """Environment in which kubectl talks to the testbed."""
    return {
        **os.environ,
        "KUBECONFIG": str(KUBECONFIG),
        "PATH": f"{BIN_DIR}:{os.environ.get('PATH', '')}",
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in ("build", "images", "up"):
        ensure_debian_packages()
    if args.command == "build":
        from tools.testbed.build import build

        build(force=args.force)
    elif args.command == "images":
        from tools.testbed import images
        from tools.testbed.cluster import containerd_running

        images.build_images(force=args.force)
        if containerd_running():
            images.import_images()
    elif args.command == "up":
        from tools.testbed.cluster import up

        print(up())
    elif args.command == "down":
        from tools.testbed.cluster import down

        down()
    elif args.command == "status":
        from tools.testbed.cluster import status

        ok, lines = status()
        print("\n".join(lines))
        return 0 if ok else 3
    elif args.command == "env":
        print(f"export KUBECONFIG={KUBECONFIG}")
        print(f'export PATH="{BIN_DIR}:$PATH"')
    elif args.command == "netns":
        from tools.testbed.netns import dev_netns_argv, ensure

        command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        if not command:
            print("usage: python -m tools.testbed netns -- COMMAND [ARGS...]", file=sys.stderr)
            return 2
        ensure()
        return subprocess.run(dev_netns_argv(command), env=tool_env(), check=False).returncode
    elif args.command == "dns-feed":
        from tools.testbed.dns import feed

        feed(args.dnsmasq_pid)
    return 0
