"""The workload's env as a private dotenv file: one writer for `innerloop intercept --env-file`
and for intercepts started from the editor.

The file holds Secrets, so it is written 0600 and replaced atomically. The editor's files live in
the user's runtime dir (0700), named after the Service, and are removed when the intercept is
stopped; the CLI writes where the user asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from innerloop.core.dotenv import render_dotenv
from innerloop.core.targets import Target
from innerloop.paths import runtime_dir, write_private


def write_env_file(path: Path, target: Target, values: Mapping[str, str]) -> None:
    """Writes `values` as dotenv under a one-line comment naming their workload; blocking."""
    header = f"env of {target.workload} container {target.container} (innerloop)"
    write_private(path, render_dotenv(values, header=header))


def write_runtime_env_file(target: Target, values: Mapping[str, str]) -> Path:
    """Writes `<runtime dir>/innerloop-env/<namespace>.<service>.env` (the editor's); blocking."""
    path = runtime_dir("innerloop-env") / f"{target.namespace}.{target.service}.env"
    write_env_file(path, target, values)
    return path
