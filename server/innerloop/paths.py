"""Where innerloop keeps per-user runtime files (held-intercept records, env files)."""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path

_OWNED = re.compile(r"(\d+)-[0-9a-f]+(\.\w+)?")


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


def owned_name() -> str:
    """A fresh name for a runtime entry this process owns (`<pid>-<hex>`), so that one left by a
    process that died (SIGKILL, a crash) can be recognised and removed by the next one."""
    return f"{os.getpid()}-{secrets.token_hex(6)}"


def sweep_dead(directory: Path) -> list[Path]:
    """Remove the entries of `directory` named by `owned_name()` whose process is gone: copied
    Secrets and service-account tokens must not outlive a killed innerloop. Returns them."""
    removed = []
    for entry in directory.iterdir():
        owner = _OWNED.fullmatch(entry.name)
        if owner is None or pid_alive(int(owner.group(1))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def pid_alive(pid: int) -> bool:
    """A process with this id exists (perhaps another user's: then it is not ours to judge)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
