"""`python -m innerloop.dap [--controller MODULE:ATTR]`: the debug adapter over stdio."""

from __future__ import annotations

import argparse

from innerloop.dap.server import DEFAULT_CONTROLLER, run_stdio


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m innerloop.dap", description=__doc__)
    parser.add_argument(
        "--controller",
        metavar="MODULE:ATTR",
        default=DEFAULT_CONTROLLER,
        help="the ControllerFactory that runs intercepts (default: %(default)s)",
    )
    return run_stdio(parser.parse_args().controller)


raise SystemExit(main())
