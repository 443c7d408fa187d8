"""Where innerloop keeps per-user runtime files (held-intercept records, env files)."""

from __future__ import annotations

import os
from pathlib import Path


def runtime_dir(name: str) -> Path:
    """`$XDG_RUNTIME_DIR/<name>` (else `~/.cache/innerloop/<name>`), created 0700."""
    base = os.environ.get("XDG_RUNTIME_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "innerloop"
    )
    path = Path(base) / name
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read (env files hold Secrets), replaced atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)  # O_CREAT's mode does not apply to a file left by a crashed write
    tmp.replace(path)
