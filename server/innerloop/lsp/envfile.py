"""The workload's env as a private dotenv file for intercepts started from the editor.

An intercept started from the palette routes traffic to a program the user runs themselves; the
file (named in the status bar's tooltip) gives that program the env the cluster app has. It holds
Secrets, so it lives in the user's runtime dir (0700), is written 0600, and is removed when the
intercept is stopped.
"""

from __future__ import annotations

from pathlib import Path

from innerloop.core.env import render_dotenv
from innerloop.paths import runtime_dir, write_private


def env_dir() -> Path:
    return runtime_dir("innerloop-env")


def write_env_file(namespace: str, service: str, values: dict[str, str], about: str) -> Path:
    """Writes `<env_dir>/<namespace>.<service>.env` (0600, replaced atomically); blocking."""
    path = env_dir() / f"{namespace}.{service}.env"
    write_private(path, render_dotenv(values, header=about))
    return path
