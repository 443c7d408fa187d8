"""Subprocess helpers and the Debian package check shared by every testbed step."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from tools.testbed.config import DEBIAN_PACKAGES

_T0 = time.monotonic()


def log(message: str) -> None:
    """Progress line on stderr with seconds since start (stdout stays machine-readable)."""
    print(f"[testbed {time.monotonic() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


def run(
    argv: Sequence[str | Path],
    *,
    check: bool = True,
    capture: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure raise with its stderr so the cause is visible."""
    proc = subprocess.run(
        [str(a) for a in argv],
        capture_output=capture,
        text=True,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        input=input_text,
        check=False,
    )
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "").strip() if capture else ""
        raise RuntimeError(
            f"command failed ({proc.returncode}): {' '.join(map(str, argv))}\n{detail}"
        )
    return proc


def quiet(argv: Sequence[str | Path]) -> bool:
    """Run a cleanup command whose failure only means "already gone"."""
    return run(argv, check=False).returncode == 0


def _installed(package: str) -> bool:
    out = run(["dpkg-query", "-W", "-f=${Status}", package], check=False).stdout
    return out.strip() == "install ok installed"


def ensure_debian_packages(packages: Sequence[str] = DEBIAN_PACKAGES) -> None:
    """Install missing Debian packages (first use on a fresh machine); a no-op when present."""
    missing = [p for p in packages if not _installed(p)]
    if not missing:
        return
    if shutil.which("apt-get") is None:
        raise RuntimeError(f"missing Debian packages {missing} and no apt-get to install them")
    log(f"installing Debian packages: {' '.join(missing)}")
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    run(["apt-get", "update"], env=env)
    run(["apt-get", "install", "-y", "--no-install-recommends", *missing], env=env)
