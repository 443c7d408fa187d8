"""`innerloop …` command line: a thin shell over the session manager."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from innerloop import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="innerloop",
        description="Reroute a Kubernetes Service's live traffic to a local process under debugpy.",
    )
    parser.add_argument("--version", action="version", version=f"innerloop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("lsp", help="run the language server over stdio (for any LSP client)")
    dap = sub.add_parser("dap", help="run the debug adapter over stdio (for any DAP client)")
    dap.add_argument("--controller", metavar="MODULE:ATTR", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "lsp":
        from innerloop.lsp.server import serve_stdio

        serve_stdio()
        return 0
    if args.command == "dap":
        from innerloop.dap.server import run_stdio

        return run_stdio(args.controller)
    parser.print_help(sys.stderr)
    return 2
