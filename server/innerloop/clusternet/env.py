"""The environment that gives a launched Python process the resolver hook."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

HOOK_DIR = Path(__file__).resolve().parent / "hook"
"""Holds `sitecustomize.py` (and the volume hook it imports): first on the child's PYTHONPATH, so
it loads at start."""

CONTROL_ENV = "INNERLOOP_NET"


def hook_env(control_path: Path, base_env: Mapping[str, str]) -> dict[str, str]:
    """The variables to add to `base_env`: PYTHONPATH with the hook's directory first (an
    existing PYTHONPATH kept after it), and INNERLOOP_NET naming the control socket."""
    rest = [p for p in base_env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(HOOK_DIR)]
    return {
        "PYTHONPATH": os.pathsep.join([str(HOOK_DIR), *rest]),
        CONTROL_ENV: str(control_path),
    }
