"""The workload's env as a private dotenv file for intercepts started from the editor.

An intercept started from the palette routes traffic to a program the user runs themselves; the
file (named in the status bar's tooltip) gives that program the env the cluster app has. It holds
Secrets, so it lives in the user's runtime dir (0700), is written 0600, and is removed when the
intercept is stopped.
"""

from __future__ import annotations

import os
from pathlib import Path

from innerloop.core.env import render_dotenv


def env_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "innerloop"
    )
    return Path(base) / "innerloop-env"


def write_env_file(namespace: str, service: str, values: dict[str, str], about: str) -> Path:
    """Writes `<env_dir>/<namespace>.<service>.env` (0600, replaced atomically); blocking."""
    folder = env_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{namespace}.{service}.env"
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(render_dotenv(values, header=about))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return path
